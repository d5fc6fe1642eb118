"""The process and the machine it runs on: devices and their autocast precisions, the machine and commit a
result came from, glibc's malloc settings for the training commands, and how a command stops on a signal."""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..constants import EXIT_INTERRUPTED, INTERRUPTED
from .names import count

if TYPE_CHECKING:
    import torch

# ----------------------------------------------------------------------------------------- devices


def _mps_available() -> bool:
    import torch

    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


DEVICE = re.compile(r"auto|(cpu|cuda|mps)(:(0|[1-9][0-9]*))?")  # the devices this package runs on


def check_device(device: str | torch.device) -> None:
    """ValueError unless ``device`` (a name, or a torch device) is ``auto``, ``cpu``, ``cuda`` or ``mps``, the last
    three with an index or without: the name alone, without torch (a mistyped --device is one line at once).
    Whether the device is there is :func:`resolve_device`'s to say."""
    name = str(device)
    if not DEVICE.fullmatch(name):  # torch knows more names (meta, xpu, ...): none runs this package
        if not name or name != name.strip():  # nothing, or spaces at an end: quoted, as a config writes it
            from .yamltext import yaml_value

            name = yaml_value(name)
        raise ValueError(f"device {name} is not a device: choose auto, cpu, cuda, cuda:N or mps")


def device_or_auto(device: str | torch.device | None) -> str | torch.device:
    """``device``, None being ``auto`` (pyiqa's ``create_metric(device=None)`` picks the device itself)."""
    return "auto" if device is None else device


def resolve_device(device: str | torch.device | None = "auto", mps: bool = True) -> torch.device:
    """``"auto"`` (or None): CUDA if available, then Apple MPS (unless ``mps=False``), then CPU; anything else is
    a name :func:`check_device` takes. Another name, and a CUDA or MPS device that is not available, are a
    ``ValueError``."""
    device = device_or_auto(device)
    check_device(device)
    import torch  # here, not at the top: the CLI imports this module before it may import torch

    if str(device) != "auto":
        dev = torch.device(str(device))
        if dev.type == "cuda" and (why := _no_cuda(dev)):
            raise ValueError(f"device {device} requested but {why}")
        if dev.type == "mps" and not _mps_available():
            raise ValueError(f"device {device} requested but MPS is not available; choose auto or cpu")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps and _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _no_cuda(dev: torch.device) -> str | None:
    """Why the CUDA device ``dev`` cannot be used, with what to do, or None when it can."""
    import torch

    if torch.version.cuda is None:
        return (
            f"CUDA is not available: torch {torch.__version__} is built without it; install a CUDA build of torch, "
            "or choose auto or cpu"
        )
    if not torch.cuda.is_available():
        return (
            "CUDA is not available: no GPU is visible (check the driver and CUDA_VISIBLE_DEVICES); choose auto or cpu"
        )
    if dev.index is not None and dev.index >= (n := torch.cuda.device_count()):
        return f"there is no GPU {dev.index} ({count(n, 'GPU')} visible: cuda:0 to cuda:{n - 1}); choose one of those"
    return None


AUTOCAST_PRECISIONS = ("fp32", "bf16", "fp16")  # fp32: no autocast
WORKERS_PER_CORE = 4  # the most DataLoader worker processes per CPU core a setting may ask for


def host_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_workers(num_workers: int, option: str) -> None:
    """ValueError naming ``option`` when ``num_workers`` DataLoader workers are more than :data:`WORKERS_PER_CORE`
    per core of this host: each worker is a process of its own (a typo such as 1600 would fork until memory runs
    out)."""
    most = WORKERS_PER_CORE * host_cores()
    if num_workers > most:
        raise ValueError(
            f"{option}={num_workers} is more than {most} ({WORKERS_PER_CORE} per CPU core here); "
            "lower it (about one per core is enough)"
        )


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The dtype torch autocast runs ``precision`` (one of :data:`AUTOCAST_PRECISIONS`) in; None for fp32."""
    import torch

    return dict(zip(AUTOCAST_PRECISIONS, (None, torch.bfloat16, torch.float16)))[precision]


def autocast(device: torch.device, dtype: torch.dtype | None):
    """torch autocast to ``dtype`` on ``device``'s type; a context that does nothing when ``dtype`` is None."""
    import torch

    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


# ----------------------------------------------------------------------------------- out of memory

# Memory running out where PyTorch raises a plain RuntimeError: its CPU allocator (posix_memalign; Windows'
# _aligned_malloc), the CUDA runtime outside PyTorch's allocator (a context, a cuBLAS workspace), the shared
# memory that DataLoader workers hand batches over in (/dev/shm full), and its mapping of a file (ENOMEM: a
# safetensors checkpoint opened past `ulimit -v`); where ONNX Runtime raises its Fail or
# RuntimeException: its memory arena (running a model) and C++'s allocation failure (loading one, or running it
# without the arena): std::bad_alloc says "std::bad_alloc" with GCC and Clang, "bad allocation" with MSVC.
ALLOCATION_FAILED = (
    "DefaultCPUAllocator: can't allocate memory",
    "DefaultCPUAllocator: not enough memory",
    "CUDA error: out of memory",
    "unable to allocate shared memory(shm)",
    ": Cannot allocate memory (12)",  # "unable to mmap N bytes from file <F>: Cannot allocate memory (12)"
    "Failed to allocate memory for requested buffer",
    "std::bad_alloc",
    "bad allocation",
)
# Of these, the GPU's memory (PyTorch's OutOfMemoryError is its device allocators' too): the CPU does not run out.
DEVICE_ALLOCATION_FAILED = ("CUDA error: out of memory",)
ORT_ERRORS = "onnxruntime.capi.onnxruntime_pybind11_state"  # the module of ONNX Runtime's errors (no RuntimeError)
# PyTorch's report of a DataLoader worker ended by SIGKILL: on Linux, what the out-of-memory killer sends.
WORKER_KILLED = re.compile(r"DataLoader worker \(pid \d+\) is killed by signal: Killed\.")


def out_of_memory(error: BaseException | None) -> bool:
    """True when ``error`` is memory running out: a MemoryError, PyTorch's OutOfMemoryError (its device
    allocators), an OSError with errno ENOMEM (``[Errno 12] Cannot allocate memory``: an mmap, a fork, a thread
    failing), a RuntimeError or ONNX Runtime's Fail or RuntimeException holding one of :data:`ALLOCATION_FAILED`,
    or an error raised from one of these (``raise ... from``). Not any RuntimeError that mentions allocation."""
    torch, ort = sys.modules.get("torch"), sys.modules.get(ORT_ERRORS)  # not imported: none of their errors
    memory = (MemoryError, torch.OutOfMemoryError) if torch is not None else MemoryError
    failed = (RuntimeError, ort.Fail, ort.RuntimeException) if ort is not None else RuntimeError
    return any(
        isinstance(e, memory)
        or (isinstance(e, OSError) and e.errno == errno.ENOMEM)
        or (isinstance(e, failed) and any(text in str(e) for text in ALLOCATION_FAILED))
        for e in causes(error)
    )


def device_out_of_memory(error: BaseException | None) -> bool:
    """True when ``error`` is :func:`out_of_memory` of a GPU (CUDA, MPS): PyTorch's OutOfMemoryError, or one of
    :data:`DEVICE_ALLOCATION_FAILED`, or raised from one of these; the host's memory is not what ran out."""
    torch = sys.modules.get("torch")
    return any(
        (torch is not None and isinstance(e, torch.OutOfMemoryError))
        or (isinstance(e, RuntimeError) and any(text in str(e) for text in DEVICE_ALLOCATION_FAILED))
        for e in causes(error)
    )


REQUESTED = re.compile(r"Failed to allocate memory for requested buffer of size (\d+)")  # ONNX Runtime's arena


def beyond_memory(error: BaseException | None) -> int | None:
    """The bytes of the one buffer ONNX Runtime failed to allocate (:data:`REQUESTED`, in ``error`` or what it was
    raised from) where they are more than this machine's memory and its largest GPU's (PyTorch's, when loaded): no
    device of it holds that buffer, whatever else is free; else None."""
    asked = next((int(m[1]) for e in causes(error) if (m := REQUESTED.search(str(e)))), None)
    if asked is None or not hasattr(os, "sysconf"):
        return None
    largest = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        gpus = range(torch.cuda.device_count())
        largest = max(largest, *(torch.cuda.get_device_properties(i).total_memory for i in gpus))
    return asked if asked > largest else None


def worker_killed(error: BaseException | None) -> bool:
    """True when ``error`` is PyTorch's report of a DataLoader worker killed by SIGKILL (:data:`WORKER_KILLED`),
    most likely by the system for lack of memory, or raised from it (a main process waiting for a batch is told
    "DataLoader worker (pid(s) N) exited unexpectedly", from that report)."""
    return any(isinstance(e, RuntimeError) and WORKER_KILLED.search(str(e)) for e in causes(error))


def causes(error: BaseException | None) -> Iterator[BaseException]:
    """``error`` and the errors it was raised from, in turn."""
    seen: list[BaseException] = []
    while error is not None and not any(error is e for e in seen):  # a chain may loop back
        seen.append(error)
        yield error
        error = error.__cause__


# ------------------------------------------------------------------------------ machine and commit


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_summary() -> str:
    """``AMD EPYC, 2 logical CPUs, Linux 6.18.44``: the machine line of a benchmark's JSON."""
    return f"{cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def describe() -> dict[str, Any]:
    """Platform, CPU, core count, torch threads and versions, and the GPU when there is one."""
    import torch

    info = {
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def git_commit(folder: Path | None = None) -> str:
    """``git rev-parse HEAD`` of the repository holding this package (plus a note when the working
    tree has uncommitted changes to tracked files), or "unknown"."""
    folder = folder or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        if head.returncode:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


# --------------------------------------------------------------------------------- freed memory
# glibc malloc settings that keep freed CPU tensor memory for reuse, for the training commands.
#
# By default glibc hands big blocks (from 128 kB, adaptively up to 32 MB) straight to the kernel and
# gives them back when they are freed, so every fresh batch tensor is faulted in and zeroed page by
# page again: a batch of 64 crops of 224 x 224 is 38.5 MB. With blocks up to 256 MB served from the
# heap and up to 512 MB of freed memory kept there, the next batch reuses the same pages. Measured on
# a 2-core AMD EPYC, the degradation mix in two 1-thread processes, five alternating runs: 2.37 -> 2.29
# ms per crop (median) on top of PyTorch's ``THP_MEM_ALLOC_ENABLE=1``. The price is memory: a process
# keeps what it freed (CPU scoring ran 2-10 % faster with it but peaked 400-600 MB higher, so only
# ``arniqa train``, ``demo``, ``ablate`` and ``python -m arniqa.train`` turn it on).

MMAP_THRESHOLD = 256 << 20  # blocks below this come from the heap
TRIM_THRESHOLD = 512 << 20  # freed memory kept at the top of the heap
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
OPT_OUT = "ARNIQA_KEEP_FREED_MEMORY"
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds for this process (and the processes it forks later).

    Does nothing, and returns False, off Linux or glibc, when ``ARNIQA_KEEP_FREED_MEMORY=0``, or
    when the user set glibc's own malloc variables; True when both settings took effect.
    """
    if os.environ.get(OPT_OUT) == "0" or any(name in os.environ for name in USER_SETTINGS):
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


# -------------------------------------------------------------------------------------- signals

# What ends a batch job (a scheduler's time limit, ``timeout``, ``kill``) and a closed terminal.
TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_received: list[int] = []  # the signal that raised Terminated


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP raised where the main thread is, as Ctrl-C raises KeyboardInterrupt (see
    :func:`stop_on_signals`)."""


def _terminate(signum: int, frame) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once, even in a cleanup that hangs
    _received.append(signum)
    raise Terminated(signum)


def stop_on_signals() -> None:
    """For a command's process (never the library's: a host program's signals are its own): from now on
    :data:`TERMINATING` signals raise :class:`Terminated` in the main thread, so a command stopped by one ends as
    after Ctrl-C: ``finally`` blocks and context exits run (an output's lock file removed, temporary files deleted,
    empty output folders removed). A signal with a handler already, or ignored (``nohup``'s SIGHUP), is left as it
    is; ``train``'s :class:`~arniqa.train.stopping.StopSignals` takes these over while a run trains."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in TERMINATING:
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _terminate)


def stop_with_launcher(poll: float = 0.2) -> bool:
    """Under torchrun (torch elastic sets ``TORCHELASTIC_RUN_ID``): send this process SIGTERM, once, when its parent,
    torchrun, ends (a thread watches the parent's pid). torch elastic starts each process in a session of its own,
    so a SIGKILL to torchrun's process group reached none: they trained on, holding their GPUs and writing the run
    folder. Now they stop as on SIGTERM (the state saved). Linux's parent-death signal is not used: it comes when
    the thread that started the process ends, and again as torchrun's threads end, and a second SIGTERM stops a
    run at once, unsaved. Returns whether it watches; elsewhere it does nothing (a run started from a shell,
    ``nohup``, goes on when the shell ends)."""
    if "TORCHELASTIC_RUN_ID" not in os.environ:
        return False
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="arniqa-launcher", daemon=True).start()
    return True


def interrupted(advice: str | None = None) -> tuple[int, str]:
    """The exit status and the line of a command stopped by Ctrl-C or a :data:`TERMINATING` signal: 128 + the
    signal's number, as a shell reports it (130 for Ctrl-C), and ``interrupted`` or ``stopped by SIGTERM``, then
    ``; advice``: how that command goes on from what it wrote, where it can."""
    if not _received:
        code, line = EXIT_INTERRUPTED, INTERRUPTED
    else:
        code, line = 128 + _received[-1], f"stopped by {signal.Signals(_received[-1]).name}"
    return code, f"{line}; {advice}" if advice else line
