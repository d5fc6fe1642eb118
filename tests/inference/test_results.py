"""What scoring returns (arniqa.inference.results)."""

import pytest
import torch

from arniqa.inference import ScoreResult


def test_a_result_iterates_over_its_scores():
    """len(r) gave the number of images, but `for s in r` and zip(paths, r) were "'ScoreResult' object is not
    iterable"."""
    r = ScoreResult(torch.tensor([0.25, 0.5, 0.125]), torch.tensor([2.0, 3.0, 1.5]), sources=["a", "b", "c"])
    assert list(r) == [0.25, 0.5, 0.125] and all(type(s) is float for s in r)
    assert dict(zip(r.sources, r)) == {"a": 0.25, "b": 0.5, "c": 0.125}
    assert list(ScoreResult(torch.zeros(0), torch.zeros(0))) == []


def test_one_image_result_formats_as_its_score():
    """f"{r:.3f}" was a TypeError though float(r) worked."""
    one = ScoreResult(torch.tensor([0.123456]), torch.tensor([1.49]))
    assert f"{one:.3f}" == "0.123" and f"{one:>8.2%}" == "  12.35%" and format(one, "e") == format(0.123456, "e")
    assert f"{one}" == str(one)  # no format spec: the repr, as for any object
    many = ScoreResult(torch.tensor([0.1, 0.2]), torch.tensor([1.4, 1.8]))
    for number in (lambda: f"{many:.3f}", lambda: float(many)):
        with pytest.raises(TypeError, match="need a result for one image, this one has 2"):
            number()


def test_a_result_gives_rows_for_json_and_pandas_as_an_explanation_does():
    """An Explanation had rows() but a ScoreResult, the more common result, had none to build a DataFrame from."""
    import json

    pd = pytest.importorskip("pandas")
    r = ScoreResult(torch.tensor([0.25, 0.5]), torch.tensor([2.0, 3.0]), sources=["a.jpg", "<input 1>"])
    expected = [
        {"source": "a.jpg", "score": 0.25, "raw_score": 2.0, "note": None},
        {"source": "<input 1>", "score": 0.5, "raw_score": 3.0, "note": None},
    ]
    assert json.loads(json.dumps(r.rows())) == expected
    assert all(type(v) in (str, float, type(None)) for row in r.rows() for v in row.values())
    assert pd.DataFrame(r.rows()).to_dict("records") == expected
    assert ScoreResult(torch.zeros(0), torch.zeros(0)).rows() == []
