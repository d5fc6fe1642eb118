import os
import subprocess

import pytest
from faults import tiny_model  # noqa: F401  (the fixture)


@pytest.fixture
def small_disk(tmp_path, request):
    """A 64 KiB tmpfs filled up but for ``request.param`` pages (default 2; parametrize indirectly for more), root
    only, skipped elsewhere; yields it and the fillers."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    pages = getattr(request, "param", 2)
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        fillers = []
        try:
            while True:
                fillers.append(disk / f"filler{len(fillers)}")
                fillers[-1].write_bytes(b"x" * 4096)
        except OSError:
            pass
        for f in fillers[-pages - 1 :]:  # the last one (maybe empty) and the pages
            f.unlink()
        yield disk, fillers[: -pages - 1]
    finally:
        subprocess.run(["umount", str(disk)], check=True)
