"""Scoring: ``load`` a model by name or checkpoint; a ``Scorer`` scores paths, PIL images, arrays, tensors.
May import models, data, degradations (registry), utils and constants, never evaluate, ablation or cli (which may
import it).

The names below are imported on first use, so that ``arniqa score`` on an ONNX file, which imports
submodules of this package, imports neither torch nor timm. (No submodule is named like one of them:
importing it would rebind the name.)"""

import importlib

_NAMES = {"ItemResult": "results", "ScoreResult": "results", "Scorer": "scorer", "export": "loading", "load": "loading",
          "load_model": "loading", "load_published": "loading"}  # fmt: skip

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMES))
