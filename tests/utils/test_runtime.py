"""resolve_device: the explicit names, the order of "auto", and errors for devices that are absent."""

import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from arniqa.utils.runtime import check_device, describe, git_commit, resolve_device


def test_explicit_devices_pass_through():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    assert resolve_device("auto", mps=False) == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device() == torch.device("cpu")


def test_absent_devices_are_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:1")
    with pytest.raises(ValueError, match="MPS is not available"):
        resolve_device("mps")


def test_describe_and_git_commit(tmp_path):
    info = describe()
    assert info["torch"] == torch.__version__ and info["cpu_count"] >= 1
    assert git_commit(tmp_path) == "unknown (not a git checkout)"


def test_the_device_names_checked_without_torch_are_those_torch_takes():
    """check_device says a mistyped name before torch is imported; a name it takes is one torch.device takes."""
    for name in ("auto", "cpu", "cuda", "mps", "cpu:0", "cuda:0", "cuda:12", "mps:0"):
        check_device(name)
        if name != "auto":
            assert torch.device(name).type == name.partition(":")[0]
    check_device(torch.device("cuda:1"))  # a torch device: by its name
    for name in ("tpu", "meta", "xpu", "CUDA", "cuda:01", "cuda:-1", "cuda:", " cpu", "auto:0", "", None, 1.5):
        with pytest.raises(ValueError, match=r"is not a device: choose auto, cpu, cuda, cuda:N or mps$"):
            check_device(name)


def test_stop_on_signals_raises_once_in_the_main_thread_and_leaves_ignored_signals_ignored():
    """SIGTERM raises Terminated (a KeyboardInterrupt: context exits run) and gives 143 and its line; a second
    SIGTERM ends the process at once (a cleanup that hangs is not waited for); nohup's ignored SIGHUP stays so."""
    code = textwrap.dedent(
        """
        import os, signal, time
        from arniqa.utils.runtime import Terminated, interrupted, stop_on_signals
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        stop_on_signals()
        os.kill(os.getpid(), signal.SIGHUP)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)
        except Terminated:
            print(*interrupted(), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert done.stdout == (
        f"{128 + signal.SIGTERM} stopped by SIGTERM; what was written is kept: arniqa score --resume, arniqa train "
        "--resume and arniqa ablate go on from it\n"
    )
