"""Pristine crops -> degraded crops: 24 distortions (a module per family registers apply and sample_<key>),
the registry, distort, the chain sampler. The registry's data (groups, levels) imports nothing heavy; ``distort``
and the implementations import torch, numpy and PIL when first used; torchvision (jpeg) and scipy (lincontrchange)
when those run. May import constants and utils."""

from .registry import GROUP_OF, GROUPS, LEVELS, NAMES, NUM_LEVELS

__all__ = ["distort", "GROUPS", "GROUP_OF", "LEVELS", "NAMES", "NUM_LEVELS"]


def __getattr__(name: str):
    if name == "distort":  # imports torch: `arniqa distortions` lists the data without it
        from .apply import distort

        return distort
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
