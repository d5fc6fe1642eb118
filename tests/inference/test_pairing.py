"""The check that a regressor file is paired with the encoder it scores with (arniqa.inference.pairing), through
arniqa.load: refused naming both files, a bf16 or fp16 copy of its encoder taken, a file that records no encoder
said."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scoring_data import regressor_file

from arniqa.inference import load


def test_a_regressor_file_fitted_on_another_checkpoint_is_refused_naming_both(photos, tmp_path, monkeypatch):
    """`arniqa score --checkpoint A --regressor R` with R fitted on another encoder's features scored without a
    word (and wrongly). Now it is refused naming both files; R fitted on A loads and scores as A's own regressor;
    a file that records no encoder (a published regressor_<dataset>.pth) loads with a warning that says so."""
    from scoring_data import save_scripted_regressor
    from tiny_arniqa import TinyARNIQA, tiny_checkpoint

    from arniqa.inference.loading import load_model

    a = tiny_checkpoint(tmp_path / "a.safetensors", monkeypatch)
    model, own = load_model(a)
    torch.manual_seed(1)
    other = TinyARNIQA()
    of_b = regressor_file(tmp_path / "of_b.safetensors", own, "checkpoint b.safetensors", other)
    with pytest.raises(ValueError) as refused:
        load(a, device="cpu", engine="torch", regressor=of_b)
    said = str(refused.value)
    assert said.startswith(f"{of_b}: this regressor was fitted on the features of checkpoint b.safetensors, ")
    assert f"not of the checkpoint {a}" in said and f"arniqa evaluate --checkpoint {a}" in said

    of_a = regressor_file(tmp_path / "of_a.safetensors", own, f"checkpoint {a}", model)
    mine = load(a, device="cpu", engine="torch", protocol="whole", regressor=of_a)
    theirs = load(a, device="cpu", engine="torch", protocol="whole")
    np.testing.assert_array_equal(mine.score(photos).raw_scores, theirs.score(photos).raw_scores)

    bare = save_scripted_regressor(tmp_path / "regressor_kadid10k.pth", torch.ones(1, 8), torch.tensor(1.0))
    with pytest.warns(
        UserWarning,
        match=rf"^{re.escape(str(bare))}: the file does not record which encoder .* checkpoint {re.escape(str(a))}",
    ):
        load(a, device="cpu", engine="torch", regressor=bare)


def test_a_regressor_file_pairs_with_a_bf16_or_fp16_copy_of_its_encoder_and_with_no_other(
    photos, tmp_path, monkeypatch, recwarn
):
    """A halved copy of a checkpoint (docs/usage.md's bf16 one; benchmarks/halve_checkpoint.py's fp16 one, its
    projector dropped and restored as a placeholder) has another fingerprint, so a regressor file fitted on the
    original was refused with it (`this regressor was fitted on the features of checkpoint a.safetensors, not of
    the checkpoint bf16.safetensors`), and one fitted on the copy with the original. Now the files also record the
    fingerprints of the encoder rounded to bf16 and to fp16, and pair with such a copy, both ways; an encoder that
    differs in one weight by more than the rounding is refused, as is another. The exact fingerprint, which keys
    the cached features, still tells the copy from the original (its features differ)."""
    import runpy
    import sys

    from tiny_arniqa import TinyARNIQA, tiny_checkpoint

    from arniqa.inference.loading import load_model
    from arniqa.inference.pairing import check_pairing
    from arniqa.models.arniqa import model_fingerprint, rounded_fingerprints
    from arniqa.models.checkpoint import arniqa_metadata, extra_config, load_checkpoint, save_checkpoint
    from arniqa.models.files import read_state_dict

    a = tiny_checkpoint(tmp_path / "a.safetensors", monkeypatch)
    model, own = load_model(a)
    of_a = regressor_file(tmp_path / "of_a.safetensors", own, f"checkpoint {a}", model)
    m, r, c = load_checkpoint(a)  # as docs/usage.md converts one
    [bf16] = save_checkpoint(tmp_path / "bf16.safetensors", m, r, dtype=torch.bfloat16, **extra_config(c))
    halved = tmp_path / "halved.safetensors"
    script = str(Path(__file__).resolve().parents[2] / "benchmarks" / "halve_checkpoint.py")
    monkeypatch.setattr(sys, "argv", [script, str(a), str(halved)])
    runpy.run_path(script, run_name="__main__")  # here, where checkpoints load as TinyARNIQA
    restored = TinyARNIQA()  # as benchmarks/explain_session.sh restores it: a placeholder projector, its config kept
    restored.load_state_dict({**restored.state_dict(), **{k: v.float() for k, v in read_state_dict(halved).items()}})
    [fp16] = save_checkpoint(tmp_path / "fp16.safetensors", restored, own, **extra_config(arniqa_metadata(halved)))

    original = load(a, device="cpu", engine="torch", protocol="whole").score(photos).raw_scores
    of_copies = {}
    for copy in (bf16, fp16):
        encoder, _ = load_model(copy)
        assert model_fingerprint(encoder) != model_fingerprint(model)
        scores = load(copy, device="cpu", engine="torch", protocol="whole", regressor=of_a).score(photos).raw_scores
        np.testing.assert_allclose(scores, original, atol=5e-3)  # the same encoder, rounded (bf16: 2**-8)
        of_copies[copy] = regressor_file(tmp_path / f"of_{copy.name}", own, f"checkpoint {copy}", encoder)
        load(a, device="cpu", engine="torch", regressor=of_copies[copy])
    # the two copies with each other: the fp16 copy's values rounded to bf16 are not the bf16 copy's (nor the
    # other way), so a file fitted on one was refused with the other; the copy records its original's
    assert model_fingerprint(load_model(fp16)[0], "bf16") != model_fingerprint(load_model(bf16)[0], "bf16")
    load(fp16, device="cpu", engine="torch", regressor=of_copies[bf16])
    load(bf16, device="cpu", engine="torch", regressor=of_copies[fp16])
    assert not [w for w in recwarn if "record" in str(w.message)]

    nudged = TinyARNIQA()
    nudged.load_state_dict(model.state_dict())
    with torch.no_grad():
        nudged.conv.weight.view(-1)[0] *= 1 + 2**-5  # one weight, past bf16's rounding (2**-8) and fp16's
    torch.manual_seed(1)
    for other in (nudged, TinyARNIQA()):
        with pytest.raises(ValueError, match=rf"^{re.escape(str(of_a))}: this regressor was fitted on the features"):
            check_pairing(of_a, lambda rounded, other=other: model_fingerprint(other, rounded), Path("b"))
        other.rounded_from = rounded_fingerprints(model)  # claimed by an encoder that is no rounding of it: not taken
        of_other = regressor_file(tmp_path / "of_other.safetensors", own, "checkpoint b", other)
        with pytest.raises(ValueError, match=rf"^{re.escape(str(of_other))}: this regressor was fitted on"):
            load(bf16, device="cpu", engine="torch", regressor=of_other)


def test_a_regressor_file_of_a_checkpoint_is_refused_with_the_published_encoder(published, tmp_path, recwarn):
    """The published encoder with a regressor file fitted on a checkpoint's features was accepted too, by either
    engine; the published regressors and files fitted on the published encoder still load, without a warning."""
    from tiny_arniqa import TinyARNIQA

    d, _, _ = published
    pub = load("arniqa-kadid10k", device="cpu", weights_dir=d, engine="torch")
    of_checkpoint = regressor_file(tmp_path / "of_b.safetensors", pub.regressor, "checkpoint b", TinyARNIQA())
    for engine in ("torch", "onnxruntime"):  # onnxruntime: refused before the encoder is exported
        with pytest.raises(
            ValueError, match=rf"^{re.escape(str(of_checkpoint))}: .* checkpoint b, not of the published encoder"
        ):
            load("arniqa-kadid10k", device="cpu", weights_dir=d, engine=engine, regressor=of_checkpoint)
    of_published = regressor_file(tmp_path / "of_pub.safetensors", pub.regressor, f"published {d}", pub.model)
    for regressor in (of_published, d / "regressor_koniq10k.pth", "live"):
        load("arniqa-kadid10k", device="cpu", weights_dir=d, engine="torch", regressor=regressor)
    assert not [w for w in recwarn if "record" in str(w.message)]
