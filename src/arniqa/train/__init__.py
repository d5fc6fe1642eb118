"""Self-supervised ARNIQA training: config, NT-Xent loss, the loop, multi-process helpers.

``python -m arniqa.train CONFIG [--set key=value ...] [--resume state.pt]`` runs it, also under
``torchrun --nproc-per-node N -m arniqa.train CONFIG``.
"""

from .config import Config, ConfigError, load_config
from .loop import Trainer, train
from .loss import NTXentLoss, nt_xent
from .state import TrainingError

__all__ = ["Config", "ConfigError", "NTXentLoss", "Trainer", "TrainingError", "load_config", "nt_xent", "train"]
