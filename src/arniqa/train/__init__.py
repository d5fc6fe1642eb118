"""Self-supervised ARNIQA training (``python -m arniqa.train``): config, NT-Xent, factory, loop, logger,
state, processes. May import constants, utils, data, degradations, models and evaluate (validation). The config
imports no torch (a bad config is one line before it); the rest imports torch when first used."""

from .config import Config, ConfigError, load_config

__all__ = ["Config", "ConfigError", "NTXentLoss", "Trainer", "TrainingError", "load_config", "nt_xent", "train"]

_LAZY = {"Trainer": "loop", "train": "loop", "NTXentLoss": "loss", "nt_xent": "loss", "TrainingError": "state"}


def __getattr__(name: str):
    if name in _LAZY:  # imports torch
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
