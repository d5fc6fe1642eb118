"""The IQA datasets by name: canonical keys, pyiqa's short names, and each dataset's score range and direction.

The one table of dataset names: the adapters (:func:`arniqa.data.iqa.load_dataset`), the regressor
(:mod:`arniqa.models.regressor`), the model names (:mod:`arniqa.models.registry`) and the CLI read it.
"""

from __future__ import annotations

from typing import NamedTuple

from ...utils.names import did_you_mean

SCORE_KINDS = ("mos", "dmos")  # the labels' kinds: MOS, higher is better; DMOS, lower is better


class ScoreRange(NamedTuple):
    """The native score range of a dataset and whether its labels are MOS or DMOS."""

    low: float
    high: float
    kind: str = "mos"  # one of SCORE_KINDS

    @property
    def lower_better(self) -> bool:
        return self.kind == "dmos"


def scale_score(raw, score_range: ScoreRange):
    """``raw`` mapped to about [0, 1], higher is better: ``(raw - low) / (high - low)``, inverted for DMOS,
    not clamped. Works on tensors, numpy arrays and floats."""
    low, high, _ = score_range
    scaled = (raw - low) / (high - low)
    return 1 - scaled if score_range.lower_better else scaled


# Official ARNIQA ranges. FLIVE is (1, 100) as in the official model; pyiqa >= 0.1.14 uses (0, 100).
SCORE_RANGES: dict[str, ScoreRange] = {
    "live": ScoreRange(1.0, 100.0, "dmos"),
    "csiq": ScoreRange(0.0, 1.0, "dmos"),
    "tid2013": ScoreRange(0.0, 9.0, "mos"),
    "kadid10k": ScoreRange(1.0, 5.0, "mos"),
    "flive": ScoreRange(1.0, 100.0, "mos"),
    "spaq": ScoreRange(1.0, 100.0, "mos"),
    "clive": ScoreRange(1.0, 100.0, "mos"),
    "koniq10k": ScoreRange(1.0, 100.0, "mos"),
}

DATASETS = tuple(SCORE_RANGES)

# pyiqa's short names (its ARNIQA regressor_dataset options and dataset keys), and PaQ-2-PiQ, FLIVE's other name
# (in pyiqa, `paq2piq` is a different metric).
ALIASES = {"koniq": "koniq10k", "tid": "tid2013", "kadid": "kadid10k", "livec": "clive", "paq2piq": "flive"}

# A labelled CSV of the user's own (:mod:`arniqa.data.iqa.custom`): loadable, but with no fixed score range.
CUSTOM = "csv"


def canonical_dataset(name: str, custom: bool = False) -> str:
    """The canonical key of a dataset name (case-insensitive; pyiqa's short names accepted).

    Args:
        name: a key of :data:`DATASETS` or :data:`ALIASES`, in any case.
        custom: also accept :data:`CUSTOM` (for loading a dataset; a regressor needs a known range).

    Returns:
        The key in :data:`DATASETS` (or :data:`CUSTOM`).

    Raises:
        ValueError: the name is unknown; the message lists the accepted names.

    >>> canonical_dataset("KonIQ")
    'koniq10k'
    """
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if custom and key == CUSTOM:
        return key
    if key not in SCORE_RANGES:
        known = DATASETS + ((CUSTOM,) if custom else ()) + tuple(ALIASES)
        what = "dataset" if custom else "regressor dataset"
        raise ValueError(f"unknown {what} {name!r}{did_you_mean(name, known)}; expected one of: {', '.join(known)}")
    return key
