"""arniqa: no-reference image quality assessment with ARNIQA and an SE-ResNet50 encoder.

    import arniqa
    model = arniqa.load("arniqa-kadid10k")        # or a checkpoint path, or pyiqa's names ("arniqa", ...)
    model.score("photo.jpg").scores               # about [0, 1], higher is better

The root holds the entry points ``load``, ``score`` and ``distort`` and the version.
It imports only ``constants``; ``inference`` and ``degradations`` on first use, so ``import arniqa`` stays light.
"""

import os

from .constants import DEFAULT_MODEL

__version__ = "0.1.0"

__all__ = ["__version__", "distort", "load", "score"]

_cached_scorers: dict = {}


def score(inputs, model: str = DEFAULT_MODEL, **load_options):
    """Score ``inputs`` with ``load(model, **load_options)``. The loaded model is kept for later calls with the
    same model and options (an option that is an object, such as a ``Regressor``, is the same when it is the
    same object). Returns a :class:`arniqa.inference.ScoreResult`."""
    from .inference import load as _load

    key = (str(model), tuple(sorted((k, _option_key(v)) for k, v in load_options.items())))
    if key not in _cached_scorers:  # the options are kept with the scorer, so an object's id stays its own
        _cached_scorers[key] = (_load(model, **load_options), load_options)
    return _cached_scorers[key][0].score(inputs)


def _option_key(value):
    """An option's value in the cache key: plain values, paths and torch devices by their repr; other objects
    by identity (a Regressor's repr leaves its weights out)."""
    plain = value is None or isinstance(value, (str, int, float, bool, os.PathLike))
    if plain or (type(value).__module__, type(value).__name__) == ("torch", "device"):
        return repr(value)
    return ("object", id(value))


def __getattr__(name):
    if name == "load":
        from .inference import load

        return load
    if name == "distort":
        from .degradations import distort

        return distort
    raise AttributeError(f"module 'arniqa' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"load", "distort"})
