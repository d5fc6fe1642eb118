"""The ``arniqa`` command turns on PyTorch's huge-page switch before torch allocates anything."""

import os
import subprocess
import sys

PROBE = (
    "import sys\nimport arniqa.cli\nimport os\nprint('torch' in sys.modules, os.environ.get('THP_MEM_ALLOC_ENABLE'))\n"
)


def run_probe(**env):
    environment = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"} | env
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_cli_sets_huge_pages_before_torch_is_imported():
    # torch must not be loaded yet: PyTorch reads the variable once, at its first CPU allocation.
    assert run_probe() == ["False", "1"]


def test_cli_keeps_the_users_choice():
    assert run_probe(THP_MEM_ALLOC_ENABLE="0") == ["False", "0"]
