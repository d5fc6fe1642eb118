"""Stopping a run on a signal at the next step's end, with its state saved.

Ctrl-C (SIGINT), SIGTERM (a cluster scheduler's time limit, ``scancel``, ``kill``) and SIGHUP (the
terminal closed) do not end the run where they land: the step in progress finishes, ``state.pt`` is
written and the run ends with one line and exit 128 + the signal's number, so ``--resume`` loses no
step. A second signal ends the run at once, as without this (the last checkpoint is then what is kept).
A signal the process was started to ignore (``nohup``'s SIGHUP) stays ignored.
DataLoader workers get a terminal's or a scheduler's signal too and die of it: from the first signal
on their deaths are expected, so they no longer raise in the middle of a step.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from .state import resume_with

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """The run stopped on signal ``signum`` (``where``: when, and what state.pt holds; ``state``, to resume from,
    None for a run that finished); ``code`` is the exit status, 128 + the signal's number, as a shell reports it.
    A KeyboardInterrupt, as Ctrl-C: no ``except Exception`` on the way up (an ablation's loop over its jobs) takes
    it for one failed job and goes on."""

    def __init__(self, signum: int, where: str, state: Path | None = None) -> None:
        self.reason = f"stopped by {signal.Signals(signum).name} {where}"
        super().__init__(self.reason + (f": {resume_with(state)}" if state and state.exists() else ""))
        self.code = 128 + signum


class StopSignals:
    """While inside, :data:`SIGNALS` set :attr:`signum` instead of ending the process (main thread only)."""

    def __init__(self) -> None:
        self.signum = 0  # 0: no signal yet
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (*SIGNALS, signal.SIGCHLD) if hasattr(signal, "SIGCHLD") else SIGNALS:
                self.previous[signum] = signal.getsignal(signum)
            for signum in SIGNALS:
                if self.previous[signum] is not signal.SIG_IGN:  # nohup's SIGHUP, a background job's SIGINT
                    signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        if self.signum:  # the second one: stop now, the way the signal stops a process
            self.__exit__()
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        if hasattr(signal, "SIGCHLD") and callable(signal.getsignal(signal.SIGCHLD)):
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # PyTorch's: raises when a worker died

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            # SIGCHLD only after a stop (which took it): PyTorch sets its handler once per process, at its first
            # DataLoader, and a later run in this process (ablate's variants) needs it to learn of a dead worker
            if signum != getattr(signal, "SIGCHLD", None) or self.signum:
                signal.signal(signum, handler)
        self.previous = {}

    def agreed(self, distributed: bool) -> int:
        """The signal any process of the run got (0: none): all stop at the same step."""
        if not distributed:
            return self.signum
        import torch  # here: python -m arniqa.train takes Stopped before it imports torch
        import torch.distributed as dist

        nccl = dist.get_backend() == "nccl"
        device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
        flag = torch.tensor([self.signum], dtype=torch.int64, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())
