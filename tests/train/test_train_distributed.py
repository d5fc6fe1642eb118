"""Two gloo processes with batch 4/2 each give the loss and the gradients of one process with batch 4.

What it proves: the step's loss code (:func:`contrastive_loss`: TwoPass under DDP, projections
gathered with gradient, NT-Xent on this process's rows against the global batch) together with
DDP's gradient averaging computes exactly the single-process global-batch loss and gradient; i.e.
every process sees all 4N - 1 negatives, not only its own. The model has no BatchNorm, because
BatchNorm statistics are per process by design (as in the reference, per forward pass); that part
is not what this test is about.

Run as a script, this file is one of the two worker processes (env RANK, WORLD_SIZE, MASTER_*).
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F


class TinyEncoder(nn.Module):
    """Conv -> pool -> projector; returns (f, g) like ARNIQA (no BatchNorm)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3)
        self.projector = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))

    def forward(self, x):
        f = F.normalize(self.conv(x).relu().mean((2, 3)), dim=1)
        return f, F.normalize(self.projector(f), dim=1)


def crops(batch: int) -> torch.Tensor:
    """cat(A_full, A_half, B_full, B_half) for ``batch`` samples, (4*batch, 3, 12, 12)."""
    return torch.rand(4, batch, 3, 12, 12, generator=torch.Generator().manual_seed(1)).flatten(0, 1)


def local_crops(x: torch.Tensor, batch: int, rank: int, world: int) -> torch.Tensor:
    """This process's samples (a contiguous slice of every crop kind), as EpochSampler hands them out."""
    local = batch // world
    kinds = x.view(4, batch, *x.shape[1:])
    return kinds[:, rank * local : (rank + 1) * local].flatten(0, 1)


def gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def worker(out: Path) -> None:
    from torch.nn.parallel import DistributedDataParallel

    from arniqa.train.distributed import setup, teardown
    from arniqa.train.loop import TwoPass, contrastive_loss

    ctx = setup("cpu")
    model = TinyEncoder()
    net = DistributedDataParallel(TwoPass(model))
    x = local_crops(crops(4), 4, ctx.rank, ctx.world_size)
    loss, reported = contrastive_loss(net, x, temperature=0.1)
    loss.backward()
    torch.save({"reported": reported, "grads": gradients(model)}, out / f"rank{ctx.rank}.pt")
    teardown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    from arniqa.train.loop import TwoPass, contrastive_loss
    from arniqa.train.loss import nt_xent

    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "WORLD_SIZE": "2",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(tmp_path)],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stderr=subprocess.PIPE,
        )
        for r in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-3000:]

    model = TinyEncoder()
    loss, reported = contrastive_loss(TwoPass(model), crops(4), temperature=0.1)
    loss.backward()
    single = gradients(model)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for result in ranks:
        torch.testing.assert_close(result["reported"], reported, rtol=1e-6, atol=1e-6)
        for name, grad in single.items():
            torch.testing.assert_close(result["grads"][name], grad, rtol=1e-5, atol=1e-6)

    # Not a vacuous match: losses computed per process without the gather differ from the global one.
    x = crops(4)
    with torch.no_grad():
        alone = []
        for r in range(2):
            half = local_crops(x, 4, r, 2)
            a, b = TinyEncoder()(half[:4])[1], TinyEncoder()(half[4:])[1]
            alone.append(nt_xent(a, b))
    assert abs(sum(alone).item() / 2 - reported.item()) > 1e-3


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
