"""``arniqa.integrations.ray`` on a local Ray instance with 2 CPUs: the same rows as the local run, error
rows and exit status 1, resume, the map_batches class on bytes and decoded images, evaluation features."""

import csv
import io
import json
import os

import numpy as np
import pytest
import torch
from scoring_data import jpeg, make_shards, published_weights, write_shard
from typer.testing import CliRunner

try:  # not installed, or installed but not importable (pyarrow 26 refuses numpy 1.x): skipped, not an error
    import ray
    import ray.data
except ImportError as e:
    pytest.skip(f"Ray Data does not import ({e})", allow_module_level=True)

import arniqa.cli.evaluate  # noqa: E402, F401  (registers the verbs)
import arniqa.cli.score  # noqa: E402, F401
from arniqa.cli import app  # noqa: E402
from arniqa.inference import load  # noqa: E402
from arniqa.integrations.ray import ArniqaScorer, connected, extract_features_on_ray  # noqa: E402
from arniqa.models.explain import LABELS, fit_explainer, save_explainer  # noqa: E402

SHARDS = "{000000..000001}.tar"  # the two shards of ``inputs``


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    return published_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A folder of 6 JPEGs of three sizes, an unreadable file and an empty one, and two shards with bad members."""
    d = tmp_path_factory.mktemp("inputs")
    (d / "photos").mkdir()
    for k in range(6):
        (d / "photos" / f"p{k}.jpg").write_bytes(jpeg(40 + 8 * (k % 3), 36, 10 + k))
    (d / "photos" / "q_unreadable.jpg").write_text("not a JPEG")
    (d / "photos" / "r_empty.png").write_bytes(b"")
    make_shards(d)
    return d


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """The tests' stand-in model as an ONNX file (tests/tiny_arniqa.py), for the runs where the rows, not the
    encoder, are the point: Ray's actors load it in a blink, a published ResNet50 in seconds each."""
    from tiny_arniqa import tiny_onnx

    return tiny_onnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx")[2]


def _score(model, out, *args):
    """``arniqa score ARGS`` of ``model`` (a folder of published-layout weights, or an ONNX file), protocol whole,
    rows into ``out``."""
    given = "--weights-dir" if model.is_dir() else "--checkpoint"
    args = [*args, given, model, "--protocol", "whole", "-o", out]
    return CliRunner().invoke(app, ["score", *map(str, args)], catch_exceptions=False)


def _rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _same_rows(a, b):
    """The same paths and errors in the same order, scores within 1e-6 (raw scores, on KADID's 1-5 scale,
    within 4e-6: batches of other images round differently)."""
    assert [r["path"] for r in a] == [r["path"] for r in b]
    assert [r["error"] for r in a] == [r["error"] for r in b]
    for x, y in zip(a, b):
        if not x["error"]:
            assert float(x["score"]) == pytest.approx(float(y["score"]), abs=1e-6)
            assert float(x["raw_score"]) == pytest.approx(float(y["raw_score"]), abs=4e-6)


@pytest.fixture(scope="module")
def local_run(tiny_model, inputs, tmp_path_factory):
    """The rows of a local run (no Ray) of the stand-in model over the folder and the shards, and its exit status."""
    out = tmp_path_factory.mktemp("local") / "local.csv"
    r = _score(tiny_model, out, inputs / "photos", inputs / SHARDS)
    return r.exit_code, _rows(out)


def test_ray_run_gives_the_local_rows(tiny_model, inputs, local_run, tmp_path):
    code, local = local_run
    assert code == 1
    out = tmp_path / "ray.csv"
    r = _score(tiny_model, out, inputs / "photos", inputs / SHARDS, "--ray", "local", "--ray-workers", "2")
    assert r.exit_code == 1, r.stderr
    rows = _rows(out)
    _same_rows(rows, local)
    by = {row["path"]: row for row in rows}
    assert "a text file, not an image" in by[f"{inputs}/photos/q_unreadable.jpg"]["error"]
    assert "0 bytes" in by[f"{inputs}/photos/r_empty.png"]["error"]
    assert "a text file, not an image" in by[f"{inputs}/000000.tar/0001.jpg"]["error"]  # a corrupt member
    assert by[f"{inputs}/000000.tar/0004.jpg"]["error"] == ""  # the shard went on after it
    assert sum(bool(row["error"]) for row in rows) == 7 and len(rows) == 16
    assert "7 of 16 images could not be scored" in r.stderr


def test_ray_run_explains_as_the_local_run(weights_dir, inputs, tmp_path):
    """``--explain`` on Ray: the head (fitted on random features) runs on the features the actors send back,
    and gives the local run's explanation and severity columns; error rows stay unexplained."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(32, 4096, generator=g)
    head = fit_explainer(x, torch.eye(len(LABELS))[torch.arange(32) % len(LABELS)], x[:, 0], max_iter=5)
    head_file = save_explainer(tmp_path / "head.safetensors", head)
    runs = {}
    for name, extra in (("local", ()), ("ray", ("--ray", "local", "--ray-workers", "2"))):
        out = tmp_path / f"{name}.csv"
        r = _score(weights_dir, out, inputs / "photos", "--explain", "--explainer", head_file, *extra)
        assert r.exit_code == 1, r.stderr
        runs[name] = _rows(out)
    _same_rows(runs["ray"], runs["local"])
    explained = [(r["explanation"], r["severity"]) for r in runs["ray"] if not r["error"]]
    assert len(explained) == 6 and all(e and s for e, s in explained)
    assert all(not r["explanation"] and not r["severity"] for r in runs["ray"] if r["error"])
    for ray_row, local_row in zip(runs["ray"], runs["local"]):
        if ray_row["error"]:
            continue
        ray_top, local_top = (
            [t.rsplit(" ", 1) for t in row["explanation"].split("; ")] for row in (ray_row, local_row)
        )
        assert [label for label, _ in ray_top] == [label for label, _ in local_top]
        for (_, p), (_, q) in zip(ray_top, local_top):
            assert float(p) == pytest.approx(float(q), abs=0.011)  # both rounded to 2 decimals
        assert float(ray_row["severity"]) == pytest.approx(float(local_row["severity"]), abs=0.011)


def test_ray_run_explains_an_onnx_file_with_its_own_head(inputs, tmp_path, monkeypatch):
    """An ONNX file exported with an explanation head: the actors explain with its outputs and send the explanation
    back (the file has no embedding to send); the rows are the local run's."""
    from tiny_arniqa import tiny_checkpoint

    from arniqa.inference import export

    onnx = export(
        tmp_path / "model.onnx", tiny_checkpoint(tmp_path / "head.safetensors", monkeypatch), protocol="whole"
    )
    runs = {}
    for name, extra in (("local", ()), ("ray", ("--ray", "local", "--ray-workers", "2"))):
        out = tmp_path / f"{name}.csv"
        args = ["score", inputs / "photos", "--checkpoint", onnx, "--explain", "-o", out, *extra]
        r = CliRunner().invoke(app, list(map(str, args)), catch_exceptions=False)
        assert r.exit_code == 1, r.stderr
        runs[name] = _rows(out)
    _same_rows(runs["ray"], runs["local"])
    explained = [(r["explanation"], r["severity"]) for r in runs["ray"]]
    assert explained == [(r["explanation"], r["severity"]) for r in runs["local"]]
    assert sum(bool(e and s) for e, s in explained) == 6


def test_resumed_ray_run_skips_what_was_done(tiny_model, inputs, local_run, tmp_path):
    _, local = local_run
    out = tmp_path / "resumed.csv"
    assert _score(tiny_model, out, inputs / "photos", "--ray", "local").exit_code == 1
    before = out.read_text()
    r = _score(tiny_model, out, inputs / "photos", inputs / SHARDS, "--ray", "local", "--resume")
    assert r.exit_code == 1 and "resuming: 8 of 16 paths" in r.stderr
    assert "7 of 16 images could not be scored, 2 of them in the rows resumed" in r.stderr  # as one run of the 16
    assert out.read_text().startswith(before)
    _same_rows(_rows(out), local)


def test_map_batches_class_on_bytes_and_decoded_images(weights_dir, inputs):
    photos = sorted((inputs / "photos").glob("p*.jpg"))
    options = {"weights_dir": str(weights_dir), "protocol": "whole", "engine": "torch", "embedding": True}
    reference = load("arniqa-kadid10k", weights_dir=weights_dir, protocol="whole", engine="torch")
    expected = reference.score(photos, return_features=True)
    with connected("local"):
        one_actor = ray.data.ActorPoolStrategy(size=1)
        scorer = dict(fn_constructor_kwargs=options, batch_format="numpy", compute=one_actor, num_cpus=1)
        rows = [{"path": str(p), "bytes": p.read_bytes()} for p in photos] + [{"path": "bad", "bytes": b"xx"}]
        ds = ray.data.from_items(rows, override_num_blocks=2).map_batches(ArniqaScorer, batch_size=4, **scorer)
        got = {r["path"]: r for r in ds.take_all()}
        images = ray.data.read_images([str(p) for p in photos], include_paths=True, mode="RGB")
        decoded = images.map_batches(ArniqaScorer, batch_size=2, **scorer).take_all()
    assert (
        "bytes" not in got["bad"]
        and "a text file, not an image" in got["bad"]["error"]
        and np.isnan(got["bad"]["score"])
    )
    for p, s, raw, f in zip(photos, expected.scores, expected.raw_scores, expected.features):
        assert got[str(p)]["error"] is None
        assert got[str(p)]["score"] == pytest.approx(float(s), abs=1e-6)
        assert got[str(p)]["raw_score"] == pytest.approx(float(raw), abs=4e-6)  # as in _same_rows
        np.testing.assert_allclose(got[str(p)]["embedding"], f.mean(0).numpy(), atol=1e-6)
    by_path = {str(r["path"]).split("/")[-1]: r["score"] for r in decoded}
    for p, s in zip(photos, expected.scores):
        assert by_path[p.name] == pytest.approx(float(s), abs=1e-6)  # decoded by Ray, the same pixels


def test_names_that_are_not_utf8_reach_the_workers_as_they_are(tmp_path, monkeypatch):
    """A file or shard member whose name is not UTF-8 (b'\\xff.jpg') is no Arrow string: Ray's worker fell back to
    pickling the column and said so on stderr, `Failed to convert column 'path' into pyarrow array`, once per worker.
    Names go as bytes now, so a Ray that refuses that fallback scores them too, as the local run does."""
    from tiny_arniqa import tiny_onnx

    _, _, onnx = tiny_onnx(tmp_path / "tiny.onnx")
    photo = tmp_path / os.fsdecode(b"\xff.jpg")
    photo.write_bytes(jpeg(40, 36, 1))
    shard = write_shard(tmp_path / "s.tar", {os.fsdecode(b"m\xfe.jpg"): jpeg(48, 40, 2)})
    monkeypatch.setattr(ray.data.DataContext.get_current(), "enable_fallback_to_arrow_object_ext_type", False)
    outputs = []
    for ray_args in ([], ["--ray", "local"]):
        outputs.append(tmp_path / f"{len(ray_args)}.csv")
        args = [photo, shard, "--checkpoint", onnx, "-o", outputs[-1], *ray_args]
        r = CliRunner().invoke(app, ["score", *map(str, args)])
        assert r.exit_code == 0, r.output
    rows = _rows(outputs[1])
    assert [row["path"] for row in rows] == [str(photo).replace("\udcff", "\\xff"), f"{shard}/m\\xfe.jpg"]
    assert outputs[1].read_bytes() == outputs[0].read_bytes()


def test_map_batches_class_asked_to_explain_a_model_without_a_head_is_refused_when_made(tmp_path):
    """ArniqaScorer(explain=True) on a model with no explanation head was made, and each batch raised then, once
    the data was flowing through the actors."""
    from tiny_arniqa import _tiny_model

    from arniqa.inference.onnx_export import export_onnx

    # with the embedding: a head file could run on it (one without says to export it again, tests/inference)
    model = export_onnx(*_tiny_model(), tmp_path / "tiny.onnx", protocol="whole", embedding=True)
    with pytest.raises(ValueError, match=f"^{model}: this model has no explanation head; fit one with"):
        ArniqaScorer(str(model), explain=True)


def test_evaluation_features_on_ray_fill_the_same_cache(inputs, tmp_path):
    import torch

    from arniqa.evaluate.features import DONE, FAILED, FeatureCache, FeatureError, FeatureProtocol, extract_features
    from arniqa.models.arniqa import ARNIQA
    from arniqa.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = ARNIQA("resnet50").eval()
    [ckpt] = save_checkpoint(tmp_path / "model.safetensors", model)
    paths = sorted((inputs / "photos").glob("p*.jpg"))
    protocol = FeatureProtocol(crop_size=32)
    local = extract_features(model, paths, protocol, progress=False)
    bad = [*paths, inputs / "photos" / "q_unreadable.jpg"]
    runner = lambda *a, **k: extract_features_on_ray(*a, checkpoint=ckpt, batch_size=2, device="cpu", workers=2, **k)  # noqa: E731
    with connected("local"), pytest.raises(FeatureError, match="1 of 7"):  # reported after the others are done
        extract_features(model, bad, protocol, cache_dir=tmp_path / "cache", progress=False, runner=runner)
    folder = next((tmp_path / "cache").iterdir())
    cache = FeatureCache(folder, len(bad))
    cache.load()
    assert list(cache.status) == [DONE] * len(paths) + [FAILED]
    assert "a text file, not an image" in json.loads((folder / "errors.json").read_text())[str(len(paths))]
    np.testing.assert_allclose(np.load(folder / "features.npy")[: len(paths)], local, atol=1e-6)
    with connected("local"):
        again = extract_features(model, paths, protocol, cache_dir=tmp_path / "cache2", progress=False, runner=runner)
    np.testing.assert_allclose(again, local, atol=1e-6)
    cached = extract_features(
        model,
        paths,
        protocol,
        cache_dir=tmp_path / "cache2",
        progress=False,
        runner=lambda *a, **k: pytest.fail("the cache was not used"),
    )
    np.testing.assert_array_equal(cached, again)  # the key of a local run finds the Ray run's features


def test_more_workers_than_the_cluster_holds_start_with_what_fits(tiny_model, inputs, local_run, tmp_path):
    """--ray-workers 1000 on 2 CPUs: the actor pool starts with 2 actors and the run gives the local rows (it waited
    for all 1000 actors to start, forever, its memory growing)."""
    from arniqa.integrations.ray import worker_slots

    actors, slots = worker_slots("cpu", 1000)
    assert actors == 2 and slots["num_cpus"] == 1
    out = tmp_path / "many.csv"
    r = _score(tiny_model, out, inputs / "photos", inputs / SHARDS, "--ray", "local", "--ray-workers", "1000")
    assert r.exit_code == 1, r.stderr
    _same_rows(_rows(out), local_run[1])


def test_the_pool_never_asks_for_more_actors_than_it_has_blocks():
    """Ray warns (a line of its internals, on the user's screen) when the pool's minimum of actors exceeds the
    blocks it gets: one image on 2 CPUs asked for 2 actors; 5 rows for 4 actors made 3 blocks."""
    from arniqa.integrations.ray import _blocks, worker_slots

    for workers in (None, 1, 2, 1000):
        for items in (1, 2, 3, 50):
            actors, slots = worker_slots("cpu", workers, items)
            assert 1 <= actors <= items and slots["compute"].max_size <= items
            if items == 1:  # the one actor holds all the CPUs of the cluster (2)
                assert slots["num_cpus"] == 2
    for rows in range(1, 41):
        for actors in range(1, rows + 1):
            for per_call in (1, 3, 32):
                size, blocks = _blocks(list(range(rows)), per_call, actors)
                assert 1 <= size <= per_call and blocks == -(-rows // size) and blocks >= actors


def test_one_image_on_ray_gives_no_warning_about_idle_actors(tiny_model, inputs, tmp_path):
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r = _score(tiny_model, tmp_path / "one.csv", inputs / "photos" / "p0.jpg", "--ray", "local")
    assert r.exit_code == 0, r.stderr
    assert len(_rows(tmp_path / "one.csv")) == 1
    assert not [w for w in seen if "concurrent actors" in str(w.message)], [str(w.message) for w in seen]


def test_a_local_ray_run_says_only_arniqa_lines_on_stderr(inputs, tmp_path):
    """`arniqa score --ray local` in a process of its own (the Ray instance it starts, Ray's defaults): stderr held
    Ray's note that token authentication is on and how to opt out, on every run; now nothing (off a terminal, no
    bar). Left: Ray Data's line about its actors' constructor arguments (ray-project/ray#57733, docs/usage.md)."""
    import subprocess
    import sys
    from pathlib import Path

    from tiny_arniqa import tiny_onnx

    _, _, onnx = tiny_onnx(tmp_path / "tiny.onnx")
    ours = ("RAY_AUTH_MODE", "RAY_ADDRESS", "FORCE_COLOR", "TTY_COMPATIBLE")  # Ray's defaults; stderr no terminal
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    photos = [inputs / "photos" / "p0.jpg", inputs / "photos" / "p1.jpg"]
    command = [sys.executable, "-m", "arniqa", "score", *photos, "--checkpoint", onnx, "-o", tmp_path / "s.csv"]
    r = subprocess.run([*map(str, command), "--ray", "local"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(_rows(tmp_path / "s.csv")) == 2
    lines = [line for line in r.stderr.splitlines() if "has constructor arguments in the object store" not in line]
    assert lines == [], lines


def test_local_starts_an_instance_of_its_own_whatever_ray_address_says(monkeypatch):
    """With RAY_ADDRESS set (a Ray job's environment, a shell that exported it) or an instance of `ray start` on this
    machine, `--ray local` connected there instead of starting its own instance: with nothing behind the address, 2
    minutes of Ray's retries. Now Ray is asked for a new instance, whatever the environment says (its rule:
    ``canonicalize_bootstrap_address`` gives no address to connect to)."""
    from ray._private.services import canonicalize_bootstrap_address

    asked = []

    def init(**options):
        asked.append(options)
        raise ConnectionAbortedError("asked")

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a process not yet connected
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(ConnectionAbortedError), connected("local"):
        pass
    [options] = asked
    assert canonicalize_bootstrap_address(options.get("address")) is None


def test_an_address_where_nothing_answers_is_one_line_at_once(weights_dir, inputs, tmp_path, monkeypatch):
    """A HOST:PORT (or ray://) address with nothing behind it: one line, exit 2, without asking Ray, which retried
    for minutes (over 5 on this machine)."""
    import socket

    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def never(*args, **kwargs):
        raise AssertionError("ray.init was asked")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a process not yet connected
    monkeypatch.setattr(ray, "init", never)
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        r = _score(weights_dir, tmp_path / "out.csv", inputs / "photos", "--ray", address)
        assert r.exit_code == 2
        errors = [line for line in r.stderr.splitlines() if line.startswith("error")]  # the local Ray logs here too
        assert errors == [
            f"error: cannot connect to Ray at {address!r}: nothing answers at 127.0.0.1:{port} (Connection refused); "
            "check the address and that the cluster is up"
        ]
        assert not (tmp_path / "out.csv").exists()


def _gone_once_loaded(module, name: str, weights_dir, tmp_path, monkeypatch):
    """A copy of ``weights_dir`` whose ARNIQA.pth goes when ``module.name`` (what starts the Ray actors) is called:
    the driver loaded the model, the workers will not find it."""
    import shutil

    mine = tmp_path / "weights"
    shutil.copytree(weights_dir, mine)
    start = getattr(module, name)

    def then_gone(*args, **kwargs):
        (mine / "ARNIQA.pth").unlink()
        return start(*args, **kwargs)

    monkeypatch.setattr(module, name, then_gone)
    return mine


def test_a_model_a_worker_cannot_load_is_the_one_line_of_a_run_without_ray(weights_dir, inputs, tmp_path, monkeypatch):
    """The encoder file gone on the workers' node after the model loaded here: the actors' load failed and the run
    ended in Ray's traceback of the actor, `error: the Ray run stopped (...)`. Now it is the line of a run without
    Ray that finds the file missing, and its exit code."""
    import arniqa.cli.score as score

    mine = _gone_once_loaded(score, "_ray_scorer", weights_dir, tmp_path, monkeypatch)
    r = _score(mine, tmp_path / "ray.csv", inputs / "photos", "--ray", "local", "--ray-workers", "1")
    local = _score(mine, tmp_path / "local.csv", inputs / "photos")  # the file is gone here too now
    assert local.exit_code == 2 and len(local.stderr.splitlines()) == 1 and "ARNIQA.pth" in local.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error")]  # the local Ray logs here too
    assert (r.exit_code, errors) == (2, local.stderr.splitlines()), r.stderr
    assert "Traceback" not in r.output


def test_a_worker_running_out_of_memory_loading_is_said_as_without_ray(weights_dir, inputs, tmp_path, monkeypatch):
    """A worker's load failure comes back to the driver with the errors it was raised from, so memory running out
    (only the cause saying so) is out of memory there too, and `arniqa score --ray` says it in the line of a run
    without Ray that runs out of memory loading; an error of another kind is raised in the actor (Ray stops the
    run)."""
    import arniqa.cli.score as score
    import arniqa.inference
    import arniqa.models.published
    from arniqa.integrations.ray import WorkerLoadError, _raised_again, _ScoringActor
    from arniqa.utils.runtime import device_out_of_memory, out_of_memory

    def no_memory(*args, **kwargs):
        try:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        except torch.OutOfMemoryError as e:
            raise RuntimeError("loading failed") from e

    real_load = arniqa.inference.load
    monkeypatch.setattr(arniqa.inference, "load", no_memory)  # in the actor
    actor = _ScoringActor("model.safetensors")
    rows = actor({"index": np.arange(3), "path": np.array(["a", "b", "c"])})
    assert list(rows["index"]) == [0, 1, 2] and len(rows["load_error"]) == 3
    error = WorkerLoadError(_raised_again(rows["load_error"][0])).error
    assert type(error) is RuntimeError and str(error) == "loading failed"
    assert out_of_memory(error) and device_out_of_memory(error)

    monkeypatch.setattr(arniqa.inference, "load", real_load)  # here, the model loads

    class Stopping:  # a RayScorer whose worker sent that back
        def iter_scores(self, *args, **kwargs):
            raise WorkerLoadError(error)
            yield

    monkeypatch.setattr(score, "_ray_scorer", lambda *args: (Stopping(), (RuntimeError,), (WorkerLoadError,)))
    r = _score(weights_dir, tmp_path / "ray.csv", inputs / "photos", "--ray", "local", "--engine", "torch")
    monkeypatch.setattr(arniqa.models.published, "published_encoder", no_memory)  # the same, loading here
    local = _score(weights_dir, tmp_path / "local.csv", inputs / "photos", "--engine", "torch")
    assert local.exit_code == 2 and local.stderr.startswith("error: arniqa-kadid10k: out of memory loading")
    errors = [line for line in r.stderr.splitlines() if line.startswith("error")]  # the bar's line is there too
    assert (r.exit_code, errors) == (2, local.stderr.splitlines())

    class Unpicklable(ValueError):  # its arguments are not its args: pickle cannot make it again
        def __init__(self, path, why):
            super().__init__(f"{path}: {why}")

    def bad_file(*args, **kwargs):
        raise Unpicklable("model.safetensors", "damaged; export it again")

    monkeypatch.setattr(arniqa.inference, "load", bad_file)
    blob = _ScoringActor("model.safetensors")({"index": np.arange(1), "path": np.array(["a"])})["load_error"][0]
    again = _raised_again(blob)  # still a ValueError: one line, not a traceback
    assert isinstance(again, ValueError) and str(again) == "model.safetensors: damaged; export it again"

    def bug(*args, **kwargs):
        raise KeyError("a bug, not the user's file")

    monkeypatch.setattr(arniqa.inference, "load", bug)
    with pytest.raises(KeyError):
        _ScoringActor("model.safetensors")


def _evaluate(weights_dir, root, out, *args):
    """``arniqa evaluate ARGS`` of the published-layout model on the CSV dataset at ``root`` (one split, a fixed
    alpha, 8-px crops), its feature cache beside ``out``."""
    args = [
        *("--dataset", "csv", "--root", root, "--weights-dir", weights_dir, "-o", out, "--cache-dir", f"{out}-cache"),
        *("--splits", "1", "--alpha", "0.1", "--crop-size", "8", "--device", "cpu", "--no-export-checkpoint", *args),
    ]
    return CliRunner().invoke(app, ["evaluate", *map(str, args)], catch_exceptions=False)


@pytest.fixture
def labelled(inputs, tmp_path):
    """A CSV dataset of the 6 photos (labels.csv beside them)."""
    import shutil

    root = tmp_path / "labelled"
    shutil.copytree(inputs / "photos", root)
    rows = [f"{p.name},{k}" for k, p in enumerate(sorted(root.glob("p*.jpg")))]
    (root / "labels.csv").write_text("\n".join(["path,mos", *rows]) + "\n")
    return root


def test_an_encoder_a_worker_cannot_load_is_the_one_line_of_an_evaluation_without_ray(
    weights_dir, labelled, tmp_path, monkeypatch
):
    """As for score: ARNIQA.pth gone after the evaluation loaded it here; the feature actors' load failed and the run
    ended in Ray's traceback of the actor and `error: the Ray run stopped (...)`. Now it is the line of an evaluation
    without Ray that finds the file missing, and its exit code."""
    import arniqa.integrations.ray as cluster

    mine = _gone_once_loaded(cluster, "extract_features_on_ray", weights_dir, tmp_path, monkeypatch)
    r = _evaluate(mine, labelled, tmp_path / "ray", "--ray", "local", "--ray-workers", "1")
    local = _evaluate(mine, labelled, tmp_path / "local")  # the file is gone here too now
    assert local.exit_code == 2 and len(local.stderr.splitlines()) == 1 and "ARNIQA.pth" in local.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error")]  # the local Ray logs here too
    assert (r.exit_code, errors) == (2, local.stderr.splitlines()), r.stderr
    assert "Traceback" not in r.output


def test_an_evaluation_worker_running_out_of_memory_loading_is_said_as_without_ray(
    weights_dir, labelled, tmp_path, monkeypatch
):
    """The feature actor sends back memory running out loading the encoder (the cause alone saying so) as the scoring
    actor does; `arniqa evaluate --ray` says it in the line of an evaluation without Ray that runs out of memory
    loading the model (not 'computing the features', the step the driver is at)."""
    import arniqa.evaluate.run
    from arniqa.integrations.ray import WorkerLoadError, _FeatureActor, _raised_again
    from arniqa.utils.runtime import out_of_memory

    def no_memory(*args, **kwargs):
        try:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        except torch.OutOfMemoryError as e:
            raise RuntimeError("loading failed") from e

    real_load = arniqa.evaluate.run.load_encoder
    monkeypatch.setattr(arniqa.evaluate.run, "load_encoder", no_memory)  # in the actor
    rows = _FeatureActor(device="cpu")({"index": np.arange(2), "path": np.array(["a", "b"])})
    assert list(rows["index"]) == [0, 1] and len(rows["load_error"]) == 2
    error = _raised_again(rows["load_error"][0])
    assert type(error) is RuntimeError and str(error) == "loading failed" and out_of_memory(error)

    def stopping(*args, **kwargs):  # a run whose worker sent that back
        raise WorkerLoadError(error)

    monkeypatch.setattr(arniqa.evaluate.run, "load_encoder", real_load)  # here, the encoder loads
    monkeypatch.setattr(arniqa.integrations.ray, "extract_features_on_ray", stopping)
    r = _evaluate(weights_dir, labelled, tmp_path / "ray", "--ray", "local")
    monkeypatch.setattr(arniqa.evaluate.run, "load_encoder", no_memory)  # the same, loading here
    local = _evaluate(weights_dir, labelled, tmp_path / "local")
    assert local.exit_code == 2 and local.stderr.startswith("error: out of memory loading the model")
    errors = [line for line in r.stderr.splitlines() if line.startswith("error")]  # the log line is there too
    assert (r.exit_code, errors) == (2, local.stderr.splitlines()), r.stderr


def test_the_workers_warnings_about_files_are_raised_on_the_driver(tiny_model, tmp_path):
    """The warning that a file is animated (its first frame scored) or over --max-side was printed by each Ray worker
    as two lines of Python's behind Ray's prefix, and the --max-side ones were lost; the command could not sum them
    up. Now the workers send them back and the driver raises them, each once, as a run without Ray does."""
    import warnings

    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(3):
        a, b = (Image.fromarray(rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)) for _ in range(2))
        a.save(tmp_path / f"a{k}.gif", save_all=True, append_images=[b])
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / f"b{k}.png")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r = _score(tiny_model, tmp_path / "s.csv", *sorted(tmp_path.glob("[ab]*")), "--max-side", 32, "--ray", "local")
    assert r.exit_code == 0, r.stderr
    said = sorted(str(w.message) for w in seen if str(w.message).startswith(str(tmp_path)))
    gif = ": an animated or multi-page image; its first frame is scored, the others are not"
    assert said == [f"{tmp_path}/a{k}.gif{gif}" for k in range(3)] + [
        f"{tmp_path}/b{k}.png: 50x40 exceeds max_side=32; downscaled to 32x26 before scoring" for k in range(3)
    ]


def test_a_workers_warning_about_no_file_is_said_once_whatever_the_batches(tmp_path):
    """A worker's warning that names no file (a library's note) came back with each batch and was raised again for
    each: Python's once-per-place rule forgets what it said whenever the warning filters change (a FileWarning's
    first, any catch_warnings), so a run printed it again and again. Now the driver says it once; the warnings about
    files are each raised, as before. The batches are made here, as Ray hands them to the driver."""
    import warnings

    from arniqa.integrations.ray import _batches
    from arniqa.utils.messages import FileWarning

    def batch(k):
        said = [[None, "a library's note"], ["animated", f"a{k}.gif: animated"], [None, f"note {k % 2}"]]
        return {"index": np.arange(2), "warnings": np.array([json.dumps(said), ""], dtype=object)}

    class Batches:
        def iter_batches(self, **options):
            return iter([batch(k) for k in range(4)])

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert [b["index"].tolist() for b in _batches(Batches())] == [[0, 1]] * 4
    files = [str(w.message) for w in seen if isinstance(w.message, FileWarning)]
    others = [str(w.message) for w in seen if not isinstance(w.message, FileWarning)]
    assert files == [f"a{k}.gif: animated" for k in range(4)]
    assert others == ["a library's note", "note 0", "note 1"]
