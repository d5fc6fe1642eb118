"""What a training run is built from: the model, the optimiser and the precision."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..models import ARNIQA
from ..models.backbones import load_resnet50_imagenet, near_identity_se_
from ..utils.cache import sha256_of
from ..utils.runtime import autocast_dtype
from .config import Config, ConfigError, OptimConfig

# torchvision names its IMAGENET1K_V1 ResNet50 file, the reference's initialisation, after its
# SHA-256: resnet50-0676ba61.pth.
IMAGENET1K_V1_SHA256_PREFIX = "0676ba61"


def build_model(config: Config) -> ARNIQA:
    """The ARNIQA model of ``config.model``: randomly initialised, from ResNet50 ImageNet weights,
    or (``random_resnet50``) from the ResNet50 that ``init=random`` gives under the same torch RNG
    state, with new SE blocks set by ``se_init``; the RNG then ends where that ResNet50 leaves it."""
    options = {}
    if config.model.backbone == "se_resnet50":
        options = {"se_stages": tuple(config.model.se_stages), "se_bias": config.model.se_bias}
    if config.model.init == "random_resnet50" and options:
        plain = ARNIQA("resnet50")
        with torch.random.fork_rng(devices=[]):  # the SE model's own draws leave no trace
            model = ARNIQA(config.model.backbone, **options)
        missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
        assert not unexpected and all(".se." in k for k in missing)
        if config.model.se_init == "identity":
            near_identity_se_(model.encoder)
        return model
    model = ARNIQA(config.model.backbone, **options)
    if config.model.init == "imagenet":
        load_imagenet(model, config)
    return model


def load_imagenet(model: ARNIQA, config: Config) -> None:
    """The ResNet50 ImageNet file ``model.weights`` loaded into ``model``, built as :func:`build_model` builds
    it for ``model.init=imagenet`` (that is, as for ``random``), the SE blocks set by ``model.se_init``."""
    check_weights(config)
    load_resnet50_imagenet(model.encoder, config.model.weights, se_init=config.model.se_init)


def check_weights(config: Config) -> None:
    """ConfigError naming ``model.weights`` when ``model.init=imagenet`` and its file is not there."""
    path = config.model.weights
    if config.model.init == "imagenet" and not Path(path).is_file():
        problem = "a folder, not a weight file" if Path(path).is_dir() else "no such file"
        raise ConfigError(
            f"model.weights={path}: {problem}; set it to a local ResNet50 ImageNet file (torchvision's "
            f"resnet50-{IMAGENET1K_V1_SHA256_PREFIX}.pth, the reference's: https://download.pytorch.org/models/"
            f"resnet50-{IMAGENET1K_V1_SHA256_PREFIX}.pth; see docs/training.md), or set model.init=random"
        )


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
    return (
        f"model.weights {path}: sha256 {digest} "
        f"(not torchvision IMAGENET1K_V1 resnet50-{IMAGENET1K_V1_SHA256_PREFIX}.pth)"
    )


def autocast_settings(precision: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None for fp32, whether a GradScaler is needed) for ``precision`` on ``device``.

    ``auto``: bf16 on CUDA when supported, else fp16 with a scaler; fp32 on CPU (CPU autocast to
    bf16 is slower than fp32 on CPUs without native bf16 units; ask for it with ``bf16``).
    """
    precision = resolve_precision(precision, device)
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("train.precision=fp16 needs CUDA; use bf16 or fp32 on this device")
    return autocast_dtype(precision), precision == "fp16"


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16``: what ``train.precision=precision`` trains in on ``device`` (see
    :func:`autocast_settings`)."""
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def make_optimizer(model: torch.nn.Module, opt: OptimConfig) -> torch.optim.Optimizer:
    """The optimiser of ``opt.name`` over ``model``'s parameters: the reference's SGD on all of them,
    or AdamW / LARS (timm's) with weight decay, and for LARS the trust ratio, on the weights only
    (not biases and norm layers, as is usual for both from scratch)."""
    if opt.name == "sgd":
        return make_sgd(model.parameters(), opt.lr, opt.momentum, opt.weight_decay)
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.ndim > 1]},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    if opt.name == "adamw":
        return torch.optim.AdamW(groups, lr=opt.lr, betas=(opt.momentum, 0.999), weight_decay=opt.weight_decay)
    from timm.optim import Lars  # timm is a dependency already (the backbones)

    return Lars(
        groups, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay, trust_coeff=opt.trust_coefficient
    )


def make_sgd(params, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """SGD on all parameters (the reference's optimiser), with the fused kernel where this torch has
    one: the same update, faster than the default for-each path (SE-ResNet50 on 2 CPU threads: 0.033 s
    against 0.052 s per step, ``benchmarks/results/training-cpu.json``)."""
    params = list(params)
    try:
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
