"""End to end: ``arniqa evaluate`` on a tiny KADID-10k layout with a random-weight checkpoint: the tests' stand-in
model (tests/tiny_arniqa.py, 8-d features), and a ResNet50 where the real encoder is the point."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import Ridge
from tiny_arniqa import TinyARNIQA
from typer.testing import CliRunner

from arniqa.cli import _register, app
from arniqa.models import ARNIQA
from arniqa.models.checkpoint import load_checkpoint, save_checkpoint
from arniqa.models.published import load_published_regressor

_register()


def _kadid(root, refs=10, types=(1, 11), levels=(1, 4)):
    rng = np.random.default_rng(0)
    rows = []
    (root / "images").mkdir(parents=True)
    for r in range(1, refs + 1):
        base = rng.random((3, 3, 3))
        for t in types:
            for lv in levels:
                smooth = np.kron(base, np.ones((14, 16, 1)))[:40, :48]
                arr = smooth + (lv / 8) * rng.normal(size=smooth.shape) if t == 11 else smooth
                name = f"I{r:02d}_{t:02d}_{lv:02d}.png"
                Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8)).save(root / "images" / name)
                rows.append((name, f"I{r:02d}.png", 5.0 - lv + 0.1 * rng.normal()))
    with open(root / "dmos.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dist_img", "ref_img", "dmos", "var"])
        w.writerows([(a, b, f"{c:.3f}", "0.1") for a, b, c in rows])


@pytest.fixture(scope="module", autouse=True)
def _tiny_loads():
    """A checkpoint of the stand-in model (backbone "tiny") loads as TinyARNIQA, a ResNet50's as before."""
    import arniqa.models.checkpoint as checkpoint

    real = checkpoint.ARNIQA
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            checkpoint, "ARNIQA", lambda name, **options: TinyARNIQA() if name == "tiny" else real(name, **options)
        )
        yield


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The KADID layout and model.safetensors, a random stand-in model (no regressor)."""
    root = tmp_path_factory.mktemp("eval")
    _kadid(root / "kadid")
    torch.manual_seed(0)
    save_checkpoint(root / "model.safetensors", TinyARNIQA())
    return root


def _args(setup, dataset, root, out, *extra, model="model.safetensors", cache="cache"):
    return [
        "evaluate",
        "--dataset",
        dataset,
        "--root",
        str(root),
        "--checkpoint",
        str(setup / model),
        "--splits",
        "3",
        "--crop-size",
        "32",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--cache-dir",
        str(setup / cache),
        "-o",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def evaluated(setup):
    """``arniqa evaluate`` run once on the KADID layout: (output folder, its cached features (40, 5, 8),
    the scores, and scikit-learn's Ridge fitted on all crops with the chosen alpha)."""
    out = setup / "out"
    args = _args(
        setup, "kadid10k", setup / "kadid", out, "--cross-to", "kadid10k", "--cross-root", str(setup / "kadid")
    )
    result = CliRunner().invoke(app, args + ["--tsne"])
    assert result.exit_code == 0, result.output
    # the one "wrote" line names every file written, the regressor and the checkpoint too (it named the report's)
    [wrote] = [line for line in result.output.splitlines() if line.startswith("wrote ")]
    names = ["regressor_kadid10k.safetensors", "checkpoint_kadid10k.safetensors", "results.json", "tsne.png"]
    assert all(str(out / name) in wrote.split(", ") or f"wrote {out / name}" in wrote for name in names), wrote
    alpha = json.loads((out / "results.json").read_text())["alpha"]
    return out, args, *_ridge(setup, setup / "cache", alpha)


def _ridge(setup, cache, alpha):
    """The features a run on the KADID layout cached in ``cache`` (40, 5, d), the scores, and scikit-learn's
    Ridge(alpha) fitted on all crops."""
    (entry,) = list(cache.iterdir())
    feats = np.load(entry / "features.npy")
    scores = np.array([float(r["dmos"]) for r in csv.DictReader(open(setup / "kadid" / "dmos.csv"))])
    ridge = Ridge(alpha=alpha).fit(feats.reshape(-1, feats.shape[-1]).astype(np.float64), np.repeat(scores, 5))
    return feats, scores, ridge


def test_evaluate_writes_report_and_loadable_regressor(setup, evaluated):
    out, args, feats, scores, ref = evaluated
    res = json.loads((out / "results.json").read_text())
    assert res["images"] == 40 and res["splits"] == 3
    assert set(res["summary"]) == {"srcc", "plcc", "krcc", "plcc_logistic"}
    assert set(res["per_type"]) == {"gaublur", "whitenoise"}
    assert res["cross"]["source"] == res["cross"]["target"] == "kadid10k" and not res["cross"]["direction_flipped"]
    for name in ("results.md", "scatter.png", "per_type_srcc.png", "alpha_search.png", "tsne.png", "cross_scatter.png"):
        assert (out / name).stat().st_size > 0, name
    assert "| kadid10k |" in (out / "results.md").read_text()

    # the exported ridge is scikit-learn's Ridge(alpha) on all crops of the cached features
    reg = load_published_regressor(out / "regressor_kadid10k.safetensors")
    np.testing.assert_allclose(reg.weight.detach().numpy()[0], ref.coef_, rtol=1e-3, atol=1e-6)
    model, head, _ = load_checkpoint(out / "checkpoint_kadid10k.safetensors")
    assert head is not None and head.dataset == "kadid10k"
    np.testing.assert_allclose(float(head.bias.detach()), ref.intercept_, rtol=1e-5)
    # the cross-dataset fit on all images, tested on the same images, equals the in-sample Ridge fit
    pred = ref.predict(feats.reshape(-1, feats.shape[-1]).astype(np.float64)).reshape(-1, 5).mean(1)
    from scipy import stats

    assert res["cross"]["srcc"] == pytest.approx(stats.spearmanr(pred, scores)[0], abs=1e-6)

    # a second run reuses the cached features (no new cache entry, same numbers)
    before = set((setup / "cache").iterdir())
    again = CliRunner().invoke(app, args[:-4] + ["--no-export-checkpoint"])
    assert again.exit_code == 0, again.output
    assert set((setup / "cache").iterdir()) == before
    assert json.loads((out / "results.json").read_text())["summary"] == res["summary"]


def test_evaluate_bad_inputs(setup):
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "live",
            "--root",
            str(setup / "kadid"),
            "--checkpoint",
            str(setup / "model.safetensors"),
            "-o",
            str(setup / "o2"),
        ],
    )
    assert result.exit_code == 2 and "LIVE.txt" in result.output
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "kadid10k",
            "--root",
            str(setup / "kadid"),
            "--checkpoint",
            str(setup / "model.safetensors"),
            "--splits",
            str(setup / "nosplits"),
            "-o",
            str(setup / "o2"),
        ],
    )
    assert result.exit_code == 2 and f"splits '{setup / 'nosplits'}': no such folder" in result.output


def _score_rows(paths, *options):
    import arniqa.cli.score  # noqa: F401  (registers the verb)

    result = CliRunner().invoke(
        app,
        ["score", *map(str, paths), "--protocol", "whole", "--device", "cpu", "--format", "json", *map(str, options)],
    )
    return result, (json.loads(result.stdout) if result.exit_code == 0 else None)


def _whole_features(checkpoint, paths):
    """The encoder features of ``paths`` (whole protocol), per image."""
    from arniqa.inference import load

    feats = load(checkpoint, device="cpu", protocol="whole").features(paths)
    return feats.numpy().astype(np.float64).mean(axis=1)


@pytest.fixture(scope="module")
def resnet50(setup):
    """``arniqa evaluate`` run once on the KADID layout with a random ResNet50 checkpoint (resnet50.safetensors):
    (its arguments, the output folder, its cached features (40, 5, 4096), the scores, and scikit-learn's Ridge fitted
    on all crops with the chosen alpha)."""
    torch.manual_seed(0)
    save_checkpoint(setup / "resnet50.safetensors", ARNIQA("resnet50"))
    out = setup / "resnet50-out"
    args = _args(setup, "kadid10k", setup / "kadid", out, model="resnet50.safetensors", cache="resnet50-cache")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    alpha = json.loads((out / "results.json").read_text())["alpha"]
    return args, out, *_ridge(setup, setup / "resnet50-cache", alpha)


def test_score_with_the_checkpoint_that_evaluate_writes(setup, resnet50):
    """The checkpoint evaluate writes of a ResNet50 (the real encoder and its ridge) scores as scikit-learn's ridge on
    that encoder's features."""
    _, out, _, _, ridge = resnet50
    paths = sorted((setup / "kadid" / "images").iterdir())[::5][:4]
    feats = _whole_features(setup / "resnet50.safetensors", paths)
    assert feats.shape == (4, 4096)
    result, rows = _score_rows(paths, "--checkpoint", out / "checkpoint_kadid10k.safetensors")
    assert result.exit_code == 0, result.output
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    raw = np.array([r["raw_score"] for r in rows])
    np.testing.assert_allclose(raw, ridge.predict(feats), rtol=0, atol=2e-4)  # scikit-learn on the features
    np.testing.assert_allclose([r["score"] for r in rows], (raw - 1) / 4, atol=1e-6)  # KADID-10k: (s - 1) / 4
    assert np.ptp(raw) > 0.01  # different images, different scores


def test_score_with_a_regressor_file(setup, evaluated):
    out, _, _, _, ridge = evaluated
    paths = sorted((setup / "kadid" / "images").iterdir())[::5][4:]
    plain = setup / "model.safetensors"  # the encoder alone, no regressor
    feats = _whole_features(plain, paths)
    result, _ = _score_rows(paths, "--checkpoint", plain)
    assert result.exit_code == 2 and f"{plain}: the checkpoint has no regressor" in result.stderr
    assert "pass --regressor FILE, or use the checkpoint_<dataset>.safetensors" in result.stderr
    result, rows = _score_rows(paths, "--checkpoint", plain, "--regressor", out / "regressor_kadid10k.safetensors")
    assert result.exit_code == 0, result.output
    raw = np.array([r["raw_score"] for r in rows])
    np.testing.assert_allclose(raw, ridge.predict(feats), rtol=0, atol=2e-4)
    np.testing.assert_allclose([r["score"] for r in rows], (raw - 1) / 4, atol=1e-6)


def _live_copy(setup):
    """The KADID images again as a LIVE (DMOS, lower is better) layout with DMOS = 10 - MOS."""
    import shutil

    root = setup / "live"
    (root / "wn").mkdir(parents=True)
    rows = list(csv.DictReader(open(setup / "kadid" / "dmos.csv")))
    with open(root / "LIVE.txt", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dis_img_path", "dis_type", "ref_img_path", "score"])
        for r in rows:
            shutil.copy(setup / "kadid" / "images" / r["dist_img"], root / "wn" / r["dist_img"])
            w.writerow(
                [f"LIVE/wn/{r['dist_img']}", "wn", f"LIVE/refimgs/{r['ref_img']}", f"{10 - float(r['dmos']):.3f}"]
            )
    return root


def test_cross_dataset_between_mos_and_dmos_flips_the_predictions(setup, resnet50):
    # Fitted on KADID-10k (MOS) and tested on the same images labelled DMOS = 10 - MOS (LIVE), the
    # predictions rank the images as the in-sample fit does; only after the MOS/DMOS flip does
    # that give a positive SRCC against the DMOS.
    from scipy import stats

    args, _, feats, scores, ridge = resnet50
    in_sample = stats.spearmanr(
        ridge.predict(feats.reshape(-1, feats.shape[-1]).astype(np.float64)).reshape(-1, 5).mean(1), scores
    )[0]
    assert in_sample > 0.5
    out = setup / "cross-live"
    cross_to = ["--cross-to", "live", "--cross-root", str(_live_copy(setup)), "--no-export-checkpoint"]
    result = CliRunner().invoke(app, [*args[:-1], str(out), *cross_to])  # the KADID features are cached
    assert result.exit_code == 0, result.output
    cross = json.loads((out / "results.json").read_text())["cross"]
    assert cross["direction_flipped"] and (cross["source"], cross["target"]) == ("kadid10k", "live")
    assert cross["srcc"] == pytest.approx(in_sample, abs=1e-6)  # positive: the flip is right


def test_run_evaluation_without_typer(setup):
    from arniqa.evaluate.run import EvaluationSpec, run_evaluation

    lines = []
    spec = EvaluationSpec(
        dataset="kadid",
        root=str(setup / "kadid"),
        output=str(setup / "lib"),  # str or Path
        checkpoint=setup / "model.safetensors",
        splits="3",
        crop_size=32,
        device="cpu",
        cache_dir=setup / "cache-lib",
        export_checkpoint=False,
        progress=False,
    )
    out = run_evaluation(spec, log=lines.append)
    assert len(lines) == 1 and lines[0].startswith("kadid10k: 40 images; 3 random 70/10/20 splits, reference-disjoint")
    assert set(out.files) >= {"regressor", "json", "markdown", "scatter"} and "checkpoint" not in out.files
    assert all(p.is_file() for p in out.files.values())
    written = json.loads(out.files["json"].read_text())["summary"]
    assert written["srcc"]["median"] == pytest.approx(float(out.result["summary"]["srcc"]["median"]))
    assert not (setup / "lib" / "checkpoint_kadid10k.safetensors").exists()
    # the regressor is scikit-learn's Ridge(alpha) on all crops of the cached features
    _, _, ref = _ridge(setup, setup / "cache-lib", out.result["alpha"])
    reg = load_published_regressor(out.result["regressor_file"])
    np.testing.assert_allclose(reg.weight.detach().numpy()[0], ref.coef_, rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="LIVE.txt"):
        run_evaluation(
            EvaluationSpec(
                dataset="live", root=setup / "kadid", output=setup / "lib2", checkpoint=setup / "model.safetensors"
            )
        )


def _quick(setup, root, out, *extra):
    """The arguments of a quick run (crops of 8 px, 2 splits, its own cache) on the dataset at ``root``."""
    args = _args(setup, "kadid10k", root, out, "--no-export-checkpoint", *extra)
    args[args.index("--crop-size") + 1], args[args.index("--splits") + 1] = "8", "2"
    args[args.index("--cache-dir") + 1] = str(out.parent / "cache-quick")
    return args


def _one_line(result) -> str:
    """The error line of a run that stopped (the log line before it is not an error)."""
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_an_unreadable_image_is_one_line_exit_2(setup, tmp_path):
    """It was a traceback (exit 1). One line names the image; the other features stay cached."""
    import shutil

    shutil.copytree(setup / "kadid", tmp_path / "kadid")
    bad = tmp_path / "kadid" / "images" / "I02_01_01.png"
    bad.write_bytes(b"")
    result = CliRunner().invoke(app, _quick(setup, tmp_path / "kadid", tmp_path / "out"))
    assert result.exit_code == 2
    assert _one_line(result) == (
        f"error: 1 of 40 images could not be read: {bad}: empty file (0 bytes); copy or download it again "
        "(the other features are cached; a rerun retries only these)"
    )


def test_a_model_giving_nan_features_writes_nothing(setup, tmp_path):
    """A checkpoint with a NaN weight: one line, and the results of an earlier run in that folder stay as they were
    (it wrote a NaN regressor and results.json, then crashed formatting the report)."""
    model, _, _ = load_checkpoint(setup / "model.safetensors", device="cpu")
    with torch.no_grad():
        next(p for p in model.parameters() if p.ndim == 4)[0, 0, 0, 0] = float("nan")
    save_checkpoint(tmp_path / "nan.safetensors", model)
    out = tmp_path / "out"
    assert CliRunner().invoke(app, _quick(setup, setup / "kadid", out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    args = _quick(setup, setup / "kadid", out)
    args[args.index("--checkpoint") + 1] = str(tmp_path / "nan.safetensors")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert _one_line(result).startswith(f"error: checkpoint {tmp_path / 'nan.safetensors'}: non-finite features (NaN")
    assert _one_line(result).endswith("the model is damaged (check its weights); nothing was written")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_constant_scores_give_n_a_not_a_crash(setup, tmp_path):
    """Every correlation is undefined when all scores are equal: the tables say n/a (it was a TypeError)."""
    import shutil

    shutil.copytree(setup / "kadid", tmp_path / "kadid")
    rows = list(csv.reader(open(tmp_path / "kadid" / "dmos.csv")))
    with open(tmp_path / "kadid" / "dmos.csv", "w", newline="") as f:
        csv.writer(f).writerows([rows[0], *[[*r[:2], "3.000", r[3]] for r in rows[1:]]])
    result = CliRunner().invoke(app, _quick(setup, tmp_path / "kadid", tmp_path / "out"))
    assert result.exit_code == 0, result.output
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| kadid10k | n/a | n/a | n/a | n/a |" in table and "| gaublur | n/a | n/a |" in table
    assert "RuntimeWarning" not in result.output
    assert result.stdout.startswith("# kadid10k: 40 images")  # the bars go to stderr: stdout is the table alone


def test_run_evaluations_result_is_what_results_json_holds(setup, tmp_path):
    """docs/evaluation.md: ``out.result`` is results.json's content, so an undefined correlation (constant
    scores) is None there as in the file (it was NaN, which ``json.dumps(..., allow_nan=False)`` refuses)."""
    import shutil

    from arniqa.evaluate.run import EvaluationSpec, run_evaluation

    shutil.copytree(setup / "kadid", tmp_path / "kadid")
    rows = list(csv.reader(open(tmp_path / "kadid" / "dmos.csv")))
    with open(tmp_path / "kadid" / "dmos.csv", "w", newline="") as f:
        csv.writer(f).writerows([rows[0], *[[*r[:2], "3.000", r[3]] for r in rows[1:]]])
    spec = EvaluationSpec(
        dataset="kadid10k",
        root=tmp_path / "kadid",
        output=tmp_path / "out",
        checkpoint=setup / "model.safetensors",
        splits="2",
        crop_size=8,
        device="cpu",
        cache_dir=tmp_path / "cache",
        export_checkpoint=False,
        progress=False,
    )
    out = run_evaluation(spec, log=lambda line: None)
    assert out.result["summary"]["srcc"]["median"] is None
    assert json.loads(json.dumps(out.result, allow_nan=False)) == json.loads(out.files["json"].read_text())


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--alpha", "nan"), "--alpha must be a positive number, got nan"),
        (("--alpha", "-1"), "--alpha must be a positive number, got -1.0"),
        (("--splits", "0"), "splits '0': expected a number of random splits from 1 to 1000"),
    ],
)
def test_bad_numbers_are_refused_before_any_work(setup, tmp_path, extra, message):
    args = _quick(setup, setup / "kadid", tmp_path / "out")
    args[args.index("--splits") : args.index("--splits") + 2] = []  # each case sets its own
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 2 and message in result.output
    cache = tmp_path / "cache-quick"
    assert not cache.exists() or not any(cache.iterdir())  # no features were computed


def test_running_out_of_memory_is_one_line(setup, tmp_path, monkeypatch):
    """PyTorch's CPU allocator failing (--crop-size 100000) raises a RuntimeError: one line saying what to lower."""
    import arniqa.evaluate.features

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: not enough memory")

    monkeypatch.setattr(arniqa.evaluate.features, "dataset_features", no_memory)
    result = CliRunner().invoke(app, _quick(setup, setup / "kadid", tmp_path / "out"))
    assert result.exit_code == 2
    assert _one_line(result) == (
        "error: out of memory computing the features (RuntimeError); lower --batch-size or --crop-size"
    )


def test_an_error_that_only_mentions_allocation_is_not_out_of_memory(setup, tmp_path, monkeypatch):
    """Any RuntimeError whose text held "alloc" was 'out of memory computing the features; lower --batch-size': here
    a model file in a folder named allocations. It is not a memory error and is not reported as one."""
    import arniqa.evaluate.features

    error = RuntimeError("Error(s) in loading state_dict for ARNIQA: /data/allocations/model.pt")

    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(arniqa.evaluate.features, "dataset_features", fails)
    result = CliRunner().invoke(app, _quick(setup, setup / "kadid", tmp_path / "out"))
    assert result.exception is error and "out of memory" not in result.output


def test_a_dataloader_worker_killed_is_one_line_saying_what_to_lower(setup, tmp_path):
    """A worker killed by SIGKILL (the out-of-memory killer's signal) while computing the features was a traceback,
    exit 1."""
    from faults import cli_child

    setup_code = """
        from torch.utils.data import get_worker_info
        import arniqa.evaluate.features as features
        import arniqa.models.checkpoint as checkpoint
        checkpoint.ARNIQA = lambda name, **options: TinyARNIQA()  # the stand-in's checkpoint (the prelude's import)
        def killed(self, i):
            if get_worker_info() is not None:
                os.kill(os.getpid(), signal.SIGKILL)
        features._Crops.__getitem__ = killed
    """
    result = cli_child(*_quick(setup, setup / "kadid", tmp_path / "out", "--workers", "1"), setup=setup_code)
    assert result.returncode == 2, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")] == [
        "error: a DataLoader worker was killed computing the features (SIGKILL: most likely out of memory); "
        "lower --workers or --batch-size"
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "function, message",
    [
        ("load_dataset", "reading the dataset (MemoryError); free memory and rerun"),
        ("load_encoder", "loading the model (MemoryError); free memory, or choose another --device"),
        ("dataset_features", "computing the features (MemoryError); lower --batch-size or --crop-size"),
        ("evaluate_dataset", "fitting the ridge (MemoryError); free memory and rerun (the features are cached)"),
        ("tsne_plot", "computing the t-SNE (MemoryError); rerun without --tsne (the features are cached)"),
        ("atomic_writes", "writing the results (MemoryError); free memory and rerun (the features are cached)"),
    ],
)
def test_running_out_of_memory_names_the_step(setup, tmp_path, monkeypatch, function, message):
    """Every MemoryError was 'out of memory computing the features; lower --batch-size or --crop-size', wherever it
    happened (the ridge, the t-SNE, the plots): advice that could not help."""
    from tiny_arniqa import TinyARNIQA

    import arniqa.evaluate.features
    import arniqa.evaluate.run

    def no_memory(*args, **kwargs):
        raise MemoryError

    tiny = (TinyARNIQA().eval(), "tiny")
    monkeypatch.setattr(arniqa.evaluate.run, "load_encoder", lambda checkpoint, weights_dir, device: tiny)
    where = arniqa.evaluate.features if function == "dataset_features" else arniqa.evaluate.run  # imported there late
    monkeypatch.setattr(where, function, no_memory)
    result = CliRunner().invoke(app, _quick(setup, setup / "kadid", tmp_path / "out", "--tsne"))
    assert result.exit_code == 2
    assert _one_line(result) == f"error: out of memory {message}"


def test_a_csv_with_empty_distortion_cells_leaves_those_images_out_of_the_per_type_rows(setup, tmp_path):
    """They made a per-type row named 'None' in results.json, results.md and per_type_srcc.png; they are now in the
    overall results (all 40 images) and in no per-type row, and both files say how many there are."""
    import shutil

    shutil.copytree(setup / "kadid", tmp_path / "kadid")
    kinds = {"01": "gaublur", "11": "whitenoise"}
    rows = [r for r in csv.DictReader(open(tmp_path / "kadid" / "dmos.csv"))]
    with open(tmp_path / "kadid" / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "reference", "distortion", "dmos"])
        for r in rows:
            kind = "" if r["dist_img"].endswith("_11_04.png") else kinds[r["dist_img"][4:6]]
            w.writerow([f"images/{r['dist_img']}", r["ref_img"], kind, r["dmos"]])
    args = _quick(setup, tmp_path / "kadid" / "labels.csv", tmp_path / "out")
    args[args.index("--dataset") + 1] = "csv"
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["images"] == 40 and "gaublur" in res["per_type"]
    assert set(res["per_type"]) <= {"gaublur", "whitenoise"}  # whitenoise: 2 typed test images, a row needs 3
    assert res["images_without_type"] == 10
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| None |" not in md and "10 images without a distortion type" in md


def test_a_csv_with_distortion_types_and_no_reference_column_gets_the_per_type_table(setup, tmp_path):
    """It got no per-type table and no word why: types were read only with a reference column, which the table does
    not need (references make the splits reference-disjoint). The table is the one of a CSV whose references are
    all different, whose random splits are per image too."""
    import shutil

    shutil.copytree(setup / "kadid", tmp_path / "kadid")
    kinds = {"01": "gaublur", "11": "whitenoise"}
    rows = [r for r in csv.DictReader(open(tmp_path / "kadid" / "dmos.csv"))]
    for name, with_reference in (("no_reference.csv", False), ("own_reference.csv", True)):
        with open(tmp_path / "kadid" / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", *(["reference"] if with_reference else []), "distortion", "dmos"])
            for r in rows:
                path = f"images/{r['dist_img']}"
                w.writerow([path, *([path] if with_reference else []), kinds[r["dist_img"][4:6]], r["dmos"]])
    results = {}
    for name in ("no_reference.csv", "own_reference.csv"):
        args = _quick(setup, tmp_path / "kadid" / name, tmp_path / name)
        args[args.index("--dataset") + 1] = "csv"
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        results[name] = json.loads((tmp_path / name / "results.json").read_text())
    ours, reference = results["no_reference.csv"], results["own_reference.csv"]
    assert ours["per_type"] and ours["per_type"] == reference["per_type"]
    assert set(ours["per_type"]) == {"gaublur", "whitenoise"}
    assert "## Per distortion type" in (tmp_path / "no_reference.csv" / "results.md").read_text()
    assert (tmp_path / "no_reference.csv" / "per_type_srcc.png").is_file()


@pytest.mark.parametrize(
    "name, extra",
    [
        ("results.json", ()),
        ("regressor_kadid10k.safetensors", ()),
        ("per_type_srcc.png", ()),
        ("tsne.png", ("--tsne",)),
        ("cross_scatter.png", ("--cross-to", "kadid", "--cross-root")),
    ],
)
def test_an_output_file_that_is_a_folder_is_one_line_before_any_work(setup, tmp_path, name, extra):
    """results.json a folder: it was Python's `[Errno 21] Is a directory: '...'`, then the same line as now but
    only once every feature was computed and the ridge fitted; it is now the whole of the output, and no feature
    was computed (no cache folder)."""
    (tmp_path / "out" / name).mkdir(parents=True)
    extra = (*extra, str(setup / "kadid")) if "--cross-root" in extra else extra
    result = CliRunner().invoke(app, _quick(setup, setup / "kadid", tmp_path / "out", *extra))
    assert result.exit_code == 2
    assert result.output == (
        f"error: {tmp_path / 'out' / name}: cannot write it: is a folder (EISDIR); choose an output you can write to\n"
    )
    assert not (tmp_path / "cache-quick").exists()


def test_a_folder_named_as_an_output_this_run_does_not_write_is_left_alone(setup, tmp_path):
    """tsne.png and cross_scatter.png are written only with --tsne and --cross-to: folders of those names stay."""
    for name in ("tsne.png", "cross_scatter.png"):
        (tmp_path / "out" / name).mkdir(parents=True)
    result = CliRunner().invoke(app, _quick(setup, setup / "kadid", tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "results.json").is_file() and (tmp_path / "out" / "tsne.png").is_dir()


def test_a_full_disk_under_the_feature_cache_is_one_line_naming_the_cache_file(setup, tmp_path, monkeypatch):
    """It was Python's ``[Errno 28] No space left on device: '...features.npy'`` (the cache is not under -o). Then
    it ended '(or choose another output)', as if -o were at fault; it names what chose the cache now."""
    import errno

    import arniqa.evaluate.features

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(features))

    monkeypatch.setattr(arniqa.evaluate.features, "dataset_features", full)
    features = tmp_path / "cache-quick" / "key" / "features.npy"
    result = CliRunner().invoke(app, _quick(setup, setup / "kadid", tmp_path / "out"))
    assert result.exit_code == 2
    assert _one_line(result) == (
        f"error: {features}: cannot write it: disk full (ENOSPC); free space and rerun (or choose another --cache-dir)"
    )
    args = _quick(setup, setup / "kadid", tmp_path / "out")
    del args[args.index("--cache-dir") : args.index("--cache-dir") + 2]
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "shared"))
    features = tmp_path / "shared" / "features" / "key" / "features.npy"
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert _one_line(result) == (
        f"error: {features}: cannot write it: disk full (ENOSPC); free space and rerun (or set ARNIQA_CACHE to "
        "another folder, or choose a --cache-dir)"
    )


def test_a_cache_dir_that_cannot_be_made_is_one_line_naming_cache_dir(setup, tmp_path):
    """--cache-dir under a file: the line said 'choose an output you can write to' of the cache; it names
    --cache-dir now, and the -o folder made for the run is gone again."""
    (tmp_path / "notes").write_text("a file")
    args = _quick(setup, setup / "kadid", tmp_path / "out")
    args[args.index("--cache-dir") + 1] = str(tmp_path / "notes" / "cache")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.output == (
        f"error: {tmp_path / 'notes' / 'cache'}: cannot write it: {tmp_path / 'notes'} is a file, not a folder; "
        "choose another --cache-dir\n"
    )
    assert not (tmp_path / "out").exists()


def test_too_few_validation_images_for_the_alpha_search_is_said_before_any_work(setup, tmp_path):
    """4 references of 2 images: one reference (2 images) to validate on. The alpha search's refusal came after
    every feature was computed and said nothing of what to do; it now comes first and names the fixed alpha."""
    _kadid(tmp_path / "small", refs=4, levels=(1,))
    result = CliRunner().invoke(app, _quick(setup, tmp_path / "small", tmp_path / "out"))
    assert result.exit_code == 2
    assert _one_line(result).startswith(
        "error: kadid10k (2 random 70/10/20 splits, reference-disjoint, seed 0): alpha search needs"
    )
    assert _one_line(result).endswith("split 0 has 2: give a fixed alpha (--alpha 0.1, the reference's) or more images")
    cache = tmp_path / "cache-quick"
    assert not cache.exists() or not any(cache.iterdir())  # no features were computed
    fixed = CliRunner().invoke(app, _quick(setup, tmp_path / "small", tmp_path / "out", "--alpha", "0.1"))
    assert fixed.exit_code == 0, fixed.output


def test_a_dataset_error_leaves_no_empty_output_or_cache_folder(setup, tmp_path):
    """The -o folder (and its missing parents) and --cache-dir were made before the dataset was read, and left empty
    after the one-line error; folders that were there before stay."""
    _kadid(tmp_path / "small", refs=2, levels=(1,))  # 2 references: too few for the random splits
    out, cache = tmp_path / "new" / "out", tmp_path / "cache-quick"
    result = CliRunner().invoke(app, _quick(setup, tmp_path / "small", out))
    assert result.exit_code == 2 and "cannot split 2 groups" in _one_line(result)
    assert not (tmp_path / "new").exists() and not cache.exists()
    out.mkdir(parents=True)
    result = CliRunner().invoke(app, _quick(setup, tmp_path / "small", out))
    assert result.exit_code == 2 and out.is_dir() and not any(out.iterdir()) and not cache.exists()


@pytest.mark.parametrize(
    "dataset, root, extra, message",
    [
        ("kadid10k", "missing", [], "missing: dataset root not found; give the dataset's folder"),
        (
            "live",
            "kadid",
            [],
            "LIVE.txt: file not found (expected LIVE.txt with columns dis_img_path, dis_type, ref_img_path, score); "
            "give the dataset's folder as it is distributed",  # before: no more than what was expected
        ),
        ("kadid", "kadid", ["--cross-to", "live"], "--cross-to and --cross-root go together"),
        ("kadid", "kadid", ["--splits", "nosplits"], "nosplits': no such folder"),
        ("kadid", "kadid", ["--device", "gpu"], "device gpu is not a device: choose auto, cpu, cuda, cuda:N or mps"),
        ("kadid1k", "kadid", [], "unknown dataset 'kadid1k'"),
        # said after the models were imported (torch)
        (
            "kadid",
            "kadid",
            ["--checkpoint", "typo.safetensors"],
            "typo.safetensors: no such checkpoint file; check the path",
        ),
    ],
)
def test_a_usage_error_is_one_line_before_torch_is_imported(setup, tmp_path, dataset, root, extra, message):
    # before: the evaluation's model, checkpoint and feature modules (torch) were imported first: 3-6.5 s, 600 MB;
    # then scipy.stats (the metrics, imported with the run): 1.1 s of the 1.7 s left
    from fresh_cli import fresh_cli

    done, report = fresh_cli(*_args(setup, dataset, setup / root, tmp_path / "out", *extra))
    assert (done.returncode, report["heavy"], "scipy.stats" in report["scipy"]) == (2, [], False), done.stderr
    lines = done.stderr.splitlines()[:-1]  # the last: fresh_cli's report
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "out").exists()
