"""The ARNIQA model: encoder + projector, and the two-scale 4096-d quality feature."""

from __future__ import annotations

import hashlib
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..constants import EMBEDDING_DIM, FEATURE_DIM, IMAGENET_MEAN, IMAGENET_STD
from .backbones import create_backbone


class ARNIQA(nn.Module):
    """Encoder and projector. Inputs are RGB images in [0, 1]; ImageNet normalisation is the
    model's first step, so it happens exactly once.

    ``forward(x)`` returns ``(f, g)``: the L2-normalised 2048-d backbone feature and the
    L2-normalised 128-d projection of ``f`` (the projector sees the normalised ``f``).
    """

    rounded_from: dict | None = None  # a rounded copy's: its original's rounded fingerprints (pairing_fingerprints)

    def __init__(self, backbone: str = "resnet50", **backbone_options) -> None:
        super().__init__()
        self.backbone_name = backbone
        self.backbone_options = dict(backbone_options)
        self.encoder = create_backbone(backbone, **backbone_options)
        self.projector = nn.Sequential(
            nn.Linear(FEATURE_DIM, FEATURE_DIM), nn.ReLU(inplace=True), nn.Linear(FEATURE_DIM, EMBEDDING_DIM)
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def config(self) -> dict:
        """JSON-serialisable description: ``ARNIQA(c["backbone"], **c["backbone_options"])`` rebuilds it."""
        options = {k: list(v) if isinstance(v, tuple) else v for k, v in self.backbone_options.items()}
        return {"backbone": self.backbone_name, "backbone_options": options}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised 2048-d backbone feature of images ``x`` (B,3,H,W) in [0, 1]."""
        return F.normalize(self.encoder((x - self.mean) / self.std), dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return f, F.normalize(self.projector(f), dim=1)

    def quality_features(self, full: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
        """The 4096-d quality feature: [features(full), features(half)] per image or crop."""
        return torch.cat([self.features(full), self.features(half)], dim=1)


ROUNDINGS = {"bf16": torch.bfloat16, "fp16": torch.float16}  # the precisions a checkpoint is halved to
PAIRING_KEYS = {None: "encoder_fingerprint", **{p: f"encoder_fingerprint_{p}" for p in ROUNDINGS}}


def model_fingerprint(model: torch.nn.Module, rounded: str | None = None) -> str:
    """SHA-256 over the model's configuration and every tensor of its state dict: what identifies an encoder
    (recorded in regressor files, keying cached features and ONNX exports).

    ``rounded`` (a key of :data:`ROUNDINGS`): the same over the floating tensors rounded to that precision, less
    the projector (the quality features do not use it). A copy stored at that precision has the same one (rounding
    twice to a precision is rounding once), so pairing accepts it; it never keys features, which the copy changes."""
    h = hashlib.sha256()
    config = getattr(model, "config", None)
    h.update(json.dumps(config if config is not None else type(model).__name__, sort_keys=True, default=str).encode())
    if rounded is not None:
        h.update(f"rounded:{rounded}".encode())
    for key, value in sorted(model.state_dict().items()):
        t = value.detach().cpu().contiguous()
        if rounded is not None:
            if key.startswith("projector."):
                continue
            t = t.to(ROUNDINGS[rounded]) if t.is_floating_point() else t
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def pairing_fingerprints(model: torch.nn.Module) -> dict[str, str]:
    """What a file fitted on ``model``'s features records of it (``arniqa evaluate``'s regressors, ``arniqa explain
    fit``'s heads), under :data:`PAIRING_KEYS`: the exact fingerprint and the rounded ones
    (:func:`arniqa.inference.pairing.check_pairing`)."""
    return {PAIRING_KEYS[None]: model_fingerprint(model), **rounded_fingerprints(model)}


def rounded_fingerprints(model: torch.nn.Module) -> dict[str, str]:
    """The rounded fingerprints of :func:`pairing_fingerprints`.

    A bf16 copy cannot compute its original's fp16 fingerprint, nor an fp16 copy the bf16 one (rounding the fp16
    values to bf16 differs from rounding the original in about 6 % of them), so a copy's checkpoint records its
    original's (``model.rounded_from``, :func:`~arniqa.models.checkpoint.load_checkpoint`); they stand for the
    copy's own when one of them is the copy's own (it is a rounding of that encoder), so that the bf16 and fp16
    copies of one encoder pair with each other."""
    own = {PAIRING_KEYS[p]: model_fingerprint(model, p) for p in ROUNDINGS}
    origin = getattr(model, "rounded_from", None)
    if isinstance(origin, dict) and all(isinstance(origin.get(k), str) for k in own):
        if any(origin[k] == v for k, v in own.items()):
            return {k: origin[k] for k in own}
    return own
