"""The explanation head: which distortion group an image shows, and how strongly, from its 4096-d feature.

Two linear maps on the frozen quality feature: a multinomial logistic regression over :data:`LABELS` (the
degradation model's 7 groups, then ``none``) and a ridge regression of the severity (0 for a pristine image,
else the level 1..5 of the strongest distortion). An image's feature is the mean over its views, as for the
score. Stored as its own ``.safetensors`` file (:func:`save_explainer`), or inside a checkpoint beside the
regressor under ``explainer.*`` with its config in the ``"explainer"`` entry of the checkpoint's metadata.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..constants import QUALITY_DIM
from ..data.views import PROTOCOLS
from ..degradations.registry import LABELS, NONE  # noqa: F401  (NONE: re-exported)
from ..utils.files import Writer, atomic_write
from ..utils.messages import file_line, words
from ..utils.names import keyword
from .checkpoint import CHECKPOINT_FORMAT, arniqa_metadata, checkpoint_files, read_checkpoint_config, safetensors_writer
from .files import WeightsError, check_layer_size, read_state_dict

EXPLAINER_FORMAT = "arniqa-explainer"
PREFIX = "explainer."
FIT_AGAIN = "fit it again with `arniqa explain fit`"  # for an explainer arniqa cannot use


class Explainer(nn.Module):
    """Features (N, in_features) -> group probabilities (N, len(labels)) and severity (N,). ``protocol``: the
    protocol of the features it was fitted on (None: not known)."""

    def __init__(
        self, in_features: int = QUALITY_DIM, labels: tuple[str, ...] = LABELS, protocol: str | None = None
    ) -> None:
        super().__init__()
        self.labels = tuple(labels)
        self.protocol = protocol
        self.group = nn.Linear(in_features, len(self.labels))
        self.severity = nn.Linear(in_features, 1)
        self.requires_grad_(False)  # fitted in closed form or by fit_explainer, never by backpropagation

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.group(features)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.logits(features).softmax(-1), self.severity(features).squeeze(-1)

    @property
    def config(self) -> dict:
        known = {} if self.protocol is None else {"protocol": self.protocol}
        return {"labels": list(self.labels), "in_features": self.group.in_features, **known}

    def check_protocol(self, protocol: str, say=keyword) -> None:
        """Warn (one line) when the head was fitted on the features of another protocol than ``protocol``, the one
        its explanations are to come from (a head of unknown protocol passes); ``say`` names the setting."""
        check_head_protocol(self.protocol, protocol, say)


def check_head_protocol(fitted: str | None, protocol: str, say=keyword) -> None:
    """The warning of :meth:`Explainer.check_protocol` for a head fitted on ``fitted`` features (None: unknown);
    ``say`` names the setting: load()'s keyword (:func:`~arniqa.utils.names.keyword`) or the option (``option``)."""
    if fitted is not None and fitted != protocol:
        warnings.warn(
            f"the explanation head was fitted on {fitted!r} features, these come from {protocol!r}: its "
            f"groups and severities may be off; use {say('protocol', fitted)}, or "
            f"fit the head with arniqa explain fit --protocol {protocol}",
            stacklevel=3,
        )


def fit_explainer(
    features: torch.Tensor,
    targets: torch.Tensor,
    severity: torch.Tensor,
    l2: float = 1e-2,
    ridge: float = 1.0,
    max_iter: int = 300,
) -> Explainer:
    """Fit an :class:`Explainer` on ``features`` (N, D) with soft group ``targets`` (N, len(LABELS)) that sum to 1
    and ``severity`` (N,). The features are standardised for the fit (the scaling is folded into the weights).
    Groups: softmax cross-entropy with classes weighted to equal total weight (``none`` is rare), plus
    ``l2`` times the squared weights, minimised with L-BFGS. Severity: ridge with penalty ``ridge`` x N."""
    x = features.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = ((x - mean) / std).float()
    t = targets.float()
    class_weight = t.sum() / (len(LABELS) * t.sum(0).clamp_min(1.0))
    sample_weight = t @ class_weight
    w = torch.zeros(z.shape[1], t.shape[1], requires_grad=True)
    b = torch.zeros(t.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = -(sample_weight * (t * F.log_softmax(z @ w + b, -1)).sum(1)).sum() / sample_weight.sum()
        loss = loss + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    zd = z.double()
    y = severity.double()
    gram = zd.T @ zd + ridge * len(zd) * torch.eye(zd.shape[1], dtype=torch.float64)
    sw = torch.linalg.solve(gram, zd.T @ (y - y.mean()))
    head = Explainer(z.shape[1])
    with torch.no_grad():  # z = (x - mean) / std, so x's weights are w / std and the bias takes the mean
        gw = w.detach().double() / std[:, None]
        head.group.weight.copy_(gw.T.float())
        head.group.bias.copy_((b.detach().double() - mean @ gw).float())
        head.severity.weight.copy_((sw / std)[None].float())
        head.severity.bias.fill_(float(y.mean() - mean @ (sw / std)))
    return head.eval()


def explainer_tensors(head: Explainer) -> dict[str, torch.Tensor]:
    return {PREFIX + k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}


def save_explainer(path, head: Explainer, **info) -> Path:
    """Write ``head`` alone to a small ``.safetensors`` file (tensors ``explainer.*``, config in the metadata)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, explainer_writer(head, **info))


def explainer_writer(head: Explainer, **info) -> Writer:
    """What writes the file of :func:`save_explainer` (for :func:`~arniqa.utils.files.atomic_writes`)."""
    meta = {"format": EXPLAINER_FORMAT, "version": 1, "explainer": {**head.config, **info}}
    return safetensors_writer(explainer_tensors(head), meta)


def add_to_checkpoint(checkpoint, head: Explainer, output, **info) -> Path:
    """Copy ``checkpoint`` (a file of :func:`~arniqa.models.checkpoint.save_checkpoint`) to ``output`` with
    ``head`` beside its regressor (a previous explainer is replaced). ``checkpoint`` may also be any part of
    a checkpoint in parts, or its folder: ``output`` is then one file with the tensors of all its parts."""
    output = Path(output)
    write = checkpoint_with_head(checkpoint, head, **info)
    output.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(output, write)


def checkpoint_with_head(checkpoint, head: Explainer, **info) -> Writer:
    """What writes the file of :func:`add_to_checkpoint` (for :func:`~arniqa.utils.files.atomic_writes`);
    ``checkpoint`` is read now, so the file written may replace it."""
    meta = read_checkpoint_config(checkpoint)  # WeightsError when not a checkpoint of this project
    tensors = {
        k: v for f in checkpoint_files(checkpoint) for k, v in read_state_dict(f).items() if not k.startswith(PREFIX)
    }
    tensors.update(explainer_tensors(head))
    meta["explainer"] = {**head.config, **info}
    return safetensors_writer(tensors, meta)


def load_explainer(path) -> Explainer | None:
    """The explainer in ``path`` (its own file, or a checkpoint that holds one); None for a checkpoint without
    one. WeightsError when the file is not readable, its explainer is not for :data:`LABELS`, does not fit its
    config or is not finite. A checkpoint may be given by any of its parts or its folder
    (:func:`~arniqa.models.checkpoint.checkpoint_files`)."""
    files = [Path(path)]
    if Path(path).is_dir():
        files = checkpoint_files(path)
    meta = arniqa_metadata(files[0])
    if meta is not None and meta.get("format") == CHECKPOINT_FORMAT:
        files = checkpoint_files(files[0])
    if meta is None or not meta.get("explainer"):
        if meta is not None and meta.get("format") == EXPLAINER_FORMAT:
            raise WeightsError(file_line(path, "explainer file without its config", FIT_AGAIN))
        return None
    config = meta["explainer"]
    if not isinstance(config, dict) or config.get("labels", list(LABELS)) != list(LABELS):
        raise WeightsError(
            file_line(
                path,
                f"its explanation head is not for this version's groups ({', '.join(LABELS)})",
                FIT_AGAIN,
            )
        )
    width = config.get("in_features", QUALITY_DIM)
    heads = (read_state_dict(f, lambda k: k.startswith(PREFIX)) for f in files)  # a checkpoint's encoder: not read
    state = {k[len(PREFIX) :]: v.float() for part in heads for k, v in part.items()}
    check_layer_size(path, f"{PREFIX}group.weight", state.get("group.weight"), (len(LABELS), width))
    if not all(v.isfinite().all() for v in state.values()):
        raise WeightsError(file_line(path, "its explanation head holds NaN or infinite weights", FIT_AGAIN))
    protocol = config.get("protocol")  # recorded by `arniqa explain fit`; another value is taken for unknown
    head = Explainer(width, protocol=protocol if isinstance(protocol, str) and protocol in PROTOCOLS else None)
    try:
        head.load_state_dict(state, strict=True)
    except RuntimeError as e:
        problem = f"explainer tensors do not fit its config ({words(str(e))})"  # torch's lines, as one
        raise WeightsError(file_line(path, problem, FIT_AGAIN)) from None
    return head.eval()
