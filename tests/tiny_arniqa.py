"""A stand-in for ARNIQA where only a training run's bookkeeping is under test (a ResNet50 step costs
seconds on a CPU)."""

import os
import subprocess
import sys
import time

import torch


class TinyARNIQA(torch.nn.Module):
    """Forward returns (features, projections) as ARNIQA does; ``quality_features`` is what validation extracts."""

    config = {"backbone": "tiny", "backbone_options": {}}
    backbone_name = "tiny"

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.projector = torch.nn.Linear(4, 4)

    def forward(self, x):
        f = torch.nn.functional.normalize(self.conv(x).mean((2, 3)), dim=1)
        return f, torch.nn.functional.normalize(self.projector(f), dim=1)

    def features(self, x):
        return self(x)[0]

    def quality_features(self, full, half):
        return torch.cat([self.features(full), self.features(half)], dim=1)


class SlowTinyARNIQA(TinyARNIQA):
    """:class:`TinyARNIQA` whose forward pass sleeps ``delay`` seconds, so that a kill lands mid-run."""

    def __init__(self, delay: float = 0.2) -> None:
        super().__init__()
        self.delay = delay

    def forward(self, x):
        time.sleep(self.delay)
        return super().forward(x)


def tiny_onnx(path):
    """An ``arniqa export``-style ONNX file of :class:`TinyARNIQA` with a KADID-10k regressor (8-d features):
    scoring at almost no cost. Returns the model, the regressor and the path."""
    from arniqa.inference.onnx_export import export_onnx

    model, regressor = _tiny_model()
    return model, regressor, export_onnx(model, regressor, path, protocol="whole")


def _tiny_model():
    from arniqa.models import Regressor

    torch.manual_seed(0)
    model = TinyARNIQA()
    regressor = Regressor("kadid10k", in_features=8)
    with torch.no_grad():
        regressor.weight.copy_(torch.linspace(-1, 1, 8)[None])
        regressor.bias.fill_(3.0)
    return model, regressor


def tiny_explainer(seed=1):
    """An explanation head for :class:`TinyARNIQA`'s 8-d features, random weights: on small photos its top
    groups hold 0.3-0.6 and its severities lie between the levels' ends."""
    from arniqa.models.explain import Explainer

    g = torch.Generator().manual_seed(seed)
    head = Explainer(8)
    with torch.no_grad():
        for layer in (head.group, head.severity):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g))
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=g))
        head.severity.bias.add_(2.5)
    return head.eval()


def tiny_checkpoint(path, monkeypatch):
    """A checkpoint of :class:`TinyARNIQA` with :func:`tiny_onnx`'s regressor and :func:`tiny_explainer` at
    ``path`` (and without the head beside it, ``plain-NAME``); checkpoints load as TinyARNIQA for the rest of the
    test (``monkeypatch``). Returns the path."""
    import arniqa.models.checkpoint as checkpoint
    from arniqa.models.explain import add_to_checkpoint

    monkeypatch.setattr(checkpoint, "ARNIQA", lambda name, **options: TinyARNIQA())
    [plain] = checkpoint.save_checkpoint(path.with_name(f"plain-{path.name}"), *_tiny_model())
    return add_to_checkpoint(plain, tiny_explainer(), path)


MAKING = """
import os, sys, time
from pathlib import Path
import tiny_arniqa
from arniqa.inference import engines, quantize

doing, log, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
module, name = (engines, "export_onnx") if doing == "exporting" else (quantize, "quantize")
made = getattr(module, name)

def making(*args, **kwargs):
    with log.open("a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(3)  # meanwhile the others reach the lock, however busy the machine
    return made(*args, **kwargs)

setattr(module, name, making)
Path(ready, str(os.getpid())).touch()
while len(list(ready.iterdir())) < 4:
    time.sleep(0.02)
if doing == "exporting":
    print(engines.cached_onnx("tiny", tiny_arniqa.TinyARNIQA))
else:
    print(quantize.int8_file(sys.argv[4]))
"""


def make_together(doing: str, tmp_path, *args) -> tuple[list, list[str]]:
    """4 processes starting together on one cache (``tmp_path / "cache"``), each exporting the tiny model (or, with
    ``doing`` "quantizing", the int8 form of the ONNX file ``args[0]``): the jobs and the pids that made it."""
    cache, ready, log = tmp_path / "cache", tmp_path / "ready", tmp_path / "made.log"
    ready.mkdir()
    env = {**os.environ, "ARNIQA_CACHE": str(cache), "PYTHONPATH": os.pathsep.join(map(os.path.abspath, sys.path))}
    command = [sys.executable, "-c", MAKING, doing, str(log), str(ready), *args]
    jobs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    for job in jobs:
        job.out, job.err = job.communicate(timeout=120)
    return jobs, log.read_text().split()
