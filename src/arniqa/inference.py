"""Scoring images: ``load(...)`` a model, then ``Scorer.score(...)`` paths, PIL images, arrays or tensors.

Models are named ``arniqa-<dataset>`` (the published ``ARNIQA.pth`` encoder and the published
``regressor_<dataset>.pth``, fetched into the cache or read from ``weights_dir``), pyiqa's metric names
(``arniqa`` = KonIQ-10k, ``arniqa-live``, ``arniqa-csiq``, ``arniqa-tid``, ``arniqa-kadid``,
``arniqa-clive``, ``arniqa-flive``, ``arniqa-spaq``), or the path of a checkpoint saved by
:func:`arniqa.models.weights.save_checkpoint`.

Batching: ``batch_size`` counts **images** per forward pass. In the ``crops``/``eval`` protocols each
image gives 5 full-scale and 5 half-scale crops of 224, all run in one forward, so a forward sees
``10 * batch_size`` crops. In ``whole``/``pyiqa`` images of equal size are batched together (images
are grouped by size within a look-ahead window of ``2 * batch_size`` images); other sizes run apart.
Files are decoded (and cropped) by a thread pool, ``2 * batch_size`` images ahead, while the model
runs. Results always come back in input order, and a batch gives the same scores as one image at a
time (up to float rounding).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from .data.images import ImageError, open_image, to_rgb
from .data.views import Protocol, get_protocol
from .models.arniqa import ARNIQA
from .models.regressor import DATASETS, Regressor, canonical_dataset

DEFAULT_MODEL = "arniqa-kadid10k"
PRECISIONS = ("fp32", "bf16", "fp16")

# pyiqa's metric names -> regressor dataset (pyiqa's plain ``arniqa`` is the KonIQ-10k regressor).
PYIQA_NAMES = {
    "arniqa": "koniq10k",
    "arniqa-live": "live",
    "arniqa-csiq": "csiq",
    "arniqa-tid": "tid2013",
    "arniqa-kadid": "kadid10k",
    "arniqa-clive": "clive",
    "arniqa-flive": "flive",
    "arniqa-spaq": "spaq",
}
MODEL_NAMES = tuple(f"arniqa-{d}" for d in DATASETS) + tuple(k for k in PYIQA_NAMES if f"arniqa-{PYIQA_NAMES[k]}" != k)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA if available, then Apple MPS, then CPU; anything else is passed to ``torch.device``."""
    if str(device) != "auto":
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"device {device!r} requested but MPS is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_dataset(name: str) -> str:
    """The regressor dataset of a model name (``arniqa-<dataset>`` or a pyiqa name)."""
    key = name.strip().lower()
    if key in PYIQA_NAMES:
        return PYIQA_NAMES[key]
    if key.startswith("arniqa-"):
        try:
            return canonical_dataset(key[len("arniqa-"):])
        except ValueError:
            pass
    raise ValueError(f"unknown model {name!r}: expected a checkpoint file or one of {', '.join(MODEL_NAMES)}")


def load_published(dataset: str = "kadid10k", weights_dir=None) -> tuple[ARNIQA, Regressor]:
    """The published ARNIQA encoder and ``regressor_<dataset>.pth``, via :func:`arniqa.models.weights.fetch`
    (the cache folder, or ``weights_dir``; downloaded on first use). No ImageNet weights are fetched."""
    from .models.weights import (ENCODER_FILE, fetch, load_published_encoder, load_published_regressor,
                                 regressor_filename)

    dataset = canonical_dataset(dataset)
    model = load_published_encoder(ARNIQA("resnet50"), fetch(ENCODER_FILE, weights_dir))
    regressor = load_published_regressor(fetch(regressor_filename(dataset), weights_dir), dataset=dataset)
    return model.eval(), regressor.eval()


def load(
    name_or_path: str | os.PathLike = DEFAULT_MODEL,
    device: str | torch.device = "auto",
    weights_dir=None,
    protocol: str | Protocol = "crops",
    regressor: str | os.PathLike | Regressor | None = None,
    **options,
) -> "Scorer":
    """A :class:`Scorer` for a model name or a checkpoint path.

    ``regressor`` overrides the regressor: a dataset name (published models only), a
    ``regressor_<dataset>.pth`` file, or a :class:`Regressor`. Other keyword ``options`` go to
    :class:`Scorer` (``batch_size``, ``workers``, ``max_side``, ``precision``, ``channels_last``).
    """
    dev = resolve_device(device)
    reg_file = Path(regressor) if isinstance(regressor, (str, os.PathLike)) and Path(regressor).is_file() else None
    reg_dataset = regressor if isinstance(regressor, str) and reg_file is None else None
    path = Path(name_or_path)
    if path.suffix == ".safetensors" or path.is_file():
        from .models.weights import load_checkpoint

        if reg_dataset is not None:
            raise ValueError(f"regressor {regressor!r}: with a checkpoint pass a regressor file, not a dataset name "
                             "(the published regressors fit the published encoder only)")
        model, reg, _config = load_checkpoint(path, device="cpu")
    else:
        model, reg = load_published(reg_dataset or model_dataset(str(name_or_path)), weights_dir)
    if isinstance(regressor, Regressor):
        reg = regressor
    elif reg_file is not None:
        from .models.weights import load_published_regressor

        reg = load_published_regressor(reg_file)
    return Scorer(model, reg, protocol=protocol, device=dev, **options)


@dataclass
class ScoreResult:
    """Scores of N images, in input order (CPU tensors).

    ``scores``: (N,) scaled to about [0, 1], higher is better (or raw when ``scale=False``);
    ``raw_scores``: (N,) on the regressor dataset's native scale; ``features``: (N, V, 4096) per view
    (V = 5 crops or 1 whole image) when requested, else None. The raw score is the regressor applied
    to ``features.mean(1)`` (the regressor is linear, so this is the mean of the view scores).
    """

    scores: torch.Tensor
    raw_scores: torch.Tensor
    features: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def __float__(self) -> float:
        if len(self.scores) != 1:
            raise TypeError(f"float() needs a result for one image, this one has {len(self.scores)}")
        return float(self.scores[0])

    def tolist(self) -> list[float]:
        return self.scores.tolist()


@dataclass
class ItemResult:
    """One image's outcome in :meth:`Scorer.iter_scores`: a score, or the error that stopped it."""

    index: int
    source: str
    score: float | None = None
    raw_score: float | None = None
    error: str | None = None  # the reason, without the source name
    features: torch.Tensor | None = None  # (V, 4096) when requested
    exception: Exception | None = field(default=None, repr=False)


@dataclass
class _Prepared:
    index: int
    source: str
    full: torch.Tensor | None = None  # (V, 3, h, w)
    half: torch.Tensor | None = None
    exception: Exception | None = None

    def failed(self) -> ItemResult:
        e = self.exception
        return ItemResult(self.index, self.source, error=e.reason if isinstance(e, ImageError) else str(e),
                          exception=e)


def _source_name(item, index: int) -> str:
    return str(item) if isinstance(item, (str, os.PathLike)) else f"<input {index}>"


def _tensor_image(x: torch.Tensor, name: str) -> torch.Tensor:
    """A (3,H,W) float image in [0, 1] from a float or uint8 tensor with 1 or 3 channels."""
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"{name}: expected an image tensor (3,H,W) or (1,H,W), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = x.float() / 255
    elif not x.is_floating_point():
        raise ValueError(f"{name}: expected a float tensor in [0, 1] or uint8, got {x.dtype}")
    else:
        x = x.float()
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"{name}: tensor values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]")
    return x.expand(3, -1, -1) if x.shape[0] == 1 else x


def _array_image(a: np.ndarray, name: str) -> torch.Tensor:
    """A (3,H,W) float tensor from an HWC (or HW) array: uint8 is divided by 255, floats must be in [0, 1]."""
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"{name}: expected an HxWxC array with C in (1, 3, 4), got shape {a.shape}")
    if a.shape[2] == 4:  # drop alpha, as for RGBA files
        a = a[:, :, :3]
    if a.dtype == np.uint8:
        t = torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1)
    elif np.issubdtype(a.dtype, np.floating):
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)
    else:
        raise ValueError(f"{name}: expected a uint8 or float array, got {a.dtype}")
    return _tensor_image(t, name)


def _split_inputs(inputs) -> list:
    """Normalise ``score()`` inputs to a list of single images (paths, PIL images, (3,H,W) tensors)."""
    if isinstance(inputs, (str, os.PathLike, Image.Image, np.ndarray)):
        return [inputs]
    if torch.is_tensor(inputs):
        if inputs.dim() == 4:
            return list(inputs)
        return [inputs]
    if isinstance(inputs, Iterable):
        items = list(inputs)
        if not items:
            raise ValueError("no images to score (empty input)")
        return items
    raise ValueError(f"cannot score an object of type {type(inputs).__name__}")


class Scorer:
    """An ARNIQA model, a regressor and a preprocessing protocol, ready to score images.

    ``batch_size``: images per forward pass (see the module docstring); ``workers``: decoding threads;
    ``max_side``: in ``whole``/``pyiqa``, images whose longer side exceeds it are first downscaled
    (PIL bicubic, aspect kept, longer side = ``max_side``) with a warning, which changes their score;
    ignored by ``crops``/``eval``, whose cost does not grow with the image past decoding.
    ``precision``: ``fp32`` (default), ``bf16`` or ``fp16`` autocast; ``channels_last`` memory format.
    """

    def __init__(
        self,
        model: ARNIQA,
        regressor: Regressor | None,
        protocol: str | Protocol = "crops",
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        workers: int | None = None,
        max_side: int | None = None,
        precision: str = "fp32",
        channels_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if max_side is not None and max_side < 2:
            raise ValueError(f"max_side must be at least 2, got {max_side}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.device = resolve_device(device)
        self.protocol = get_protocol(protocol)
        self.model = model.to(self.device).eval()
        self.regressor = None if regressor is None else regressor.to(self.device).eval()
        self.batch_size = batch_size
        self.workers = workers if workers is not None else max(1, min(4, os.cpu_count() or 1))
        self.max_side = max_side
        self.precision = precision
        self.channels_last = channels_last
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    def __repr__(self) -> str:
        reg = self.regressor.dataset if self.regressor is not None else None
        return (f"Scorer(backbone={self.model.backbone_name!r}, regressor={reg!r}, protocol={self.protocol.name!r}, "
                f"device={str(self.device)!r}, batch_size={self.batch_size}, precision={self.precision!r})")

    # ---- preprocessing -------------------------------------------------------------------------

    def _bound(self, image, name: str):
        """Downscale ``image`` (PIL or (3,H,W) tensor) so its longer side is at most ``max_side``."""
        if self.max_side is None or self.protocol.crops:
            return image
        w, h = image.size if isinstance(image, Image.Image) else (image.shape[-1], image.shape[-2])
        if max(h, w) <= self.max_side:
            return image
        r = self.max_side / max(h, w)
        nh, nw = max(2, round(h * r)), max(2, round(w * r))
        warnings.warn(f"{name}: {w}x{h} exceeds max_side={self.max_side}; downscaled to {nw}x{nh} before scoring",
                      stacklevel=3)
        if isinstance(image, Image.Image):
            return image.resize((nw, nh), Image.Resampling.BICUBIC)
        return F.interpolate(image[None], size=(nh, nw), mode="bicubic", antialias=True)[0].clamp_(0, 1)

    def _prepare(self, index: int, item) -> _Prepared:
        """Decode one input and make its (full, half) views; errors are kept, not raised."""
        name = _source_name(item, index)
        try:
            if isinstance(item, (str, os.PathLike)):
                image = open_image(item)
            elif isinstance(item, Image.Image):
                image = to_rgb(item, name)
            elif isinstance(item, np.ndarray):
                image = _array_image(item, name)
            elif torch.is_tensor(item):
                image = _tensor_image(item, name)
            else:
                raise ValueError(f"{name}: cannot score an object of type {type(item).__name__}")
            full, half = self.protocol.views(self._bound(image, name))
            return _Prepared(index, name, full, half)
        except (ImageError, ValueError) as e:
            return _Prepared(index, name, exception=e)

    def _prepared(self, items: Sequence) -> Iterator[_Prepared]:
        """Prepared inputs in order, decoded by a thread pool ``2 * batch_size`` images ahead."""
        ahead = 2 * self.batch_size
        if self.workers <= 1 or len(items) <= 1:
            for i, item in enumerate(items):
                yield self._prepare(i, item)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="arniqa-decode") as pool:
            pending = []
            it = iter(enumerate(items))
            for i, item in it:  # fill the look-ahead: one batch decoding while one is scored
                pending.append(pool.submit(self._prepare, i, item))
                if len(pending) >= ahead:
                    break
            while pending:
                yield pending.pop(0).result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(self._prepare, *nxt))

    # ---- model ---------------------------------------------------------------------------------

    def _autocast(self):
        if self.precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return self.model.features(x).float()

    @torch.inference_mode()
    def _forward(self, group: list[_Prepared]) -> torch.Tensor:
        """(n, V, 4096) quality features of prepared images that share one view size."""
        full = torch.cat([p.full for p in group])
        half = torch.cat([p.half for p in group])
        if full.shape[-2:] == half.shape[-2:]:  # crops: both scales in one forward
            f = self._features(torch.cat([full, half]))
            f_full, f_half = f[: len(full)], f[len(full):]
        else:
            f_full, f_half = self._features(full), self._features(half)
        return torch.cat([f_full, f_half], dim=1).view(len(group), -1, f_full.shape[1] * 2)

    def _score_group(self, group: list[_Prepared], want_features: bool) -> list[ItemResult]:
        try:
            feats = self._forward(group)
        except RuntimeError as e:  # e.g. out of memory: retry one at a time so only the culprit fails
            if len(group) == 1:
                p = group[0]
                return [ItemResult(p.index, p.source, error=f"model failed ({e})", exception=e)]
            return [r for p in group for r in self._score_group([p], want_features)]
        raw = self._raw(feats)
        out = []
        for p, r, f in zip(group, raw.tolist(), feats.cpu()):
            scaled = float(self.regressor.scale(r)) if self._can_scale else None
            out.append(ItemResult(p.index, p.source, scaled, r, features=f if want_features else None))
        return out

    @property
    def _can_scale(self) -> bool:
        return self.regressor is not None and self.regressor.score_range is not None

    def _raw(self, feats: torch.Tensor) -> torch.Tensor:
        if self.regressor is None:
            return torch.full((feats.shape[0],), float("nan"))
        with torch.inference_mode():
            return self.regressor(feats.flatten(0, 1).float()).view(feats.shape[0], -1).mean(1).cpu()

    # ---- public --------------------------------------------------------------------------------

    def iter_scores(self, inputs, return_features: bool = False) -> Iterator[ItemResult]:
        """Score ``inputs`` (paths, PIL images, arrays, tensors) and yield one :class:`ItemResult` per
        input, **in input order**, as soon as it and all before it are done. A failing input yields a
        result with ``error`` set and the others go on. Scores are scaled when the regressor has a
        score range (``raw_score`` always holds the native-scale value)."""
        items = _split_inputs(inputs)
        done: dict[int, ItemResult] = {}
        next_out = 0
        buckets: dict[tuple, list[_Prepared]] = {}
        window = 2 * self.batch_size
        held = 0

        def flush(key):
            nonlocal held
            group = buckets.pop(key)
            held -= len(group)
            for r in self._score_group(group, return_features):
                done[r.index] = r

        for p in self._prepared(items):
            if p.exception is not None:
                done[p.index] = p.failed()
            else:
                key = (tuple(p.full.shape[-2:]), tuple(p.half.shape[-2:]))
                buckets.setdefault(key, []).append(p)
                held += 1
                if len(buckets[key]) >= self.batch_size:
                    flush(key)
                elif held >= window:  # keep the look-ahead bounded: flush the biggest bucket
                    flush(max(buckets, key=lambda k: len(buckets[k])))
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
        for key in list(buckets):
            flush(key)
        while next_out in done:
            yield done.pop(next_out)
            next_out += 1

    def score(self, inputs, return_features: bool = False, scale: bool = True) -> ScoreResult:
        """Scores of one image or many: a path (str or Path), PIL image, HWC numpy array (uint8, or
        float in [0, 1]), tensor (3,H,W) or (B,3,H,W) in [0, 1], or a list of any of these.

        Returns a :class:`ScoreResult` with (N,) tensors (N = 1 for a single image). Raises the first
        input's error (:class:`~arniqa.data.images.ImageError` for files, ValueError otherwise); use
        :meth:`iter_scores` to go on past bad inputs.
        """
        if self.regressor is None:
            raise ValueError("this model has no regressor; pass regressor=... to load(), or use features()")
        if scale and not self._can_scale:
            raise ValueError("the regressor has no score range; call score(..., scale=False) for raw scores")
        results = list(self.iter_scores(inputs, return_features))
        for r in results:
            if r.exception is not None:
                raise r.exception
        raw = torch.tensor([r.raw_score for r in results], dtype=torch.float32)
        scores = torch.tensor([r.score for r in results], dtype=torch.float32) if scale else raw.clone()
        feats = torch.stack([r.features for r in results]) if return_features else None
        return ScoreResult(scores, raw, feats)

    def features(self, inputs) -> torch.Tensor:
        """(N, V, 4096) quality features per view (no regressor needed)."""
        results = list(self.iter_scores(inputs, return_features=True))
        for r in results:
            if r.exception is not None:
                raise r.exception
        return torch.stack([r.features for r in results])


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

    def forward(self, img: torch.Tensor, img_ds: torch.Tensor, return_embedding: bool = False,
                scale_score: bool = True):
        f = F.normalize(self.model.encoder(img), dim=1)
        f_ds = F.normalize(self.model.encoder(img_ds), dim=1)
        f_combined = torch.hstack((f, f_ds))
        score = self.regressor(f_combined)
        if scale_score:
            score = self.regressor.scale(score)
        return (score, f_combined) if return_embedding else score


def hub_model(regressor_dataset: str = "kadid10k", weights_dir=None) -> HubModel:
    """The published model in the reference hub interface (see :class:`HubModel`)."""
    return HubModel(*load_published(regressor_dataset, weights_dir))
