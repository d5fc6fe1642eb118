"""keep_freed_memory: freed blocks are reused without new page faults, and the opt-outs hold."""

import os
import platform
import subprocess
import sys

import pytest

import arniqa.cli
import arniqa.demo
from arniqa.utils import runtime as memory

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only"
)

SIZE = 40 << 20  # a batch of 64 crops of 224 x 224 is 38.5 MB
PROBE = f"""
import ctypes, resource
from arniqa.utils.runtime import keep_freed_memory
applied = keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
faults = []
for _ in range(4):  # allocate, touch every page, free
    block = libc.malloc({SIZE})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ctypes.memset(block, 1, {SIZE})
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    libc.free(block)
print(applied, *faults)
"""
PAGES = SIZE // os.sysconf("SC_PAGE_SIZE")


def probe(**env):
    clean = {k: v for k, v in os.environ.items() if k not in (memory.OPT_OUT, *memory.USER_SETTINGS)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=clean | env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    applied, *faults = done.stdout.split()
    return applied == "True", [int(f) for f in faults]


def test_freed_blocks_are_reused_without_page_faults():
    applied, faults = probe()
    assert applied
    assert faults[0] > PAGES // 2  # the first use faults the pages in
    assert max(faults[1:]) < PAGES // 100  # later uses find them in place


@pytest.mark.parametrize("env", [{memory.OPT_OUT: "0"}, {"MALLOC_TRIM_THRESHOLD_": str(128 << 10)}])
def test_opt_outs_keep_glibcs_behaviour(env):
    applied, faults = probe(**env)
    assert not applied
    assert min(faults) > PAGES // 2  # every use maps and faults fresh pages


@pytest.mark.parametrize(
    "argv,applied",
    [(["train", "missing.yaml"], True), (["demo"], True), (["ablate", "missing.yaml"], True), (["version"], False)],
)
def test_the_training_commands_apply_it(monkeypatch, argv, applied):
    calls = []
    monkeypatch.setattr(memory, "keep_freed_memory", lambda: calls.append(True) or True)
    monkeypatch.setattr(sys, "argv", ["arniqa", *argv])
    monkeypatch.setattr(arniqa.demo, "run_demo", lambda *args, **kwargs: "report.md")  # no demo run here
    with pytest.raises(SystemExit):  # the others stop at their missing config, after the setting
        arniqa.cli.main()
    assert calls == ([True] if applied else [])
