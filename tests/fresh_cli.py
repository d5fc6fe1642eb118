"""``arniqa ARGS`` in a fresh Python process, with what only that process can tell: its peak resident set,
the heavy modules (torch, timm, torchvision) it imported, and the scipy subpackages it imported (scipy.stats takes
about 1 s, scipy.interpolate 0.7-0.9 s); and a test's measuring function in a fresh process (:func:`fresh_call`)."""

import json
import os
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


def fresh_call(test_file: str, function: str, cwd) -> float:
    """What ``function`` of the test file ``test_file`` returns (a number), run in a fresh Python process in ``cwd``.
    For a count of traced allocations, which must depend on no test run before it: pathlib interns each part of a
    path for good, in a table that grows by doubling, and a doubling inside a traced run counts as that run's, by
    how full the tests before left the table (a retry measured 400 bytes a row in the suite's process, 13 alone)."""
    code = "import runpy, sys; sys.path.insert(0, sys.argv[1]); print(runpy.run_path(sys.argv[2])[sys.argv[3]]())"
    tests = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run(
        [sys.executable, "-c", code, tests, os.path.abspath(test_file), function],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return float(done.stdout.split()[-1])
