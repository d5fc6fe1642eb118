import pytest
from tiny_arniqa import TinyARNIQA

from arniqa.train import load_config

# What the short training runs of these tests share: fp32 on the CPU, 32 px crops, batch 2, three epochs.
SHORT_RUN = ["data.crop_size=32", "data.num_workers=0", "model.init=random", "train.batch_size=2", "train.epochs=3",
             "train.device=cpu", "train.precision=fp32", "log.progress=false", "log.tensorboard=false"]  # fmt: skip


@pytest.fixture
def tiny_model(monkeypatch):
    """Training builds :class:`TinyARNIQA` instead of ARNIQA."""
    import arniqa.train.loop as loop

    monkeypatch.setattr(loop, "build_model", lambda config: TinyARNIQA())


@pytest.fixture
def short_run(tmp_path, image_folder):
    """``short_run(*overrides)``: the config of a short run on ``image_folder`` into ``tmp_path / "run"``;
    ``overrides`` come last, so they win."""

    def config(*overrides: str):
        return load_config(None, [f"data.root={image_folder}", f"output={tmp_path / 'run'}", *SHORT_RUN, *overrides])

    return config
