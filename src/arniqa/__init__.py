"""arniqa: no-reference image quality assessment with ARNIQA and an SE-ResNet50 encoder.

    import arniqa
    model = arniqa.load("arniqa-kadid10k")        # or a checkpoint path, or pyiqa's names ("arniqa", ...)
    model.score("photo.jpg").scores               # about [0, 1], higher is better

The root holds the entry points ``load``, ``score`` and ``distort`` and the version.
It imports only ``constants``; ``inference`` and ``degradations`` on first use, so ``import arniqa`` stays light.
The subpackages are attributes once used (``arniqa.inference.export`` after a bare ``import arniqa``).
"""

import importlib
import os
import threading
from functools import cache

from .constants import DEFAULT_MODEL

__version__ = "0.1.0"

__all__ = ["__version__", "distort", "list_models", "load", "score"]

CACHED_MODELS = 4  # arniqa.score keeps the models of its 4 most recently used keys (model and options)
_cached_scorers: dict = {}  # cache key -> _Cached, the least recently used first
_cache_lock = threading.Lock()  # guards _cached_scorers and each entry's count of users


class _Cached:
    """One cache key's model: its lock (a load waits only for a load of the same key), the scorer once loaded with
    its options (kept, so an object's id in the key stays its own), and the calls using the entry now (never
    evicted while one is: threads asking for one model at once load it once)."""

    def __init__(self) -> None:
        self.lock, self.scorer, self.options, self.users = threading.Lock(), None, None, 0


def score(inputs, model: str = DEFAULT_MODEL, *, return_features: bool = False, scale: bool = True, **load_options):
    """Score ``inputs`` with ``load(model, **load_options)``; ``return_features`` and ``scale`` go to
    :meth:`~arniqa.inference.Scorer.score`. The loaded model is kept for later calls with the same model and
    options (an option that is an object, such as a ``Regressor``, is the same when it is the same object), for
    the :data:`CACHED_MODELS` most recently used; threads calling at once share one load. Returns a
    :class:`arniqa.inference.ScoreResult`."""
    from .inference import load as _load
    from .utils.runtime import device_or_auto

    # no device, None and "auto" are one key: load's default, auto
    options = {**load_options, "device": device_or_auto(load_options.get("device"))}
    key = (str(model), tuple(sorted((k, _option_key(v)) for k, v in options.items())))
    with _cache_lock:
        entry = _cached_scorers.pop(key, None) or _Cached()
        _cached_scorers[key] = entry  # the most recently used last
        entry.users += 1
    try:
        with entry.lock:  # one load per key, whichever thread comes first; the others wait for it
            if entry.scorer is None:
                entry.scorer, entry.options = _load(model, **load_options), load_options
            scorer = entry.scorer
    finally:
        with _cache_lock:
            entry.users -= 1
            _evict()
    return scorer.score(inputs, return_features=return_features, scale=scale)


def _evict() -> None:
    """Drop the entries no call is using: those of failed loads, then the least recently used past CACHED_MODELS."""
    for k in [k for k, e in _cached_scorers.items() if not e.users and e.scorer is None]:
        del _cached_scorers[k]
    idle = [k for k, e in _cached_scorers.items() if not e.users]
    for k in idle[: max(0, len(_cached_scorers) - CACHED_MODELS)]:
        del _cached_scorers[k]


def _option_key(value):
    """An option's value in the cache key: plain values by their repr, paths as their str (``Path("w")`` is
    ``"w"``), torch devices as their name (``torch.device("cpu")`` is ``"cpu"``); other objects by identity (a
    Regressor's repr leaves its weights out)."""
    if isinstance(value, os.PathLike) or (type(value).__module__, type(value).__name__) == ("torch", "device"):
        value = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    return ("object", id(value))


def __getattr__(name):
    if name == "load":
        from .inference import load

        return load
    if name == "distort":
        from .degradations import distort

        return distort
    if name == "list_models":  # pyiqa.list_models()'s place
        from .models.registry import list_models

        return list_models
    if name in _submodules():
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'arniqa' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"load", "distort", "list_models", *_submodules()})


@cache
def _submodules() -> frozenset[str]:
    """The package's subpackages and modules, as found beside this file (listed once: every unknown attribute,
    a hasattr() probe included, asks)."""
    import pkgutil

    return frozenset(module.name for module in pkgutil.iter_modules(__path__))
