"""``arniqa ARGS`` in a fresh Python process, with what only that process can tell: its peak resident set,
the heavy modules (torch, timm, torchvision) it imported, and the scipy subpackages it imported (scipy.stats takes
about 1 s, scipy.interpolate 0.7-0.9 s)."""

import json
import subprocess
import sys

# At exit (after the command's SystemExit too) the child writes its report as the last line of stderr.
CHILD = r"""
import atexit, json, sys

def report():
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "timm", "torchvision"))
    scipy = sorted(m for m in sys.modules if m.startswith("scipy.") and m.count(".") == 1 and "._" not in m)
    print(json.dumps({"peak_kb": hwm, "heavy": heavy, "scipy": scipy}), file=sys.stderr)

atexit.register(report)
from arniqa.cli import main
main()
"""


def fresh_cli(*args, env: dict | None = None, timeout: float = 300) -> tuple[subprocess.CompletedProcess, dict]:
    """The finished child process (``returncode``, ``stdout``, ``stderr``) and its report (``peak_kb``, ``heavy``,
    ``scipy``)."""
    command = [sys.executable, "-c", CHILD, *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    return done, json.loads(done.stderr.strip().splitlines()[-1])
