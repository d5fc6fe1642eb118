"""The SE-ResNet50 vs ResNet50 ablation: train several encoder variants with one recipe and the same
seeds, evaluate each (and its untrained initialisation) on a synthetic benchmark of held-out images
and on labelled datasets, and report per-seed numbers, paired differences and plots.

``arniqa ablate CONFIG [--set key=value ...] [-o OUT]`` runs it (see ``configs/ablation.yaml``).
"""

from .config import AblationConfig, AblationError, load_ablation_config
from .report import paired, summarise, write_report
from .runner import run_ablation

__all__ = ["AblationConfig", "AblationError", "load_ablation_config", "paired", "run_ablation", "summarise", "write_report"]
