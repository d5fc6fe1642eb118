"""The SE-ResNet50 vs ResNet50 ablation (``arniqa ablate``): config, the file layout, data preparation, one
model on the benchmarks (evaluation), the runner and the report (statistics, plots, markdown). May import
everything below it: constants, utils, degradations, data, models, evaluate and train. The config imports no
torch (a bad config is one line before it); the rest imports torch when first used."""

from .config import GO_ON, AblationConfig, AblationError, load_ablation_config

__all__ = [
    "GO_ON",
    "AblationConfig",
    "AblationError",
    "load_ablation_config",
    "paired",
    "run_ablation",
    "summarise",
    "write_report",
]

_LAZY = {"write_report": "report", "run_ablation": "runner", "paired": "stats", "summarise": "stats"}


def __getattr__(name: str):
    if name in _LAZY:  # imports torch
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
