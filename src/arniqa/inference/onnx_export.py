"""ONNX export of a model and its regressor, with a JSON sidecar that says how to read the scores.

The graph takes two float32 inputs, RGB in [0, 1] (ImageNet normalisation is inside the graph):
``full`` (N,3,H,W) and ``half`` (N,3,h,w), one full-scale and one half-scale view per row, with N, H,
W, h, w dynamic. It returns ``score`` (N,) (scaled to about [0, 1], higher is better; the raw score
when the regressor has no score range), ``raw_score`` (N,) on the regressor dataset's scale and,
when exported with ``embedding=True``, ``embedding`` (N, 4096). With an explanation head
(:mod:`arniqa.models.explain`) it also returns ``explain_logits`` (N, G) and ``severity`` (N,): an image's
group probabilities are the softmax of the mean of its views' logits (the sidecar's ``explain_labels`` name
the G columns), its severity the mean of its views', clipped to 0..5 as the scorer does. An image's score
is the mean over its views (5 crops per scale in the ``crops``/``eval`` protocols), as in
:class:`~arniqa.inference.Scorer`.

The sidecar ``FILE.json`` holds the protocol the views should follow, the regressor dataset, score
range and direction, the input and output names, and the encoder's fingerprints (an explanation head given
with the file must have been fitted on that encoder). Export uses PyTorch's TorchScript-based
exporter (``torch.onnx.export(..., dynamo=False)``), which needs only the ``onnx`` package; the
newer dynamo exporter also needs ``onnxscript``.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from ..constants import DEFAULT_PROTOCOL
from ..data.views import Protocol, get_protocol
from ..models.arniqa import ARNIQA, pairing_fingerprints
from ..models.explain import Explainer
from ..models.regressor import Regressor
from ..utils.files import atomic_writes, own_files
from ..utils.jsonfile import json_writer
from .sidecar import SIDECAR_FORMAT, sidecar_path

OPSET = 17
INPUTS = ("full", "half")


class QualityGraph(nn.Module):
    """``(full, half) -> (score, raw_score[, embedding])`` per pair of views: what is exported. Without a
    regressor only the embedding (the form the onnxruntime engine caches, shared by every regressor)."""

    def __init__(
        self, model: ARNIQA, regressor: Regressor | None, embedding: bool = False, explainer: Explainer | None = None
    ) -> None:
        super().__init__()
        self.model, self.regressor = model.eval(), None if regressor is None else regressor.eval()
        self.embedding = embedding or regressor is None
        self.explainer = None if explainer is None or regressor is None else explainer.eval()

    def forward(self, full: torch.Tensor, half: torch.Tensor):
        feature = self.model.quality_features(full, half)
        if self.regressor is None:
            return feature
        raw = self.regressor(feature)
        score = self.regressor.scale(raw) if self.regressor.score_range is not None else raw
        out = (score, raw, feature) if self.embedding else (score, raw)
        if self.explainer is not None:
            out = (*out, self.explainer.logits(feature), self.explainer.severity(feature).squeeze(-1))
        return out


def output_names(regressor: Regressor | None, embedding: bool, explain: bool = False) -> list[str]:
    if regressor is None:
        return ["embedding"]
    return (
        ["score", "raw_score"]
        + (["embedding"] if embedding else [])
        + (["explain_logits", "severity"] if explain else [])
    )


def sidecar(
    regressor: Regressor | None,
    protocol: Protocol,
    embedding: bool,
    backbone: str,
    explainer: Explainer | None = None,
    fingerprints: dict[str, str] | None = None,
) -> dict:
    """The sidecar's content; ``fingerprints``: the encoder's :func:`~arniqa.models.arniqa.pairing_fingerprints`,
    which a head given to the file is checked against (:func:`~arniqa.inference.pairing.check_pairing`)."""
    r = None if regressor is None else regressor.score_range
    explain = explainer is not None and regressor is not None
    outputs = output_names(regressor, embedding, explain)
    return {
        "format": SIDECAR_FORMAT,
        "version": 1,
        "protocol": protocol.name,
        "protocol_description": protocol.description,
        "inputs": {
            "full": "float32 (N,3,H,W) RGB in [0, 1], full-scale view",
            "half": "float32 (N,3,h,w) RGB in [0, 1], half-scale view",
        },
        "outputs": outputs,
        "views_per_image": protocol.n_views,
        "backbone": backbone,
        "dataset": None if regressor is None else regressor.dataset,
        "score_range": None if r is None else [r.low, r.high, r.kind],
        "score": (
            "scaled: (raw - low) / (high - low), inverted for DMOS; higher is better"
            if r is not None
            else "raw (no score range known)"
        ),
        "raw_score_direction": None if r is None else ("lower is better" if r.lower_better else "higher is better"),
        "opset": OPSET,
        "explain_labels": list(explainer.labels) if explain else None,
        "explain_protocol": explainer.protocol if explain else None,  # what the head was fitted on (None: unknown)
        **(fingerprints or {}),
    }


def export_onnx(
    model: ARNIQA,
    regressor: Regressor | None,
    path: str | os.PathLike,
    protocol: str | Protocol = DEFAULT_PROTOCOL,
    embedding: bool = False,
    explainer: Explainer | None = None,
) -> Path:
    """Write ``model`` + ``regressor`` (+ ``explainer``) as an ONNX file at ``path`` (and the sidecar
        ``path.json``); with no regressor the graph outputs the embedding only. Both files are replaced together
    (:func:`~arniqa.utils.files.atomic_writes`).
        The graph is traced from copies in eval mode: ``model`` and ``regressor`` keep their mode, device and layout."""
    protocol = get_protocol(protocol)
    path = Path(path)
    head = None if explainer is None else copy.deepcopy(explainer).cpu()
    graph = QualityGraph(
        copy.deepcopy(model).cpu().to(memory_format=torch.contiguous_format),
        None if regressor is None else copy.deepcopy(regressor).cpu(),
        embedding,
        head,
    ).eval()
    outputs = output_names(regressor, embedding, graph.explainer is not None)
    axes = {"full": {0: "n", 2: "height", 3: "width"}, "half": {0: "n", 2: "half_height", 3: "half_width"}}
    axes.update({name: {0: "n"} for name in outputs})
    example = (torch.rand(1, 3, 64, 64), torch.rand(1, 3, 32, 32))

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice and tracer warnings
            torch.onnx.export(
                graph,
                example,
                str(tmp),
                dynamo=False,
                opset_version=OPSET,
                input_names=list(INPUTS),
                output_names=outputs,
                dynamic_axes=axes,
            )

    meta = sidecar(regressor, protocol, embedding, model.backbone_name, head, pairing_fingerprints(model))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Together: an earlier sidecar beside the new graph would scale its scores by another score range.
    with own_files(sidecar_path(path)):  # a pipe planted as the sidecar is replaced, not written into
        atomic_writes([(path, write), (sidecar_path(path), json_writer(meta))])
    return path
