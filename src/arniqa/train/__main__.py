"""``python -m arniqa.train CONFIG [--set key=value ...] [--resume state.pt]`` (also under torchrun)."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from contextlib import suppress
from typing import NoReturn

from ..utils.locks import OutputBusy
from ..utils.messages import error_line, say, show_warning
from ..utils.runtime import interrupted, keep_freed_memory, stop_on_signals, stop_with_launcher
from .config import ConfigError, load_config
from .state import TrainingError, go_on
from .stopping import Stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arniqa.train", description="Self-supervised ARNIQA training.")
    parser.add_argument("config", help="YAML config (see configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=0.01 (repeatable)",
    )
    parser.add_argument("--resume", metavar="STATE", help="resume from a state.pt written by an earlier run")
    args = parser.parse_args(argv)
    warnings.showwarning = show_warning
    config = None
    try:
        config = load_config(args.config, args.overrides)
        from .loop import Trainer  # torch, timm: seconds, after the signal handlers (a signal meanwhile: a line)

        trainer = Trainer(config)
        path = trainer.fit(args.resume)
    except Stopped as err:
        say(error_line(f"{rank_prefix()}{err}"))
        return err.code
    except KeyboardInterrupt:  # before the run trains, or after: no state.pt written by this stop
        code, line = interrupted(go_on(args.resume, config))
        say(error_line(f"{rank_prefix()}{line}"))
        return code
    except (ConfigError, TrainingError, ValueError, OutputBusy) as err:
        say(error_line(f"{rank_prefix()}{err}"))
        return 2  # a setup error, as arniqa train (docs/usage.md)
    if os.environ.get("RANK", "0") == "0":
        print(trainer.outcome(path))
    return 0


def end(code: int) -> NoReturn:
    """Exit with ``code``. A process of a run of several (torchrun) exits at once, its lines flushed, skipping the
    interpreter's shutdown: there a gloo worker still freeing a finished collective's tensors takes the GIL, and
    Python ends that thread, which C++ turns into an abort ('terminate called without an active exception',
    status -6 in torchrun's summary, not the run's own; 1 run in 4 to 30). Its files are closed by then: the run
    folder's are written whole (atomic writes), its DataLoader workers ended (:func:`~.batches.end_workers`)."""
    if several():
        for stream in (sys.stdout, sys.stderr):
            with suppress(Exception):  # closed, or None (started with >&-)
                stream.flush()
        os._exit(code)
    sys.exit(code)


def rank_prefix() -> str:
    """``rank R: `` under torchrun with several processes, else nothing."""
    return f"rank {os.environ.get('RANK', '0')}: " if several() else ""


def several() -> bool:
    """Whether this process is one of a run of several (torchrun's WORLD_SIZE), read without importing torch."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


if __name__ == "__main__":
    keep_freed_memory()  # this process is a training run: see arniqa/utils/runtime.py
    stop_on_signals()  # SIGTERM, SIGHUP before the run trains (and after): a clean stop, as Ctrl-C
    stop_with_launcher()  # torchrun killed: SIGTERM, the state saved (not a rank training on alone)
    end(main())
