"""The degradation model as data: 7 groups, 24 distortions, 5 level values each.

Values are the reference's `distortion_groups` and `distortion_range`. Implementations register
themselves here (see :func:`register`) when :mod:`.apply` imports their modules; :func:`get` looks them up. The
data alone imports no torch.
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable

from ..utils.names import did_you_mean

GROUPS: dict[str, tuple[str, ...]] = {
    "brightness_change": ("brighten", "darken", "meanshift"),
    "blur": ("gaublur", "lensblur", "motionblur"),
    "spatial_distortion": ("jitter", "noneccpatch", "pixelate", "quantization", "colorblock"),
    "noise": ("whitenoise", "whitenoiseCC", "impulsenoise", "multnoise"),
    "color_distortion": ("colordiff", "colorshift", "colorsat1", "colorsat2"),
    "jpeg": ("jpeg2000", "jpeg"),
    "sharpness_contrast": ("highsharpen", "lincontrchange", "nonlincontrchange"),
}

LEVELS: dict[str, tuple[float, ...]] = {
    "brighten": (0.1, 0.2, 0.4, 0.7, 1.1),
    "darken": (0.05, 0.1, 0.2, 0.4, 0.8),
    "meanshift": (0.0, 0.08, -0.08, 0.15, -0.15),
    "gaublur": (0.1, 0.5, 1.0, 2.0, 5.0),
    "lensblur": (1, 2, 4, 6, 8),
    "motionblur": (1, 2, 4, 6, 10),
    "jitter": (0.05, 0.1, 0.2, 0.5, 1.0),
    "noneccpatch": (20, 40, 60, 80, 100),
    "pixelate": (0.01, 0.05, 0.1, 0.2, 0.5),
    "quantization": (20, 16, 13, 10, 7),
    "colorblock": (2, 4, 6, 8, 10),
    "whitenoise": (0.001, 0.002, 0.003, 0.005, 0.01),
    "whitenoiseCC": (0.0001, 0.0005, 0.001, 0.002, 0.003),
    "impulsenoise": (0.001, 0.005, 0.01, 0.02, 0.03),
    "multnoise": (0.001, 0.005, 0.01, 0.02, 0.05),
    "colordiff": (1, 3, 6, 8, 12),
    "colorshift": (1, 3, 6, 8, 12),
    "colorsat1": (0.4, 0.2, 0.1, 0.0, -0.4),
    "colorsat2": (1, 2, 3, 6, 9),
    "jpeg2000": (16, 32, 45, 120, 170),
    "jpeg": (43, 36, 24, 7, 4),
    "highsharpen": (1, 2, 3, 6, 12),
    "lincontrchange": (0.0, 0.15, -0.4, 0.3, -0.6),
    "nonlincontrchange": (0.4, 0.3, 0.2, 0.1, 0.05),
}

NUM_LEVELS = 5
# Types whose levels are not ordered by strength (the values alternate in sign).
NON_MONOTONE = frozenset({"meanshift", "lincontrchange"})
NONE = "none"  # an image that shows none of the groups
LABELS: tuple[str, ...] = (*GROUPS, NONE)  # what the explanation head (arniqa.models.explain) tells apart, in order
NAMES: tuple[str, ...] = tuple(name for names in GROUPS.values() for name in names)
GROUP_OF: dict[str, str] = {name: group for group, names in GROUPS.items() for name in names}
MAX_DISTORTIONS = len(GROUPS)  # in a chain (sampler): at most one distortion per group


@dataclass(frozen=True)
class Distortion:
    """One distortion type.

    ``sample(x, value, generator) -> dict`` draws the random internals for every sample of the
    batch ``x`` (B,3,H,W), one sample after another, so that a batch draws exactly what its
    samples would draw one by one. ``apply(x, value, **params) -> Tensor`` is pure.
    ``value`` is the level's value from :data:`LEVELS`, not the level index. A distortion without
    random internals may also have ``start(x, value) -> finish``, which starts ``apply`` in the
    background; ``finish()`` returns its result. ``options`` are the keyword-only parameters of
    ``apply`` that a caller may set (``distort(x, "lensblur", 3, kernel="matlab")``).
    """

    name: str
    apply: Callable[..., Any]
    sample: Callable[..., dict] | None = None
    start: Callable[..., Callable[[], Any]] | None = None

    @property
    def options(self) -> tuple[str, ...]:
        params = inspect.signature(self.apply).parameters.values()
        return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)

    @property
    def levels(self) -> tuple[float, ...]:
        return LEVELS[self.name]


_REGISTRY: dict[str, Distortion] = {}


def register(
    name: str,
    apply: Callable[..., Any],
    sample: Callable[..., dict] | None = None,
    start: Callable[..., Callable[[], Any]] | None = None,
) -> None:
    """Register the implementation of the distortion ``name`` (a key of :data:`LEVELS`)."""
    if name not in LEVELS:
        raise ValueError(f"unknown distortion {name!r}")
    if start is not None and sample is not None:
        raise ValueError(f"{name}: only a distortion without random internals can start in the background")
    _REGISTRY[name] = Distortion(name, apply, sample, start)


def check_name(name: str) -> None:
    """ValueError naming the valid keys unless ``name`` is one of :data:`NAMES`."""
    if not isinstance(name, str) or name not in LEVELS:
        raise ValueError(f"unknown distortion {name!r}{did_you_mean(name, NAMES)}; expected one of: {', '.join(NAMES)}")


def check_level(level: int) -> int:
    """``level`` as an int; ValueError unless it is an integer from 1 to NUM_LEVELS."""
    is_integer = (
        isinstance(level, numbers.Real) and not isinstance(level, bool) and math.isfinite(level) and int(level) == level
    )
    if not is_integer or not 1 <= level <= NUM_LEVELS:
        raise ValueError(f"level must be an integer from 1 to {NUM_LEVELS}, got {level!r}")
    return int(level)


def get(name: str) -> Distortion:
    """The registered distortion ``name``; ValueError naming the valid keys otherwise."""
    check_name(name)
    if name not in _REGISTRY:
        raise ValueError(f"distortion {name!r} has no implementation registered")
    return _REGISTRY[name]
