"""The :class:`Scorer`: an ARNIQA model, a regressor and a view protocol, run over many images.

Batching: ``batch_size`` counts **images** per forward pass. In the ``crops``/``eval`` protocols each
image gives 5 full-scale and 5 half-scale crops of 224, all run in one forward, so a forward sees
``10 * batch_size`` crops. In ``whole``/``pyiqa`` images of equal size are batched together (images
are grouped by size within a look-ahead window of ``2 * batch_size`` images); other sizes run apart.
Files are decoded (and cropped) by a thread pool, ``2 * batch_size`` images ahead, while the model
runs. Results always come back in input order, and a batch gives the same scores as one image at a
time (up to float rounding).

With an :class:`~arniqa.inference.onnx_engine.OnnxEngine` and inputs that are files or PIL images, a
Scorer runs on numpy and PIL alone: torch is imported only for tensor inputs, the torch engine,
:meth:`Scorer.score` and :meth:`Scorer.features` (which return tensors) and features in results.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..constants import DEFAULT_PROTOCOL, QUALITY_DIM
from ..data.images import DEFAULT_MAX_PIXELS, ImageError
from ..data.views import Protocol, get_protocol
from ..models.paths import is_onnx
from ..utils.messages import file_line, note, noting, warn_file
from ..utils.names import keyword
from ..utils.runtime import AUTOCAST_PRECISIONS, beyond_memory, device_or_auto, out_of_memory, resolve_device
from .inputs import as_image, resized, source_name, split_inputs
from .onnx_engine import NOT_ONNX, ONNX_PRECISIONS, GraphHead, NonFinite, OnnxEngine, non_finite
from .results import ItemResult, ScoreResult, emit_in_order
from .sidecar import read_sidecar

if TYPE_CHECKING:
    import torch

    from ..models.arniqa import ARNIQA
    from ..models.regressor import Regressor

ENGINES = ("torch", "onnxruntime")
NO_HEAD = "this model has no explanation head"
LOAD_EXPLAINER = "pass explainer=FILE to load()"  # how the API gives a head; the CLI: --explainer FILE
PRECISIONS = (*AUTOCAST_PRECISIONS, "int8")  # bf16, fp16: torch autocast; int8: an ONNX Runtime file


def no_explainer(engine, give: str = LOAD_EXPLAINER) -> str | None:
    """What follows "no explanation head" for an ONNX file exported without the embedding, which a head file given
    (``give``) runs on: that it must be exported again; None for another engine, where ``give`` is the advice."""
    if isinstance(engine, OnnxEngine) and "embedding" not in engine.outputs:
        return (
            f", and {engine.path} was exported without the embedding a head file runs on; export it again with "
            f"--explainer FILE, or with --embedding to {give}"
        )
    return None


def explainer_missing(engine, give: str = LOAD_EXPLAINER) -> str:
    """The one line of a model with no explanation head, run by ``engine`` (None: not loaded yet), for the API and
    the CLI alike: fit one and ``give`` it (how the caller names a head file), or for an ONNX file that a head file
    cannot run on, :func:`no_explainer`."""
    return NO_HEAD + (no_explainer(engine, give) or f"; fit one with `arniqa explain fit` and {give}")


@dataclass
class _Prepared:
    index: int
    source: str
    full: np.ndarray | torch.Tensor | None = None  # (V, 3, h, w): arrays from PIL images, tensors from tensors
    half: np.ndarray | torch.Tensor | None = None
    exception: Exception | None = None
    note: str | None = None  # its warnings (utils/messages.note)

    def failed(self) -> ItemResult:
        """The error row; its error is the reason alone, without the source name the exception begins with."""
        e = self.exception
        reason = e.reason if isinstance(e, ImageError) else str(e).removeprefix(f"{self.source}: ")
        return ItemResult(self.index, self.source, error=reason, note=self.note, exception=e)


def _cat(views: list):
    """The views of a group as one batch: a numpy array, or a tensor when any view is a tensor (on the CPU
    when the views lie on several devices, a CUDA tensor's beside a file's; the engine moves them on)."""
    if all(isinstance(v, np.ndarray) for v in views):
        return np.concatenate(views)
    import torch

    tensors = [torch.as_tensor(v) for v in views]
    if len({t.device for t in tensors}) > 1:
        tensors = [t.cpu() for t in tensors]
    return torch.cat(tensors)


def _check_count(name: str, value, least: int) -> None:
    """ValueError unless ``value`` is a whole number (not a bool) of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{name} must be a whole number of at least {least}, got {value!r}")


class _Stream:
    """An iterator of inputs that ends, instead of raising, when the caller's iterator raises; the exception
    is kept in ``error`` (to be raised once the inputs taken before it are scored)."""

    def __init__(self, items: Iterator) -> None:
        self.items, self.error = items, None

    def __iter__(self):
        return self

    def __next__(self):
        if self.error is not None:
            raise StopIteration
        try:
            return next(self.items)
        except StopIteration:
            raise
        except Exception as e:
            self.error = e
            raise StopIteration from None


def _raise_first(results: Iterable[ItemResult]) -> list[ItemResult]:
    """``results`` (in input order) as a list, or the first input's error raised as soon as it comes, the inputs
    after it left unscored."""
    out = []
    for r in results:
        if r.exception is not None:
            raise r.exception
        out.append(r)
    return out


# The defaults per device type: the fastest path measured whose scaled scores stay within 1e-4 of the fp32
# torch computation (docs/usage.md, *Speed*; benchmarks/results/inference-cpu-defaults-zen5.json). Explicit
# precision or channels_last options choose the torch engine.
DEFAULTS = {
    "cpu": dict(engine="onnxruntime", batch_size=1, channels_last=False),  # 1.7-2.2x torch fp32, within 2e-7
    "cuda": dict(engine="torch", batch_size=8, channels_last=True),  # H100: channels_last +14 %, fp32 within 3e-6
    "other": dict(engine="torch", batch_size=8, channels_last=False),  # MPS: not measured
}


def check_choices(protocol: str | Protocol | None, precision: str, engine: str | OnnxEngine, say=keyword) -> None:
    """ValueError for a protocol (None: a default), precision or engine that is none of the names: :func:`load`
    checks them before a model loads (or downloads), :class:`Scorer` when it is made; ``say`` as
    :func:`check_engine`'s."""
    if protocol is not None:
        get_protocol(protocol)
    if precision not in PRECISIONS:
        raise ValueError(f"{say('precision')} must be one of {PRECISIONS}, got {precision!r}")
    if not isinstance(engine, OnnxEngine) and engine not in ("auto", *ENGINES):
        raise ValueError(f"{say('engine')} must be one of {('auto', *ENGINES)}, got {engine!r}")


def check_engine(engine, precision="fp32", channels_last=None, calibrate=None, model=None, say=keyword) -> None:
    """ValueError, before any model loads, for settings that do not go together: an engine that cannot run
    ``precision`` or ``channels_last`` (``auto``: the engine they choose; an :class:`OnnxEngine` or a ``model``
    ending in .onnx: ONNX Runtime), ``calibrate`` without int8. ``say`` names the settings: load()'s keywords
    (:func:`~arniqa.utils.names.keyword`) or the command line's options (``option``)."""
    if calibrate is not None and precision != "int8":
        raise ValueError(f"{say('calibrate')} goes with {say('precision', 'int8')}")
    onnx_file = model is not None and is_onnx(model)
    if onnx_file and engine not in ("auto", "onnxruntime"):
        raise ValueError(f"{model}: an ONNX file runs on ONNX Runtime, not {say('engine', engine)}")
    if engine == "auto":  # what resolve_engine chooses; the device's default goes with any setting
        engine = "onnxruntime" if precision == "int8" or onnx_file else "torch"
    if engine == "torch" and precision == "int8":
        raise ValueError(f"{say('precision', 'int8')} runs on ONNX Runtime, not {say('engine', 'torch')}")
    if engine != "torch" and (precision not in ONNX_PRECISIONS or channels_last):
        given = say("channels_last", True) if channels_last else say("precision", precision)
        raise ValueError(f"{given} applies to the torch engine; ONNX Runtime runs fp32 or int8")


def check_max_side(max_side, protocol: str | Protocol | None, model=None, say=keyword) -> None:
    """ValueError, before any model loads, for a ``max_side`` under a protocol that never downscales (crops, eval:
    crops of 224 px, whatever the image's size); ``protocol`` None: an ONNX ``model``'s own (its sidecar's), else
    the default. ``say`` as :func:`check_engine`'s."""
    if max_side is None:
        return
    whose = ""
    if protocol is None:
        own = None
        if model is not None and is_onnx(model):
            with suppress(ValueError, OSError):  # a sidecar that is not one: the load says so
                own = (read_sidecar(model) or {}).get("protocol")
        protocol, whose = (own, " (the file's own)") if own else (DEFAULT_PROTOCOL, " (the default)")
    if get_protocol(protocol).crops:
        raise ValueError(
            f"{say('max_side', max_side)} goes with {say('protocol', 'whole')} or {say('protocol', 'pyiqa')}; "
            f"the {get_protocol(protocol).name} protocol{whose} scores 224-px crops whatever the image's size, so "
            "leave it out"
        )


def resolve_engine(device: torch.device, engine, precision: str = "fp32", channels_last: bool | None = None):
    """``engine`` with ``auto`` replaced: onnxruntime for int8, torch when a torch option (bf16, fp16,
    channels_last) is given, else the device's default."""
    if engine != "auto":
        return engine
    if precision == "int8":
        return "onnxruntime"
    if precision != "fp32" or channels_last:
        return "torch"
    return DEFAULTS.get(device.type, DEFAULTS["other"])["engine"]


class Scorer:
    """An ARNIQA model, a regressor and a preprocessing protocol, ready to score images.

    ``batch_size``: images per forward pass (see the module docstring); ``workers``: decoding threads;
    ``max_side``: in ``whole``/``pyiqa``, images whose longer side exceeds it are first downscaled
    (PIL bicubic, aspect kept, longer side = ``max_side``) with a warning, which changes their score;
    refused with ``crops``/``eval`` (:func:`check_max_side`), whose cost does not grow with the image past decoding.
    ``max_pixels``: encoded images (files, bytes, shard members) whose header declares more pixels are
    an error, refused before decoding (default 100 million; None: PIL's own limit only).
    ``device``: a torch device, ``cpu`` by default, or ``auto`` (None too, as :func:`~arniqa.inference.load`'s).
    ``precision``: ``fp32`` (default), ``bf16`` or ``fp16`` autocast; ``channels_last`` memory format.
    ``batch_size``, ``channels_last`` and ``engine`` default per device (:data:`DEFAULTS`).
    ``engine``: ``auto``, ``torch``, or ``onnxruntime`` (the model's feature graph exported once into the
    cache, run by ONNX Runtime in fp32, the regressor applied in torch), or an
    :class:`~arniqa.inference.onnx_engine.OnnxEngine` of an exported file (then ``model`` is None and
    ``regressor`` only scales). Rows, order and error handling are the same for every engine.
    """

    # pyiqa's metric.lower_better: scaled scores are higher-better (the raw score's way: regressor.score_range)
    lower_better = False

    def __init__(
        self,
        model: ARNIQA | None,
        regressor: Regressor | None,
        protocol: str | Protocol = DEFAULT_PROTOCOL,
        device: str | torch.device | None = "cpu",
        batch_size: int | None = None,
        workers: int | None = None,
        max_side: int | None = None,
        precision: str = "fp32",
        channels_last: bool | None = None,
        engine: str | OnnxEngine = "auto",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        check_choices(protocol, precision, engine)
        device = device_or_auto(device)  # None: auto, as load's
        # an OnnxEngine has its device already (a torch-free one); the others are torch devices
        self.device = engine.device if isinstance(engine, OnnxEngine) else resolve_device(device)
        defaults = DEFAULTS.get(getattr(self.device, "type", self.device), DEFAULTS["other"])
        engine = resolve_engine(self.device, engine, precision, channels_last)
        if channels_last is None:
            channels_last = defaults["channels_last"] and engine == "torch"
        batch_size = defaults["batch_size"] if batch_size is None else batch_size
        _check_count("batch_size", batch_size, 1)
        for name, value, least in (("workers", workers, 0), ("max_side", max_side, 2), ("max_pixels", max_pixels, 1)):
            if value is not None:
                _check_count(name, value, least)
        if channels_last not in (True, False):
            raise ValueError(f"channels_last must be True, False or None, got {channels_last!r}")
        check_engine(engine, precision, channels_last)
        check_max_side(max_side, protocol)
        self.protocol = get_protocol(protocol)
        self.model, self.regressor = model, regressor
        self.batch_size = batch_size
        self.workers = workers if workers is not None else max(1, min(4, os.cpu_count() or 1))
        self.max_side = max_side
        self.max_pixels = max_pixels
        # an arniqa.models.explain.Explainer (on the features), or an ONNX file's own GraphHead: see explain()
        self.explainer = engine.explainer if isinstance(engine, OnnxEngine) else None
        self.precision = precision
        self.channels_last = channels_last
        if isinstance(engine, OnnxEngine):
            self.engine = engine
        elif model is None:
            raise ValueError("a Scorer needs a model, or an OnnxEngine of an exported file")
        elif engine == "torch":
            from .engines import TorchEngine

            self.engine = TorchEngine(model, regressor, self.device, precision, channels_last)
            self.model, self.regressor = self.engine.model, self.engine.regressor
        else:
            from .engines import cached_export
            from .quantize import int8_file

            onnx_file = cached_export(model)
            self.engine = OnnxEngine(int8_file(onnx_file) if precision == "int8" else onnx_file, device, regressor)
            self.device = self.engine.device  # ONNX Runtime's choice for auto

    def __repr__(self) -> str:
        reg = self.regressor.dataset if self.regressor is not None else None
        # on ONNX Runtime there is no torch model: the backbone its export's sidecar records
        backbone = self.model.backbone_name if self.model is not None else (self.engine.meta or {}).get("backbone")
        return (
            f"Scorer(backbone={backbone!r}, regressor={reg!r}, protocol={self.protocol.name!r}, "
            f"engine={self.engine.name!r}, device={str(self.device)!r}, batch_size={self.batch_size}, "
            f"precision={self.precision!r})"
        )

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
        warn_file(
            f"{name}: {w}x{h} exceeds max_side={self.max_side}; downscaled to {nw}x{nh} before scoring",
            f"larger than max_side={self.max_side}, each downscaled before scoring",
            stacklevel=3,
        )
        return resized(image, (nw, nh))

    def _prepare(self, index: int, item) -> _Prepared:
        """Decode one input and make its (full, half) views; errors are kept, not raised, and so are its
        warnings, as its note."""
        name = source_name(item, index)
        with noting() as notes:
            prepared = self._views(index, item, name)
        prepared.note = note(notes, name)
        return prepared

    def _views(self, index: int, item, name: str) -> _Prepared:
        try:
            image = self._bound(as_image(item, name, self.max_pixels), name)
            views = self.protocol.arrays if isinstance(image, Image.Image) else self.protocol.views
            full, half = views(image)
            return _Prepared(index, name, full, half)
        except (ImageError, ValueError) as e:
            return _Prepared(index, name, exception=e)
        except RuntimeError as e:  # torch on a tensor input (a meta tensor, one too big to check): this one only
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            why = file_line(
                name, f"cannot make its views ({first})", "pass a dense CPU or GPU tensor holding its pixels"
            )
            return _Prepared(index, name, exception=ValueError(why))
        except MemoryError:  # this image only: the others go on
            return _Prepared(
                index,
                name,
                exception=ImageError(
                    name, "out of memory while decoding it; lower --max-pixels, --workers or --batch-size"
                ),
            )

    def _prepared(self, items: Iterable) -> Iterator[_Prepared]:
        """Prepared inputs in order, decoded by a thread pool ``2 * batch_size`` images ahead (``items`` is
        taken lazily, so a stream of inputs is never held whole)."""
        ahead = 2 * self.batch_size
        if self.workers <= 1 or (isinstance(items, Sequence) and len(items) <= 1):
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

    def _forward(self, group: list[_Prepared], want_features: bool, graph: bool) -> tuple:
        """Raw scores (n,) (mean over views) and, when wanted, (n, V, 4096) features and (``graph``) the ONNX
        file's explanation outputs, logits (n, V, G) and severities (n, V), of prepared images that share one
        view size."""
        full, half = _cat([p.full for p in group]), _cat([p.half for p in group])
        raw, feats, explained = self.engine.run(full, half, want_features, graph)
        n = len(group)
        if explained is not None:
            explained = tuple(a.reshape(n, -1, *a.shape[1:]) for a in explained)
        return raw.reshape(n, -1).mean(1), None if feats is None else feats.reshape(n, -1, feats.shape[1]), explained

    def _score_group(self, group: list[_Prepared], return_features: bool, explain: bool = False) -> list[ItemResult]:
        """The results of prepared images that share one view size; ``explain``: each with its explanation,
        from the ONNX file's outputs (a :class:`GraphHead`) or by the head on its features."""
        graph = explain and isinstance(self.explainer, GraphHead)
        want_features = return_features or (explain and not graph)
        try:
            raw, feats, explained = self._forward(group, want_features, graph)
        except (RuntimeError, MemoryError) as e:  # out of memory: retry one at a time so only the culprit fails
            if len(group) == 1:
                p = group[0]
                error = str(e) if isinstance(e, NonFinite) else f"model failed ({e})"
                asked = self.protocol.crops and isinstance(self.engine, OnnxEngine) and beyond_memory(e)
                if asked:  # crops are of one size whatever the image: the file's graph asks for it
                    error = (
                        f"{self.engine.path}: the model asks for {asked:,} bytes in one tensor, more memory than "
                        f"this machine has; no device runs it: {NOT_ONNX}"
                    )
                elif out_of_memory(e):  # alone: the batch size is not the cause
                    advice = "choose another --device" if self.protocol.crops else "downscale it with --max-side"
                    error = f"out of memory in the model ({type(e).__name__}); {advice}"
                return [ItemResult(p.index, p.source, error=error, note=p.note, exception=e)]
            return [r for p in group for r in self._score_group([p], return_features, explain)]
        if want_features:
            import torch

            feats = torch.from_numpy(feats)
        if explain:
            from .explaining import explain_features, explain_views  # here: it imports torch
        out = []
        for i, (p, r) in enumerate(zip(group, raw.tolist())):
            if (self.regressor is not None and not math.isfinite(r)) or (
                want_features and not feats[i].isfinite().all()
            ):
                error = non_finite("score or feature")
                out.append(
                    ItemResult(
                        p.index, p.source, error=error, note=p.note, exception=ValueError(f"{p.source}: {error}")
                    )
                )
                continue
            scaled = float(self.regressor.scale(r)) if self._can_scale else None
            result = ItemResult(
                p.index, p.source, scaled, r, note=p.note, features=feats[i] if return_features else None
            )
            if graph:
                result.explanation = explain_views(explained[0][i], explained[1][i])
            elif explain:
                result.explanation = explain_features(self.explainer, feats[i])
            out.append(result)
        return out

    @property
    def _can_scale(self) -> bool:
        return self.regressor is not None and self.regressor.score_range is not None

    # ---- public --------------------------------------------------------------------------------

    def iter_scores(self, inputs, return_features: bool = False, explain: bool = False) -> Iterator[ItemResult]:
        """Score ``inputs`` (paths, PIL images, arrays, tensors) and yield one :class:`ItemResult` per
        input, **in input order**, as soon as it and all before it are done. A failing input yields a
        result with ``error`` set and the others go on. Scores are scaled when the regressor has a
        score range (``raw_score`` always holds the native-scale value). When an iterator of inputs raises,
        the inputs taken before it are scored and yielded first, then its exception is raised. ``explain``:
        each result's ``explanation`` from :attr:`explainer` (ValueError now when there is none)."""
        if explain and self.explainer is None:
            raise ValueError(explainer_missing(self.engine))
        return self._iter_scores(inputs, return_features, explain)

    def _iter_scores(self, inputs, return_features: bool, explain: bool) -> Iterator[ItemResult]:
        items = split_inputs(inputs)
        if isinstance(items, Iterator):
            items = _Stream(items)
        done: dict[int, ItemResult] = {}
        emitted = 0
        buckets: dict[tuple, list[_Prepared]] = {}
        window = 2 * self.batch_size
        held = 0

        def flush(key):
            nonlocal held
            group = buckets.pop(key)
            held -= len(group)
            for r in self._score_group(group, return_features, explain):
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
            if len(done) >= window:  # keep the reorder window bounded: score the bucket of the next row out
                flush(next(k for k, group in buckets.items() if group[0].index == emitted))
            for r in emit_in_order(done, emitted):
                emitted += 1
                yield r
        for key in list(buckets):
            flush(key)
        yield from emit_in_order(done, emitted)
        if isinstance(items, _Stream) and items.error is not None:
            raise items.error

    def score(self, inputs, return_features: bool = False, scale: bool = True) -> ScoreResult:
        """Scores of one image or many: a path (str or Path), an image file's bytes or binary file object, a PIL
        image, an HWC numpy array (uint8, uint16, or float in [0, 1]; (B,H,W,C): B images), a tensor (3,H,W) or
        (B,3,H,W) in [0, 1], or a list of any of these (:mod:`arniqa.inference.inputs`).

        Returns a :class:`ScoreResult` with (N,) tensors (N = 1 for a single image, 0 for an empty list or
        iterator: a glob that matched nothing). Raises the first input's error
        (:class:`~arniqa.data.images.ImageError` for files, ValueError otherwise); use :meth:`iter_scores` to
        go on past bad inputs.
        """
        if self.regressor is None:
            raise ValueError("this model has no regressor; pass regressor=... to load(), or use features()")
        if scale and not self._can_scale:
            raise ValueError("the regressor has no score range; call score(..., scale=False) for raw scores")
        import torch

        results = _raise_first(self.iter_scores(inputs, return_features))
        raw = torch.tensor([r.raw_score for r in results], dtype=torch.float32)
        scores = torch.tensor([r.score for r in results], dtype=torch.float32) if scale else raw.clone()
        feats = self._stack_features(results) if return_features else None
        return ScoreResult(scores, raw, feats, [r.source for r in results], [r.note for r in results])

    def __call__(self, inputs) -> torch.Tensor:
        """pyiqa's ``metric(x)``: ``score(inputs).scores``, the (N,) float32 scaled scores (higher is better),
        N = 1 for one image, on the model's device as pyiqa's (on the CPU for ONNX Runtime, which gives host
        arrays; :meth:`score` gives CPU tensors)."""
        scores = self.score(inputs).scores
        return scores if isinstance(self.engine, OnnxEngine) else scores.to(self.device)

    def explain(self, inputs):
        """Which distortion group each input shows, and how strongly: an
        :class:`~arniqa.inference.explaining.Explanation` (needs an explanation head: a checkpoint's or an ONNX
        file's, exported with one, or ``load(explainer=...)``)."""
        from .explaining import explain  # here: it imports torch

        return explain(self, inputs)

    def features(self, inputs) -> torch.Tensor:
        """(N, V, 4096) quality features per view (no regressor needed)."""
        return self._stack_features(_raise_first(self.iter_scores(inputs, return_features=True)))

    def _stack_features(self, results: list[ItemResult]) -> torch.Tensor:
        """(N, V, D) features of ``results``; (0, V, D) for none (D: the regressor's width, else 4096)."""
        import torch

        if results:
            return torch.stack([r.features for r in results])
        return torch.zeros(0, self.protocol.n_views, getattr(self.regressor, "in_features", QUALITY_DIM))
