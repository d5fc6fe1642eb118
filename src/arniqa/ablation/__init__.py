"""The SE-ResNet50 vs ResNet50 ablation (``arniqa ablate``): config, the file layout, the runner and
the report. May import everything below it: constants, utils, data, models, evaluate and train."""

from .config import AblationConfig, AblationError, load_ablation_config
from .report import paired, summarise, write_report
from .runner import run_ablation

__all__ = ["AblationConfig", "AblationError", "load_ablation_config", "paired", "run_ablation", "summarise", "write_report"]
