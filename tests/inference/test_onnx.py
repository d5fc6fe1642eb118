"""ONNX export and the onnxruntime engine, against the plain PyTorch reference (torchvision ResNet50 and the
TorchScript regressor of the published files, random values) and against the torch engine's rows."""

import csv
import errno
import io
import json
import os
import re

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from faults import full_disk_for_text
from PIL import Image
from typer.testing import CliRunner

import arniqa.cli.export  # noqa: F401  (registers the verbs)
import arniqa.cli.score  # noqa: F401
from arniqa.cli import app
from arniqa.constants import EXIT_INTERRUPTED
from arniqa.data.views import get_protocol
from arniqa.inference import load
from arniqa.inference.onnx_export import sidecar
from arniqa.models import Regressor

MEAN = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
STD = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
TOL = 1e-4


@pytest.fixture(scope="module")
def exported(export_published, tmp_path_factory):
    """``arniqa export --embedding`` of the published-layout KADID-10k model."""
    out = tmp_path_factory.mktemp("onnx") / "arniqa-kadid.onnx"
    return export_published(out, "--embedding", "--protocol", "pyiqa")


@torch.no_grad()
def _reference(encoder, regressor, full, half):
    """Raw score and 4096-d feature written out plainly: ImageNet normalisation, ResNet50, L2, [full, half]."""
    f = F.normalize(encoder((full - MEAN) / STD).flatten(1), dim=1)
    fd = F.normalize(encoder((half - MEAN) / STD).flatten(1), dim=1)
    feat = torch.hstack((f, fd))
    return regressor(feat), feat


@pytest.mark.parametrize("n,h,w", [(1, 64, 80), (3, 224, 224)])
def test_onnx_file_matches_pytorch(published, exported, n, h, w):
    _, encoder, regs = published
    g = torch.Generator().manual_seed(n)
    full = torch.rand(n, 3, h, w, generator=g)
    half = torch.rand(n, 3, h // 2, w // 2, generator=g)
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    score, raw, emb = session.run(["score", "raw_score", "embedding"], {"full": full.numpy(), "half": half.numpy()})
    ref_raw, ref_feat = _reference(encoder, regs["kadid10k"], full, half)
    assert score.shape == raw.shape == (n,) and emb.shape == (n, 4096)
    np.testing.assert_allclose(score, (ref_raw.numpy() - 1) / 4, atol=TOL, rtol=0)  # KADID-10k MOS (1, 5)
    np.testing.assert_allclose(raw, ref_raw.numpy(), atol=4 * TOL, rtol=0)
    np.testing.assert_allclose(emb, ref_feat.numpy(), atol=1e-5, rtol=0)


def test_sidecar_says_protocol_range_and_direction(exported):
    meta = json.loads(exported.with_name(exported.name + ".json").read_text())
    assert meta["protocol"] == "pyiqa" and meta["dataset"] == "kadid10k"
    assert meta["score_range"] == [1.0, 5.0, "mos"] and meta["raw_score_direction"] == "higher is better"
    assert meta["outputs"] == ["score", "raw_score", "embedding"]


def test_sidecar_of_a_dmos_regressor():
    meta = sidecar(Regressor("live"), get_protocol("crops"), embedding=False, backbone="resnet50")
    assert meta["score_range"] == [1.0, 100.0, "dmos"] and meta["raw_score_direction"] == "lower is better"
    assert meta["outputs"] == ["score", "raw_score"] and meta["views_per_image"] == 5


def _rows(output: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(output)))


def test_engine_rows_equal_torch_rows(published, exported, photos, tmp_path):
    d, _, _ = published
    folder = tmp_path / "imgs"
    folder.mkdir()
    for p in photos:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    runner = CliRunner()
    common = ["score", str(folder), "--protocol", "pyiqa", "--batch-size", "2"]
    torch_res = runner.invoke(app, common + ["--weights-dir", str(d), "--engine", "torch"])
    ort_res = runner.invoke(app, common + ["--checkpoint", str(exported), "--engine", "onnxruntime"])
    assert torch_res.exit_code == ort_res.exit_code == 1  # the broken file
    a, b = _rows(torch_res.stdout), _rows(ort_res.stdout)
    assert [r["path"] for r in a] == [r["path"] for r in b] and len(a) == 4
    assert [r["error"] for r in a] == [r["error"] for r in b]
    assert [bool(r["error"]) for r in a] == ["broken.png" in r["path"] for r in a]  # sorted: a, b, broken, c
    for ra, rb in zip(a, b):
        if ra["error"]:
            assert ra["score"] == rb["score"] == ""
            continue
        assert abs(float(ra["score"]) - float(rb["score"])) <= TOL
        assert abs(float(ra["raw_score"]) - float(rb["raw_score"])) <= 4 * TOL


def test_an_onnx_file_is_scored_in_the_protocol_it_was_exported_for(published, exported, photos):
    """``exported`` records pyiqa: scoring it without a protocol gave the crops rows (scores of other views);
    now its own, as the torch engine gives them in pyiqa, through load() and arniqa score; a protocol asked for wins."""
    d, _, _ = published
    torch_rows = {
        name: load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol=name, engine="torch").score(photos).scores
        for name in ("pyiqa", "crops")
    }
    assert (torch_rows["pyiqa"] - torch_rows["crops"]).abs().min() > 10 * TOL  # the two protocols can be told apart
    for options, expected in (({}, "pyiqa"), ({"protocol": "crops"}, "crops")):
        scores = load(exported, device="cpu", **options).score(photos).scores
        assert torch.allclose(scores, torch_rows[expected], atol=TOL, rtol=0), options
    result = CliRunner().invoke(app, ["score", *map(str, photos), "--checkpoint", str(exported)])
    assert result.exit_code == 0, result.output
    cli = torch.tensor([float(row["score"]) for row in _rows(result.stdout)])
    assert torch.allclose(cli, torch_rows["pyiqa"], atol=TOL, rtol=0)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """A cache folder shared by this module's tests that ask for ``encoder_cache``."""
    return tmp_path_factory.mktemp("encoder-cache")


@pytest.fixture
def encoder_cache(shared_cache, monkeypatch):
    """ARNIQA_CACHE for this test: a cache empty until :func:`test_engine_exports_on_the_fly_into_the_cache` exports
    the published encoder into it; later tests reuse that export (a ResNet50's: seconds)."""
    monkeypatch.setenv("ARNIQA_CACHE", str(shared_cache))
    return shared_cache


def test_engine_exports_on_the_fly_into_the_cache(published, photos, encoder_cache):
    d, _, _ = published
    assert not (encoder_cache / "onnx").exists()  # the first test on this cache
    ref = load("arniqa-koniq10k", device="cpu", weights_dir=d, protocol="crops", engine="torch")
    mine = load("arniqa-koniq10k", device="cpu", weights_dir=d, protocol="crops", engine="onnxruntime")
    cached = list((encoder_cache / "onnx").glob("*.onnx"))
    assert len(cached) == 1 and mine.engine.path == cached[0]
    assert [o.name for o in mine.engine.session.get_outputs()] == ["embedding"]  # the regressor runs in torch
    a = ref.score(photos, return_features=True)
    b = mine.score(photos, return_features=True)
    assert torch.allclose(a.scores, b.scores, atol=TOL, rtol=0)
    assert torch.allclose(a.features, b.features, atol=1e-5, rtol=0) and b.features.shape == (3, 5, 4096)
    other = load("arniqa-live", device="cpu", weights_dir=d, protocol="crops", engine="onnxruntime")
    assert other.engine.path == cached[0]  # same encoder, other regressor: the cached file is reused
    assert torch.allclose(
        other.score(photos[0]).scores,
        load("arniqa-live", device="cpu", weights_dir=d, engine="torch").score(photos[0]).scores,
        atol=TOL,
        rtol=0,
    )


def test_a_scorer_on_onnx_runtime_names_its_backbone(tmp_path, monkeypatch):
    """repr(load(...)) said backbone=None on ONNX Runtime, the CPU's default engine, for an ONNX file, a checkpoint
    and a published model alike."""
    from tiny_arniqa import tiny_checkpoint, tiny_onnx

    _, _, model = tiny_onnx(tmp_path / "tiny.onnx")
    assert "Scorer(backbone='tiny', regressor='kadid10k'," in repr(load(model))
    checkpoint = tiny_checkpoint(tmp_path / "m.safetensors", monkeypatch)
    for engine in ("onnxruntime", "torch"):
        assert repr(load(checkpoint, device="cpu", engine=engine)).startswith("Scorer(backbone='tiny',")


def test_weights_dir_with_an_onnx_file(tmp_path):
    with pytest.raises(ValueError) as e:
        load(tmp_path / "m.onnx", weights_dir=tmp_path)
    assert str(e.value) == (
        f"{tmp_path / 'm.onnx'}: weights_dir is for the published model, not an ONNX file; drop weights_dir: the ONNX "
        "file holds its weights"
    )


def test_engine_errors(published, exported, tmp_path):
    d, _, _ = published
    with pytest.raises(ValueError, match="an ONNX file runs on ONNX Runtime, not engine='torch'"):
        load(exported, device="cpu", engine="torch")
    with pytest.raises(ValueError, match="part of the ONNX file"):
        load(exported, device="cpu", engine="onnxruntime", regressor="live")
    with pytest.raises(ValueError, match="torch engine"):
        load(exported, device="cpu", engine="onnxruntime", precision="bf16")
    with pytest.raises(ValueError, match="engine must be"):
        load("arniqa-kadid10k", device="cpu", weights_dir=d, engine="tensorrt")
    for device in ("tpu", "mps"):  # they ran on the CPU without a word
        with pytest.raises(ValueError, match=f"device '{device}': ONNX Runtime runs on cpu or cuda"):
            load(exported, device=device)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    res = CliRunner().invoke(app, ["score", str(exported), "--checkpoint", str(bad), "--engine", "onnxruntime"])
    assert res.exit_code == 2 and "bad.onnx" in res.output
    res = CliRunner().invoke(app, ["export", "-o", str(tmp_path / "x.pt"), "--weights-dir", str(d)])
    assert res.exit_code == 2 and ".onnx" in res.output


def test_cuda_needs_onnxruntime_cuda_and_gets_the_gpu_it_names(published, exported, tmp_path, monkeypatch):
    """CUDA asked of an onnxruntime without its CUDA provider (the wheel in the dependencies is CPU-only) ran on
    the CPU without a word, and cuda:1 ran on GPU 0. Now: refused in one line (exit 2), before a model is exported,
    and the GPU named."""
    import arniqa.inference.engines as engines

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    for device in ("cuda", "cuda:1", torch.device("cuda", 0)):
        with pytest.raises(ValueError, match=r"no CUDA provider; pip install onnxruntime-gpu, or choose --device cpu"):
            load(exported, device=device)
    with monkeypatch.context() as gpu_host:  # torch's CUDA there; no export may begin
        gpu_host.setattr(torch.cuda, "is_available", lambda: True)
        for name in ("cached_export", "cached_onnx"):
            gpu_host.setattr(engines, name, lambda *args: pytest.fail("exported before the device was refused"))
        for options in ({"engine": "onnxruntime"}, {"precision": "int8"}):
            with pytest.raises(ValueError, match=r"device 'cuda': the installed onnxruntime has no CUDA provider"):
                load("arniqa-kadid10k", device="cuda", weights_dir=published[0], **options)
    with monkeypatch.context() as gpu_host:  # auto there: torch's CUDA, ONNX Runtime's CPU (a checkpoint's export)
        from tiny_arniqa import tiny_checkpoint

        gpu_host.setattr(torch.cuda, "is_available", lambda: True)
        checkpoint = tiny_checkpoint(tmp_path / "m.safetensors", gpu_host)
        assert load(checkpoint, device="auto", engine="onnxruntime").engine.device == "cpu"
    assert load(exported, device="auto").engine.device == "cpu"
    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    res = CliRunner().invoke(app, ["score", str(tmp_path), "--checkpoint", str(exported), "--device", "cuda"])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "no CUDA provider" in res.output, res.output
    for device in ("cuda:x", "cpu:x", "cuda:-1"):
        with pytest.raises(ValueError, match="ONNX Runtime runs on cpu or cuda"):
            load(exported, device=device)
    # cpu:0, which the torch engine takes, was refused as "device 'cpu:0': ONNX Runtime runs on cpu or cuda"
    for device in ("cpu:0", torch.device("cpu", 1)):
        assert load(exported, device=device).engine.device == "cpu"

    asked = []  # the providers ONNX Runtime is asked for, with its CUDA provider installed
    session = ort.InferenceSession
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(
        ort, "InferenceSession", lambda path, options, providers: asked.append(providers) or session(path)
    )
    for device in ("cuda:1", "auto", torch.device("cuda", 2)):
        assert load(exported, device=device).engine.device == "cuda"
    assert asked == [[("CUDAExecutionProvider", {"device_id": i}), "CPUExecutionProvider"] for i in (1, 0, 2)]


def test_cpu_defaults_pick_onnxruntime_unless_a_torch_option_is_given(published, photos, encoder_cache):
    d, _, _ = published
    default = load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol="pyiqa")
    assert default.engine.name == "onnxruntime" and default.batch_size == 1 and not default.channels_last
    for options in ({"precision": "bf16"}, {"channels_last": True}, {"engine": "torch"}):
        assert load("arniqa-kadid10k", device="cpu", weights_dir=d, **options).engine.name == "torch"
    fp32 = load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol="pyiqa", engine="torch")
    assert torch.allclose(default.score(photos).scores, fp32.score(photos).scores, atol=TOL, rtol=0)


def test_export_leaves_the_model_as_it_was(tmp_path):
    """Exporting traces copies: a model in eval mode stays in eval mode (torch.onnx.export restores the mode
    of the module it traces, a fresh wrapper in train mode before), with its weights and layout untouched."""
    from tiny_arniqa import TinyARNIQA

    from arniqa.inference.onnx_export import export_onnx

    model = TinyARNIQA().eval().to(memory_format=torch.channels_last)  # its conv: a 4-d weight, as a ResNet50's
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, None, tmp_path / "m.onnx")
    assert not any(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_a_failed_sidecar_write_leaves_the_earlier_graph_and_sidecar(tmp_path, monkeypatch):
    """The graph was replaced before its sidecar was written: a full disk then left the new graph beside the
    earlier sidecar, whose score range would scale the new graph's scores without a word."""
    from tiny_arniqa import TinyARNIQA

    from arniqa.inference.onnx_export import export_onnx

    torch.manual_seed(0)
    model = TinyARNIQA()
    model.backbone_name = "tiny"
    path, side = tmp_path / "m.onnx", tmp_path / "m.onnx.json"
    export_onnx(model, Regressor("kadid10k", in_features=8), path, protocol="whole")
    before = path.read_bytes(), side.read_bytes()
    full_disk_for_text(monkeypatch, lambda path: path.suffix == ".json")
    with pytest.raises(OSError, match="No space left"):
        export_onnx(model, Regressor("live", in_features=8), path, protocol="whole")
    assert (path.read_bytes(), side.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.json"]  # no temporary file left


@pytest.mark.parametrize(
    "change, message",
    [
        ({"score_range": ["a", None, "mos"]}, "'score_range' must be [low, high, \"mos\" or \"dmos\"], got ['a', None"),
        ({"score_range": 5}, '\'score_range\' must be [low, high, "mos" or "dmos"], got 5'),
        ({"score_range": [5.0, 1.0, "mos"]}, "'score_range' must be [low, high"),
        ({"dataset": 7}, "'dataset' must be a dataset name, got 7"),
        ({"protocol": "wholes"}, "'protocol' must be one of crops, whole, pyiqa, eval, got 'wholes'"),
        ({"protocol": ["crops"]}, "'protocol' must be one of crops, whole, pyiqa, eval, got ['crops']"),
        ({"explain_labels": ["../../x"] * 8}, "'explain_labels' must be this version's groups (brightness_change, "),
        ({"explain_labels": "blur"}, "'explain_labels' must be this version's groups"),
        ({"explain_protocol": "five crops"}, "'explain_protocol' must be one of crops, whole, pyiqa, eval"),
        ({"encoder_fingerprint_bf16": 5}, "'encoder_fingerprint_bf16' must be a SHA-256 digest (64 hex digits), got 5"),
    ],
)
def test_an_edited_sidecar_is_one_line_naming_it(tmp_path, change, message):
    """Values of the wrong type in the sidecar were a TypeError or AttributeError traceback, or a message naming
    no file. Labels name the files of `arniqa map --explain`: others than the groups are refused."""
    import json

    from tiny_arniqa import tiny_onnx

    _, _, path = tiny_onnx(tmp_path / "tiny.onnx")
    side = tmp_path / "tiny.onnx.json"
    side.write_text(json.dumps({**json.loads(side.read_text()), **change}))
    with pytest.raises(ValueError) as e:
        load(path, device="cpu")
    assert str(e.value).startswith(f"{side}: {message}") and str(e.value).endswith("; export the model again")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not a JSON sidecar ("),
        ('{"format": "other"}', "not an arniqa ONNX sidecar (format 'arniqa-onnx'"),
    ],
)
def test_a_sidecar_that_is_not_json_or_not_arniqas_says_to_export_again(tmp_path, text, problem):
    """Said what was wrong with m.onnx.json and nothing to do."""
    from arniqa.inference.sidecar import read_sidecar

    side = tmp_path / "m.onnx.json"
    side.write_text(text)
    with pytest.raises(ValueError) as e:
        read_sidecar(tmp_path / "m.onnx")
    assert str(e.value).startswith(f"{side}: {problem}") and str(e.value).endswith("; export the model again")


def test_a_sidecar_larger_than_any_is_refused_unread(tmp_path):
    """A sidecar of any size was read whole and parsed: one of 256 MB (a JSON array of numbers) took 6 s and 1.3 GB
    of memory, a multi-GB one all the memory there is. One larger than the bound is one line now; one of just the
    bound is read as before."""
    from arniqa.inference.sidecar import MAX_SIDECAR_BYTES, read_sidecar

    side = tmp_path / "m.onnx.json"
    head = '{"format": "arniqa-onnx", "pad": "'
    for size in (MAX_SIDECAR_BYTES, MAX_SIDECAR_BYTES + 1):
        side.write_text(head + "a" * (size - len(head) - 2) + '"}')
        assert side.stat().st_size == size
        if size == MAX_SIDECAR_BYTES:
            assert read_sidecar(tmp_path / "m.onnx")["format"] == "arniqa-onnx"
    with pytest.raises(ValueError) as e:
        read_sidecar(tmp_path / "m.onnx")
    assert str(e.value) == (
        f"{side}: larger than {MAX_SIDECAR_BYTES:,} bytes, which no sidecar is (one holds a few kB at most); "
        "export the model again"
    )


def test_a_sidecar_nested_too_deeply_is_one_line_naming_it(tmp_path):
    """A `dataset` nested 500 levels deep was read, then its error message's repr raised a RecursionError."""
    from tiny_arniqa import tiny_onnx

    _, _, path = tiny_onnx(tmp_path / "tiny.onnx")
    side = tmp_path / "tiny.onnx.json"
    side.write_text(side.read_text()[:-1] + ', "dataset": ' + "[" * 500 + "]" * 500 + "}")
    with pytest.raises(ValueError, match=re.escape(f"{side}: not a JSON sidecar (nested more than 100 levels deep")):
        load(path, device="cpu")


def _graph(path, nodes, inputs=None):
    """A hand-made ONNX file at ``path`` (inputs ``full`` and ``half``, float (N,3,H,W) unless given; output
    ``raw_score``, float (N,)) and a sidecar with KADID-10k's score range."""
    import onnx
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info
    inputs = inputs or [value(name, TensorProto.FLOAT, ["n", 3, "h", "w"]) for name in ("full", "half")]
    graph = helper.make_graph(nodes, "g", inputs, [value("raw_score", TensorProto.FLOAT, ["n"])])
    # IR 8, opset 17's: onnx writes its newest IR, which ONNX Runtime up to 1.23 (the newest for Python 3.10) refuses
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    path.with_name(path.name + ".json").write_text(
        json.dumps({"format": "arniqa-onnx", "score_range": [1.0, 5.0, "mos"]})
    )
    return path


def _log_mean(path):
    """raw_score = log(mean of the full view): -inf for a black image."""
    from onnx import helper

    nodes = [
        helper.make_node("ReduceMean", ["full"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Log", ["m"], ["raw_score"]),
    ]
    return _graph(path, nodes)


def _score_onnx(model, *images, options=()):
    args = ["score", *map(str, images), "--checkpoint", str(model), "--protocol", "whole", *options]
    res = CliRunner().invoke(app, args)
    return res, _rows(res.stdout)


def _flat_images(tmp_path):
    from PIL import Image

    black, gray = tmp_path / "black.png", tmp_path / "gray.png"
    Image.new("RGB", (12, 10)).save(black)
    Image.new("RGB", (12, 10), (128, 128, 128)).save(gray)
    return black, gray


def test_a_nan_or_infinite_score_is_an_error_row_and_the_batch_goes_on(tmp_path):
    """log(0) was written as the score -inf with exit 0."""
    black, gray = _flat_images(tmp_path)
    res, rows = _score_onnx(_log_mean(tmp_path / "log.onnx"), black, gray, options=["--batch-size", "2"])
    assert res.exit_code == 1
    assert rows[0]["score"] == "" and "gave a NaN or infinite raw_score" in rows[0]["error"]
    assert float(rows[1]["raw_score"]) == pytest.approx(np.log(128 / 255), abs=1e-6) and rows[1]["error"] == ""


def test_outputs_of_another_shape_are_error_rows(tmp_path):
    """A raw score per channel (N, 3) was averaged into one score without a word; a scalar one stopped the run
    with a traceback; ONNX Runtime's message on a fixed input size spread over several lines."""
    from onnx import TensorProto, helper

    _, gray = _flat_images(tmp_path)
    per_channel = _graph(
        tmp_path / "per_channel.onnx",
        [helper.make_node("ReduceMean", ["full"], ["raw_score"], axes=[2, 3], keepdims=0)],
    )
    scalar = _graph(tmp_path / "scalar.onnx", [helper.make_node("ReduceMean", ["full"], ["raw_score"], keepdims=0)])
    fixed = _graph(
        tmp_path / "fixed.onnx",
        [helper.make_node("ReduceMean", ["full"], ["raw_score"], axes=[1, 2, 3], keepdims=0)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 224, 224]) for n in ("full", "half")],
    )
    for model, shape in ((per_channel, "(1, 3)"), (scalar, "()")):
        res, rows = _score_onnx(model, gray, gray, options=["--batch-size", "2"])
        assert res.exit_code == 1 and len(rows) == 2
        assert all(f"output 'raw_score' has shape {shape} for 1 input views" in row["error"] for row in rows)
    res, rows = _score_onnx(fixed, gray)
    assert res.exit_code == 1 and "Got invalid dimensions for input" in rows[0]["error"]
    assert "\n" not in rows[0]["error"]


@pytest.mark.parametrize("dtype, shape", [("UINT8", ["n", 3, "h", "w"]), ("FLOAT", ["n", 3, "h"])])
def test_inputs_of_another_type_or_rank_are_refused_at_load(tmp_path, dtype, shape):
    """They were an error row per image (exit 1) after loading, as if the images were at fault."""
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("full", getattr(TensorProto, dtype), shape)]
    inputs.append(helper.make_tensor_value_info("half", TensorProto.FLOAT, ["n", 3, "h", "w"]))
    cast = helper.make_node("Cast", ["full"], ["f"], to=TensorProto.FLOAT)
    mean = helper.make_node("ReduceMean", ["f"], ["raw_score"], axes=[1, 2], keepdims=0)
    model = _graph(tmp_path / "odd.onnx", [cast, mean], inputs)
    res, _ = _score_onnx(model, _flat_images(tmp_path)[1])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        f"error: {model}: not an arniqa export ('full' is a tensor({dtype.lower()}) of shape {shape}, not float32 "
        "(N,3,H,W)); write one with `arniqa export`"
    ]


def test_a_sidecar_range_the_graph_does_not_compute_is_an_error_row(tmp_path):
    """A sidecar saying [0, 100] beside a graph scaled by [1, 5] scaled every score with [0, 100] silently."""
    from tiny_arniqa import tiny_onnx

    _, gray = _flat_images(tmp_path)
    _, _, path = tiny_onnx(tmp_path / "tiny.onnx")
    res, rows = _score_onnx(path, gray)
    assert res.exit_code == 0 and rows[0]["error"] == ""
    raw = float(rows[0]["raw_score"])
    assert float(rows[0]["score"]) == pytest.approx((raw - 1) / 4, abs=1e-6)
    side = tmp_path / "tiny.onnx.json"
    for wrong in ([0.0, 100.0, "mos"], [1.0, 5.0, "dmos"]):
        side.write_text(json.dumps({**json.loads(side.read_text()), "score_range": wrong}))
        res, rows = _score_onnx(path, gray)
        assert res.exit_code == 1 and rows[0]["score"] == ""
        assert f"{side}: its score range {wrong} disagrees with the scores tiny.onnx computes" in rows[0]["error"]


def test_weights_outside_the_folder_are_refused_where_onnxruntime_would_read_them(tmp_path, monkeypatch):
    """onnxruntime before 1.24 reads external data from any path the file names (1.23.2 loads all three)."""
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data
    from tiny_arniqa import tiny_onnx

    from arniqa.inference.onnx_engine import OnnxEngine

    monkeypatch.setattr(ort, "__version__", "1.23.2")
    _, _, path = tiny_onnx(tmp_path / "tiny.onnx")
    model = onnx.load(str(path))
    convert_model_to_external_data(model, location="w.bin", size_threshold=0)
    (secret := tmp_path / "secret").mkdir()
    onnx.save(model, str(secret / "m.onnx"))  # writes secret/w.bin
    (models := tmp_path / "models").mkdir()
    (models / "link.bin").symlink_to(secret / "w.bin")
    for location in ("../secret/w.bin", str(secret / "w.bin"), "link.bin", "w.bin"):
        model = onnx.load(str(secret / "m.onnx"), load_external_data=False)
        for tensor in model.graph.initializer:
            next(e for e in tensor.external_data if e.key == "location").value = location
        onnx.save(model, str(models / "m.onnx"))
        if location == "w.bin":  # inside the folder: loads
            (models / "w.bin").write_bytes((secret / "w.bin").read_bytes())
            assert OnnxEngine(models / "m.onnx").outputs == ["score", "raw_score"]
            continue
        with pytest.raises(ValueError) as e:
            OnnxEngine(models / "m.onnx")
        assert str(e.value) == (
            f"{models / 'm.onnx'}: its weights are read from {location!r}, outside the folder of the file; "
            "keep the external data files beside it"
        )


def test_an_explanation_head_of_another_width_than_the_onnx_embedding_is_refused_at_load(tmp_path):
    """A 16-d head given for a file whose embedding is 8-d passed load (an ONNX file's width was not looked up), and
    `score --explain` stopped with torch's `mat1 and mat2 shapes cannot be multiplied` traceback after the CSV
    header. The width is the graph's embedding output's: one line at load. The head of the file's width explains."""
    from tiny_arniqa import _tiny_model, tiny_explainer

    from arniqa.inference.onnx_export import export_onnx
    from arniqa.models.explain import Explainer, save_explainer

    path = export_onnx(*_tiny_model(), tmp_path / "tiny.onnx", protocol="whole", embedding=True)
    wide = save_explainer(tmp_path / "wide.safetensors", Explainer(16).eval())
    fits = save_explainer(tmp_path / "fits.safetensors", tiny_explainer())
    expected = (
        f"{wide}: its explanation head takes 16-d features, the model gives 8-d; fit one on this model with "
        "`arniqa explain fit`"
    )
    with pytest.raises(ValueError) as info:
        load(path, device="cpu", explainer=wide)
    assert str(info.value) == expected
    _, gray = _flat_images(tmp_path)
    res, rows = _score_onnx(path, gray, options=["--explain", "--explainer", str(wide)])
    assert res.exit_code == 2 and rows == [] and res.stderr == f"error: {expected}\n"
    res, rows = _score_onnx(path, gray, options=["--explain", "--explainer", str(fits)])
    assert res.exit_code == 0 and rows[0]["error"] == "" and rows[0]["explanation"]


def test_an_explanation_head_is_checked_against_the_encoder_the_onnx_sidecar_records(tmp_path):
    """`score --checkpoint model.onnx --explainer HEAD` checked the head by its width alone: a head fitted on another
    encoder of the same width explained the file's features without a word (a checkpoint's head was refused). The
    sidecar now records the exported encoder's fingerprints and the head is checked against them as against a
    checkpoint: one line, exit 2. A head fitted on that encoder, or on a bf16 copy of it, explains; against a sidecar
    written before (no fingerprints) any head of the width explains, with a warning that says so (none before)."""
    from tiny_arniqa import TinyARNIQA, _tiny_model, tiny_explainer

    from arniqa.inference.onnx_export import export_onnx
    from arniqa.models.arniqa import PAIRING_KEYS, model_fingerprint
    from arniqa.models.explain import save_explainer

    model, regressor = _tiny_model()
    path = export_onnx(model, regressor, tmp_path / "tiny.onnx", protocol="whole", embedding=True)
    copy = TinyARNIQA()  # the encoder's weights rounded to bf16, kept in fp32
    copy.load_state_dict({key: value.to(torch.bfloat16).to(value.dtype) for key, value in model.state_dict().items()})
    assert model_fingerprint(copy) != model_fingerprint(model)
    torch.manual_seed(1)
    other = TinyARNIQA()

    def head(name, encoder):  # as `arniqa explain fit` records its encoder
        prints = {key: model_fingerprint(encoder, rounded) for rounded, key in PAIRING_KEYS.items()}
        return save_explainer(tmp_path / name, tiny_explainer(), encoder=f"checkpoint {name}", **prints)

    own, rounded, foreign = head("own.safetensors", model), head("bf16.safetensors", copy), head("b.safetensors", other)
    _, gray = _flat_images(tmp_path)
    for fits in (own, rounded):
        res, rows = _score_onnx(path, gray, options=["--explain", "--explainer", str(fits)])
        assert res.exit_code == 0 and rows[0]["error"] == "" and rows[0]["explanation"], res.stderr
    res, rows = _score_onnx(path, gray, options=["--explain", "--explainer", str(foreign)])
    assert res.exit_code == 2 and rows == []
    assert res.stderr == (
        f"error: {foreign}: this explanation head was fitted on the features of checkpoint b.safetensors, not of the "
        f"encoder exported to {path}, so its explanations would be wrong; score with the encoder it was fitted on, or "
        "fit a head on the model it was exported from (`arniqa explain fit PRISTINE --checkpoint CHECKPOINT -o "
        "HEAD.safetensors`, without --checkpoint for the published model)\n"
    )
    side = tmp_path / "tiny.onnx.json"
    side.write_text(
        json.dumps({k: v for k, v in json.loads(side.read_text()).items() if k not in PAIRING_KEYS.values()})
    )
    with pytest.warns(UserWarning) as said:  # an older sidecar: width only, and a warning says so (it said nothing)
        assert load(path, device="cpu", explainer=foreign).explainer is not None
    assert [str(w.message) for w in said] == [
        f"{foreign}: {path} does not record the encoder it was exported from (no sidecar, or one written before "
        "sidecars recorded it), so only the explanation head's width is checked against it; its explanations are "
        "right only if it was fitted on that encoder's features; to be sure, export the model again (`arniqa export`)"
    ]


def test_a_checkpoints_export_is_cached_under_the_fingerprint_its_regressor_files_record(tmp_path, monkeypatch):
    """The export cache keyed a checkpoint by a second digest of its weights beside ``model_fingerprint`` (which
    regressor files record and the feature cache keys on). Now by that one: the same weights in another model object
    find the same file, another weight another file."""
    from tiny_arniqa import TinyARNIQA

    import arniqa.inference.engines as engines
    from arniqa.models.arniqa import model_fingerprint

    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    exports = []
    monkeypatch.setattr(engines, "export_onnx", lambda model, reg, path: exports.append(path) or path.touch())
    (tmp_path / "cache" / "onnx").mkdir(parents=True)
    torch.manual_seed(0)
    a = TinyARNIQA()
    same = TinyARNIQA()
    same.load_state_dict(a.state_dict())
    path = engines.cached_export(a)
    assert path.name == f"{model_fingerprint(a)[:24]}.onnx" and exports == [path]
    assert engines.cached_export(same) == path and exports == [path]
    with torch.no_grad():
        next(same.parameters()).view(-1)[0] += 1
    assert engines.cached_export(same) != path and len(exports) == 2


def test_a_stopped_export_leaves_no_folder_it_made(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM during `arniqa export -o new/m.onnx` left the empty folder `new/`. Now it goes, as with
    every verb's output folders."""
    import arniqa.inference

    def stopped(*args, **kwargs):
        assert (tmp_path / "new").is_dir()  # made before the export, so that a folder that cannot be made stops it
        raise KeyboardInterrupt

    monkeypatch.setattr(arniqa.inference, "export", stopped)
    result = CliRunner().invoke(app, ["export", "-o", str(tmp_path / "new" / "m.onnx")])
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert sorted(tmp_path.iterdir()) == []


def test_a_new_export_deletes_the_exports_not_used_of_late_and_a_hit_counts_as_a_use(tmp_path, monkeypatch):
    """Each encoder exported left about 100 MB in <cache>/onnx/ for good (a checkpoint trained again, the published
    ARNIQA.pth of another folder). Now a new export keeps the files of the 4 encoders used last (a cache hit is a
    use) and of any used within a day, and deletes the others."""
    import os
    import time

    import arniqa.inference.engines as engines

    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(engines, "export_onnx", lambda model, reg, path: path.write_text("graph"))
    folder = tmp_path / "cache" / "onnx"
    folder.mkdir(parents=True)
    days = {f"old{i}": 2 + i for i in range(5)}  # old0 used 2 days ago .. old4 6 days ago
    for key, age in days.items():
        for name in (f"{key}.onnx", f"{key}.fingerprint", f"{key}.int8-k.onnx"):
            (folder / name).write_text(name)
            os.utime(folder / name, (time.time() - age * 86400,) * 2)

    def cached():
        return sorted({p.name.split(".")[0] for p in folder.iterdir()})

    assert engines.cached_onnx("old4", lambda: None) == folder / "old4.onnx"  # a hit: no export, no pruning
    assert cached() == ["old0", "old1", "old2", "old3", "old4"]
    engines.cached_onnx("new", lambda: None)
    assert cached() == ["new", "old0", "old1", "old4"]  # used last: new, old4 (the hit), old0, old1
    assert len(list(folder.glob("old4.*"))) == 3


@pytest.mark.parametrize(
    "err, advice", [(errno.EACCES, "set ARNIQA_CACHE"), (errno.ENOSPC, "free space there, or set ARNIQA_CACHE")]
)
def test_a_cache_the_export_cannot_be_written_into_says_what_to_do(tmp_path, monkeypatch, err, advice):
    """A shared cache holding the published weights that this user may read but not write: the default CPU engine's
    export said '[Errno 13] Permission denied: '<cache>/onnx'' and nothing of what to do."""
    import arniqa.inference.engines as engines

    def cannot(model, reg, path):
        raise OSError(err, os.strerror(err), str(path.parent))

    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path))
    monkeypatch.setattr(engines, "export_onnx", cannot)
    said = f"{tmp_path / 'onnx'}: cannot write the model's ONNX export into the cache ({os.strerror(err)}); {advice}"
    with pytest.raises(OSError, match=re.escape(said) + " to a folder you can write, or score with --engine torch"):
        engines.cached_onnx("key", lambda: None)


def test_onnx_runtime_running_out_of_memory_loading_a_file_is_not_the_files_fault(tmp_path, monkeypatch):
    """ONNX Runtime out of memory loading a file (its real message under `ulimit -d 250000`) was `not an ONNX model
    ONNX Runtime can load`, as if the file were broken; now it is out of memory, one line, exit 2."""
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

    def no_memory(*args, **kwargs):
        raise RuntimeException(
            "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Exception during initialization: std::bad_alloc"
        )

    model = _log_mean(tmp_path / "log.onnx")
    monkeypatch.setattr(ort, "InferenceSession", no_memory)
    with pytest.raises(MemoryError, match=re.escape(f"{model}: ONNX Runtime ran out of memory loading it (")):
        load(model, device="cpu")
    res, _ = _score_onnx(model, _flat_images(tmp_path)[1])
    assert res.exit_code == 2 and res.stderr.splitlines() == [
        f"error: {model}: out of memory loading the model (MemoryError); free memory or use a machine with more"
    ]


def test_running_out_of_memory_exporting_is_one_line_and_writes_nothing(published, tmp_path, monkeypatch):
    """`arniqa export` under `ulimit -d 1500000` ended in a traceback, `RuntimeError: Could not allocate bytes
    object!` raised from a MemoryError in torch's exporter, exit 1; now one line, exit 2, and no file or folder."""

    def no_memory(*args, **kwargs):
        try:
            raise MemoryError
        except MemoryError as e:
            raise RuntimeError("Could not allocate bytes object!") from e

    monkeypatch.setattr(torch.onnx, "export", no_memory)
    res = CliRunner().invoke(
        app, ["export", "-o", str(tmp_path / "new" / "m.onnx"), "--weights-dir", str(published[0])]
    )
    assert res.exit_code == 2 and res.stderr.splitlines() == [
        "error: arniqa-kadid10k: out of memory exporting the model (RuntimeError); free memory or export on a "
        "machine with more"
    ]
    assert sorted(tmp_path.iterdir()) == []


def test_processes_starting_together_export_once(tmp_path):
    """A cluster's 4 jobs starting together on one shared cache each exported the model into <cache>/onnx (10-25 s
    and about 100 MB each for a ResNet-50, all writing the same file). One exports now; the others say they wait for
    it, then use its file."""
    from tiny_arniqa import make_together

    jobs, made = make_together("exporting", tmp_path)
    assert [job.returncode for job in jobs] == [0, 0, 0, 0], [job.err for job in jobs]
    assert len(made) == 1
    path = tmp_path / "cache" / "onnx" / "tiny.onnx"
    assert {job.out.strip() for job in jobs} == {str(path)}
    waited = [job for job in jobs if str(job.pid) != made[0]]
    assert [job.err for job in waited] == [f"waiting for another arniqa process (pid {made[0]}) exporting {path}\n"] * 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.onnx", "tiny.onnx.json"]  # no lock file left


def test_a_checkpoint_with_nan_weights_says_so_with_either_engine(tmp_path, monkeypatch):
    """A diverged training run's checkpoint (NaN weights) scored with the default ONNX engine failed each row with
    '<cache>/onnx/checkpoint-....onnx gave a NaN or infinite embedding ...; export it again', naming a file the user
    never made and advising an export that gives the same NaN; now each engine's row says the same: damaged weights,
    score an earlier checkpoint."""
    from tiny_arniqa import TinyARNIQA, _tiny_model

    import arniqa.models.checkpoint as checkpoint

    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(checkpoint, "ARNIQA", lambda name, **options: TinyARNIQA())
    model, regressor = _tiny_model()
    with torch.no_grad():
        model.conv.weight[0, 0, 0, 0] = float("nan")
    [diverged] = checkpoint.save_checkpoint(tmp_path / "diverged.safetensors", model, regressor)
    black, gray = _flat_images(tmp_path)
    errors = {}
    for engine in ("onnxruntime", "torch"):
        res = CliRunner().invoke(
            app, ["score", str(black), str(gray), "--checkpoint", str(diverged), "--engine", engine]
        )
        assert res.exit_code == 1, res.output
        errors[engine] = [row["error"] for row in _rows(res.stdout)]
    assert len(set(errors["torch"])) == 1 and "damaged weights" in errors["torch"][0]
    assert errors["onnxruntime"] == [errors["torch"][0].replace("score or feature", "embedding")] * 2
    assert "score an earlier checkpoint" in errors["torch"][0] and "cache" not in errors["onnxruntime"][0]


def test_a_file_asking_for_more_memory_than_the_machine_has_is_named_in_each_row(tmp_path):
    """A crafted file building a tensor of 2**50 floats (4 PiB) was 'out of memory in the model (RuntimeError);
    choose another --device', though no device holds it; now each row names the file and says so."""
    from onnx import TensorProto, helper

    _, gray = _flat_images(tmp_path)
    const = helper.make_tensor
    nodes = [  # a shape taken from the input: built when run, not when loaded
        helper.make_node("Shape", ["full"], ["s"], start=0, end=1),
        helper.make_node("Mul", ["s", "big"], ["shape"]),
        helper.make_node("ConstantOfShape", ["shape"], ["huge"], value=const("v", TensorProto.FLOAT, [1], [1.0])),
        helper.make_node("ReduceSum", ["huge"], ["total"], keepdims=0),
        helper.make_node("ReduceMean", ["full"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Add", ["m", "total"], ["raw_score"]),
    ]
    big = const("big", TensorProto.INT64, [1], [2**50])
    model = _graph(tmp_path / "huge.onnx", [helper.make_node("Constant", [], ["big"], value=big), *nodes])
    res = CliRunner().invoke(app, ["score", str(gray), str(gray), "--checkpoint", str(model)])
    rows = _rows(res.stdout)
    assert res.exit_code == 1 and len(rows) == 2
    for row in rows:  # the 5 crops of one image at a time: 5 * 2**50 floats of 4 bytes
        assert row["error"].startswith(f"{model}: the model asks for {5 * 2**52:,} bytes in one tensor, more memory")


def _scored_through_the_cache(tmp_path, monkeypatch):
    """A tiny checkpoint scored on ONNX Runtime with the cache in ``tmp_path``: the score command's arguments, its
    first result and the export it left in <cache>/onnx."""
    from tiny_arniqa import tiny_checkpoint

    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    checkpoint = tiny_checkpoint(tmp_path / "m.safetensors", monkeypatch)
    _, gray = _flat_images(tmp_path)
    args = ["score", str(gray), "--checkpoint", str(checkpoint), "--engine", "onnxruntime"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    [cached] = (tmp_path / "cache" / "onnx").glob("*.onnx")
    return args, first, cached


def test_a_cached_export_cut_short_says_to_delete_it_and_the_next_run_makes_it_again(tmp_path, monkeypatch):
    """A checkpoint's export in <cache>/onnx cut short (a disk's fault, a cache copied in part) said 'give the file
    that arniqa export wrote, or export the model again' of a file the user never gave; it says it is the cache's
    now, to delete it, and the run after that exports it again and scores."""
    args, first, cached = _scored_through_the_cache(tmp_path, monkeypatch)
    cached.write_bytes(cached.read_bytes()[:200])
    res = CliRunner().invoke(app, args)
    [line] = res.stderr.splitlines()
    assert res.exit_code == 2 and line.startswith(f"error: {cached}: not an ONNX model ONNX Runtime can load (")
    assert line.endswith("); a file of arniqa's cache: delete it, and the next run makes it again")
    cached.unlink()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and again.stdout == first.stdout


def test_a_cached_exports_damaged_sidecar_says_to_delete_both_and_the_next_run_makes_them_again(tmp_path, monkeypatch):
    """The sidecar of a checkpoint's export in <cache>/onnx damaged said 'export the model again', of a model the user
    never exported, where the export beside it says to delete it. It says it is the cache's too now, to delete it with
    the export (deleted alone it is never made again), and the run after that makes both and scores."""
    args, first, cached = _scored_through_the_cache(tmp_path, monkeypatch)
    side = cached.with_name(cached.name + ".json")
    side.write_text("{not json")
    res = CliRunner().invoke(app, args)
    [line] = res.stderr.splitlines()
    assert res.exit_code == 2 and line.startswith(f"error: {side}: not a JSON sidecar (")
    assert line.endswith(
        f"); a file of arniqa's cache: delete it and {cached.name} beside it, and the next run makes them again"
    )
    side.unlink()
    cached.unlink()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and again.stdout == first.stdout and side.is_file()
