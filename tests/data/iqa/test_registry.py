"""The dataset names a user may type, against a table written out by hand from pyiqa's names."""

import pytest

from arniqa.data.iqa import load_dataset
from arniqa.data.iqa.registry import ALIASES, CUSTOM, DATASETS, SCORE_RANGES, canonical_dataset

# Every accepted spelling -> canonical key (pyiqa: koniq, tid, kadid, livec; its FLIVE set is PaQ-2-PiQ).
SPELLINGS = {
    "live": "live", "csiq": "csiq", "tid2013": "tid2013", "kadid10k": "kadid10k", "flive": "flive",
    "spaq": "spaq", "clive": "clive", "koniq10k": "koniq10k",
    "koniq": "koniq10k", "tid": "tid2013", "kadid": "kadid10k", "livec": "clive", "paq2piq": "flive",
    "KonIQ": "koniq10k", " KADID10K ": "kadid10k", "LiveC": "clive",
}  # fmt: skip


@pytest.mark.parametrize("name, key", SPELLINGS.items())
def test_every_spelling_resolves(name, key):
    assert canonical_dataset(name) == key
    assert canonical_dataset(name, custom=True) == key


def test_the_table_holds_exactly_these_names():
    assert set(DATASETS) == set(SCORE_RANGES) == set(SPELLINGS.values())
    assert {k.strip().lower() for k in SPELLINGS} == set(DATASETS) | set(ALIASES)


def test_custom_csv_only_for_loading():
    assert canonical_dataset("CSV", custom=True) == CUSTOM
    with pytest.raises(ValueError, match="unknown regressor dataset 'csv'"):
        canonical_dataset("csv")


def test_unknown_names_list_the_accepted_ones():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*kadid10k.*csv.*paq2piq"):
        canonical_dataset("imagenet", custom=True)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet", ".")


def test_alias_loads_the_same_adapter(tmp_path):
    (tmp_path / "labels.csv").write_text("path,score\na.png,1\nb.png,2\n")
    for name in ("csv", "CSV"):
        data = load_dataset(name, tmp_path, check=False)
        assert data.name == "csv" and len(data) == 2


def test_an_unknown_dataset_names_the_close_ones():
    """The error listed the names but not the one meant (a digit away)."""
    with pytest.raises(ValueError, match=r"unknown regressor dataset 'kadid11k' \(did you mean 'kadid10k'"):
        canonical_dataset("kadid11k")
