"""The run's logs: a rich progress bar, TensorBoard scalars, ``log.csv`` and ``validation.csv``."""

from __future__ import annotations

import csv
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..utils.files import atomic_write, clear_own
from ..utils.names import count
from .config import Config
from .state import TrainingError, checkpoint_write

LOG_FIELDS = ("global_step", "epoch", "step", "loss", "lr", "samples_per_s", "elapsed_s")


class RunLogger:
    """Rich progress bar, TensorBoard scalars, ``log.csv`` / ``validation.csv`` and ``run.log``
    (main process only).

    On resume, CSV rows after the resumed step are dropped and TensorBoard purges them, so the
    logs read as one uninterrupted run.
    """

    def __init__(
        self, output: Path, total: int, start: int, enabled: bool, config: Config, seconds: float = 0.0
    ) -> None:
        """``seconds``: the run's wall time when the logger opens (the ``elapsed_s`` it goes on from)."""
        self.output, self.total, self.start, self.enabled, self.config = output, total, start, enabled, config
        self.t0 = time.perf_counter() - seconds

    def __enter__(self) -> RunLogger:
        if not self.enabled:
            return self
        self.csv_path = self.output / "log.csv"
        for name in ("validation.csv", "log.csv", "run.log"):  # read and appended in place: a planted pipe goes
            with self._writing(name):
                clear_own(self.output / name)
        damaged, self.progress, self.console = {}, None, None  # the progress bar starts below
        with self._writing("validation.csv"):
            damaged["validation.csv"] = _truncate_csv(self.output / "validation.csv", self.start)
        with self._writing("log.csv"):
            damaged["log.csv"] = _truncate_csv(self.csv_path, self.start, LOG_FIELDS)
            new = _headless(self.csv_path)
            self.csv_file = open(self.csv_path, "a", newline="", encoding="utf-8")
            self.csv = csv.writer(self.csv_file)
            if new:  # written now: a run killed before its first row leaves the header, not an empty file
                self.csv.writerow(LOG_FIELDS)
                self.csv_file.flush()
        with self._writing("run.log"):
            self.run_log = open(self.output / "run.log", "a" if self.start else "w", encoding="utf-8")
        for name, rows in damaged.items():
            if rows and self.start:  # said, not dropped unseen (a new run drops every row)
                line = (
                    f"{self.output / name}: {count(rows, 'damaged row')} dropped on resume (not rows of its columns: "
                    "cut short, overwritten or edited); their steps are missing from it"
                )
                self.note(line)
                warnings.warn(line, stacklevel=2)
        self.writer = None
        if self.config.log.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.output / "tensorboard"), purge_step=self.start or None)
        if self.config.log.progress:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

            from ..utils.console import progress_bar, terminal

            self.console = terminal(stderr=True)  # the notes, above the bar
            self.progress = progress_bar(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    "loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[speed]:.1f} samples/s"
                ),
                TimeRemainingColumn(),
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "train", total=self.total, completed=self.start, loss=float("nan"), lr=0.0, speed=0.0
            )
        return self

    @contextmanager
    def _writing(self, name: str) -> Iterator[None]:
        """Around a write of ``name`` in the run folder: a failing one (disk full) is one TrainingError."""
        with checkpoint_write(self.output / name, kept="what it held before is kept"):
            yield

    def note(self, text: str) -> None:
        """A timestamped line in ``run.log``, also printed above the progress bar."""
        if not self.enabled:
            return
        with self._writing("run.log"):
            self.run_log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
            self.run_log.flush()
        if self.console is not None:
            self.console.print(text)

    def advance(self, global_step: int, loss: float, lr: float) -> None:
        if self.enabled and self.progress is not None:
            self.progress.update(self.task, completed=global_step, loss=loss, lr=lr)

    def log(self, global_step: int, epoch: int, step: int, loss: float, lr: float, speed: float) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t0
        with self._writing("log.csv"):
            self.csv.writerow([global_step, epoch, step, f"{loss:.6f}", f"{lr:.6e}", f"{speed:.3f}", f"{elapsed:.1f}"])
            self.csv_file.flush()
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, global_step)
            self.writer.add_scalar("train/lr", lr, global_step)
            self.writer.add_scalar("train/samples_per_s", speed, global_step)
        if self.progress is not None:
            self.progress.update(self.task, speed=speed)

    def validation(self, global_step: int, epoch: int, metrics: dict[str, float], splits: str | None = None) -> None:
        """One ``validation.csv`` row; ``splits`` (which splits were used) adds a ``splits`` column."""
        if not self.enabled:
            return
        path = self.output / "validation.csv"
        row = {"global_step": str(global_step), "epoch": str(epoch)}
        row |= {key: f"{value:.6f}" for key, value in metrics.items()}
        if splits:
            row["splits"] = splits
        with self._writing("validation.csv"):
            rows = _read_csv(path)
            if rows and rows[0] == list(row):
                with open(path, "a", newline="", encoding="utf-8") as f:
                    csv.writer(f).writerow(row.values())
            else:  # new, its header damaged (rebuilt from these columns) or other validation data on resume
                head = rows[0] if rows and rows[0][:1] == ["global_step"] else list(row)
                records = [dict(zip(head, r)) for r in rows if len(r) == len(head) and r[0].isdigit()] + [row]
                _write_rows(path, [*head, *(c for c in row if c not in head)], records)
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f"validation/{key}", value, global_step)
        if self.console is not None:
            self.console.print(f"epoch {epoch}: validation " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        if self.progress is not None:
            self.progress.stop()
        if self.writer is not None:
            self.writer.close()
        failed = []
        for name, file in (("log.csv", self.csv_file), ("run.log", self.run_log)):
            try:  # closing flushes again what a failed write left in the buffer: it fails again
                with self._writing(name):
                    file.close()
            except TrainingError as err:
                failed.append(err)
        if failed and exc[0] is None:  # else the failure that ends the run has said it, naming the file
            raise failed[0]


def _headless(path: Path) -> bool:
    """Whether the CSV at ``path`` has no header yet: missing, or empty (a run killed before writing it)."""
    return not path.exists() or path.stat().st_size == 0


def _read_csv(path: Path) -> list[list[str]]:
    """The rows of the CSV at ``path`` (none when it is missing); a line holding a NUL byte is an empty row."""
    if not path.exists():
        return []
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        lines = f.read().splitlines()
    return [[] if "\0" in line else next(csv.reader([line]), []) for line in lines]  # Python 3.10's csv raises on NUL


def _write_rows(path: Path, head: list[str], records: list[dict[str, str]]) -> None:
    """Replace the CSV at ``path`` with the header ``head`` and ``records`` (a column a record lacks left empty)."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            out = csv.DictWriter(f, head, restval="")
            out.writeheader()
            out.writerows(records)

    atomic_write(path, write)


def _truncate_csv(path: Path, last_step: int, header: tuple[str, ...] | None = None) -> int:
    """Keep the header (``header``, else the file's first row when it is one) and the rows with global_step <=
    last_step (all rows dropped for a fresh run); return how many rows were dropped as damaged: not the header, and
    not a row of its columns with a step number and no NUL byte (cut short by a failed write, zeroed by a disk fault,
    edited). A damaged first row (no ``header``) counts as one, and the rows of the most frequent width are kept
    without a header: the next validation writes it from its columns."""
    if not path.exists():
        return 0
    rows = _read_csv(path)
    widths = [len(r) for r in rows if r[:1] and r[0].isdigit()]
    width = len(header) if header else max(widths, key=widths.count, default=0)
    if header:
        head = list(header)
        body = [r for r in rows if r != head]
    else:  # validation.csv: a header of its rows' width (cut short, it is damaged)
        head = rows[0] if rows and rows[0][:1] == ["global_step"] and (not widths or len(rows[0]) == width) else []
        body = rows[1:] if head else rows
    good = [r for r in body if len(r) == width > 0 and r[0].isdigit()]
    kept = ([head] if head else []) + [r for r in good if int(r[0]) <= last_step]

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(kept)

    atomic_write(path, write)
    return len(body) - len(good)
