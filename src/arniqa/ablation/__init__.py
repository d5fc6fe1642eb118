"""The SE-ResNet50 vs ResNet50 ablation (``arniqa ablate``): config, the file layout, data preparation, one
model on the benchmarks (evaluation), the runner and the report (statistics, plots, markdown). May import
everything below it: constants, utils, degradations, data, models, evaluate and train."""

from .config import AblationConfig, AblationError, load_ablation_config
from .report import write_report
from .runner import run_ablation
from .stats import paired, summarise

__all__ = [
    "AblationConfig",
    "AblationError",
    "load_ablation_config",
    "paired",
    "run_ablation",
    "summarise",
    "write_report",
]
