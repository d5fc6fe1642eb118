"""ResNet50 and SE-ResNet50 backbones (timm layout and key names), 2048-d after global pooling."""

from __future__ import annotations

from functools import partial

import timm
import torch.nn as nn
from timm.layers import SEModule

BACKBONES = ("resnet50", "se_resnet50")


def create_backbone(
    name: str = "resnet50",
    *,
    se_stages: tuple[int, ...] = (1, 2, 3, 4),
    se_bias: bool = True,
) -> nn.Module:
    """A randomly initialised backbone mapping (B,3,H,W) to (B,2048).

    ``se_resnet50`` puts a Squeeze-and-Excitation block (reduction 16, after bn3, before the
    residual add) in every bottleneck of the stages listed in ``se_stages``; ``se_bias`` keeps
    or drops the biases of its two FC layers.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {BACKBONES}")
    if name == "resnet50":
        return timm.create_model("resnet50", pretrained=False, num_classes=0)
    if not set(se_stages) <= {1, 2, 3, 4}:
        raise ValueError(f"se_stages must be a subset of (1, 2, 3, 4), got {se_stages}")
    se = partial(SEModule, rd_ratio=1 / 16, bias=se_bias)
    model = timm.create_model("resnet50", pretrained=False, num_classes=0, block_args=dict(attn_layer=se))
    for stage in {1, 2, 3, 4} - set(se_stages):
        for block in getattr(model, f"layer{stage}"):
            block.se = nn.Identity()
    return model
