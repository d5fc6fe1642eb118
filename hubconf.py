"""torch.hub entry point with the reference's interface:

    model = torch.hub.load("<owner>/arniqa", "ARNIQA", regressor_dataset="kadid10k")
    score = model(img, img_ds)  # ImageNet-normalised full- and half-scale (N,3,H,W) tensors

Weights are the published ``ARNIQA.pth`` and ``regressor_<dataset>.pth``, fetched once into the arniqa
cache (``$ARNIQA_CACHE`` or ``~/.cache/arniqa``) or read from ``weights_dir``; no ImageNet weights are
downloaded. ``timm`` is needed besides torch (the backbone is timm's ResNet-50).
"""

import os
import sys

dependencies = ["torch", "timm"]

_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
if os.path.isdir(_SRC) and _SRC not in sys.path:
    sys.path.insert(0, _SRC)


def ARNIQA(regressor_dataset: str = "kadid10k", weights_dir=None):  # noqa: N802  (the reference's entry name)
    """The published ARNIQA model with ``regressor_dataset`` (live, csiq, tid2013, kadid10k, flive, spaq,
    clive, koniq10k; pyiqa's short names work too). ``forward(img, img_ds, return_embedding=False,
    scale_score=True)`` returns scores (N,) and, with ``return_embedding``, the (N, 4096) feature."""
    from arniqa.inference.hub import hub_model

    return hub_model(regressor_dataset, weights_dir)
