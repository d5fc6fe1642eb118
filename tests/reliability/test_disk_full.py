"""A full disk under every verb that writes files (``arniqa score -o`` and training have their own tests): one
``error:`` line naming the file, exit 2; what was written before stays whole (an earlier map, picture or
checkpoint), no temporary file is left, and a rerun with room goes on. The disk fills for real: ``RLIMIT_FSIZE`` in
a child process (SIGXFSZ ignored, so a write past the limit fails with EFBIG), or a small tmpfs (root only)."""

import errno
import filecmp
import os
import subprocess
import sys

import numpy as np
import pytest
from faults import SRC, TESTS, cli, cli_child, last_line_error, one_line_error, tiny_ablation
from PIL import Image
from tiny_arniqa import tiny_onnx

from arniqa.cli import EXIT_OK, EXIT_USAGE

TOO_LARGE = "cannot write it: file too large for the file size limit or the file system (EFBIG)"
RERUN = "free space and rerun (or choose another output)"
RAISE = "raise the file-size limit with ulimit -f and rerun (or choose another output)"  # EFBIG: space is no help


FILL = """
import resource
def fill(size=4096):  # every write past size bytes of a file fails (EFBIG), as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
"""
LIMIT = FILL + "fill()\n"  # the child's setup: the disk is full from the start


def photo(path, size: int, seed: int):
    """A noise photo of ``size`` x ``size`` px (PNG does not compress it: about 3 bytes a pixel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_map_over_an_earlier_map_folder_keeps_every_map_whole_and_lists_each_once(tmp_path):
    """Before, a map PNG cut at the limit replaced the earlier whole one (Pillow writes in place), and the
    message named the folder; then it said to rerun, which maps every image again: now rerun with --resume."""
    model = tiny_onnx(tmp_path / "tiny.onnx")[2]
    photos, out, clean = tmp_path / "photos", tmp_path / "maps", tmp_path / "clean"
    for i, size in enumerate((24, 64, 64)):  # the first map's PNG is under the limit, the others over it
        photo(photos / f"p{i}.png", size, seed=i)
    args = ["map", photos, "--checkpoint", model, "--crop", 8, "--stride", 8, "--engine", "onnxruntime"]
    assert cli(*args, "-o", out).exit_code == EXIT_OK
    before = files(out)
    for i, size in enumerate((24, 64, 64)):  # other photos under the same names: other maps
        photo(photos / f"p{i}.png", size, seed=10 + i)
    assert cli(*args, "-o", clean).exit_code == EXIT_OK
    after = files(clean)

    result = cli_child(*args, "-o", out, setup=LIMIT)
    assert result.returncode == EXIT_USAGE
    # the maps written are kept: --resume goes on from them (a rerun without it maps the library again)
    resume = "raise the file-size limit with ulimit -f and rerun with --resume (or choose another output)"
    assert one_line_error(result.stderr) == f"error: {out / 'p1.map.png'}: {TOO_LARGE}; {resume}"
    now = files(out)
    assert now.keys() == before.keys()  # no temporary file
    assert [now[f"p0.map.{k}"] for k in ("png", "npy")] == [after[f"p0.map.{k}"] for k in ("png", "npy")]
    assert all(now[name] == before[name] for name in now if name.startswith(("p1.", "p2.")))
    # header, the new whole map, the earlier maps not replaced
    lines = after["maps.csv"].splitlines(keepends=True)[:2] + before["maps.csv"].splitlines(keepends=True)[2:]
    assert now["maps.csv"] == b"".join(lines)

    assert cli(*args, "-o", out).exit_code == EXIT_OK
    assert files(out) == after


def test_distort_over_an_earlier_picture_keeps_it_whole(tmp_path):
    """Before, the picture was cut at the limit (Pillow writes in place); ``gallery`` writes the same way."""
    source = photo(tmp_path / "a.png", 64, seed=0)
    out = tmp_path / "out" / "d.png"
    assert cli("distort", source, "-n", "gaublur", "-l", 1, "-o", out).exit_code == EXIT_OK
    before = out.read_bytes()
    assert len(before) > 4096
    result = cli_child("distort", source, "-n", "whitenoise", "-l", 5, "-o", out, setup=LIMIT)
    assert result.returncode == EXIT_USAGE
    assert one_line_error(result.stderr) == f"error: {out}: {TOO_LARGE}; {RAISE}"
    assert os.listdir(out.parent) == ["d.png"] and out.read_bytes() == before


STAND_IN = """
import arniqa.inference, tiny_score
arniqa.inference.load = tiny_score.load
"""


def fit_error(stderr: str) -> str:
    """The one ``error:`` line of ``explain fit``'s stderr, after the lines that say what it computes and, once a
    reference is done, how long the rest will take."""
    lines = stderr.strip().splitlines()
    assert lines[0].startswith("fitting on "), stderr
    return one_line_error("\n".join(line for line in lines[1:] if not line.startswith("a reference takes about ")))


def test_explain_fit_with_a_cache_is_one_line_and_a_rerun_fills_the_cache(tmp_path, monkeypatch):
    """Before, torch's writer failed with a RuntimeError ("unexpected pos"): a traceback, exit 1."""
    import tiny_score

    import arniqa.inference

    for i in range(2):
        photo(tmp_path / "pristine" / f"r{i}.png", 48, seed=i)
    cache = tmp_path / "cache"
    args = ["explain", "fit", tmp_path / "pristine", "--size", "32x24", "--chains", 1, "--protocol", "whole"]
    result = cli_child(*args, "-o", tmp_path / "head.safetensors", "--cache", cache, setup=STAND_IN + LIMIT)
    assert result.returncode == EXIT_USAGE
    line = fit_error(result.stderr)
    assert line.startswith(f"error: {cache}{os.sep}") and line.endswith(f".pt: {TOO_LARGE}; {RAISE}")
    assert not cache.exists()  # no torn entry, no temporary file, so the folder the run made is gone too

    monkeypatch.setattr(arniqa.inference, "load", tiny_score.load)  # the reruns with room: in this process
    assert cli(*args, "-o", tmp_path / "head.safetensors", "--cache", cache).exit_code == EXIT_OK
    assert len(os.listdir(cache)) == 2
    assert cli(*args, "-o", tmp_path / "clean.safetensors").exit_code == EXIT_OK
    assert (tmp_path / "head.safetensors").read_bytes() == (tmp_path / "clean.safetensors").read_bytes()


def test_explain_fit_over_an_earlier_head_replaces_the_head_and_its_report_together(tmp_path, monkeypatch):
    """The rerun's head fits under the limit, its report does not. Before, the head was replaced and its report
    was not: the new head beside the accuracy of the earlier one."""
    import tiny_score

    import arniqa.inference

    monkeypatch.setattr(arniqa.inference, "load", tiny_score.load)
    photo(tmp_path / "fit" / "r0.png", 48, seed=0)
    photo(tmp_path / "test" / "r1.png", 48, seed=1)
    head, report = tmp_path / "out" / "head.safetensors", tmp_path / "out" / "head.json"
    args = ["explain", "fit", tmp_path / "fit", "--test", tmp_path / "test", "--size", "32x24", "--chains", 1]
    args += ["--protocol", "whole", "-o", head]
    assert cli(*args).exit_code == EXIT_OK
    before = files(head.parent)
    limit = 1750  # the head (1.5 KB) fits, its report with test accuracy (1.9 KB) does not
    assert len(before["head.safetensors"]) < limit < len(before["head.json"])

    result = cli_child(*args, "--seed", 1, setup=STAND_IN + FILL + f"fill({limit})\n")
    assert result.returncode == EXIT_USAGE
    assert fit_error(result.stderr) == f"error: {report}: {TOO_LARGE}; {RAISE}"
    assert files(head.parent) == before  # no temporary file either
    assert cli(*args, "--seed", 1).exit_code == EXIT_OK
    assert files(head.parent)["head.safetensors"] != before["head.safetensors"]  # the rerun's head is another


TINY_MODEL = """
import arniqa.models.checkpoint as checkpoint
checkpoint.ARNIQA = lambda name, **options: TinyARNIQA()  # its checkpoints load the stand-in
"""


def test_evaluate_over_an_earlier_evaluation_replaces_all_its_files_together(tmp_path, monkeypatch):
    """The rerun's regressor, checkpoint and results fit under the limit, its scatter plot does not. Before,
    they were replaced one by one: the new regressor, checkpoint and results beside the earlier plot."""
    import torch
    from tiny_arniqa import TinyARNIQA

    import arniqa.models.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "ARNIQA", lambda name, **options: TinyARNIQA())
    data = tmp_path / "data"
    for i in range(20):
        photo(data / f"{i:02d}.png", 24, seed=i)
    (data / "labels.csv").write_text(
        "path,score\n" + "".join(f"{i:02d}.png,{1 + i % 5 + 0.1 * i}\n" for i in range(20))
    )
    torch.manual_seed(0)
    [model] = checkpoint.save_checkpoint(tmp_path / "tiny.safetensors", TinyARNIQA())
    out = tmp_path / "out"
    args = ["evaluate", "--dataset", "csv", "--root", data, "--checkpoint", model, "--splits", 3, "--crop-size", 8]
    args += ["--device", "cpu", "--cache-dir", tmp_path / "cache", "-o", out]
    assert cli(*args, "--alpha", 0.1).exit_code == EXIT_OK
    before = files(out)
    limit = 8192  # the safetensors files and results (under 2 KB) fit, scatter.png (about 25 KB) does not
    assert max(len(before[name]) for name in before if not name.endswith(".png")) < limit < len(before["scatter.png"])

    result = cli_child(*args, "--alpha", 10, setup=TINY_MODEL + FILL + f"fill({limit})\n")
    assert result.returncode == EXIT_USAGE
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]  # after the log lines
    assert errors == [f"error: {out / 'scatter.png'}: {TOO_LARGE}; {RAISE}"]
    assert files(out) == before  # no temporary file either
    assert cli(*args, "--alpha", 10).exit_code == EXIT_OK
    assert files(out)["regressor_csv.safetensors"] != before["regressor_csv.safetensors"]  # the rerun's is another


def test_demo_is_one_line_when_its_first_file_cannot_be_written(tmp_path):
    """The demo's sample photos are its first files (each over the limit). Before: a traceback, exit 1."""
    result = cli_child("demo", "-o", tmp_path / "demo", setup=LIMIT)
    assert result.returncode == EXIT_USAGE
    line = last_line_error(result.stderr)
    assert line.startswith(f"error: {tmp_path / 'demo' / 'photos'}{os.sep}") and line.endswith(f"{TOO_LARGE}; {RAISE}")
    assert not (tmp_path / "demo").exists()  # nothing torn or temporary in it, so the folder the run made is gone


def test_a_full_disk_in_an_ablation_run_stops_the_study_and_a_rerun_finishes_it(tmp_path, tiny_model, monkeypatch):
    """Before, each run failed in turn (exit 1, a traceback per run). Now the first stops the study: one line, exit
    2, no later run started; the rerun does the rest."""
    args = tiny_ablation(tmp_path, "seeds=[0]", "evaluation.untrained=false")
    setup = (
        FILL
        + """
import arniqa.ablation.runner as runner
real = runner.prepare_benchmarks
def then_fill(*args, **kwargs):  # the benchmark is written, the first training state is not
    sets = real(*args, **kwargs)
    fill()
    return sets
runner.prepare_benchmarks = then_fill
"""
    )
    result = cli_child(*args, setup=setup)
    assert result.returncode == EXIT_USAGE, result.stderr
    state = tmp_path / "out" / "resnet50" / "seed0" / "train" / "state.pt"
    assert last_line_error(result.stderr) == f"error: {state}: {TOO_LARGE}; {RAISE}"
    assert not (tmp_path / "out" / "se_resnet50_stages123").exists()
    from tiny_arniqa import TinyARNIQA

    import arniqa.models.checkpoint as checkpoint

    # the rerun with room, in this process: the runs' checkpoints are of the stand-in, its encoder counted in the result
    monkeypatch.setattr(checkpoint, "ARNIQA", lambda name, **options: TinyARNIQA())
    monkeypatch.setattr(TinyARNIQA, "encoder", property(lambda self: self.conv), raising=False)
    again = cli(*args)
    assert again.exit_code == EXIT_OK, again.output
    assert (tmp_path / "out" / "report.md").is_file()


def test_export_names_the_onnx_file_it_cannot_write(tmp_path, monkeypatch):
    """Before: Python's ``[Errno 28] No space left on device: 'm.onnx'``."""
    import arniqa.inference

    def full(output, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(output))

    monkeypatch.setattr(arniqa.inference, "export", full)
    out = tmp_path / "m.onnx"
    (checkpoint := tmp_path / "x.safetensors").write_bytes(b"")  # there (checked), never read (export is stubbed)
    result = cli("export", "--checkpoint", checkpoint, "-o", out)
    assert result.exit_code == EXIT_USAGE
    assert one_line_error(result.stderr) == f"error: {out}: cannot write it: disk full (ENOSPC); {RERUN}"


FEATURES = """
import sys, numpy as np, torch
from arniqa.evaluate.features import FeatureProtocol, extract_features

class Wide(torch.nn.Module):  # 1024 values a view: 20 KiB of features an image
    def quality_features(self, full, half):
        return torch.cat([full.mean((2, 3)), half.mean((2, 3))], 1).repeat(1, 171)[:, :1024]

out, cache, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
features = extract_features(
    Wide(), paths, FeatureProtocol(crop_size=8), cache_dir=None if cache == "-" else cache, batch_size=1, progress=False
)
np.save(out, np.asarray(features))
"""


@pytest.mark.parametrize("small_disk", [5], indirect=True)  # five pages free
def test_the_feature_cache_on_a_full_disk_is_an_error_naming_it_not_a_crash(small_disk, tmp_path):
    """Before, the process died of SIGBUS at its first write to a page of the mapped features.npy that the disk
    had no room for: no message, exit -7. Now the file's blocks are reserved when it is made: an OSError naming it
    (the CLI's one line); with room, the rerun gives the features computed without a cache."""
    disk, fillers = small_disk
    # 40 KiB of features: the lock file, stamps.npy, the first and the last page of features.npy fit, not the rest
    paths = [str(photo(tmp_path / "photos" / f"{i}.png", 16, seed=i)) for i in range(2)]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}

    def extract(out: str, cache: str) -> subprocess.CompletedProcess:
        code = [sys.executable, "-c", FEATURES, str(tmp_path / out), cache, *paths]
        return subprocess.run(code, capture_output=True, text=True, env=env, cwd=TESTS, timeout=300)

    full = extract("cached.npy", str(disk / "cache"))
    assert full.returncode == 1, full.stderr  # raised, not killed by SIGBUS (-7)
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith(f"OSError: [Errno {errno.ENOSPC}] No space left on device") and "features.npy" in last
    for f in fillers:
        f.unlink()
    assert extract("cached.npy", str(disk / "cache")).returncode == 0
    assert extract("plain.npy", "-").returncode == 0
    assert filecmp.cmp(tmp_path / "cached.npy", tmp_path / "plain.npy", shallow=False)
