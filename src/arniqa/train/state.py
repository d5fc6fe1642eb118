"""The resumable training state in ``state.pt``: RNG states, the atomic save, the safe read, and the
check that a run resumes with the settings it was started with.

``state.pt`` is read with ``torch.load(weights_only=True)``: tensors and plain values only, so a
file that would run code when unpickled is refused before anything in it runs. Writes of the state
and the model files go through :func:`checkpoint_write`: a DataLoader worker's death (PyTorch's
SIGCHLD handler) cannot cut them, and a failing write (disk full) is a :class:`TrainingError`.
torch is imported where it is used: the errors and :func:`read_state_bytes` come without it.
"""

from __future__ import annotations

import errno
import io
import os
import random
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from safetensors import SafetensorError

from ..constants import STATE_FILE
from ..utils.files import make_room, out_of_space, save_torch
from ..utils.locks import lock_holder
from ..utils.messages import file_line
from ..utils.runtime import out_of_memory
from .config import Config, yaml_value

# Settings a resumed run must share with the interrupted one: (config section, key).
RESUME_KEYS = (("train", "batch_size"), ("train", "seed"), ("model", "backbone"), ("data", "crop_size"))
# More of them, checked where the state holds them (older states may not): the state's optimiser and
# scheduler would silently keep their own values, or the run would no longer be the one resumed.
# optim.lr may change (lowered after a non-finite loss): Trainer.load_state applies it.
SAME_RUN_KEYS = (
    *(("optim", key) for key in ("name", "momentum", "weight_decay", "trust_coefficient", "t0_epochs")),
    *(("optim", key) for key in ("t0_steps", "warmup_steps", "t_mult", "eta_min")),
    *(("model", key) for key in ("temperature", "se_stages", "se_bias")),  # SE blocks: "does not fit" named no key
    *(("data", key) for key in ("max_distortions", "pristine_prob", "max_images")),
    ("train", "channels_last"),  # other kernels and rounding (a CPU step's last bits): the run no longer bit-exact
)
# train.* settings that change the numbers only where they take effect: the state records each as it was in effect
# (None: it changed nothing there), and a resume is refused only when it takes effect in both runs, set otherwise.
KERNEL_KEYS = ("deterministic", "sync_batchnorm")
# Keys of SAME_RUN_KEYS that a run uses only with some settings: whether the config section dicts ``c`` use it.
# Compared only where both runs use it: where one does not, the key deciding that differs and is named.
USED_WHEN = {
    ("optim", "trust_coefficient"): lambda c: c["optim"].get("name") == "lars",  # make_optimizer
    ("optim", "t0_epochs"): lambda c: c["optim"].get("t0_steps") is None,  # schedule.lr_at: t0_steps overrides it
    **{("model", key): lambda c: c["model"].get("backbone") == "se_resnet50" for key in ("se_stages", "se_bias")},
}
STATE_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "step", "global_step", "best", "rng", "config")

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:
    from numpy.core.multiarray import _reconstruct
# States written before the numpy RNG state was stored as plain values hold it as an ndarray of
# uint32: the array types torch's weights-only loader accepts when allow-listed (torch's advice for
# numpy arrays), the rebuild function under numpy 1's and 2's module names.
OLD_NUMPY_TYPES = [
    (_reconstruct, "numpy.core.multiarray._reconstruct"),
    (_reconstruct, "numpy._core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),
]


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, unusable run folder, incompatible checkpoint). ``reason``: what
    happened and what to do first; ``then``: how ``arniqa train`` goes on after that (:func:`go_on_from`), or None.
    The message is ``reason; then then``."""

    def __init__(self, reason: str, then: str | None = None) -> None:
        self.reason, self.then = reason, then
        super().__init__(reason if then is None else f"{reason}; then {then}")

    def going_on(self, advice: str) -> str:
        """The message for a command that goes on otherwise (``arniqa ablate``, ``arniqa demo``: run it again),
        ``advice`` in place of :attr:`then`."""
        return str(self) if self.then is None else f"{self.reason}; then {advice}"


class StateError(TrainingError):
    """A ``state.pt`` that cannot be read, or that would run code if it were."""


def resume_with(state: str | Path) -> str:
    """What to do to go on from the training state ``state`` (a run stopped by Ctrl-C or a signal)."""
    return f"resume with --resume {state}"


def go_on_from(state: Path) -> str:
    """How a run that stopped on an error goes on, once the error is fixed: from ``state``, its state.pt, or from
    the start while it has none."""
    return resume_with(state) if state.exists() else f"run the same command again (no {STATE_FILE} yet)"


def go_on(resume: str | Path | None, config: Config | None) -> str:
    """How a run stopped outside its steps goes on: from the state.pt in its output folder when it is newer than
    ``resume`` (written by this run, resumed from another folder's) or there is no ``resume``, else from
    ``resume``, else it trained nothing (a signal as it started, torchrun stopping it) and starts again.
    ``config``: None before it is read."""
    state = Path(config.output) / STATE_FILE if config is not None else None
    if state is not None and state.exists() and (resume is None or _mtime(state) >= _mtime(resume)):
        resume = state
    return resume_with(resume) if resume is not None else "nothing was trained: run the same command again"


def _mtime(path: str | Path) -> int:
    """When ``path`` was last written (ns), or 0 when it cannot be told (gone)."""
    try:
        return os.stat(path).st_mtime_ns
    except (OSError, ValueError):
        return 0


def rng_states() -> dict:
    """Every RNG state as tensors and plain values (numpy's key array as a list of ints)."""
    import torch

    name, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": (name, keys.tolist(), pos, has_gauss, gauss),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    import torch

    torch.set_rng_state(states["torch"])
    np.random.set_state(tuple(states["numpy"]))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


@contextmanager
def checkpoint_write(path: Path, kept: str = "the previous version, if any, is intact") -> Iterator[None]:
    """Around a write of a run file: a SIGCHLD (PyTorch's handler raises there when a DataLoader worker
    died) waits until the write is done; a failing write is a TrainingError naming ``path`` and saying
    what is ``kept``."""
    caught = []
    main = hasattr(signal, "SIGCHLD") and threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGCHLD) if main else None
    defer = callable(previous)  # a Python handler (PyTorch's once a DataLoader started workers)
    if defer:
        signal.signal(signal.SIGCHLD, lambda signum, frame: caught.append(signum))
    try:
        yield
    except (OSError, SafetensorError, MemoryError) as err:  # the write itself; atomic_write kept the previous file
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err) or type(err).__name__
        folder = path.parent.parent if path.parent.name == "snapshots" else path.parent
        raise TrainingError(
            file_line(path, f"cannot write it ({reason})", f"{kept}; {_write_advice(err)}"),
            go_on_from(folder / STATE_FILE),
        ) from err
    finally:
        if defer:
            signal.signal(signal.SIGCHLD, previous)
            if caught:
                previous(signal.SIGCHLD, None)  # now, after the write: raises if a worker died


def _write_advice(err: BaseException) -> str:
    """What to do when a run file (a snapshot's too) cannot be written for ``err``, before the run goes on."""
    if out_of_memory(err):  # serialising the state in memory: its size is the model's, not the batch's
        return "free memory (the state holds the model and its optimizer, whatever the batch size)"
    if full := out_of_space(err):
        return make_room(full)
    code = getattr(err, "errno", None)
    if code == errno.EROFS:
        return "remount the file system writable (or move the run folder to one that is)"
    if code in (errno.EACCES, errno.EPERM):
        return "fix the run folder's permissions"
    return "free disk space (or fix the folder's permissions)"


def save_state(state: dict, path: Path) -> None:
    """:func:`~arniqa.utils.files.save_torch` (in memory, then fsync and rename) within :func:`checkpoint_write`:
    a crash or a full disk at any moment leaves the old file or the new one, never a torn one (and a full disk
    is an OSError, not torch's "unexpected pos")."""
    with checkpoint_write(path):
        save_torch(path, state)


def _not_a_state(path: Path) -> str:
    """What to do with ``path``, which holds no usable state: a damaged ``.pt`` file is deleted (a new run refuses
    a folder holding a state.pt); a file of another kind (a model, a config) was given by mistake and is kept."""
    if path.suffix.lower() == ".pt":
        return "delete it and resume from another state.pt, or start the run again"
    return f"resume from the {STATE_FILE} in the folder of the interrupted run"


def read_state_bytes(path: Path, size: int = -1) -> bytes:
    """The bytes of the ``state.pt`` at ``path`` (read where the run folder is written: rank 0), or its first
    ``size``; StateError naming the file when it cannot be read. ``arniqa train --resume`` reads none of them
    first, before torch is imported: a path that is not there is one line at once."""
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except IsADirectoryError:  # the run folder, given for its state.pt
        held = Path(path) / STATE_FILE
        todo = resume_with(held) if held.is_file() else _not_a_state(Path(path))
        raise StateError(file_line(path, "a folder, not a training state", todo)) from None
    except FileNotFoundError as err:
        raise StateError(file_line(path, _not_there(Path(path)))) from err
    except OSError as err:
        raise StateError(
            file_line(path, f"cannot read the training state ({err.strerror or err})", "check the path")
        ) from err


def _not_there(path: Path) -> str:
    """Why there is no training state at ``path`` and what to do: the run in its folder is still before its first
    checkpoint, or stopped there (killed), else a path to check."""
    folder = path.parent
    if path.name == STATE_FILE and (holder := lock_holder(folder)):
        return (
            f"no such file yet: the run training in {folder} ({holder}) has not written its first checkpoint; let it "
            f"train on, or stop it (Ctrl-C: it writes {STATE_FILE} as it stops) and resume then"
        )
    started = any((folder / name).is_file() for name in ("config.yaml", "log.csv"))
    if path.name == STATE_FILE and started and not (folder / "model.safetensors").exists():
        return (
            f"no such file: the run in {folder} stopped before its first checkpoint (killed, or failed); start it "
            "again: the same command without --resume"
        )
    return "cannot read the training state (No such file or directory); check the path"


def load_state_file(path: Path, data: bytes | None = None) -> dict:
    """The dict in ``state.pt`` (``data``: its bytes, when already read), read without running code;
    StateError naming the file otherwise."""
    import torch

    from ..models.files import refused_object, unpickling_problem

    data = read_state_bytes(path) if data is None else data
    try:  # torch raises many types for damaged or foreign files
        with warnings.catch_warnings(), torch.serialization.safe_globals(OLD_NUMPY_TYPES):
            warnings.simplefilter("ignore")  # torch's note on the pickle protocol of a foreign file
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:
        if unsafe := refused_object(err):
            raise StateError(
                file_line(
                    path,
                    f"refused to read it: it would load the Python object {unsafe}, which a training state written by "
                    "arniqa never holds (a file that runs code when read)",
                    "delete it and resume from a state.pt you wrote, or start the run again",
                )
            ) from None
        raise StateError(
            file_line(
                path,
                f"not a readable training state ({unpickling_problem(err)})",
                f"the file is damaged or not a state.pt: {_not_a_state(path)}",
            )
        ) from None
    missing = [key for key in STATE_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise StateError(
            file_line(
                path, f"not a training state written by arniqa (it has no {', '.join(missing)})", _not_a_state(path)
            )
        )
    for key in ("epoch", "step", "global_step"):  # compared and counted on before anything else reads them
        if type(state[key]) is not int or state[key] < 0:
            raise StateError(
                file_line(
                    path,
                    f"not a training state written by arniqa (its {key} is {state[key]!r:.40}, not a count)",
                    _not_a_state(path),
                )
            )
    return state


def drawn_on(degrade_on: str, device: str | None) -> str | None:
    """The device type whose generator draws a step's degradation internals (:mod:`arniqa.train.batches`):
    the CPU in the DataLoader workers, else the training ``device``'s type (None: not known). A CUDA
    generator seeded alike draws other numbers than the CPU's."""
    return "cpu" if degrade_on == "workers" else device if degrade_on == "device" else None


def resumed_degrade_on(state: dict, value: str, placement: tuple[str, str]) -> str:
    """The ``data.degrade_on`` a resume of ``state`` runs with, where ``value`` (the config's) resolved to
    ``placement[0]`` for training on a ``placement[1]`` device: with ``auto`` the interrupted run's mode when it
    draws the degradations here where it drew them (``workers``: the CPU; ``device``: the same device type), so
    that a host with fewer cores per GPU process resumes the run as it started, else ``workers`` for a run that
    drew them on the CPU (``device`` on a CPU draws the numbers ``workers`` draws: tested), so that a GPU host
    resumes a CPU run; else ``placement[0]``."""
    mode = state["config"]["data"].get("degrade_on")
    then = drawn_on(mode, state.get("device"))
    if value != "auto" or then is None:
        return placement[0]
    return next((kept for kept in (mode, "workers") if drawn_on(kept, placement[1]) == then), placement[0])


def validation_basis(validation: dict) -> tuple:
    """What a validation score depends on (a ``validation`` config section as a dict): each dataset's adapter and
    splits, the ridge alpha and the random split count; not a dataset's root (a moved copy) nor its label."""
    datasets = [(entry.get("name"), entry.get("splits")) for entry in validation.get("datasets", [])]
    return datasets, validation.get("alpha"), validation.get("num_splits")


def read_state(
    path: str | Path,
    config: Config,
    images: tuple[int, str],
    placement: tuple[str, str],
    kernels: dict,
    data: bytes | None = None,
) -> dict:
    """The state saved at ``path`` (``data``: its bytes, when already read), checked against ``config``
    (:data:`RESUME_KEYS`, :data:`SAME_RUN_KEYS`), the :data:`KERNEL_KEYS` settings as they take effect in this run
    (``kernels``: each one's value, or None where it changes nothing), the run's ``images`` (their count and
    :func:`~arniqa.data.pristine.image_set_id`) and its ``placement`` (``data.degrade_on`` resolved, the
    training device's type), which say where the degradations are drawn (:func:`drawn_on`; with ``auto`` in the
    interrupted run's mode where it can: :func:`resumed_degrade_on`); StateError when it cannot be read safely,
    TrainingError naming every difference when it was made with other settings, images or degradation draws."""
    path = Path(path)
    state = load_state_file(path, data)
    try:
        saved = {(section, key): state["config"][section][key] for section, key in RESUME_KEYS}
        record = state.get("images")  # older states have none
        then = None if record is None else (int(record["count"]), str(record["id"]))
    except (KeyError, TypeError, ValueError):
        needed = ", ".join(f"{section}.{key}" for section, key in RESUME_KEYS)
        raise StateError(
            file_line(
                path,
                f"its config does not hold {needed} or its image record is damaged, so it was not written by arniqa",
                "resume from another state.pt, or start the run again",
            )
        ) from None
    now = config.to_dict()
    for section, key in SAME_RUN_KEYS:
        used = USED_WHEN.get((section, key), lambda c: True)
        if key in state["config"].get(section, {}) and used(state["config"]) and used(now):
            saved[section, key] = state["config"][section][key]
    changed = [
        f"{section}.{key} was {yaml_value(old)} in the interrupted run, now "
        f"{yaml_value(getattr(getattr(config, section), key))}"
        for (section, key), old in saved.items()
        if old != getattr(getattr(config, section), key)
    ]
    in_effect = state.get("kernels")
    if not isinstance(in_effect, dict):  # older states: the config's values, as if each took effect
        in_effect = {key: state["config"].get("train", {}).get(key) for key in KERNEL_KEYS}
    for key in KERNEL_KEYS:
        old, new = in_effect.get(key), kernels[key]
        if old is not None and new is not None and old != new:
            changed.append(f"train.{key} was {yaml_value(old)} in the interrupted run, now {yaml_value(new)}")
    if then is not None and then != images:
        changed.append(
            f"data.root holds other images than in the interrupted run ({images[0]} now in {config.data.root!r}, "
            f"{then[0]} then in {state['config']['data'].get('root')!r}; a moved or copied folder "
            "of the same files is fine)"
        )
    mode = state["config"]["data"].get("degrade_on")
    resumed = resumed_degrade_on(state, config.data.degrade_on, placement)
    then, now = drawn_on(mode, state.get("device")), drawn_on(resumed, placement[1])  # older states: no device
    if then is not None and then != now:
        changed.append(
            f"the degradations were drawn on {then} in the interrupted run (data.degrade_on={mode}), now on {now} "
            f"(data.degrade_on={resumed}, training on {placement[1]}): other random draws; draw them on {then} "
            f"with data.degrade_on={'workers' if then == 'cpu' else f'device on a {then} device'}"
        )
    if changed:
        raise TrainingError(
            file_line(
                path,
                "; ".join(changed),
                "resume with the settings and images the run started with (its config.yaml), or start a new run in "
                "another output folder",
            )
        )
    return state
