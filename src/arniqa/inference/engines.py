"""What runs the network for a :class:`~arniqa.inference.Scorer`: PyTorch (here), or ONNX Runtime on an
exported file (:mod:`arniqa.inference.onnx_engine`, without torch), and the cache of exported files.

Both take batches of views, ``full`` (M,3,H,W) and ``half`` (M,3,h,w) in [0, 1] (arrays or tensors),
and return the raw scores (M,) (NaN without a regressor), when asked the (M, 4096) quality features, and,
when asked of an ONNX file with an explanation head, its explanation outputs (else None), as numpy arrays.
A failure of the runtime (e.g. out of memory) is raised as RuntimeError, which the Scorer reports per image.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack, suppress
from pathlib import Path

import numpy as np
import torch

from ..models.arniqa import ARNIQA, PAIRING_KEYS, model_fingerprint, pairing_fingerprints
from ..models.regressor import Regressor
from ..utils.cache import cache_dir, cache_unwritable, mark_used, one_maker, prune_cache, short_digest
from ..utils.jsonfile import write_json
from ..utils.runtime import autocast, autocast_dtype
from .onnx_export import export_onnx
from .sidecar import read_sidecar, sidecar_path


class TorchEngine:
    """The PyTorch model, with optional autocast (``precision``) and channels_last."""

    name = "torch"

    def __init__(
        self,
        model: ARNIQA,
        regressor: Regressor | None,
        device: torch.device,
        precision: str = "fp32",
        channels_last: bool = False,
    ) -> None:
        self.device, self.precision, self.channels_last = device, precision, channels_last
        self.dtype = autocast_dtype(precision)
        self.model = model.to(device).eval()
        self.regressor = None if regressor is None else regressor.to(device).eval()
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.dtype):
            return self.model.features(x).float()

    @torch.inference_mode()
    def run(self, full, half, features: bool, explain: bool = False) -> tuple[np.ndarray, np.ndarray | None, None]:
        if explain:  # a head here runs on the features (Scorer.explainer)
            raise ValueError("the torch engine has no explanation outputs; ask for the features")
        full, half = torch.as_tensor(full), torch.as_tensor(half)
        if full.shape[-2:] == half.shape[-2:]:  # crops: both scales in one forward
            f = self._features(torch.cat([full, half]))
            f = torch.cat([f[: len(full)], f[len(full) :]], dim=1)
        else:
            f = torch.cat([self._features(full), self._features(half)], dim=1)
        if self.regressor is None:
            raw = np.full(len(f), np.nan, dtype=np.float32)
        else:
            raw = self.regressor(f).cpu().numpy()
        return raw, f.cpu().numpy() if features else None, None


def cached_onnx(name: str, build: Callable[[], ARNIQA]) -> Path:
    """``<cache>/onnx/<name>.onnx``: the 4096-d feature graph of the model ``build()`` returns (no
    regressor, so every regressor shares it), exported on first use only (seconds to tens of seconds
    for a ResNet-50, about 100 MB). A new export prunes the folder (:func:`~arniqa.utils.cache.prune_cache`)."""
    path = cache_dir() / "onnx" / f"{name}.onnx"
    if mark_used(path):
        return path
    with ExitStack() as held:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            held.enter_context(one_maker(path, "exporting"))  # a cluster's jobs starting together export it once
            if mark_used(path):  # exported by the process waited for
                return path
        except OSError as e:
            raise _unwritable(path, e) from e
        model = build()  # outside: its own errors are no cache's
        try:
            export_onnx(model, None, path)
        except OSError as e:
            raise _unwritable(path, e) from e
    prune_cache(path.parent)
    return path


def _unwritable(path: Path, err: OSError) -> OSError:
    """The error of an export that cannot be written into the cache (a shared one this user may read but not write,
    a full disk)."""
    return cache_unwritable(path.parent, "the model's ONNX export", err, "score with --engine torch (engine='torch')")


def cached_fingerprint(name: str, build: Callable[[], ARNIQA], rounded: str | None = None) -> str:
    """:func:`model_fingerprint` of the model ``build()`` returns (at ``rounded``): read from the sidecar of its
    cached export ``<cache>/onnx/<name>.onnx`` (:func:`cached_onnx`; the sidecar records the encoder's
    :func:`~arniqa.models.arniqa.pairing_fingerprints`), so that a later call builds no model; computed when there
    is no export yet, or its sidecar does not record it. A sidecar written before sidecars recorded them gets them
    (replaced whole; the graph, maybe read elsewhere now, is left as it is), so only the first call builds."""
    path = cache_dir() / "onnx" / f"{name}.onnx"
    try:
        kept = read_sidecar(path) or {}
    except (OSError, ValueError):  # damaged, or being replaced: computed
        kept = {}
    fingerprint = kept.get(PAIRING_KEYS[rounded])  # read_sidecar checked it is a SHA-256 digest
    if isinstance(fingerprint, str):
        return fingerprint
    if not kept:
        return model_fingerprint(build(), rounded)
    fingerprints = pairing_fingerprints(build())
    with suppress(OSError):  # a cache this user may read but not write: computed each time, as before
        write_json(sidecar_path(path), {**kept, **fingerprints})
    return fingerprints[PAIRING_KEYS[rounded]]


def cached_export(model: ARNIQA) -> Path:
    """:func:`cached_onnx` of ``model``, named after its :func:`model_fingerprint`."""
    return cached_onnx(short_digest(model_fingerprint(model)), lambda: model)
