"""Model names and regressor spellings, against tables written out by hand (pyiqa's metric names and
the dataset aliases of docs/usage.md)."""

import re

import pytest

from arniqa.constants import DEFAULT_MODEL
from arniqa.models.registry import PYIQA_NAMES, is_model_name, list_models, model_dataset, regressor_dataset

MODELS = {
    "arniqa-live": "live", "arniqa-csiq": "csiq", "arniqa-tid2013": "tid2013", "arniqa-kadid10k": "kadid10k",
    "arniqa-flive": "flive", "arniqa-spaq": "spaq", "arniqa-clive": "clive", "arniqa-koniq10k": "koniq10k",
    # pyiqa's names: its plain "arniqa" is the KonIQ-10k regressor
    "arniqa": "koniq10k", "arniqa-tid": "tid2013", "arniqa-kadid": "kadid10k",
    # other aliases and other cases
    "arniqa-koniq": "koniq10k", "arniqa-livec": "clive", "arniqa-paq2piq": "flive", "ARNIQA-KADID10K": "kadid10k",
}  # fmt: skip
DATASET_SPELLINGS = {"kadid10k": "kadid10k", "kadid": "kadid10k", "KonIQ": "koniq10k", "tid": "tid2013",
                     "livec": "clive", "paq2piq": "flive", "live": "live", "spaq": "spaq"}  # fmt: skip


@pytest.mark.parametrize("name, dataset", MODELS.items())
def test_model_names(name, dataset):
    assert model_dataset(name) == dataset
    assert regressor_dataset(name) == dataset  # --regressor takes model names too


@pytest.mark.parametrize("name, dataset", DATASET_SPELLINGS.items())
def test_regressor_dataset_names(name, dataset):
    assert regressor_dataset(name) == dataset


def test_listed_names():
    assert list_models()[:8] == tuple(
        f"arniqa-{d}" for d in ("live", "csiq", "tid2013", "kadid10k", "flive", "spaq", "clive", "koniq10k")
    )
    assert set(list_models()) == set(list_models()[:8]) | {"arniqa", "arniqa-tid", "arniqa-kadid"}
    assert set(PYIQA_NAMES) == {
        "arniqa",
        "arniqa-live",
        "arniqa-csiq",
        "arniqa-tid",
        "arniqa-kadid",
        "arniqa-clive",
        "arniqa-flive",
        "arniqa-spaq",
    }
    assert DEFAULT_MODEL in list_models() and model_dataset(DEFAULT_MODEL) == "kadid10k"


@pytest.mark.parametrize("name", ["arniqa-imagenet", "kadid10k", "resnet50"])
def test_unknown_model(name):
    with pytest.raises(ValueError, match=f"unknown model '{name}'.*arniqa-kadid10k"):
        model_dataset(name)


@pytest.mark.parametrize("name", ["imagenet", "arniqa-imagenet"])
def test_an_unknown_regressor_lists_every_kind_of_name_it_takes(name):
    # before: 'unknown regressor dataset' listing datasets alone, or 'unknown model ... expected a checkpoint file'
    with pytest.raises(ValueError, match=f"^unknown regressor '{name}'") as raised:
        regressor_dataset(name)
    listed = str(raised.value).split("; expected ")[1]
    for taken in ("a regressor file", "kadid10k", "livec", "arniqa", "arniqa-DATASET"):
        assert taken in listed
    spellings = re.findall(r"[a-z0-9]+", listed.split("(")[1].split(")")[0].replace("; also", ""))  # the datasets
    assert {name.lower() for name in DATASET_SPELLINGS} <= set(spellings)
    for spelling in spellings:  # each name listed is one regressor_dataset takes
        assert regressor_dataset(spelling) and regressor_dataset(f"arniqa-{spelling}")


def test_is_model_name_takes_pyiqas_names_and_no_dataset_or_path():
    """pyiqa's metric names (shared/docs/pyiqa-and-users.md 1.1) and arniqa-<dataset> are model names; a dataset
    alone (a --regressor value), a path or another pyiqa metric (musiq) is not."""
    for name in ("arniqa", "arniqa-koniq", "arniqa-spaq", "arniqa-koniq10k", "ARNIQA-LIVEC"):
        assert is_model_name(name), name
    for name in ("koniq", "kadid10k", "musiq", "photos/arniqa", "arniqa.jpg", "arniqa-"):
        assert not is_model_name(name), name
