"""The reference ``torch.hub`` interface (``hubconf.py`` at the repository root imports this)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..constants import DEFAULT_REGRESSOR
from ..models.arniqa import ARNIQA
from ..models.regressor import Regressor
from ..utils.names import count
from .loading import load_published


class HubModel(nn.Module):
    """The reference ``torch.hub`` model's interface: ``forward(img, img_ds, return_embedding=False,
    scale_score=True)`` with ``img``/``img_ds`` already ImageNet-normalised (N,3,H,W) tensors (full and
    half scale). Returns scores (N,) (scaled unless ``scale_score=False``), and the (N, 4096) feature
    too when ``return_embedding``."""

    def __init__(self, model: ARNIQA, regressor: Regressor) -> None:
        super().__init__()
        self.model = model.eval()
        self.regressor = regressor.eval()
        self.regressor_dataset = regressor.dataset

    def forward(
        self, img: torch.Tensor, img_ds: torch.Tensor, return_embedding: bool = False, scale_score: bool = True
    ):
        for name, x in (("img", img), ("img_ds", img_ds)):
            if not torch.is_tensor(x) or x.dim() != 4 or x.shape[1] != 3:
                raise ValueError(f"{name}: expected a (N,3,H,W) tensor, got {_shape(x)}")
        if len(img) != len(img_ds):
            raise ValueError(
                f"img has {count(len(img), 'image')} and img_ds {len(img_ds)}; pass both scales of each image"
            )
        f = F.normalize(self.model.encoder(img), dim=1)
        f_ds = F.normalize(self.model.encoder(img_ds), dim=1)
        f_combined = torch.hstack((f, f_ds))
        score = self.regressor(f_combined)
        if scale_score:
            score = self.regressor.scale(score)
        return (score, f_combined) if return_embedding else score


def _shape(x) -> str:
    return f"shape {tuple(x.shape)}" if torch.is_tensor(x) else f"an object of type {type(x).__name__}"


def hub_model(regressor_dataset: str = DEFAULT_REGRESSOR, weights_dir=None) -> HubModel:
    """The published model in the reference hub interface (see :class:`HubModel`)."""
    return HubModel(*load_published(regressor_dataset, weights_dir))
