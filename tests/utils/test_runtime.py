"""resolve_device: the explicit names, the order of "auto", and errors for devices that are absent."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from arniqa.utils.runtime import beyond_memory, check_device, describe, git_commit, resolve_device


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
    with pytest.raises(ValueError, match="MPS is not available; choose auto or cpu"):
        resolve_device("mps")


def test_an_absent_cuda_device_says_why_and_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)  # a CPU build of torch
    with pytest.raises(
        ValueError, match=r"^device cuda requested but .* built without it; install a CUDA build of torch"
    ):
        resolve_device("cuda")
    monkeypatch.setattr(torch.version, "cuda", "13.0")  # a CUDA build, no GPU visible
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"no GPU is visible \(check the driver and CUDA_VISIBLE_DEVICES\)"):
        resolve_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # two GPUs: cuda:0 and cuda:1 only
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(
        ValueError, match=r"^device cuda:2 requested but there is no GPU 2 \(2 GPUs visible: cuda:0 to cuda:1\)"
    ):
        resolve_device("cuda:2")


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
    for name in ("tpu", "meta", "xpu", "CUDA", "cuda:01", "cuda:-1", "cuda:", "auto:0", None, 1.5):
        with pytest.raises(ValueError, match=r"is not a device: choose auto, cpu, cuda, cuda:N or mps$") as err:
            check_device(name)
        # the name as given; before: as Python quotes it ('tpu')
        assert str(err.value).startswith(f"device {name} is not a device:"), err.value


def test_a_device_name_with_spaces_at_an_end_is_shown_quoted():
    """`--device " cpu"` said 'device  cpu is not a device', its spaces unseen; such a name (and nothing) is now
    quoted as YAML writes it, a name with spaces inside is shown plain."""
    for name, shown in ((" cpu", "' cpu'"), ("cpu  ", "'cpu  '"), (" ", "' '"), ("", '""'), ("cu da", "cu da")):
        with pytest.raises(ValueError) as err:
            check_device(name)
        assert str(err.value) == f"device {shown} is not a device: choose auto, cpu, cuda, cuda:N or mps"


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
            print(*interrupted("rerun to go on"), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert done.stdout == (
        f"{128 + signal.SIGTERM} stopped by SIGTERM\n{128 + signal.SIGTERM} stopped by SIGTERM; rerun to go on\n"
    )


LAUNCHER = """
import os, signal, subprocess, sys, threading, time
def start():  # as torch elastic may: a thread starts the process, and ends once it is up
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE)
    child.stdout.readline()
threading.Thread(target=start).start()
time.sleep(0.1)
while threading.active_count() > 1:
    time.sleep(0.05)
time.sleep(1.0)  # the launcher lives on after that thread
os.kill(os.getpid(), signal.SIGKILL)  # then it is killed, as with kill -9
"""

RANK = """
import os, signal, sys, threading, time
from arniqa.utils.runtime import stop_with_launcher
parent, alive, gone = os.getppid(), [], []
signal.signal(signal.SIGTERM, lambda signum, frame: (alive if os.getppid() == parent else gone).append(signum))
asked = stop_with_launcher(poll=0.05)
print("ready", flush=True)
# Until the launcher is gone (a parent-death signal comes as it goes), the watching thread has ended (it ends with
# its SIGTERM) and that SIGTERM was handled; the bound only keeps a broken watch from hanging the test.
end = time.monotonic() + 30
while (os.getppid() == parent or threading.active_count() > 1 or asked and not gone) and time.monotonic() < end:
    time.sleep(0.02)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"{asked} {len(alive)} {len(gone)}")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
"""


def test_only_a_process_torchrun_started_gets_one_sigterm_when_its_launcher_ends(tmp_path):
    """Under torchrun (TORCHELASTIC_RUN_ID set) a process gets SIGTERM once its launcher has ended, exactly once: the
    parent-death signal asked of Linux came when the thread that started it ended (torchrun alive) and again as
    torchrun's threads ended, and a second SIGTERM stops a run at once, unsaved (a torchrun killed with SIGKILL
    left both ranks with no state.pt). A run started otherwise gets nothing, so it goes on when its shell ends."""
    env = {key: value for key, value in os.environ.items() if key != "TORCHELASTIC_RUN_ID"}
    for extra, expected in (({}, "False 0 0"), ({"TORCHELASTIC_RUN_ID": "none"}, "True 0 1")):
        out = tmp_path / "said"
        out.unlink(missing_ok=True)
        launcher = subprocess.run([sys.executable, "-c", LAUNCHER, RANK, str(out)], env={**env, **extra}, timeout=60)
        assert launcher.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 30
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert out.read_text() == expected


def test_out_of_memory_is_memory_running_out_not_any_mention_of_allocation():
    """Any RuntimeError whose text held "alloc" or "out of memory" counted: `arniqa evaluate` told a user to lower
    --batch-size for an error that only named a folder called "allocations", or torch's pinned-memory message."""
    from arniqa.utils.runtime import out_of_memory

    try:
        torch.empty(1 << 62, dtype=torch.uint8)  # PyTorch's CPU allocator failing: a plain RuntimeError
    except RuntimeError as e:
        cpu = e
    try:
        np.empty(1 << 62, dtype=np.uint8)
    except MemoryError as e:
        numpy = e
    try:
        raise RuntimeError("Could not allocate bytes object!") from MemoryError()
    except RuntimeError as e:
        raised_from = e
    windows = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: ...")
    shm = RuntimeError("unable to allocate shared memory(shm) for file </torch_1_2>: Resource temporarily unavailable")
    for error in (cpu, numpy, raised_from, windows, shm, torch.OutOfMemoryError("CUDA out of memory. Tried to ...")):
        assert out_of_memory(error), error
    not_memory = [
        RuntimeError("Error(s) in loading state_dict for ARNIQA: /data/allocations/model.pt"),
        RuntimeError(
            "pin_memory=True requires a CUDA or other accelerator backend; no pinned memory allocator is "
            "available on this system."
        ),  # fmt: skip
        RuntimeError("The tensor has a non-zero number of elements, but its data is not allocated yet."),
        ValueError("out of memory.png: not an image file PIL can read"),
        None,
    ]
    assert not any(out_of_memory(error) for error in not_memory)


def test_pytorch_mapping_a_checkpoint_past_the_memory_limit_is_out_of_memory(tmp_path):
    """`arniqa score --checkpoint model.safetensors` under `ulimit -v 3500000` ended in a traceback, exit 1: opening the
    checkpoint, PyTorch's mapping of the file failed with a plain RuntimeError, `unable to mmap N bytes from file <F>:
    Cannot allocate memory (12)`. It is memory running out now, said as such in one line. Provoked for real: a
    child whose address space leaves room to map a 64 MiB file once (safetensors' own mapping), not twice."""
    code = textwrap.dedent(
        """
        import os, resource, sys
        import torch
        from safetensors import safe_open
        from safetensors.torch import save_file
        from arniqa.utils.runtime import out_of_memory

        path = os.path.join(sys.argv[1], "m.safetensors")
        save_file({"w": torch.zeros(64 << 20, dtype=torch.uint8)}, path)
        size = next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]
        resource.setrlimit(resource.RLIMIT_AS, (int(size) * 1024 + (96 << 20), resource.RLIM_INFINITY))
        try:
            safe_open(path, framework="pt")
        except Exception as e:
            print(type(e).__name__, out_of_memory(e), str(e))
        """
    )
    done = subprocess.run([sys.executable, "-c", code, tmp_path], capture_output=True, text=True, timeout=120)
    kind, memory, message = done.stdout.split(" ", 2)
    assert kind == "RuntimeError" and message.startswith("unable to mmap 67108"), done.stdout + done.stderr
    assert memory == "True"


def test_onnx_runtime_running_out_of_memory_is_out_of_memory():
    """ONNX Runtime's errors are no RuntimeError: its arena failing (``Fail``) and C++'s ``std::bad_alloc`` (a
    ``RuntimeException`` running without the arena) were not memory running out, so a scorer on the onnxruntime
    engine said "model failed" and loading a model said "not an ONNX model". Provoked for real: a Conv whose output
    (1.7 GB) is past the child's data limit (1 GB)."""
    code = textwrap.dedent(
        """
        import resource
        import numpy as np, onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
        from arniqa.utils.runtime import out_of_memory

        weight = numpy_helper.from_array(np.ones((64, 3, 3, 3), np.float32), "w")
        conv = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        model = helper.make_model(helper.make_graph([conv], "g", [x], [y], [weight])).SerializeToString()
        resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))
        for arena in (True, False):
            options = ort.SessionOptions()
            options.enable_cpu_mem_arena, options.log_severity_level = arena, 4
            session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
            try:
                session.run(None, {"x": np.zeros((1, 3, 2600, 2600), np.float32)})
            except Exception as e:
                wrapped = RuntimeError(f"ONNX Runtime failed: {e}")  # as OnnxEngine.run raises it, without the cause
                print(type(e).__name__, out_of_memory(e), out_of_memory(wrapped), repr(str(e)))
        print(out_of_memory(ort.capi.onnxruntime_pybind11_state.Fail("[ONNXRuntimeError] : 1 : FAIL : Load model")))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    lines = done.stdout.splitlines()
    arena, plain = (line.split()[:3] for line in lines[:2])
    # the arena's failure is a Fail (ONNX Runtime 1.32) or a RuntimeException (1.17, the floor); memory either way
    assert arena[0] in ("Fail", "RuntimeException") and arena[1:] == ["True", "True"], lines
    assert plain == ["RuntimeException", "True", "True"] and "std::bad_alloc" in lines[1]
    assert "Failed to allocate memory for requested buffer" in lines[0] or "std::bad_alloc" in lines[0]
    assert lines[2:] == ["False"], done.stderr  # another error of ONNX Runtime is not


def test_enomem_and_msvcs_bad_allocation_are_out_of_memory():
    """An OSError with errno ENOMEM (an mmap past `ulimit -v`: `[Errno 12] Cannot allocate memory`) and MSVC's
    std::bad_alloc text ("bad allocation", what ONNX Runtime says on Windows) were not memory running out, so they
    were not told as such. The mmap is provoked for real in a child under RLIMIT_AS; other errnos are not memory."""
    import errno
    import os

    from arniqa.utils.runtime import device_out_of_memory, out_of_memory

    code = textwrap.dedent(
        """
        import mmap, resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        try:
            mmap.mmap(-1, 2 << 30)
        except OSError as e:
            print(e.errno)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == [str(errno.ENOMEM)], done.stderr
    enomem = OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))  # as Python raises it (the child's errno above)
    try:
        raise RuntimeError("loading the model failed") from enomem
    except RuntimeError as e:
        raised_from = e
    windows = RuntimeError(
        "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Exception during initialization: bad allocation"
    )
    for error in (enomem, raised_from, windows):
        assert out_of_memory(error) and not device_out_of_memory(error), error
    for error in (OSError(errno.ENOENT, "No such file or directory"), OSError(errno.ENOSPC, "No space left on device")):
        assert not out_of_memory(error), error
    assert device_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert device_out_of_memory(RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be ..."))


def test_a_dataloader_worker_killed_by_sigkill_is_told_from_other_deaths():
    """PyTorch reports a worker the out-of-memory killer ended (SIGKILL) as a RuntimeError, or (the main process
    waiting for a batch) as "exited unexpectedly" raised from it; other signals and a worker's own errors are not
    that."""
    code = textwrap.dedent(
        """
        import os, signal, torch
        from arniqa.utils.runtime import worker_killed

        class Dying(torch.utils.data.Dataset):
            def __init__(self, how):
                self.how = how
            def __len__(self):
                return 4
            def __getitem__(self, i):
                if self.how == "raise":
                    raise RuntimeError("a worker's own error")
                os.kill(os.getpid(), getattr(signal, self.how))

        for how in ("SIGKILL", "SIGTERM", "raise"):
            try:
                list(torch.utils.data.DataLoader(Dying(how), num_workers=1))
            except RuntimeError as e:
                print(how, worker_killed(e), repr(str(e.__cause__ or e)))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["SIGKILL", "True"], ["SIGTERM", "False"], ["raise", "False"]]
    assert "is killed by signal: Killed." in lines[0] and "is killed by signal: Terminated." in lines[1]


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="reads the memory from Linux's /proc/meminfo")
def test_only_a_buffer_larger_than_the_machines_memory_is_beyond_it():
    """A buffer ONNX Runtime could not allocate though the machine has that much is out of memory, as before (another
    device, a smaller batch may do); one larger than all of its memory is the model's asking (beyond_memory)."""
    total = int(re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())[1]) * 1024
    failed = "Failed to allocate memory for requested buffer of size {}"
    assert beyond_memory(RuntimeError(failed.format(total // 2))) is None
    assert beyond_memory(RuntimeError(failed.format(2**52))) == 2**52
    try:
        raise RuntimeError("ONNX Runtime failed") from RuntimeError(failed.format(2**52))
    except RuntimeError as wrapped:
        assert beyond_memory(wrapped) == 2**52  # the size in what it was raised from
    assert beyond_memory(MemoryError("Unable to allocate 4 PiB")) is None  # no size of ONNX Runtime's
