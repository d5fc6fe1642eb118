"""Shared pieces of the reliability tests (tests/reliability/): tiny images and training configs,
hostile pickles, the CLI in this process and in a child process (for signals and resource limits)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from arniqa.cli import _register, app
from arniqa.utils import runtime

_register()
TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def write_images(folder: Path, n: int, size=(40, 48), seed: int = 0) -> list[Path]:
    """``n`` random-texture RGB PNGs of ``size`` (h, w)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    paths = []
    for i in range(n):
        blobs = np.kron(rng.random((h // 8 + 1, w // 8 + 1, 3)), np.ones((8, 8, 1)))[:h, :w]
        pixels = (blobs * 200 + rng.random((h, w, 3)) * 55).astype(np.uint8)
        paths.append(folder / f"img{i:02d}.png")
        Image.fromarray(pixels).save(paths[-1])
    return paths


def train_config(tmp_path: Path, output: Path, images: int = 6, **sections) -> Path:
    """A YAML config for a tiny run (16 px crops, batch 2, one epoch of ``images // 2`` steps, a
    checkpoint after every step) on ``images`` pictures; ``sections`` update its sections."""
    root = tmp_path / "pristine"
    if not root.exists():
        write_images(root, images)
    values = {
        "output": str(output),
        "data": {"root": str(root), "crop_size": 16, "num_workers": 0, "degrade_on": "device"},
        "model": {"init": "random"},
        "train": {
            "epochs": 1,
            "batch_size": 2,
            "device": "cpu",
            "precision": "fp32",
            "checkpoint_every": 1,
            "channels_last": False,
        },
        "log": {"every": 1, "tensorboard": False, "progress": False},
    }
    for name, update in sections.items():
        values[name].update(update)
    path = tmp_path / f"{output.name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture
def tiny_model(monkeypatch):
    """Training builds the tests' stand-in model; the CLI leaves glibc's settings of this process alone."""
    from tiny_arniqa import TinyARNIQA

    import arniqa.train.loop as loop

    monkeypatch.setattr(loop, "build_model", lambda config: TinyARNIQA())
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: False)


def tiny_ablation(tmp_path: Path, *settings: str) -> list:
    """``arniqa ablate`` arguments: configs/ablation_tiny.yaml on 8 new images in tmp_path/pristine, writing
    tmp_path/out; ``settings`` are passed with ``--set`` too."""
    write_images(tmp_path / "pristine", 8)
    sets = [a for s in (f"data.pristine={tmp_path / 'pristine'}", *settings) for a in ("--set", s)]
    return ["ablate", TESTS.parent / "configs" / "ablation_tiny.yaml", "-o", tmp_path / "out", *sets]


def demo_photos(folder: Path) -> None:
    """Small stand-ins for the demo's sample photos (the demo keeps the photos it finds)."""
    from arniqa.data.samples import SKIMAGE_PHOTOS

    for name in (*SKIMAGE_PHOTOS, "china", "flower"):
        write_images(folder, 1)[0].rename(folder / f"{name}.png")


def hold(path: Path) -> subprocess.Popen:
    """A child process that holds ``output_lock(path)`` until killed; returns once it holds it."""
    code = (
        f"import time\nfrom arniqa.utils.locks import output_lock\nwith output_lock({str(path)!r}):\n"
        "    print('held', flush=True)\n    time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(SRC)}
    )
    assert child.stdout.readline().strip() == "held"
    return child


def full_disk_for_text(monkeypatch, fails) -> None:
    """Text that utils.files.text_writer (every atomic write of text: JSON, YAML, reports) writes to a file whose
    path ``fails(path)`` fails as on a full disk (ENOSPC), when it is opened for writing."""
    import errno

    import arniqa.utils.files as files

    def full(file, mode="r", *args, **kwargs):
        if "w" in mode and fails(Path(file)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return open(file, mode, *args, **kwargs)

    monkeypatch.setattr(files, "open", full, raising=False)


def refuse_access(monkeypatch, refused, lookup=True):
    """Opening a path for which ``refused(path)`` is true fails with EACCES, and with ``lookup`` looking it up does
    too, as for a user without the permission (a file's read permission; a folder's search permission, which
    looking up the files in it needs); root, who runs these tests on the machine here, is never refused."""
    import builtins
    import io

    def wrap(call):
        def checked(path, *args, **kwargs):
            if not isinstance(path, int) and refused(os.fsdecode(os.fspath(path))):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return call(path, *args, **kwargs)

        return checked

    calls = [(builtins, "open"), (io, "open")] + [(os, "stat"), (os, "lstat"), (os, "listdir")] * lookup
    for module, name in calls:
        monkeypatch.setattr(module, name, wrap(getattr(module, name)))


def cli(*args):
    """``arniqa ARGS`` in this process: the click result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(stderr: str) -> str:
    """The message of the one ``error:`` line ``stderr`` must consist of."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def last_line_error(stderr: str) -> str:
    """The one ``error:`` line that ends ``stderr``, after the step lines of a verb that prints them there (``demo``,
    ``ablate``): no traceback, no other error line."""
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == lines[-1:] and "Traceback" not in stderr, stderr
    return errors[0]


# The child's prelude: the stand-in model; ``setup`` (the test's code) runs before the CLI.
PRELUDE = """
import os, signal, sys, time
sys.path.insert(0, {tests!r})
from tiny_arniqa import TinyARNIQA
import arniqa.train.loop as loop
loop.build_model = lambda config: TinyARNIQA()
{setup}
from arniqa.cli import main
sys.argv = ["arniqa", *{args!r}]
main()
"""


def cli_child(*args, setup: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    """``arniqa ARGS`` in a child process after ``setup`` (Python code) ran there."""
    code = PRELUDE.format(tests=str(TESTS), setup=textwrap.dedent(setup), args=[str(a) for a in args])
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "ARNIQA_KEEP_FREED_MEMORY": "0"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)


class Touch:
    """Unpickling it creates ``marker`` (pathlib's ``touch``): a file that runs code when read."""

    def __init__(self, marker: Path) -> None:
        self.marker = Path(marker)

    def __reduce__(self):
        return Path.touch, (self.marker,)


class System:
    """Unpickling it runs ``touch marker`` in a shell."""

    def __init__(self, marker: Path) -> None:
        self.marker = Path(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def hostile_state(path: Path, marker: Path, kind: str) -> Path:
    """A ``state.pt`` with every key a training state has, one of which runs code when unpickled:
    ``zip`` (torch.save's format, pathlib) or ``legacy`` (torch's format before 1.6, os.system)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: {} for key in ("model", "optimizer", "scheduler", "scaler", "rng", "config")}
    state.update(epoch=0, step=1, global_step=1, best=None)
    if kind == "zip":
        state["model"] = {"conv.weight": torch.zeros(1), "payload": Touch(marker)}
        torch.save(state, path)
    else:
        state["model"] = System(marker)
        torch.save(state, path, _use_new_zipfile_serialization=False)
    return path
