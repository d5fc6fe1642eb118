"""What a training run is built from: the model, the optimiser and the precision."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..models import ARNIQA
from ..models.backbones import load_resnet50_imagenet
from ..models.download import sha256_of
from .config import Config

# torchvision names its IMAGENET1K_V1 ResNet50 file, the reference's initialisation, after its
# SHA-256: resnet50-0676ba61.pth.
IMAGENET1K_V1_SHA256_PREFIX = "0676ba61"


def build_model(config: Config) -> ARNIQA:
    """The ARNIQA model of ``config.model``, randomly initialised or from ResNet50 ImageNet weights."""
    options = {}
    if config.model.backbone == "se_resnet50":
        options = {"se_stages": tuple(config.model.se_stages), "se_bias": config.model.se_bias}
    model = ARNIQA(config.model.backbone, **options)
    if config.model.init == "imagenet":
        load_resnet50_imagenet(model.encoder, config.model.weights, se_init=config.model.se_init)
    return model


def imagenet_file_note(path: str | Path) -> str:
    """A ``run.log`` line with the SHA-256 of the ImageNet file ``path``; warns when it is not
    torchvision's IMAGENET1K_V1 file, which the reference starts from."""
    digest = sha256_of(path)
    if digest.startswith(IMAGENET1K_V1_SHA256_PREFIX):
        return f"model.weights {path}: sha256 {digest} (torchvision IMAGENET1K_V1, as the reference)"
    warnings.warn(
        f"{path}: SHA-256 {digest} is not that of torchvision's IMAGENET1K_V1 file "
        f"(resnet50-{IMAGENET1K_V1_SHA256_PREFIX}.pth), the reference's initialisation; results may differ",
        stacklevel=2,
    )
    return f"model.weights {path}: sha256 {digest} (not torchvision IMAGENET1K_V1 resnet50-{IMAGENET1K_V1_SHA256_PREFIX}.pth)"


def autocast_settings(precision: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None for fp32, whether a GradScaler is needed) for ``precision`` on ``device``.

    ``auto``: bf16 on CUDA when supported, else fp16 with a scaler; fp32 on CPU (CPU autocast to
    bf16 is slower than fp32 on CPUs without native bf16 units; ask for it with ``bf16``).
    """
    if precision == "auto":
        if device.type != "cuda":
            return None, False
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("train.precision=fp16 needs CUDA; use bf16 or fp32 on this device")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision], precision == "fp16"


def make_sgd(params, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """SGD on all parameters (the reference's optimiser), with the fused kernel where this torch has
    one: the same update, about 3x faster than the default for-each path on CPU (measured on
    SE-ResNet50, 2 threads: 0.14 s against 0.49 s per step)."""
    params = list(params)
    try:
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

