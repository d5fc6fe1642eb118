"""Inputs for the scoring tests: random-weight published model files, JPEG bytes, tar shards with bad members,
regressor files that record their encoder."""

import io
import tarfile
import warnings

import numpy as np
import torch
import torch.nn as nn
import torchvision
from PIL import Image


class ScriptedLinear(nn.Module):
    """The structure of the published regressors: parameters ``weights`` [1, D] and 0-d ``biases``."""

    def __init__(self, weights: torch.Tensor, biases: torch.Tensor) -> None:
        super().__init__()
        self.weights = nn.Parameter(weights)
        self.biases = nn.Parameter(biases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.weights.t() + self.biases).flatten()


def save_scripted_regressor(path, weights: torch.Tensor, biases: torch.Tensor):
    """Write a TorchScript archive like the published regressors; returns ``path``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated
        torch.jit.script(ScriptedLinear(weights, biases)).save(str(path))
    return path


def published_weights(d):
    """ARNIQA.pth in the published key layout and a TorchScript regressor_kadid10k.pth, random values."""
    torch.manual_seed(0)
    body = nn.Sequential(*list(torchvision.models.resnet50().children())[:-1])
    state = {f"model.{k}": v for k, v in body.state_dict().items()}
    state.update(
        {
            "projector.0.weight": torch.zeros(2048, 2048),
            "projector.0.bias": torch.zeros(2048),
            "projector.2.weight": torch.zeros(128, 2048),
            "projector.2.bias": torch.zeros(128),
        }
    )
    torch.save(state, d / "ARNIQA.pth")
    g = torch.Generator().manual_seed(1)
    save_scripted_regressor(d / "regressor_kadid10k.pth", torch.randn(1, 4096, generator=g), torch.tensor(3.0))
    return d


def jpeg(w, h, seed) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_shard(path, members: dict[str, bytes]):
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def make_shards(d):
    """Two shards: the first with a label member, a corrupt and a cut JPEG; the second cut short."""
    good = {f"{k:04d}.jpg": jpeg(48 + 8 * k, 40, k) for k in range(3)}
    first = {
        "0000.jpg": good["0000.jpg"],
        "0000.cls": b"7",
        "0001.jpg": b"garbage, not a JPEG",
        "0002.jpg": good["0002.jpg"][:200],
        "sub/0003.png": b"",
        "0004.jpg": good["0001.jpg"],
    }
    write_shard(d / "000000.tar", first)
    whole = write_shard(d / "whole.tar", {"a.jpg": good["0000.jpg"], "b.jpg": good["0001.jpg"]})
    with tarfile.open(whole) as tar:
        cut = tar.getmember("b.jpg").offset_data + 100
    (d / "000001.tar").write_bytes(whole.read_bytes()[:cut])  # cut inside b.jpg's data
    whole.unlink()
    return good


def regressor_file(path, regressor, encoder_text, encoder_model):
    """A regressor file as `arniqa evaluate` writes it: the encoder it was fitted on named, and fingerprinted."""
    from arniqa.models.arniqa import pairing_fingerprints
    from arniqa.models.checkpoint import regressor_writer
    from arniqa.utils.files import atomic_write

    info = dict(encoder=encoder_text, **pairing_fingerprints(encoder_model))
    return atomic_write(path, regressor_writer(regressor, evaluated_on="kadid10k", **info))
