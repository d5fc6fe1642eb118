"""``arniqa score`` with a stand-in model, in this process or as a child process (``python tiny_score.py
score PATHS ...``), so the reliability tests spend their time on files and processes, not on a ResNet-50.

The stand-in's feature of a view is its per-channel mean and max (6 values; 12 with the half scale), and
the regressor is fixed: ``raw = FEATURE_WEIGHTS @ feature + 3``, scaled as KADID-10k ((raw - 1) / 4).
``TINY_SCORE_DELAY`` (seconds, in the environment) slows every forward pass down; ``TINY_SCORE_HOLD`` (a
path) holds every forward pass until that file exists, to keep a run open.
"""

import os
import sys
import time

import torch
import torch.nn as nn

FEATURE_WEIGHTS = torch.tensor([0.5, -0.25, 0.125, 1.0, -0.5, 0.25, 0.2, 0.4, -0.3, -0.1, 0.05, 0.6])
BIAS = 3.0


class StandIn(nn.Module):
    """The ARNIQA feature interface: (M, 3, h, w) views -> (M, 6) per-channel means and maxima."""

    def features(self, x):
        time.sleep(float(os.environ.get("TINY_SCORE_DELAY", 0)))
        while (hold := os.environ.get("TINY_SCORE_HOLD")) and not os.path.exists(hold):
            time.sleep(0.05)
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


def load(
    name_or_path=None,
    device="cpu",
    weights_dir=None,
    protocol="crops",
    regressor=None,
    engine="auto",
    explainer=None,
    **options,
):
    """What ``arniqa.inference.load`` returns, with the stand-in model on the CPU and the torch engine (no
    explanation head: ``explainer`` must be None, as ``arniqa map`` passes it without --explainer)."""
    assert explainer is None, "the stand-in model has no explanation head"
    from arniqa.inference import Scorer
    from arniqa.models.regressor import Regressor

    reg = Regressor("kadid10k", in_features=len(FEATURE_WEIGHTS))
    with torch.no_grad():
        reg.weight.copy_(FEATURE_WEIGHTS[None])
        reg.bias.fill_(BIAS)
    options = {**options, "batch_size": 1, "workers": 1}  # one row per forward: a kill can land between rows
    return Scorer(StandIn(), reg, protocol=protocol, device="cpu", engine="torch", **options)


def main(argv: list[str]) -> None:
    import arniqa.inference
    from arniqa.cli import main as arniqa_main

    arniqa.inference.load = load
    sys.argv = ["arniqa", *argv]
    arniqa_main()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])


def write_images(folder, n: int, seed: int = 0) -> list:
    """``n`` small random PNGs (6-8 x 7-10 px) named 00.png, 01.png, ... in ``folder``; their paths."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n):
        paths.append(folder / f"{k:02d}.png")
        Image.fromarray(rng.integers(0, 256, (6 + k % 3, 7 + k % 4, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def child(args, env: dict | None = None, **popen):
    """``arniqa score ARGS`` with the stand-in model in a child process (a ``subprocess.Popen``)."""
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, __file__, "score", *map(str, args)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )
