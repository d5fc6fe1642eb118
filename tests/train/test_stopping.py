"""StopSignals: the signal handlers it takes over while a run trains, and what it leaves after."""

import signal

from arniqa.train.stopping import StopSignals


def test_the_sigchld_handler_pytorch_sets_inside_a_run_stays_for_the_next_run():
    """PyTorch sets its SIGCHLD handler (it raises when a DataLoader worker dies) once per process, at its first
    DataLoader. StopSignals put back the handler it had seen on entering (none), so from a process's second run on
    (`arniqa ablate` trains its variants in one process) a worker killed while the main process waited for a batch
    was found only by PyTorch's poll, as "exited unexpectedly" without the signal (no SIGKILL, no out of memory)."""
    before = signal.getsignal(signal.SIGCHLD)

    def pytorchs(signum, frame):
        pass

    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        with StopSignals():
            signal.signal(signal.SIGCHLD, pytorchs)  # the first DataLoader of the process
        assert signal.getsignal(signal.SIGCHLD) is pytorchs
        with StopSignals() as stops:  # a stop signal: the workers die of it too, and raise nowhere
            stops._handle(signal.SIGTERM, None)
            assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGCHLD) is pytorchs
    finally:
        signal.signal(signal.SIGCHLD, before)
