"""The training loop: batched degradations, two-pass forward, NT-Xent, AMP, checkpoints, resume, logs.

Run folder (``config.output``):

* ``state.pt``: the resumable training state (model, optimiser, scheduler, scaler, epoch, step
  within the epoch, best validation score, RNG states), written atomically every
  ``train.checkpoint_every`` steps and at every epoch end;
* ``best.safetensors``: the best model by validation SRCC (only when validation data are given);
* ``model.safetensors``: the final model, :func:`arniqa.models.checkpoint.save_checkpoint` format
  (the best one when validating, else the last), for ``arniqa score/evaluate --checkpoint``;
* ``config.yaml``, ``log.csv``, ``validation.csv``, ``tensorboard/``;
* ``run.log``: what the CSVs cannot say: the SHA-256 of the ImageNet file, the validation splits,
  resumes (appended on resume, restarted by a fresh run).

Randomness: data order, crops, B and chains are seeded by ``(seed, epoch, index)`` in
:mod:`arniqa.data.pristine`, and the degradations' internals by ``(seed, epoch, step, rank)``
(:mod:`arniqa.train.batches`, wherever ``data.degrade_on`` runs them), so a resumed run replays
exactly what the interrupted one would have done.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import torch
import yaml

from ..data.folders import training_images
from ..data.images import ImageError
from ..data.pristine import EpochSampler, PristinePairs, image_set_id
from ..models import ARNIQA
from ..models.checkpoint import save_checkpoint
from ..utils.files import atomic_write, remove_left_temporaries, text_writer
from ..utils.locks import output_lock
from ..utils.messages import file_line
from ..utils.names import count
from ..utils.runtime import check_workers, out_of_memory
from .batches import batch_crops, broken_image, end_workers, make_loader, resolve_degrade_on, worker_death
from .config import Config, TrainConfig, check_data
from .distributed import Context, lost_peer, setup, teardown
from .factory import (
    autocast_settings,
    build_model,
    imagenet_file_note,
    load_imagenet,
    make_optimizer,
    resolve_precision,
)
from .logger import RunLogger
from .schedule import advance, make_scheduler, set_peak_lr
from .state import (
    STATE_FILE,
    StateError,
    TrainingError,
    checkpoint_write,
    go_on_from,
    read_state,
    read_state_bytes,
    resumed_degrade_on,
    rng_states,
    save_state,
    set_rng_states,
    validation_basis,
)
from .step import TwoPass, contrastive_loss
from .stopping import Stopped, StopSignals

Validator = Callable[[ARNIQA], dict[str, float]]  # model (eval mode) -> {"srcc": mean SRCC, ...}


class Trainer:
    """Self-supervised ARNIQA training for one :class:`Config` (see the module docstring).

    ``validate`` maps the model (eval mode) to metrics with key ``"srcc"`` (higher is better); when
    None it is built from ``config.validation.datasets`` (no validation when that list is empty).
    A ``splits`` attribute of ``validate`` (a string: which splits it uses) goes to the ``splits``
    column of ``validation.csv`` and to ``run.log``.
    """

    def __init__(self, config: Config, validate: Validator | None = None, context: Context | None = None) -> None:
        self.began = time.perf_counter()
        self.seconds_before = 0.0  # the wall time of the invocations before a resume, up to their state.pt
        self.config = config
        self.ctx = context or setup(config.train.device)
        self.device = self.ctx.device
        self.output = Path(config.output)
        cfg = config.train
        with self.ctx.together("start"):  # no collective before every process has its data and model
            self.validate = validate if validate is not None else make_validator(config, self.device)
            torch.manual_seed(cfg.seed)
            np.random.seed(cfg.seed)
            random.seed(cfg.seed)
            if cfg.deterministic:  # before cuBLAS starts; the flag itself is set for fit() alone
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            self._build_data()
            self._build_model()
            self._build_optim()
        self.net = self.ctx.ddp(TwoPass(self.model), cfg.sync_batchnorm)
        self.epoch = self.step = self.global_step = 0
        self.best: float | None = None
        self.stops = StopSignals()
        self.saved_at = -1  # the global step of the last state.pt written
        self.stepping = False  # inside a step: its state is not one to save
        self.finished_before = False  # the resumed run had ended: fit() trained nothing
        self.model_restored = False  # ... and its model, missing, was written again from its state

    def _build_data(self) -> None:
        config, cfg = self.config, self.config.train
        check_data(config)
        check_workers(config.data.num_workers, "data.num_workers")
        files = training_images(config.data.root)[: config.data.max_images]
        self.images = (len(files), image_set_id(files))  # what the run trains on, wherever the folder lies
        self.dataset = PristinePairs(
            files, config.data.crop_size, config.data.max_distortions, config.data.pristine_prob, cfg.seed
        )
        if cfg.batch_size % (world := self.ctx.world_size):
            raise ValueError(
                f"train.batch_size={cfg.batch_size} is not divisible by {count(world, 'process', 'processes')}, "
                f"each of which takes an equal share of every batch; set it to a multiple of {world} (e.g. --set "
                f"train.batch_size={max(1, round(cfg.batch_size / world)) * world}), or run a number of processes that "
                f"divides {cfg.batch_size}"
            )
        self.steps_per_epoch = len(self.dataset) // cfg.batch_size
        if self.steps_per_epoch == 0:
            limit = f" (data.max_images={config.data.max_images})" if config.data.max_images is not None else ""
            raise ValueError(
                f"{config.data.root}: {count(len(files), 'training image')}{limit}, fewer than one batch of "
                f"{cfg.batch_size}; lower train.batch_size or add images"
            )
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", self.ctx.world_size))
        self.degrade_on = resolve_degrade_on(config.data.degrade_on, self.device, local_processes)

    def _build_model(self) -> None:
        cfg, config = self.config.train, self.config
        if config.model.init == "imagenet":  # its file is read when a new run starts: a resumed one needs none
            config = dataclasses.replace(config, model=dataclasses.replace(config.model, init="random"))
        self.model = build_model(config).to(self.device)
        self.notes = [self._degrade_on_note()]  # lines for run.log
        self.validation_splits = getattr(self.validate, "splits", None)
        if self.validation_splits:
            self.notes.append(f"validation splits: {self.validation_splits}")
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)

    def _build_optim(self) -> None:
        opt = self.config.optim
        self.optimizer = make_optimizer(self.model, opt)
        self.scheduler = make_scheduler(self.optimizer, opt, self.steps_per_epoch)
        self.autocast_dtype, use_scaler = autocast_settings(self.config.train.precision, self.device)
        self.precision = resolve_precision(self.config.train.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "global_step": self.global_step,
            "best": self.best,
            "rng": rng_states(),
            "world_size": self.ctx.world_size,
            "device": self.device.type,
            "precision": self.precision,
            "kernels": self.kernels(),
            "config": self.resolved_config(),
            "images": {"count": self.images[0], "id": self.images[1]},
            "seconds": self.seconds(),
        }

    def seconds(self) -> float:
        """The run's wall time so far: this invocation's, from the trainer's start, and its resumed ones'."""
        return self.seconds_before + time.perf_counter() - self.began

    def kernels(self) -> dict:
        """The :data:`~arniqa.train.state.KERNEL_KEYS` settings as they take effect in this run, None where one
        changes nothing: deterministic algorithms off the CPU (a CPU step is bit-identical either way: tested),
        SyncBatchNorm with several CUDA processes."""
        cfg = self.config.train
        return {
            "deterministic": cfg.deterministic if self.device.type != "cpu" else None,
            "sync_batchnorm": cfg.sync_batchnorm if self.ctx.syncs_batchnorm else None,
        }

    def resolved_config(self) -> dict:
        """The config as it ran: ``data.degrade_on`` resolved (a valid config value itself)."""
        values = self.config.to_dict()
        values["data"]["degrade_on"] = self.degrade_on
        return values

    def _degrade_on_note(self) -> str:
        workers = self.config.data.num_workers
        if self.degrade_on == "device":
            where = f"on the training device ({self.device})"
        elif workers:
            where = f"on the CPU in the {workers} DataLoader workers, a whole batch per worker"
        else:
            where = "on the CPU in the main process (data.num_workers=0)"
        return f"data.degrade_on={self.config.data.degrade_on} -> {self.degrade_on}: degradation chains run {where}"

    def save_state(self) -> None:
        if self.ctx.main:
            save_state(self.state_dict(), self.output / STATE_FILE)
        self.saved_at = self.global_step

    def load_state(self, path: str | Path, data: bytes | None = None) -> None:
        """Resume from the state.pt at ``path`` (``data``: its bytes, when rank 0 has read them)."""
        placement = (self.degrade_on, self.device.type)
        state = read_state(path, self.config, self.images, placement, self.kernels(), data)
        mode = resumed_degrade_on(state, self.config.data.degrade_on, placement)  # every rank: the same state
        if mode != self.degrade_on:  # auto resolves otherwise here (fewer cores, a GPU): the run goes on as it started
            here, self.degrade_on = self.degrade_on, mode
            then = state["config"]["data"]["degrade_on"]
            how = (
                "as in the interrupted run" if mode == then else f"drawn on the CPU as by the interrupted run ({then})"
            )
            self.notes[0] = f"{self._degrade_on_note()}, {how} (auto gives {here} on this host)"
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state["scaler"]:  # empty when the interrupted run had no scaler (fp32, bf16)
                self.scaler.load_state_dict(state["scaler"])
            set_rng_states(state["rng"])
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            reason = next(iter(str(err).strip().splitlines()), "")
            raise StateError(
                file_line(
                    path,
                    f"does not fit this run ({type(err).__name__}: {reason})",
                    "resume with the settings it was written with (its config.yaml)",
                )
            ) from err
        if state["config"]["optim"].get("lr") != self.config.optim.lr:
            set_peak_lr(self.scheduler, self.config.optim.lr)
        if not 0 <= state["step"] < self.steps_per_epoch:
            raise StateError(
                file_line(
                    path,
                    f"it stopped at step {state['step']} of an epoch, which now has {self.steps_per_epoch} steps "
                    "(data.root holds other images than the interrupted run's)",
                    "resume with the same images",
                )
            )
        self.epoch, self.step = state["epoch"], state["step"]
        self.seconds_before = float(state.get("seconds", 0.0))  # absent from a state written before it was kept
        self.global_step, self.best = state["global_step"], state["best"]
        if state["config"]["data"].get("root") != self.config.data.root:  # moved: the same images (read_state)
            self.notes.append(f"data.root was {state['config']['data'].get('root')!r}, now {self.config.data.root!r}")
        now = (("device", self.device.type), ("precision", self.precision), ("world_size", self.ctx.world_size))
        moved = [f"{key} was {state[key]}, now {value}" for key, value in now if state.get(key, value) != value]
        if moved:  # allowed (another machine; fp32 after a non-finite loss), but other rounding from here on
            self.notes.append(
                f"resumed with {'; '.join(moved)}: not bit-identical to the run uninterrupted from here on"
            )
        validation = validation_basis(state["config"].get("validation", {}))
        if (
            self.best is not None
            and not self._ended()
            and validation != validation_basis(self.config.to_dict()["validation"])
        ):
            # scores of other data or splits, not comparable with the saved best (an ended run keeps its best model)
            then = (
                "best.safetensors is replaced at the next validation"
                if self.config.validation.datasets
                else "no validation now: best.safetensors stays the interrupted run's, model.safetensors is the last"
            )
            self.notes.append(
                f"validation differs from the interrupted run's (its datasets, splits, alpha or num_splits): its best "
                f"score {self.best:.4f} is not compared with the new scores; {then}"
            )
            if self.ctx.main:
                warnings.warn(self.notes[-1], stacklevel=2)
            self.best = None

    def _ended(self) -> bool:
        """Whether the run is at its end: ``train.epochs`` or ``train.max_steps`` reached."""
        total = total_steps(self.steps_per_epoch, self.config.train)
        return self.epoch >= self.config.train.epochs or self.global_step >= total

    def _kept(self) -> str:
        """Which checkpoint an interrupted run can resume from."""
        last = self.output / STATE_FILE
        return f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"

    # ------------------------------------------------------------------ one step
    def train_step(self, batch: dict, epoch: int, step: int) -> torch.Tensor:
        """Degrade, forward both passes, NT-Xent over the global batch, backward, optimiser and
        scheduler step. Returns the loss (mean over processes, detached). Raises TrainingError on a
        non-finite loss before touching the weights."""
        x = batch_crops(batch, self.device, self.config.train.seed, epoch, step, self.ctx.rank)
        x = x.contiguous(memory_format=self.memory_format)
        loss, reported = contrastive_loss(self.net, x, self.config.model.temperature, self.autocast_dtype)
        if not torch.isfinite(reported):
            raise TrainingError(
                f"loss is {reported.item()} at epoch {epoch}, step {step} (global step {self.global_step}); "
                f"stopped without updating the weights; {self._kept()}. Try a lower optim.lr or train.precision=fp32."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        advance(self.scheduler, epoch, step, self.steps_per_epoch)
        return reported

    # ------------------------------------------------------------------ the run
    def fit(self, resume: str | Path | None = None) -> Path:
        """Train to the end (or ``train.max_steps``); return the final model file. The run folder is
        locked (:func:`~arniqa.utils.locks.output_lock`) while the run writes it."""
        path = self.output / "model.safetensors"
        try:
            with deterministic_algorithms(self.config.train.deterministic), self._started(resume) as logger, self.stops:
                if logger is not None:
                    self._run(logger.total, logger)
                elif self.model_restored:
                    self._finish()
        finally:
            teardown()
        if self.stops.signum:  # in the last step or the model's write: the run is whole, and the command stops
            raise Stopped(
                self.stops.signum,
                f"after the run's last step (global step {self.global_step}); it finished: {self.outcome(path)}",
            )
        return path

    def outcome(self, path: Path) -> str:
        """The line a command prints once :meth:`fit` returned ``path``."""
        if not self.finished_before:
            return f"model written to {path}"
        if self.model_restored:
            model = f"its model was missing: written again from the run's final state to {path}"
        else:
            model = f"its model is {path}, left as it was"
        return (
            f"{self.output}: the run already finished at global step {self.global_step}; {model} (to train on, "
            "raise train.epochs or train.max_steps and resume)"
        )

    @contextmanager
    def _started(self, resume: str | Path | None) -> Iterator[RunLogger | None]:
        """Rank 0 holding the run folder's lock: the resumed state loaded, config.yaml written, the logger open
        (None, nothing trained, when the resumed run had already ended)."""
        with ExitStack() as stack:
            with self.ctx.together("start"):  # every process, or none
                if resume is None and self.config.model.init == "imagenet":
                    self._load_imagenet()  # before the run folder is made: a missing file makes none
                found = self._claim(stack, resume) if self.ctx.main else None
            found = self.ctx.from_main(found, "start")  # rank 0 alone writes the run folder: its view holds
            with self.ctx.together("start"):
                log = self._begin(stack, *found)
            del found  # the state's bytes
            self.ctx.allow_long_waits()
            yield log

    def _load_imagenet(self) -> None:
        """A new run: the ImageNet file loaded into the model (every process the same file), its SHA-256 noted."""
        load_imagenet(self.model, self.config)
        if self.ctx.main:
            self.notes.append(imagenet_file_note(self.config.model.weights))

    def _claim(self, stack: ExitStack, resume: str | Path | None) -> tuple:
        """Rank 0: the run folder locked and cleared of a killed run's temporaries; what it holds for this start:
        ``(resume, the state's bytes, whether model.safetensors exists, rank 0's images)``."""
        self.output.mkdir(parents=True, exist_ok=True)
        stack.enter_context(output_lock(self.output))
        for folder in (self.output, snapshot_path(self.output, 0).parent):  # a killed run's copies (GBs)
            remove_left_temporaries(folder, age=0)  # the lock is ours: none is being written
        if resume is None and (self.output / STATE_FILE).exists():
            raise TrainingError(
                f"{self.output} already holds a training state ({STATE_FILE}); resume it with "
                f"--resume {self.output / STATE_FILE} or choose another output folder"
            )
        data = None if resume is None else read_state_bytes(Path(resume))
        return resume, data, (self.output / "model.safetensors").exists(), self.images

    def _begin(
        self, stack: ExitStack, resume: str | Path | None, data: bytes | None, model_written: bool, images: tuple
    ) -> RunLogger | None:
        """Every process, from what rank 0 found (:meth:`_claim`): the state loaded, the logger open (None when
        the resumed run had ended; its model, when missing, is written again)."""
        if images != self.images:
            raise TrainingError(
                f"data.root {self.config.data.root!r} holds other images here than rank 0's ({self.images[0]} "
                f"here, {images[0]} there); give every process the same images"
            )
        if resume is not None:
            self.load_state(resume, data)
        total = total_steps(self.steps_per_epoch, self.config.train)
        self.finished_before = resume is not None and self._ended()
        self.model_restored = self.finished_before and not model_written
        return None if self.finished_before else self._open_log(stack, resume, total)

    def _open_log(self, stack: ExitStack, resume: str | Path | None, total: int) -> RunLogger:
        """config.yaml written (rank 0), the logger open in ``stack``, the notes in run.log."""
        if self.ctx.main:
            text = yaml.safe_dump(self.resolved_config(), sort_keys=False)
            with checkpoint_write(self.output / "config.yaml"):
                atomic_write(self.output / "config.yaml", text_writer(text))
        log = stack.enter_context(
            RunLogger(self.output, total, self.global_step, self.ctx.main, self.config, self.seconds())
        )
        if resume is not None:
            log.note(f"resumed from {resume} at global step {self.global_step}")
        for line in self.notes:
            log.note(line)
        return log

    def _run(self, total: int, logger: RunLogger) -> None:
        try:
            self._steps(total, logger)
            self._finish()
        except Exception as err:
            if self.stops.signum:  # the workers died of the signal the run got, as PyTorch reports it there
                self._stop(self.stops.signum)
            if isinstance(err, TrainingError) or not isinstance(err, (RuntimeError, ImageError, MemoryError)):
                raise  # said already (a run file that cannot be written); a dead worker is a RuntimeError
            samples = self._samples(self.epoch, self.step)
            state = self.output / STATE_FILE
            where = f"at epoch {self.epoch}, step {self.step}"
            failure = broken_image(err, state) or worker_death(err, self.dataset, samples, state)
            failure = failure or lost_peer(err, where, go_on_from(state))
            if failure is None and out_of_memory(err):
                failure = TrainingError(  # a resume keeps the batch size and crop size
                    f"out of memory {where} ({type(err).__name__}); free memory",
                    f"{go_on_from(state)}, or start a new run with a lower train.batch_size or data.crop_size in "
                    "another output folder",
                )
            if failure is None:
                raise
            raise failure from err

    def _steps(self, total: int, logger: RunLogger) -> None:
        cfg = self.config.train
        window_start, window_steps = time.perf_counter(), 0
        while self.epoch < cfg.epochs and self.global_step < total:
            epoch = self.epoch
            samples = self._samples(epoch, self.step)
            self.net.train()
            batches = iter(self._loader(samples))
            try:
                for step, batch in zip(range(samples.start_step, samples.steps_per_epoch), batches):
                    self.stepping = True
                    lr = self.optimizer.param_groups[0]["lr"]  # what this step applies
                    loss = self.train_step(batch, epoch, step)
                    self.step, self.global_step = step + 1, self.global_step + 1
                    window_steps += 1
                    last = self.global_step == total
                    epoch_ended = self.step == self.steps_per_epoch
                    if epoch_ended or last or self._every(self.config.log.every):
                        now = time.perf_counter()
                        speed = window_steps * cfg.batch_size / max(now - window_start, 1e-9)
                        logger.log(self.global_step, epoch, step, loss.item(), lr, speed)
                        window_start, window_steps = now, 0
                    logger.advance(self.global_step, loss.item(), lr)
                    if self.global_step in cfg.snapshot_steps and self.ctx.main:
                        self._save_model(snapshot_path(self.output, self.global_step))
                    if epoch_ended:
                        self.epoch, self.step = epoch + 1, 0
                    if epoch_ended or last or self._every(cfg.checkpoint_every):
                        if epoch_ended and self._validation_due():
                            began = time.perf_counter()
                            self._validate(logger)
                            window_start += time.perf_counter() - began  # samples/s: of training, not validation
                        self.save_state()
                    self.stepping = False
                    if last:
                        break
                    signum = self.stops.agreed(self.ctx.distributed)
                    if signum:
                        self._stop(signum)
            finally:
                end_workers(batches)

    def _stop(self, signum: int) -> None:
        """End the run on signal ``signum``: the state saved unless a step was cut."""
        if not self.stepping and self.saved_at != self.global_step:
            self.save_state()
        saved = f"state.pt holds global step {self.global_step}" if self.saved_at == self.global_step else self._kept()
        raise Stopped(signum, f"at epoch {self.epoch}, step {self.step}; {saved}", self.output / STATE_FILE)

    def _every(self, steps: int) -> bool:
        """Whether the global step just finished is a multiple of ``steps``."""
        return self.global_step % steps == 0

    def _validation_due(self) -> bool:
        """At an epoch end: whether this epoch is one to validate on (``validation.every``)."""
        return self.validate is not None and self.epoch % self.config.validation.every == 0

    def _samples(self, epoch: int, start_step: int) -> EpochSampler:
        """The sample keys this process reads in ``epoch`` from ``start_step`` on."""
        return EpochSampler(
            len(self.dataset),
            self.config.train.batch_size,
            epoch,
            self.config.train.seed,
            start_step,
            self.ctx.rank,
            self.ctx.world_size,
        )

    def _loader(self, samples: EpochSampler):
        """The DataLoader of ``samples`` for this run's ``data.degrade_on``."""
        pin = self.device.type == "cuda"
        return make_loader(self.dataset, self.degrade_on, samples, self.config.data.num_workers, pin)

    def _validate(self, logger: RunLogger) -> None:
        if not self.ctx.main:
            return
        self.model.eval()
        with torch.no_grad():
            metrics = self.validate(self.model)
        self.model.train()
        logger.validation(self.global_step, self.epoch, metrics, self.validation_splits)
        srcc = float(metrics["srcc"])
        if math.isfinite(srcc) and (self.best is None or srcc > self.best):  # NaN (constant predictions): never best
            self.best = srcc
            self._save_model(self.output / "best.safetensors", srcc=srcc)

    def _save_model(self, path: Path, **extra) -> None:
        with checkpoint_write(path):
            save_checkpoint(path, self.model, epoch=self.epoch, step=self.step, global_step=self.global_step, **extra)

    def _finish(self) -> None:
        if not self.ctx.main:
            return
        best = self.output / "best.safetensors"
        if self.best is not None and best.exists():
            with checkpoint_write(self.output / "model.safetensors"):
                atomic_write(self.output / "model.safetensors", lambda tmp: shutil.copyfile(best, tmp))
        else:
            self._save_model(self.output / "model.safetensors")


def total_steps(steps_per_epoch: int, train: TrainConfig) -> int:
    """The steps a run takes: ``train.epochs`` epochs, at most ``train.max_steps``."""
    total = steps_per_epoch * train.epochs
    return total if train.max_steps is None else min(total, train.max_steps)


def snapshot_path(output: str | Path, step: int) -> Path:
    """The model snapshot a run writes after global step ``step`` (``train.snapshot_steps``)."""
    return Path(output) / "snapshots" / f"step{step}.safetensors"


def make_validator(config: Config, device: torch.device) -> Validator | None:
    """The validation callable for ``config.validation`` (None when no dataset is given)."""
    if not config.validation.datasets:
        return None
    from .validation import build_validator

    return build_validator(config.validation, device, crop_size=config.data.crop_size)


@contextmanager
def deterministic_algorithms(on: bool) -> Iterator[None]:
    """torch's deterministic algorithms on or off as ``train.deterministic`` says, for the block only: the flag is
    the process's, so it is put back after (an ablation's next variant, a caller's own setting)."""
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(on)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def train(config: Config, resume: str | Path | None = None, validate: Validator | None = None) -> Path:
    """Run training for ``config`` (resuming from a ``state.pt`` when given); return the final model file."""
    return Trainer(config, validate).fit(resume)
