"""Pristine crops -> degraded crops: the ARNIQA degradation model (24 distortions, 7 groups, 5 levels).

Each distortion module registers a pure ``apply`` and, where the distortion is random, a ``sample``
that draws its per-sample internals; :mod:`.sampler` composes them into chains.
"""

from . import blur, brightness, color, compression, noise, sharpness, spatial  # noqa: F401  (registration)
from .apply import distort
from .registry import GROUP_OF, GROUPS, LEVELS, NAMES, NUM_LEVELS

__all__ = ["distort", "GROUPS", "GROUP_OF", "LEVELS", "NAMES", "NUM_LEVELS"]
