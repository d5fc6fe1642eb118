"""ResNet50 and SE-ResNet50 backbones (timm layout and key names), 2048-d after global pooling."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from ..constants import BACKBONES, SE_INITS, SE_STAGES
from ..utils.messages import file_line
from .files import WeightsError, key_differences, read_state_dict
from .paths import preview_keys

# the file load_resnet50_imagenet reads, for a line refusing another
RESNET50_WEIGHTS = "ResNet50's ImageNet weights (torchvision's resnet50-0676ba61.pth)"


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
    import timm  # here, not at import: it imports torchvision and torch._dynamo (2 s), which scoring
    from timm.layers import SEModule  # with a cached ONNX export does not need

    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {BACKBONES}")
    if name == "resnet50":
        return timm.create_model("resnet50", pretrained=False, num_classes=0)
    if not set(se_stages) <= set(SE_STAGES):
        raise ValueError(f"se_stages must be a subset of {SE_STAGES}, got {se_stages}")
    se = partial(SEModule, rd_ratio=1 / 16, bias=se_bias)
    model = timm.create_model("resnet50", pretrained=False, num_classes=0, block_args=dict(attn_layer=se))
    for stage in set(SE_STAGES) - set(se_stages):
        for block in getattr(model, f"layer{stage}"):
            block.se = nn.Identity()
    return model


def se_blocks(backbone: nn.Module) -> list[nn.Module]:
    """The bottlenecks of ``backbone`` that carry an SE module, in order."""
    from timm.layers import SEModule

    return [b for b in backbone.modules() if isinstance(getattr(b, "se", None), SEModule)]


@torch.no_grad()
def near_identity_se_(backbone: nn.Module) -> nn.Module:
    """Make every SE block start as the identity function of its ResNet50 bottleneck (in place).

    Scheme: zero ``fc2`` weight (and bias, if any), so each gate is exactly sigmoid(0) = 0.5 for
    every input, and double ``bn3``'s gamma and beta so the gated branch equals the un-gated one.
    Multiplying by 2 and 0.5 is exact in floating point, so right after loading ResNet50 weights the
    network computes the ResNet50 function (in eval mode, and in train mode too since the batch
    statistics that bn3 sees are unchanged). Why this scheme rather than the others
    (se-resnet50-and-sota.md section 1.6): it keeps the canonical SE (a plain sigmoid gate, no gain),
    it is exact rather than approximate (a large positive fc2 bias gives 0.95-0.98), the gates start
    at the sigmoid's steepest point (slope 0.25, so SE trains at a normal speed), and it needs no
    fc2 bias, so it also holds for ``se_bias=False``. ``fc1`` keeps its random weights; with ``fc2`` at
    zero, fc2 learns first and then passes gradients back to fc1. The one side effect: bn3's gamma
    and beta are twice as large and get half the gradient of the plain network's, a rescaling that
    Adam-type optimisers largely absorb.

    Apply it once, right after loading ResNet50 weights: a second call would double bn3 again.
    """
    for block in se_blocks(backbone):
        block.se.fc2.weight.zero_()
        if block.se.fc2.bias is not None:
            block.se.fc2.bias.zero_()
        block.bn3.weight.mul_(2)
        block.bn3.bias.mul_(2)
    return backbone


def _imagenet_state_dict(path) -> dict:
    state = read_state_dict(path)
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
        state = {k[len("module.") :]: v for k, v in state.items()}
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def load_resnet50_imagenet(backbone: nn.Module, path, se_init: str = "identity") -> nn.Module:
    """Load ResNet50 ImageNet weights from a local file into a ``resnet50`` or ``se_resnet50`` backbone.

    ``path`` is a torch pickle (read with ``weights_only=True``) or a ``.safetensors`` file with
    torchvision or timm key names (the same for ResNet50, e.g. torchvision's
    ``resnet50-0676ba61.pth`` or timm's ``resnet50.tv_in1k``); the classifier ``fc.*`` is dropped.
    Every backbone tensor must be present with the right shape, except the SE layers, which stay new:
    with ``se_init="identity"`` they are set by :func:`near_identity_se_` (the loaded network then
    computes exactly the ResNet50 function); with ``"random"`` they keep timm's fresh initialisation.
    Raises :class:`~arniqa.models.files.WeightsError` naming the file and the keys that do not fit.
    Returns ``backbone``.
    """
    if se_init not in SE_INITS:
        raise ValueError(f"se_init must be one of {SE_INITS}, got {se_init!r}")
    state = _imagenet_state_dict(path)
    expected = backbone.state_dict()
    se_keys = {k for k in expected if ".se." in k}
    missing = sorted(expected.keys() - se_keys - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise WeightsError(
            file_line(path, "not ResNet50 weights for this backbone", key_differences(missing, unexpected))
        )
    wrong = [
        f"{k} {tuple(v.shape)} != {tuple(expected[k].shape)}" for k, v in state.items() if v.shape != expected[k].shape
    ]
    if wrong:
        raise WeightsError(
            file_line(path, f"wrong tensor shapes: {preview_keys(wrong, 3)}", f"give {RESNET50_WEIGHTS}")
        )
    backbone.load_state_dict(state, strict=False)  # only the SE keys are missing (checked above)
    if se_init == "identity":
        near_identity_se_(backbone)
    return backbone
