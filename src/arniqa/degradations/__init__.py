"""Pristine crops -> degraded crops: 24 distortions (a module per family registers apply and sample_<key>),
the registry, distort, the chain sampler. Imports torch, numpy, PIL and torchvision; may import constants and utils."""

from . import blur, brightness, color, compression, noise, sharpness, spatial  # noqa: F401  (registration)
from .apply import distort
from .registry import GROUP_OF, GROUPS, LEVELS, NAMES, NUM_LEVELS

__all__ = ["distort", "GROUPS", "GROUP_OF", "LEVELS", "NAMES", "NUM_LEVELS"]
