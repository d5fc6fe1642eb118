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

__all__ = ["__version__", "distort", "load", "score"]

_cached_scorers: dict = {}
_key_locks: dict = {}  # one lock per cache key: a load waits only for a load of the same key
_cache_lock = threading.Lock()  # guards _key_locks


def score(inputs, model: str = DEFAULT_MODEL, *, return_features: bool = False, scale: bool = True, **load_options):
    """Score ``inputs`` with ``load(model, **load_options)``; ``return_features`` and ``scale`` go to
    :meth:`~arniqa.inference.Scorer.score`. The loaded model is kept for later calls with the same model and
    options (an option that is an object, such as a ``Regressor``, is the same when it is the same object); threads
    calling at once share one load. Returns a :class:`arniqa.inference.ScoreResult`."""
    from .inference import load as _load

    key = (str(model), tuple(sorted((k, _option_key(v)) for k, v in load_options.items())))
    with _cache_lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:  # one load per key, whichever thread comes first; the others wait for it
        if key not in _cached_scorers:  # the options are kept with the scorer, so an object's id stays its own
            _cached_scorers[key] = (_load(model, **load_options), load_options)
        scorer = _cached_scorers[key][0]
    return scorer.score(inputs, return_features=return_features, scale=scale)


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
    if name in _submodules():
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'arniqa' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"load", "distort", *_submodules()})


@cache
def _submodules() -> frozenset[str]:
    """The package's subpackages and modules, as found beside this file (listed once: every unknown attribute,
    a hasattr() probe included, asks)."""
    import pkgutil

    return frozenset(module.name for module in pkgutil.iter_modules(__path__))
