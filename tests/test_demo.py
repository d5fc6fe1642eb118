import csv
import re
import shlex

import numpy as np
import pytest
from typer.testing import CliRunner

import arniqa.cli.score  # noqa: F401  (registers the verb)
from arniqa.cli import app
from arniqa.demo import WARNING, check_same_run, run_demo, sample_photos
from arniqa.evaluate.features import FeatureProtocol, extract_features
from arniqa.models.checkpoint import load_checkpoint
from arniqa.train import ConfigError


def test_sample_photos_ship_with_the_dependencies(tmp_path):
    paths = sample_photos(tmp_path)
    names = {p.stem for p in paths}
    assert {"astronaut", "coffee", "chelsea", "rocket", "china", "flower"} <= names
    assert paths == sorted(paths) and all(p.stat().st_size > 10_000 for p in paths)


def test_a_photo_cut_off_mid_write_is_written_again(tmp_path, monkeypatch):
    """A demo killed while writing a sample photo left it cut off, and every rerun kept it (it exists)."""
    from PIL import Image

    from arniqa.data.samples import sample_arrays

    real_save = Image.Image.save

    def dies_midway(self, fp, *args, **kwargs):
        open(fp, "wb").write(b"\x89PNG\r\n\x1a\n cut off")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", dies_midway)
    with pytest.raises(OSError):
        sample_photos(tmp_path)
    monkeypatch.setattr(Image.Image, "save", real_save)
    arrays = sample_arrays()
    for path in sample_photos(tmp_path):
        assert np.array_equal(np.asarray(Image.open(path)), arrays[path.stem])


def test_the_demo_trains_and_loads_its_model_on_the_device_auto_picks(tmp_path, monkeypatch):
    """--device auto, which --help offers, trained, then stopped at a traceback: torch took "auto" for a device."""
    import torch

    import arniqa.demo

    class Trained(Exception):
        pass

    def stop(*args, **kwargs):  # the stage after the model is loaded
        raise Trained

    monkeypatch.setattr(arniqa.demo, "build_synthetic", stop)
    lines = []
    with pytest.raises(Trained):
        run_demo(tmp_path / "demo", steps=1, crop_size=32, device="auto", progress=False, log=lines.append)
    picked = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert lines[1].endswith(f"32 px crops, {picked}")
    assert (tmp_path / "demo" / "run" / "model.safetensors").exists()


@pytest.mark.slow
def test_demo_runs_every_stage(tmp_path):
    report = run_demo(
        tmp_path / "demo",
        steps=1,
        crop_size=32,
        synthetic_size=(48, 32),
        types=("gaublur",),
        progress=False,
        log=lambda *_: None,
    )
    text = report.read_text()
    assert WARNING in text and "SRCC" in text and "report.png" in text
    assert (tmp_path / "demo" / "report.png").stat().st_size > 1000
    assert (tmp_path / "demo" / "run" / "model.safetensors").exists()
    assert text.count("| china") == 3 and text.count("| flower") == 3  # pristine + 2 degraded each

    # model.safetensors holds the ridge of the report: it reproduces the report's table from the demo's features
    model, regressor, _ = load_checkpoint(tmp_path / "demo" / "model.safetensors")
    table = re.findall(r"^\| (\S+\.png) \| [^|]+ \| (-?[0-9.]+) \|$", text, flags=re.M)
    examples = [tmp_path / "demo" / "examples" / name for name, _ in table]
    feats = extract_features(model, examples, FeatureProtocol(crop_size=32), progress=False)
    mine = (np.asarray(feats, dtype=np.float64) @ regressor.weight.detach().double().numpy()[0]).mean(1)
    np.testing.assert_allclose(mine + float(regressor.bias.detach()), [float(v) for _, v in table], atol=0.006)

    # the report ends with the arniqa score command that uses it; run it
    command = re.findall(r"```bash\n(.+)\n```", text)[-1]
    assert text.rstrip().endswith("```") and "--checkpoint" in command
    args = shlex.split(command)
    assert args[:2] == ["arniqa", "score"]
    result = CliRunner().invoke(app, args[1:])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "demo" / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in examples)
    assert all(r["error"] == "" for r in rows)
    assert all(float(r["score"]) == pytest.approx((float(r["raw_score"]) - 1) / 4, abs=1e-6) for r in rows)

    # a rerun with other settings reused the 1-step model, and its report and checkpoint said 2 steps / 40 px
    before = report.read_bytes(), (tmp_path / "demo" / "model.safetensors").read_bytes()
    for steps, crop in ((2, 32), (1, 40)):
        with pytest.raises(ValueError, match=r"run: trained with --steps 1 and --crop-size 32 \(batch 4\), not"):
            run_demo(tmp_path / "demo", steps=steps, crop_size=crop, synthetic_size=(48, 32), types=("gaublur",))
    assert (report.read_bytes(), (tmp_path / "demo" / "model.safetensors").read_bytes()) == before


def test_the_demos_step_lines_go_to_stderr(tmp_path, monkeypatch):
    """`arniqa demo`'s step lines (`[1/5] sample photos -> ...`) went to stdout with its result; they are on stderr
    now, as every verb's progress, and stdout holds the report's path and the warning about it."""
    import arniqa.demo
    from arniqa.cli import _register

    def demo(output, log, **settings):
        log(f"[1/5] sample photos -> {output / 'photos'}")
        return output / "report.md"

    monkeypatch.setattr(arniqa.demo, "run_demo", demo)
    _register()
    result = CliRunner().invoke(app, ["demo", "-o", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"report: {tmp_path / 'demo' / 'report.md'}\n{WARNING}\n"
    assert result.stderr == f"[1/5] sample photos -> {tmp_path / 'demo' / 'photos'}\n"


def test_a_signal_in_the_demos_training_is_one_line_and_128_plus_its_number(tmp_path, monkeypatch):
    """The training's Stopped (a signal, the state saved) went up as a traceback, exit 1."""
    import signal

    import arniqa.demo
    from arniqa.cli import _register
    from arniqa.train.stopping import Stopped

    def stopped(config, resume=None):
        raise Stopped(signal.SIGHUP, "at epoch 0, step 2; state.pt holds global step 2", tmp_path / "no")

    monkeypatch.setattr(arniqa.demo, "train", stopped)
    _register()
    result = CliRunner().invoke(app, ["demo", "-o", str(tmp_path / "demo"), "--steps", "2"])
    assert result.exit_code == 128 + signal.SIGHUP
    assert [line for line in result.output.splitlines() if line.startswith("error: ")] == [
        "error: stopped by SIGHUP at epoch 0, step 2; state.pt holds global step 2; "
        "rerun arniqa demo with the same -o to go on"
    ]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("train: 1\n", "not the config of a training run (train: expected a mapping, got 1)"),
        ("train: {max_steps: 12, bogus: 1}\n", "not the config of a training run (unknown config key train.bogus"),
        ("train: [\n", "invalid YAML (line 2, column 1: expected the node content"),
        ("train: &t {max_steps: *t}\n", "invalid YAML (the collection at line 1 holds itself through an alias"),
    ],
)
def test_a_damaged_config_in_the_demos_run_folder_is_one_line_naming_it(tmp_path, text, problem):
    """`arniqa demo -o DIR` reads DIR/run/config.yaml to check a rerun's settings: a damaged or foreign one was a
    TypeError, KeyError or PyYAML traceback (read with yaml.safe_load, then indexed)."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(text)
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'run' / 'config.yaml'}: {problem}")):
        check_same_run(tmp_path / "run", 12, 64, 4)
    from arniqa.cli import _register

    _register()
    result = CliRunner().invoke(app, ["demo", "-o", str(tmp_path)])
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert result.exit_code == 2 and len(errors) == 1 and problem in errors[0] and "Traceback" not in result.output


def test_the_demos_examples_keep_the_pixel_bound(tmp_path, monkeypatch):
    """score_examples opened its photos with PIL's limit alone, unlike every other reader; an image over the
    project's bound (100 million pixels) is now refused from its header, before decoding."""
    from imaging import png_header_only
    from PIL import PngImagePlugin

    from arniqa.data.images import ImageError
    from arniqa.demo import score_examples

    decoded = []
    decode = lambda self: decoded.append(self.size) or 1 / 0  # noqa: E731  (counted, then stopped)
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", decode)
    big = tmp_path / "big.png"
    big.write_bytes(png_header_only(10_001, 10_000))  # 100,010,000 pixels in 100 bytes
    with pytest.raises(ImageError, match="image too large: 100010000 pixels, over the bound of 100000000"):
        score_examples(None, [big], tmp_path / "examples", None, None, "whole", "cpu")
    assert decoded == []


def test_a_full_disk_in_the_demos_training_says_to_rerun_the_demo_which_resumes_it(tmp_path, monkeypatch):
    """The trainer's line said 'then resume with --resume DEMO/run/state.pt', an option arniqa demo does not have.
    It says to rerun the demo, and the rerun resumes the run from that state.pt."""
    from faults import cli, cli_child, demo_photos, last_line_error
    from tiny_arniqa import TinyARNIQA

    import arniqa.demo
    import arniqa.train.loop as loop

    out = tmp_path / "demo"
    demo_photos(out / "photos")
    # the first state.pt written (step 2, an epoch: 8 photos, batch 4), the disk fills: no file grows past half
    # its size (EFBIG, as on a full disk), which the logs stay under
    fill_after_first_state = """
import resource
real = loop.Trainer.save_state
def save_state(self):
    real(self)
    size = (self.output / "state.pt").stat().st_size // 2
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
loop.Trainer.save_state = save_state
"""
    args = ("demo", "-o", out, "--steps", 10, "--crop-size", 32)
    first = cli_child(*args, setup=fill_after_first_state)
    assert first.returncode == 2, first.stderr
    line = last_line_error(first.stderr)
    assert line.endswith(
        "; raise the file-size limit with ulimit -f; then rerun arniqa demo with the same -o to go on"
    ), line
    assert "--resume" not in first.stderr

    class Trained(Exception):
        pass

    def stop_after_training(*args, **kwargs):
        raise Trained

    monkeypatch.setattr(loop, "build_model", lambda config: TinyARNIQA())
    monkeypatch.setattr(arniqa.demo, "load_checkpoint", stop_after_training)
    again = cli(*args)  # as the line says
    assert isinstance(again.exception, Trained), again.output
    assert f"resumed from {out / 'run' / 'state.pt'} at global step 2" in (out / "run" / "run.log").read_text()
    with open(out / "run" / "log.csv", newline="") as f:
        assert [int(row["global_step"]) for row in csv.DictReader(f)] == list(range(1, 11))
    assert (out / "run" / "model.safetensors").is_file()


def test_a_failing_write_of_the_training_log_names_the_file(tmp_path):
    """A write of run/log.csv that failed (a full disk) named the demo's folder: closing the log flushed the row
    left in its buffer again, an OSError naming no file (arniqa train: a traceback). It names log.csv."""
    from faults import cli_child, demo_photos, last_line_error

    out = tmp_path / "demo"
    demo_photos(out / "photos")
    # the first state.pt written (step 2), no file may grow past log.csv's size now (EFBIG, as on a full disk): the
    # next row of log.csv fails
    fill_after_first_state = """
import resource
real = loop.Trainer.save_state
def save_state(self):
    real(self)
    size = (self.output / "log.csv").stat().st_size + 10
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
loop.Trainer.save_state = save_state
"""
    failed = cli_child("demo", "-o", out, "--steps", 10, "--crop-size", 32, setup=fill_after_first_state)
    assert failed.returncode == 2, failed.stderr
    line = last_line_error(failed.stderr)
    assert line.startswith(f"error: {out / 'run' / 'log.csv'}: cannot write it (File too large); "), line
    assert line.endswith("; then rerun arniqa demo with the same -o to go on"), line
