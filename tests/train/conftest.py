import pytest
from tiny_arniqa import TinyARNIQA


@pytest.fixture
def tiny_model(monkeypatch):
    """Training builds :class:`TinyARNIQA` instead of ARNIQA."""
    import arniqa.train.loop as loop

    monkeypatch.setattr(loop, "build_model", lambda config: TinyARNIQA())
