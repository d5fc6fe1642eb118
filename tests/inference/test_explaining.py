import numpy as np
import pytest
import torch
from PIL import Image
from tiny_arniqa import tiny_checkpoint, tiny_explainer

from arniqa.inference import export, load
from arniqa.inference.explaining import Explanation, explain_features
from arniqa.models.explain import LABELS, Explainer, save_explainer


def test_severity_is_clipped_to_the_levels_range():
    head = Explainer(in_features=4)
    head.severity.weight.zero_()
    feats = torch.ones(3, 4)  # three views of one image
    for bias, expected in [(9.0, 5.0), (-3.0, 0.0), (2.5, 2.5)]:
        head.severity.bias.fill_(bias)
        assert explain_features(head, feats)[1] == expected


def _photos(folder, sizes=((80, 60), (64, 72), (96, 64))):
    """Smooth random photos of ``sizes`` (W, H) in ``folder``."""
    paths = []
    for i, (w, h) in enumerate(sizes):
        small = np.random.default_rng(i).integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8)
        paths.append(folder / f"p{i}.png")
        Image.fromarray(small).resize((w, h), Image.BICUBIC).save(paths[-1])
    return paths


def test_an_explanation_iterates_over_its_images_as_a_score_result_does():
    """`zip(r.sources, r)` paired a score result's inputs with their scores; an explanation was not iterable."""
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    e = Explanation(("blur", "noise", "jpeg"), probs, torch.tensor([1.0, 2.0]), ["a.jpg", "<input 1>"])
    assert dict(zip(e.sources, e)) == {
        "a.jpg": [("noise", pytest.approx(0.6)), ("jpeg", pytest.approx(0.3)), ("blur", pytest.approx(0.1))],
        "<input 1>": [("blur", pytest.approx(0.5)), ("jpeg", pytest.approx(0.3)), ("noise", pytest.approx(0.2))],
    }
    assert list(Explanation(("blur",), torch.zeros(0, 1), torch.zeros(0))) == []


def test_an_explanation_built_without_sources_names_its_images_as_a_score_result_does():
    """`Explanation(labels, probs, severity).rows()` was [] (no sources, no rows), and `zip(e.sources, e)` empty:
    each image is `<input i>` now, as a score result names an input without a name."""
    probs = torch.tensor([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]])
    e = Explanation(("blur", "noise"), probs, torch.tensor([1.0, 2.0, 0.0]))
    assert [row["source"] for row in e.rows()] == e.sources == ["<input 0>", "<input 1>", "<input 2>"]
    assert [(row["blur"], row["noise"], row["severity"]) for row in e.rows()] == [
        (0.25, 0.75, 1.0),
        (0.5, 0.5, 2.0),
        (1.0, 0.0, 0.0),
    ]
    assert len(dict(zip(e.sources, e))) == 3


def test_the_rule_of_the_views_outputs_is_the_head_on_the_mean_feature():
    """An ONNX file gives its head's outputs per view: the softmax of their mean logits and their mean severity
    (clipped to 0..5) are the head's explanation of the mean feature (float64 closed form)."""
    from arniqa.inference.explaining import explain_views

    g = torch.Generator().manual_seed(0)
    head = Explainer(in_features=6)
    head.group.weight.copy_(torch.randn(head.group.weight.shape, generator=g))
    head.severity.weight.copy_(0.1 * torch.randn(head.severity.weight.shape, generator=g))
    feats = torch.randn(5, 6, generator=g)  # five views of one image
    w, b = head.group.weight.double(), head.group.bias.double()
    logits = feats.double().mean(0) @ w.T + b
    expected = (logits - logits.max()).exp() / (logits - logits.max()).exp().sum()
    for bias, severity in [(9.0, 5.0), (-3.0, 0.0), (2.5, None)]:  # clipped above, below, not
        head.severity.bias.fill_(bias)
        s = feats.double().mean(0) @ head.severity.weight.double()[0] + bias
        probs, got = explain_views(head.logits(feats), head.severity(feats)[:, 0])
        np.testing.assert_allclose(probs, expected, atol=1e-6)
        assert got == pytest.approx(float(s) if severity is None else severity, abs=1e-5)
        reference = explain_features(head, feats)  # the torch path: the head on the mean feature
        np.testing.assert_allclose(probs, reference[0], atol=1e-6)
        assert got == pytest.approx(reference[1], abs=1e-6)


def test_an_onnx_file_with_a_head_explains_as_its_checkpoint(tmp_path, monkeypatch):
    """`load("model.onnx").explain()` of a file exported with an explanation head said 'this model has no explanation
    head'. Now its outputs explain it as the checkpoint does; a head file given takes precedence (on the embedding)."""
    checkpoint = tiny_checkpoint(tmp_path / "head.safetensors", monkeypatch)
    photos = _photos(tmp_path)
    expected = load(checkpoint, device="cpu", engine="torch", protocol="whole").explain(photos)
    got = load(export(tmp_path / "whole.onnx", checkpoint, protocol="whole"), device="cpu").explain(photos)
    assert got.labels == expected.labels == LABELS
    np.testing.assert_allclose(got.probs, expected.probs, atol=1e-5)
    np.testing.assert_allclose(got.severity, expected.severity, atol=1e-5)
    assert expected.probs.max() < 0.9 and 0 < expected.severity.min() and expected.severity.max() < 5  # not clipped

    # crops: 5 views an image. ONNX Runtime's 222x222-pixel means move this stand-in's features by about 3e-5 from
    # torch's, so the views' rule is checked against the head run on the same file's embedding.
    crops = export(tmp_path / "crops.onnx", checkpoint, protocol="crops", embedding=True)
    own = load(crops, device="cpu").explain(photos)
    on_features = load(crops, device="cpu", explainer=checkpoint)
    assert isinstance(on_features.explainer, Explainer)
    by_head = on_features.explain(photos)
    np.testing.assert_allclose(own.probs, by_head.probs, atol=1e-5)
    np.testing.assert_allclose(own.severity, by_head.severity, atol=1e-5)
    torch_crops = load(checkpoint, device="cpu", engine="torch", protocol="crops").explain(photos)
    np.testing.assert_allclose(own.probs, torch_crops.probs, atol=2e-4)

    other = tiny_explainer(seed=2)  # given as a file, this head explains, not the file's own
    scorer = load(crops, device="cpu", explainer=save_explainer(tmp_path / "other.safetensors", other))
    given = scorer.explain(photos)
    for i, features in enumerate(scorer.features(photos)):
        probs, severity = explain_features(other, features)
        np.testing.assert_allclose(given.probs[i], probs, atol=1e-6)
        assert given.severity[i] == pytest.approx(severity, abs=1e-6)
    assert not torch.allclose(given.probs, own.probs, atol=0.01)


def test_an_onnx_file_knows_the_protocol_of_its_head_and_warns_on_another(tmp_path, monkeypatch):
    # before: the sidecar did not record it, so scoring the file with another --protocol explained without a word
    import warnings

    from arniqa.models.explain import add_to_checkpoint

    plain = tiny_checkpoint(tmp_path / "h.safetensors", monkeypatch).with_name("plain-h.safetensors")
    head = tiny_explainer()
    head.protocol = "whole"  # as `arniqa explain fit --protocol whole` records it
    onnx = export(tmp_path / "m.onnx", add_to_checkpoint(plain, head, tmp_path / "whole.safetensors"), protocol="whole")
    photos = _photos(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(onnx, device="cpu").explain(photos)  # the file's own protocol: the head's
    with pytest.warns(UserWarning, match="fitted on 'whole' features, these come from 'crops'"):
        load(onnx, device="cpu", protocol="crops").explain(photos)


def test_an_explanation_names_its_inputs_and_gives_rows_for_json_and_pandas(tmp_path, monkeypatch):
    """`model.explain(...)` had no `sources` (a generator's or a mixed list's rows could not be paired with their
    inputs) and nothing json or pandas took: now `sources` as a score result's, and `rows()` of plain values."""
    import json

    import pandas as pd

    from arniqa.data.images import ImageError

    model = load(tiny_checkpoint(tmp_path / "head.safetensors", monkeypatch), device="cpu", engine="torch")
    photos = _photos(tmp_path)
    inputs = [photos[0], np.asarray(Image.open(photos[1])), Image.open(photos[2]).convert("L")]
    got = model.explain(iter(inputs))
    assert got.sources == [str(photos[0]), "<input 1>", "<input 2>"]
    rows = json.loads(json.dumps(got.rows()))
    table = pd.DataFrame(got.rows())
    assert list(table.columns) == ["source", "explanation", "severity", *LABELS]
    for i, (item, row) in enumerate(zip(inputs, rows)):
        alone = model.explain(item)  # one at a time: each row is its own input's
        np.testing.assert_allclose([row[label] for label in LABELS], alone.probs[0], atol=1e-6)
        assert row["severity"] == pytest.approx(float(alone.severity[0]), abs=1e-6)
        assert row["explanation"].split()[0] == LABELS[int(alone.probs[0].argmax())]
        assert table.loc[i, "source"] == row["source"]
    np.testing.assert_allclose(table[list(LABELS)].sum(axis=1), 1, atol=1e-5)

    # a file that cannot be read in the middle: explain() raises naming it; iter_scores(explain=True) goes on
    middle = [photos[0], tmp_path / "notes.txt", photos[1]]
    middle[1].write_text("not an image")
    with pytest.raises(ImageError, match="notes.txt: a text file, not an image"):
        model.explain(middle)
    results = list(model.iter_scores(middle, explain=True))
    assert [r.explanation is None for r in results] == [False, True, False] and "a text file" in results[1].error
    np.testing.assert_allclose(results[2].explanation[0], got.probs[1], atol=1e-6)  # photos[1] as its array
