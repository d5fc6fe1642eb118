"""Self-supervised ARNIQA training (``python -m arniqa.train``): config, NT-Xent, factory, loop, logger,
state, processes. May import constants, utils, data, degradations, models and evaluate (validation)."""

from .config import Config, ConfigError, load_config
from .loop import Trainer, train
from .loss import NTXentLoss, nt_xent
from .state import TrainingError

__all__ = ["Config", "ConfigError", "NTXentLoss", "Trainer", "TrainingError", "load_config", "nt_xent", "train"]
