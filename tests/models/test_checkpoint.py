"""This project's checkpoints: safetensors + JSON config round trip, in parts and bf16, and bad files."""

import csv
import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tiny_arniqa import TinyARNIQA
from typer.testing import CliRunner

import arniqa.cli.score  # noqa: F401  (registers the verb)
from arniqa.cli import EXIT_OK, app
from arniqa.models import ARNIQA, Regressor, WeightsError, checkpoint
from arniqa.models.arniqa import rounded_fingerprints
from arniqa.models.checkpoint import extra_config, load_checkpoint, read_checkpoint_config, save_checkpoint


def _randomise(model, seed):
    """Random weights at a sane scale: timm's random conv init, random BN and linear 1-d tensors."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point() and t.ndim == 1:
                noise = torch.rand(t.shape, generator=g)
                t.copy_(0.5 + noise if name.endswith(("running_var", "weight")) else 0.2 * (noise - 0.5))


def test_round_trip_se_model_with_regressor(tmp_path):
    torch.manual_seed(0)
    model = ARNIQA("se_resnet50", se_stages=(2, 3), se_bias=False)
    _randomise(model, 0)
    reg = Regressor.from_numpy(torch.randn(4096).numpy(), 0.5, dataset="csiq")
    [path] = save_checkpoint(tmp_path / "sub" / "model.safetensors", model, reg, step=1200, note="demo")
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.safetensors"]  # no temp file left

    loaded, loaded_reg, config = load_checkpoint(path)
    assert config["backbone"] == "se_resnet50"
    assert config["backbone_options"] == {"se_stages": [2, 3], "se_bias": False}
    assert config["regressor"] == {"dataset": "csiq", "score_range": [0.0, 1.0, "dmos"], "in_features": 4096}
    assert config["step"] == 1200 and config["note"] == "demo"
    assert not loaded.training
    assert loaded.backbone_options["se_stages"] == (2, 3)
    original = model.state_dict()
    assert loaded.state_dict().keys() == original.keys()
    assert all(torch.equal(v, original[k]) for k, v in loaded.state_dict().items())

    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        q, q_loaded = model.quality_features(x, x[..., ::2, ::2]), loaded.quality_features(x, x[..., ::2, ::2])
        assert torch.equal(q, q_loaded)
        assert torch.equal(reg(q), loaded_reg(q_loaded))
    assert loaded_reg.scale(0.25) == pytest.approx(0.75)


def test_round_trip_without_regressor(tmp_path):
    model = ARNIQA("resnet50")
    [path] = save_checkpoint(tmp_path / "plain.safetensors", model)
    loaded, reg, config = load_checkpoint(path)
    assert reg is None and config["regressor"] is None and config["backbone_options"] == {}
    assert read_checkpoint_config(path) == config


def test_unserialisable_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_checkpoint(tmp_path / "x.safetensors", ARNIQA("resnet50"), extra=object())
    with pytest.raises(ValueError, match=r"\['backbone'\] are reserved"):
        save_checkpoint(tmp_path / "x.safetensors", ARNIQA("resnet50"), backbone="vgg")
    assert not list(tmp_path.iterdir())


def test_bad_checkpoints(tmp_path):
    with pytest.raises(WeightsError, match="absent.safetensors: no such checkpoint file; check the path of the "):
        load_checkpoint(tmp_path / "absent.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(WeightsError) as e:  # it named the problem alone
        load_checkpoint(junk)
    assert re.fullmatch(
        re.escape(f"{junk}: not a safetensors checkpoint (")
        + r".+"
        + re.escape("); copy or download it again, or give a .safetensors file arniqa wrote"),
        str(e.value),
    )
    published = tmp_path / "ARNIQA.pth"  # the published encoder's format, given where a checkpoint goes
    torch.save({"a": torch.zeros(2)}, published)
    with pytest.raises(WeightsError, match="ARNIQA.pth: a PyTorch pickle.*--weights-dir"):
        load_checkpoint(published)
    onnx = (
        tmp_path / "model.onnx"
    )  # `arniqa export`'s file given to `evaluate --checkpoint`: it said "header too large"
    onnx.write_bytes(b"\x08\x08\x12\x07pytorch" + bytes(64))  # how an ONNX protobuf starts
    with pytest.raises(WeightsError, match="model.onnx: an ONNX file, not a checkpoint of this project; give the"):
        load_checkpoint(onnx)
    bare = tmp_path / "bare.safetensors"
    save_file({"a": torch.zeros(2)}, str(bare))
    with pytest.raises(WeightsError, match="bare.safetensors: safetensors file without an arniqa config"):
        load_checkpoint(bare)
    # Tensors of a resnet50 under a config that says se_resnet50: the SE keys are missing.
    model = ARNIQA("resnet50")
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    config = {"format": "arniqa-checkpoint", "version": 1, "backbone": "se_resnet50", "backbone_options": {}}
    mismatch = tmp_path / "mismatch.safetensors"
    save_file(tensors, str(mismatch), metadata={"arniqa": json.dumps(config)})
    expected = r"mismatch.safetensors: does not fit the model; missing 64 keys: encoder.layer1.0.se"
    with pytest.raises(WeightsError, match=expected):
        load_checkpoint(mismatch)
    extra = tmp_path / "extra.safetensors"  # one tensor more than the model has
    save_file(
        {**tensors, "extra": torch.zeros(1)},
        str(extra),
        metadata={"arniqa": json.dumps(config | {"backbone": "resnet50"})},
    )
    with pytest.raises(WeightsError, match=r"extra.safetensors: does not fit the model; unexpected 1 key: extra$"):
        load_checkpoint(extra)
    unknown = tmp_path / "unknown.safetensors"
    save_file(tensors, str(unknown), metadata={"arniqa": json.dumps({**config, "backbone": "vgg16"})})
    with pytest.raises(WeightsError) as e:  # a newer arniqa's backbone, or an edit: it named the problem alone
        load_checkpoint(unknown)
    assert str(e.value) == (
        f"{unknown}: cannot rebuild the model from its config (unknown backbone 'vgg16'; expected one of ('resnet50', "
        "'se_resnet50')); upgrade arniqa if a newer one wrote it, else the file is damaged or was edited"
    )


@pytest.mark.parametrize(
    "config, problem",
    [
        ([1, 2], "its arniqa config is a JSON list, not an object"),
        ("resnet50", "its arniqa config is a JSON str, not an object"),
        ({"backbone_options": [1, 2]}, "cannot rebuild the model from its config (cannot convert"),
        ({"backbone_options": {"se_stages": 5}}, "cannot rebuild the model from its config ('int' object"),
        ({"regressor": [1]}, "cannot rebuild the regressor from its config (a list, not an object)"),
    ],
    ids=["a list", "a string", "options a list", "se_stages a number", "regressor a list"],
)
def test_a_config_of_the_wrong_shape_is_one_error_naming_the_file(tmp_path, config, problem):
    """A checkpoint whose arniqa config was JSON of another shape (a list, a string, options or regressor not
    objects) was an AttributeError or TypeError traceback from `arniqa score --checkpoint` (exit 1)."""
    if isinstance(config, dict):
        config = {"format": "arniqa-checkpoint", "version": 1, "backbone": "resnet50", **config}
    path = tmp_path / "edited.safetensors"
    save_file({"a": torch.zeros(2)}, str(path), metadata={"arniqa": json.dumps(config)})
    read = checkpoint.load_checkpoint_regressor if "regressor" in problem else load_checkpoint  # the encoder: not read
    with pytest.raises(WeightsError, match=re.escape(f"{path}: {problem}")):
        read(path)


@pytest.fixture
def tiny(monkeypatch):
    """A TinyARNIQA with random weights and an 8-d regressor; checkpoints rebuild ``tiny`` as TinyARNIQA."""
    real = checkpoint.ARNIQA
    monkeypatch.setattr(checkpoint, "ARNIQA", lambda name, **o: TinyARNIQA() if name == "tiny" else real(name, **o))
    torch.manual_seed(0)
    model = TinyARNIQA().eval()
    reg = Regressor.from_numpy(torch.randn(8).numpy(), 0.3, dataset="csiq")
    return model, reg


def _bf16(module):
    """The module's tensors as bf16 storage gives them back: floating ones rounded to bf16."""
    return {k: v.to(torch.bfloat16).float() if v.is_floating_point() else v for k, v in module.state_dict().items()}


def _config(path):
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["arniqa"])


def _equal(state, expected):
    return state.keys() == expected.keys() and all(torch.equal(v, expected[k]) for k, v in state.items())


def test_convert_to_bf16_parts_and_load_them_back(tiny, tmp_path):
    model, reg = tiny
    [single] = save_checkpoint(tmp_path / "model.safetensors", model, reg, step=7, note="demo")
    m, r, config = load_checkpoint(single)
    assert config["dtype"] == "float32"
    bound = 1000  # the header holds the original's rounded fingerprints (rounded_from)
    files = save_checkpoint(
        tmp_path / "parts" / "model.safetensors",
        m,
        r,
        dtype=torch.bfloat16,
        max_part_bytes=bound,
        **extra_config(config),
    )
    n = len(files)
    assert n > 1
    assert files == [tmp_path / "parts" / f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    assert sorted((tmp_path / "parts").iterdir()) == files  # no temporary file left
    assert all(os.path.getsize(f) <= bound for f in files)

    order = [*model.state_dict(), "regressor.weight", "regressor.bias"]
    stored = [load_file(str(f)) for f in files]
    assert [k for part in stored for k in order if k in part] == order  # every tensor once, in order
    assert all(t.dtype == torch.bfloat16 for part in stored for t in part.values())
    part_set = _config(files[0])["part_set"]
    assert len(part_set) == 16 and int(part_set, 16) >= 0  # 8 random bytes in hex, one per save
    config = {**config, "rounded_from": rounded_fingerprints(m)}  # what a copy pairs through (arniqa.models.arniqa)
    for i, f in enumerate(files, 1):
        assert _config(f) == {**config, "dtype": "bfloat16", "part": i, "parts": n, "part_set": part_set}

    expected, expected_reg = _bf16(model), _bf16(reg)
    for name in (files[0], files[-1], tmp_path / "parts"):
        loaded, loaded_reg, loaded_config = load_checkpoint(name)
        assert _equal(loaded.state_dict(), expected) and _equal(loaded_reg.state_dict(), expected_reg)
        assert all(t.dtype == torch.float32 for t in loaded.state_dict().values())
        assert loaded_config == {**config, "dtype": "bfloat16"}
        assert loaded_config["step"] == 7 and loaded_config["note"] == "demo"
        assert read_checkpoint_config(name) == loaded_config
    # A single bf16 file holds the same values.
    [one] = save_checkpoint(tmp_path / "one" / "model.safetensors", model, reg, dtype=torch.bfloat16)
    loaded, loaded_reg, _ = load_checkpoint(tmp_path / "one")
    assert one.name == "model.safetensors"
    assert _equal(loaded.state_dict(), expected) and _equal(loaded_reg.state_dict(), expected_reg)


def test_parts_of_two_saves_of_one_config_do_not_load_as_one(tiny, tmp_path):
    # before: parts were matched by their config only, so part 2 of a later save of the same model (a crash
    # between the renames of a save, a copy over an older set) loaded with the other parts, a silent mix
    model, reg = tiny
    parts = dict(dtype=torch.bfloat16, max_part_bytes=1000, step=1)
    first = save_checkpoint(tmp_path / "m.safetensors", model, reg, **parts)
    kept = tmp_path / "kept"
    kept.mkdir()
    for f in first:
        shutil.copy(f, kept / f.name)
    again = save_checkpoint(tmp_path / "m.safetensors", model, reg, **parts)  # the same weights and config
    shutil.copy(again[1], kept / again[1].name)
    with pytest.raises(WeightsError, match=f"{again[1].name}: a part of another save than {first[0].name}"):
        load_checkpoint(kept)
    with torch.no_grad():
        model.conv.weight.add_(1.0)  # other weights: their rounded fingerprints (rounded_from) differ too
    second = save_checkpoint(tmp_path / "m.safetensors", model, reg, **parts)
    assert [f.name for f in second] == [f.name for f in first] and len(first) > 2
    shutil.copy(second[1], kept / second[1].name)
    with pytest.raises(WeightsError, match=f"{second[1].name}: its config differs .* of different checkpoints"):
        load_checkpoint(kept)
    loaded, _, _ = load_checkpoint(tmp_path)  # a whole set loads, with the weights it was saved with
    assert torch.equal(loaded.conv.weight, _bf16(model)["conv.weight"])


def test_a_tensor_larger_than_a_part_is_refused(tiny, tmp_path):
    model, reg = tiny
    with pytest.raises(WeightsError, match=r"model.safetensors: tensor conv.weight \(\d+ bytes\) does not fit"):
        save_checkpoint(tmp_path / "model.safetensors", model, reg, max_part_bytes=600)
    assert not list(tmp_path.iterdir())


class _SmallThenLarge(torch.nn.Module):
    """A model whose first tensor is the smaller: 4 float32 values, then 400 (1,600 bytes)."""

    config = {"backbone": "tiny", "backbone_options": {}}

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(2, 2, bias=False)
        self.b = torch.nn.Linear(20, 20, bias=False)


def test_the_max_part_bytes_a_refused_save_names_is_enough(tmp_path):
    """The line named the first tensor that did not fit and the bound it needed; with that bound the save was
    refused again for a larger tensor after it (a ResNet50's first layer, 37 KB, then its 4 MB ones)."""
    model = _SmallThenLarge()
    with pytest.raises(WeightsError) as e:
        save_checkpoint(tmp_path / "m.safetensors", model, max_part_bytes=300)
    line = re.fullmatch(
        re.escape(f"{tmp_path / 'm.safetensors'}: tensor b.weight (")
        + r"(\d+)"
        + re.escape(" bytes) does not fit in a part of 300 bytes; pass max_part_bytes=")
        + r"(\d+)"
        + re.escape(" or more"),
        str(e.value),
    )
    assert line and 1600 < int(line[1]) < int(line[2])  # the tensor's bytes and its header entry; a part's header
    enough = int(line[2])
    files = save_checkpoint(tmp_path / "m.safetensors", model, max_part_bytes=enough)
    assert all(f.stat().st_size <= enough for f in files)
    loaded = {}
    for f in files:
        loaded |= load_file(str(f))
    assert torch.equal(loaded["b.weight"], model.b.weight) and torch.equal(loaded["a.weight"], model.a.weight)


def test_a_damaged_or_edited_regressor_config_says_so(tmp_path):
    """A config that is no JSON, regressor tensors with no regressor config, and a regressor config that is not an
    object or cannot build one were named with their problem alone."""
    path = tmp_path / "edited.safetensors"
    head = {"format": "arniqa-checkpoint", "version": 1, "backbone": "resnet50"}
    regressor = {"regressor.weight": torch.zeros(1, 4096), "regressor.bias": torch.zeros(1)}
    edited = "; the file is damaged or was edited"
    for config, tensors, problem in [
        (
            "{not json",
            {"a": torch.zeros(2)},
            "unreadable arniqa config (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        ),
        (json.dumps(head | {"regressor": None}), regressor, "regressor tensors without a regressor config"),
        (
            json.dumps(head | {"regressor": [1]}),
            {"a": torch.zeros(2)},
            "cannot rebuild the regressor from its config (a list, not an object)",
        ),
        (
            json.dumps(head | {"regressor": {"dataset": "kadid10k", "score_range": [1, None, "mos"]}}),
            regressor,
            "cannot rebuild the regressor from its config (float() argument must be a string or a real number, not "
            "'NoneType')",
        ),
    ]:
        save_file(tensors, str(path), metadata={"arniqa": config})
        with pytest.raises(WeightsError) as e:
            checkpoint.load_checkpoint_regressor(path)
        assert str(e.value) == f"{path}: {problem}{edited}"


def test_missing_extra_and_mismatched_parts(tiny, tmp_path):
    model, reg = tiny
    files = save_checkpoint(tmp_path / "a" / "m.safetensors", model, reg, dtype=torch.bfloat16, max_part_bytes=1000)
    n = len(files)
    of = f"of-{n:05d}.safetensors"
    other = save_checkpoint(
        tmp_path / "b" / "m.safetensors", model, reg, dtype=torch.bfloat16, max_part_bytes=1000, step=1
    )
    assert len(other) == n

    files[1].rename(tmp_path / "moved")
    for name in (files[0], tmp_path / "a"):
        # before: missing parts and extra ones said nothing to do (here and below)
        said = f"m-00001-{of}: missing 1 of its {n} parts: m-00002-{of}; put all its parts in one folder"
        with pytest.raises(WeightsError, match=said):
            load_checkpoint(name)
    (tmp_path / "moved").rename(files[1])

    extra = tmp_path / "a" / f"m-{n + 1:05d}-{of}"
    shutil.copy(files[0], extra)
    with pytest.raises(WeightsError, match=f"m-00001-{of}: parts beyond its {n}: m-{n + 1:05d}-{of}; move them out"):
        read_checkpoint_config(files[0])
    extra.unlink()

    shutil.copy(other[1], files[1])  # a part of a checkpoint with another config
    with pytest.raises(WeightsError, match=f"m-00002-{of}: its config differs from that of m-00001-{of}"):
        load_checkpoint(tmp_path / "a")
    shutil.copy(other[0], files[1])  # a part with the wrong number
    expected = f"m-00002-{of}: its config says part 1 of {n}, its file name part 2 of {n}"
    with pytest.raises(WeightsError, match=expected):
        read_checkpoint_config(files[0])
    alone = tmp_path / "alone.safetensors"  # one part renamed as a whole checkpoint
    shutil.copy(other[0], alone)
    with pytest.raises(WeightsError, match=f"alone.safetensors: its config says part 1 of {n}, its file name a whole"):
        load_checkpoint(alone)
    shutil.copy(files[0], tmp_path / "b" / "m.safetensors")  # a folder with a file and a set of parts
    with pytest.raises(WeightsError) as e:
        load_checkpoint(tmp_path / "b")
    said = f"a folder with 2 checkpoints, not one (m-*-{of}, m.safetensors); give the path of one of them"
    assert str(e.value) == f"{tmp_path / 'b'}: {said}"
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError) as e:
        load_checkpoint(tmp_path / "empty")
    said = (
        "a folder with 0 checkpoints, not one (no .safetensors file); give the .safetensors file, a part or their "
        "folder that arniqa train or evaluate wrote"
    )
    assert str(e.value) == f"{tmp_path / 'empty'}: {said}"
    with pytest.raises(WeightsError, match=f"absent-00001-{of}: no such checkpoint file"):
        load_checkpoint(tmp_path / "a" / f"absent-00001-{of}")


def test_score_with_bf16_parts_gives_the_rows_of_the_bf16_file(photos, tmp_path):
    torch.manual_seed(0)
    model = ARNIQA("resnet50")
    _randomise(model, 0)
    reg = Regressor.from_numpy(torch.randn(4096).numpy(), 0.5, dataset="kadid10k")
    bound = 15 * 2**20
    [single] = save_checkpoint(tmp_path / "single" / "model.safetensors", model, reg, dtype=torch.bfloat16)
    parts = save_checkpoint(
        tmp_path / "parts" / "model.safetensors", model, reg, dtype=torch.bfloat16, max_part_bytes=bound
    )
    assert len(parts) > 1 and all(os.path.getsize(f) <= bound for f in parts)

    rows = []
    for i, name in enumerate((single, parts[0], tmp_path / "parts")):
        out = tmp_path / f"scores{i}.csv"
        args = [
            "score",
            *map(str, photos),
            "--checkpoint",
            str(name),
            "--engine",
            "torch",
            "--device",
            "cpu",
            "--protocol",
            "whole",
            "-o",
            str(out),
        ]
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == EXIT_OK
        rows.append(list(csv.DictReader(out.open())))
    assert len(rows[0]) == len(photos) and all(row["error"] == "" for row in rows[0])
    assert rows[1] == rows[0] and rows[2] == rows[0]


def test_a_folder_named_as_a_model_is_not_a_checkpoint(tmp_path, monkeypatch):
    from arniqa.models.registry import is_checkpoint

    monkeypatch.chdir(tmp_path)
    (tmp_path / "arniqa").mkdir()
    assert not is_checkpoint("arniqa") and is_checkpoint(tmp_path / "arniqa")
    assert is_checkpoint("absent-00001-of-00002.safetensors") and not is_checkpoint("arniqa-live")


@pytest.mark.parametrize(
    "regressor, message",
    [
        ({"dataset": "kadid10k", "in_features": 10**11}, r"regressor.weight is \(1, 4096\), its config says \(1, 1000"),
        (
            {"dataset": "kadid10k", "in_features": "4096"},
            r"regressor.weight is \(1, 4096\), its config says \(1, '4096'",
        ),
        ({"dataset": "kadid10k", "score_range": ["a", None, "mos"]}, "cannot rebuild the regressor from its config"),
    ],
)
def test_a_regressor_config_cannot_make_us_allocate_what_the_file_does_not_hold(tmp_path, regressor, message):
    """A config declaring 10^11 features made the load try to allocate 400 GB (a RuntimeError, or memory taken
    where the system overcommits); the tensors in the file are checked against the config first."""
    model = ARNIQA("resnet50")
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors |= {"regressor.weight": torch.zeros(1, 4096), "regressor.bias": torch.zeros(1)}
    config = {"format": "arniqa-checkpoint", "version": 1, "backbone": "resnet50", "regressor": regressor}
    save_file(tensors, str(tmp_path / "edited.safetensors"), metadata={"arniqa": json.dumps(config)})
    with pytest.raises(WeightsError, match=f"edited.safetensors: {message}"):
        load_checkpoint(tmp_path / "edited.safetensors")


PARTS_ON_A_FULL_DISK = """
import resource, signal, sys, torch
from arniqa.models.checkpoint import save_checkpoint

class Model(torch.nn.Module):  # two small tensors, then a large one: a small part 1, a large part 2
    config = {"backbone": "tiny", "backbone_options": {}}

    def __init__(self, value):
        super().__init__()
        self.a, self.b = torch.nn.Parameter(torch.full((8,), value)), torch.nn.Parameter(torch.full((8,), value))
        self.c = torch.nn.Parameter(torch.full((2048,), value))

save_checkpoint(sys.argv[1], Model(1.0), max_part_bytes=8700)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # part 1 fits, part 2 does not: a full disk
save_checkpoint(sys.argv[1], Model(2.0), max_part_bytes=8700)
"""


def test_parts_on_a_full_disk_are_all_new_or_all_as_they_were(tmp_path):
    """Before, part 1 was replaced and part 2 was not: a set of two checkpoints' parts that loads (the same config),
    and the error was safetensors' ``I/O error``. Now every part is as it was and the OSError names part 2."""
    path = tmp_path / "m.safetensors"
    env = {**os.environ, "PYTHONPATH": str(Path(checkpoint.__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", PARTS_ON_A_FULL_DISK, path], capture_output=True, text=True, env=env)
    files = [tmp_path / f"m-0000{i}-of-00002.safetensors" for i in (1, 2)]
    assert done.stderr.strip().splitlines()[-1] == f"OSError: [Errno {errno.EFBIG}] File too large: '{files[1]}'"
    assert sorted(tmp_path.iterdir()) == files and os.path.getsize(files[0]) < 4096 < os.path.getsize(files[1])
    assert [sorted(load_file(str(f))) for f in files] == [["a", "b"], ["c"]]
    assert all(torch.equal(t, torch.ones_like(t)) for f in files for t in load_file(str(f)).values())


def test_a_part_name_saying_a_billion_parts_is_answered_from_the_files_there(tiny, tmp_path):
    """`m-00001-of-1000000000.safetensors`: every part's path was listed first (a MemoryError after 37 s and
    1.7 GB); now only the files on disk are, and the missing count is the difference."""
    model, reg = tiny
    (whole,) = save_checkpoint(tmp_path / "m.safetensors", model, reg)
    claim = tmp_path / "m-00001-of-1000000000.safetensors"
    whole.rename(claim)
    (tmp_path / "m-00003-of-1000000000.safetensors").write_bytes(claim.read_bytes())
    (tmp_path / "m-000004-of-1000000000.safetensors").write_bytes(b"")  # of the set by its name, not a part of it
    names = ", ".join(f"m-{i:05d}-of-1000000000.safetensors" for i in (2, 4, 5, 6, 7))
    with pytest.raises(
        WeightsError, match=re.escape(f"{claim}: missing 999999998 of its 1000000000 parts: {names} ...")
    ):
        read_checkpoint_config(claim)


def test_a_safetensors_header_over_the_bound_is_refused_before_safetensors_reads_it(tiny, tmp_path):
    """A 67 MB header of a million empty tensors took 930 MB to open (the checkpoint's config) and 2 GB to read;
    loading it as a checkpoint ran the Rust allocator out of memory (an abort, under a 2.5 GB limit)."""
    import struct

    from arniqa.models.explain import load_explainer
    from arniqa.models.files import MAX_HEADER, read_state_dict

    model, reg = tiny
    (path,) = save_checkpoint(tmp_path / "m.safetensors", model, reg)
    size = struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert size < 40_000  # this project's files: a few KB (a ResNet50's about 30 KB)
    tensors = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(MAX_HEADER // 50)}
    header = json.dumps({"__metadata__": {"arniqa": json.dumps({"format": "arniqa-checkpoint"})}, **tensors})
    crafted = tmp_path / "crafted.safetensors"
    crafted.write_bytes(struct.pack("<Q", len(header)) + header.encode())
    assert len(header) > MAX_HEADER and safe_open(str(crafted), framework="pt").metadata()  # safetensors reads it
    problem = f"its header would be {len(header):,} bytes, more than the 4,194,304 of a model's file"
    for read in (load_checkpoint, read_checkpoint_config, load_explainer):
        with pytest.raises(WeightsError, match=re.escape(f"{crafted}: not a safetensors checkpoint ({problem})")):
            read(crafted)
    with pytest.raises(WeightsError, match=re.escape(f"{crafted}: not a readable safetensors file ({problem})")):
        read_state_dict(crafted)


def test_a_training_state_given_as_checkpoint_names_the_runs_model(tmp_path):
    """`arniqa evaluate/score --checkpoint runs/x/state.pt` said it was a pickle and pointed to the published
    ARNIQA weights' --weights-dir; it is the run's resumable state, and the line names the run's model file."""
    state = tmp_path / "run" / "state.pt"
    state.parent.mkdir()
    torch.save({"model": {"w": torch.zeros(2)}, "optimizer": {}, "epoch": 1}, state)
    with pytest.raises(WeightsError) as err:
        load_checkpoint(state)
    assert str(err.value) == (
        f"{state}: the resumable state of an `arniqa train` run, not a checkpoint; give the run's model: "
        f"{tmp_path / 'run' / 'model.safetensors'}"
    )
