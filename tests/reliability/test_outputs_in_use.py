"""Every resumable output of training and benchmarks is single-writer: a run folder, a benchmark
folder, an ablation folder (its report too), an evaluation folder, an ONNX export or an
explanation head that another arniqa process holds is refused at start, exit 2, naming that process; a
benchmark image cut off mid-write is written again by a rerun. A pipe planted in such a folder under a name the
command writes is replaced, never opened."""

import filecmp
import io
import json
import signal
from pathlib import Path

import pytest
from faults import cli, hold, one_line_error, tiny_ablation, train_config, write_images
from PIL import Image
from tiny_arniqa import TinyARNIQA

from arniqa.cli import EXIT_USAGE
from arniqa.data.synthetic import build_synthetic


def refused(args, held: Path) -> None:
    """``arniqa ARGS`` while another process holds ``held``: exit 2, one line naming it and the holder."""
    child = hold(held)
    try:
        result = cli(*args)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert result.exit_code == EXIT_USAGE, result.output
    assert one_line_error(result.stderr) == (
        f"error: {held} is in use by another arniqa process (pid {child.pid}); wait for it or choose another output"
    )


def written(folder: Path) -> list[str]:
    """What is in ``folder`` but the lock file the killed holder left."""
    return [p.name for p in folder.iterdir() if p.name != ".arniqa.lock"]


def test_train_refuses_a_run_folder_in_use(tmp_path, tiny_model):
    (tmp_path / "run").mkdir()
    refused(["train", train_config(tmp_path, tmp_path / "run")], tmp_path / "run")
    assert written(tmp_path / "run") == []


def test_benchmark_refuses_an_output_in_use(tmp_path):
    write_images(tmp_path / "pristine", 1)
    (tmp_path / "out").mkdir()
    refused(
        ["benchmark", "synthetic", "--pristine", tmp_path / "pristine", "-o", tmp_path / "out", "--size", "40x32"],
        tmp_path / "out",
    )
    assert not (tmp_path / "out" / "dmos.csv").exists()


def test_ablate_refuses_an_output_in_use(tmp_path):
    args = tiny_ablation(tmp_path)
    (tmp_path / "out").mkdir()
    refused(args, tmp_path / "out")
    assert written(tmp_path / "out") == []


def test_a_benchmark_image_cut_off_mid_write_is_written_again(tmp_path, monkeypatch):
    pristine = write_images(tmp_path / "pristine", 2, size=(48, 64))
    build_synthetic(pristine, tmp_path / "whole", size=(40, 32), types=("gaublur",))
    real, saves = Image.Image.save, []

    def crash_on_the_fourth(image, fp, format=None, **params):
        saves.append(fp)
        if len(saves) < 4:
            return real(image, fp, format, **params)
        buffer = io.BytesIO()
        real(image, buffer, "PNG")
        Path(fp).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise OSError("the machine went down")

    monkeypatch.setattr(Image.Image, "save", crash_on_the_fourth)
    with pytest.raises(OSError, match="went down"):
        build_synthetic(pristine, tmp_path / "rerun", size=(40, 32), types=("gaublur",))
    monkeypatch.setattr(Image.Image, "save", real)
    build_synthetic(pristine, tmp_path / "rerun", size=(40, 32), types=("gaublur",))
    names = sorted(p.name for p in (tmp_path / "whole" / "images").iterdir())
    assert sorted(p.name for p in (tmp_path / "rerun" / "images").iterdir()) == names
    _, differ, errors = filecmp.cmpfiles(
        tmp_path / "whole" / "images", tmp_path / "rerun" / "images", names, shallow=False
    )
    assert differ == [] and errors == []


def test_map_refuses_a_folder_in_use(tmp_path):
    """Two `arniqa map -o DIR` at once wrote one maps.csv together (each opened it for writing)."""
    from tiny_arniqa import tiny_onnx

    tiny_onnx(tmp_path / "tiny.onnx")
    write_images(tmp_path / "photos", 1)
    (tmp_path / "maps").mkdir()
    args = ["map", tmp_path / "photos", "-o", tmp_path / "maps", "--checkpoint", tmp_path / "tiny.onnx", "--crop", 16]
    refused(args, tmp_path / "maps")
    assert written(tmp_path / "maps") == []


def test_evaluate_refuses_an_output_folder_in_use(tmp_path, monkeypatch):
    """Two `arniqa evaluate -o DIR` at once each wrote results.json, the regressor, the checkpoint and the plots:
    DIR ended with the results of one beside the files of the other."""
    import arniqa.evaluate.run as run

    monkeypatch.setattr(run, "load_encoder", lambda checkpoint, weights_dir, device: (TinyARNIQA().eval(), "tiny"))
    build_synthetic(write_images(tmp_path / "pristine", 10), tmp_path / "kadid", size=(32, 24), types=("gaublur",))
    (tmp_path / "out").mkdir()
    args = ["evaluate", "--dataset", "kadid10k", "--root", tmp_path / "kadid", "-o", tmp_path / "out"]
    args += ["--checkpoint", "unused", "--splits", 3, "--crop-size", 16, "--device", "cpu", "--no-export-checkpoint"]
    refused([*args, "--cache-dir", tmp_path / "cache"], tmp_path / "out")
    assert written(tmp_path / "out") == []


def test_export_refuses_an_output_in_use(tmp_path, monkeypatch):
    """Two `arniqa export -o FILE.onnx` at once could leave the graph of one beside the sidecar (its dataset and
    score range) of the other."""
    from tiny_arniqa import tiny_onnx

    import arniqa.inference.loading as loading

    model, regressor, _ = tiny_onnx(tmp_path / "tiny.onnx")
    monkeypatch.setattr(loading, "load_model", lambda name, weights_dir, reg, explainer: (model, regressor))
    (checkpoint := tmp_path / "unused.safetensors").write_bytes(b"")  # there (checked), never read (load_model)
    refused(["export", "-o", tmp_path / "model.onnx", "--checkpoint", checkpoint], tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists() and not (tmp_path / "model.onnx.json").exists()


def test_explain_fit_refuses_an_output_in_use(tmp_path, monkeypatch):
    """Two `arniqa explain fit -o FILE` at once could leave the head of one beside the FILE.json of the other."""
    from tiny_score import load

    import arniqa.inference

    monkeypatch.setattr(arniqa.inference, "load", load)
    write_images(tmp_path / "pristine", 1)
    args = ["explain", "fit", tmp_path / "pristine", "-o", tmp_path / "head.safetensors", "--size", "32x24"]
    refused([*args, "--chains", 1, "--protocol", "whole"], tmp_path / "head.safetensors")
    assert not (tmp_path / "head.safetensors").exists() and not (tmp_path / "head.json").exists()


def test_an_ablation_report_is_not_written_while_a_study_holds_the_folder(tmp_path):
    """`arniqa ablate --report-only` while the study ran wrote a report of the runs finished so far, which could
    replace the study's own final report."""
    from arniqa.ablation import load_ablation_config
    from arniqa.ablation.prepare import split_pristine

    args = tiny_ablation(tmp_path)
    (tmp_path / "out").mkdir()
    split_pristine(load_ablation_config(args[1], [f"data.pristine={tmp_path / 'pristine'}"]), tmp_path / "out")
    refused([*args, "--report-only"], tmp_path / "out")
    assert written(tmp_path / "out") == ["data"]


def finishes(work, timeout: float = 120) -> list:
    """``work()``'s result in a list, empty when it did not finish within ``timeout`` s (waiting on a pipe)."""
    import threading

    got = []
    thread = threading.Thread(target=lambda: got.append(work()), daemon=True)
    thread.start()
    thread.join(timeout)
    return got


def plant(folder: Path, *names: str) -> list[Path]:
    """Named pipes ``folder/NAME``, which no one reads."""
    import os

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        os.mkfifo(folder / name)
    return [folder / name for name in names]


def regular(*paths: Path) -> bool:
    import os
    import stat

    return all(stat.S_ISREG(os.lstat(p).st_mode) for p in paths)


def test_a_pipe_planted_in_a_map_folder_is_replaced_never_opened(tmp_path):
    """A FIFO named like a map (`img00.map.png`) or maps.csv in `arniqa map -o maps` blocked the run until someone
    read it: map wrote into it as into an output the user named (`-o /dev/null`)."""
    import os
    import subprocess
    import sys

    import tiny_score

    write_images(tmp_path / "photos", 2)
    planted = plant(tmp_path / "maps", "img00.map.png", "maps.csv")
    args = ["map", tmp_path / "photos", "-o", tmp_path / "maps", "--crop", 8, "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, tiny_score.__file__, *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert regular(*planted) and (tmp_path / "maps" / "maps.csv").read_text().count("\n") == 3  # header, 2 maps
    assert Image.open(planted[0]).size == Image.open(tmp_path / "photos" / "img00.png").size


def test_a_pipe_planted_in_a_benchmark_or_an_evaluation_folder_is_replaced(tmp_path, monkeypatch):
    """`benchmark synthetic` and `evaluate -o` name their files themselves: a FIFO under one of those names blocked
    them as it blocked map. (The feature cache refuses an entry's file that is no file, in one line.)"""
    import arniqa.evaluate.run as run

    pristine = write_images(tmp_path / "pristine", 10)
    build = lambda: build_synthetic(pristine, tmp_path / "kadid", size=(32, 24), types=("gaublur",))  # noqa: E731
    build()  # a rerun rewrites its files (a dmos.csv in a folder it did not make is refused untouched)
    for name in ("README.md", "dmos.csv"):
        (tmp_path / "kadid" / name).unlink()
    planted = plant(tmp_path / "kadid", "README.md", "dmos.csv")
    assert finishes(build)
    assert regular(*planted) and (tmp_path / "kadid" / "dmos.csv").read_text().startswith("dist_img,")

    monkeypatch.setattr(run, "load_encoder", lambda checkpoint, weights_dir, device: (TinyARNIQA().eval(), "tiny"))
    planted = plant(tmp_path / "out", "results.json", "results.md")
    args = ["evaluate", "--dataset", "kadid10k", "--root", tmp_path / "kadid", "-o", tmp_path / "out"]
    (checkpoint := tmp_path / "unused.safetensors").write_bytes(b"")  # there (checked), never read (load_encoder)
    args += ["--checkpoint", checkpoint, "--splits", 3, "--crop-size", 16, "--device", "cpu", "--no-export-checkpoint"]
    (result,) = finishes(lambda: cli(*args))
    assert result.exit_code == 0, result.output
    assert regular(*planted) and "srcc" in (tmp_path / "out" / "results.json").read_text().lower()


def test_a_pipe_planted_as_the_sidecar_of_a_head_or_an_export_is_replaced(tmp_path, monkeypatch):
    """`explain fit -o head.safetensors` and `export -o m.onnx` name their sidecars (head.json, m.onnx.json)
    themselves: a FIFO under that name was written into as an output the user named, and the run waited for a reader
    forever. The user's own output may still be a pipe (test_a_device_or_a_named_pipe_is_written_into_...)."""
    import os

    from tiny_arniqa import tiny_checkpoint

    checkpoint = tiny_checkpoint(tmp_path / "a.safetensors", monkeypatch)  # loads as TinyARNIQA
    write_images(tmp_path / "pristine", 1)
    head, onnx = tmp_path / "out" / "head.safetensors", tmp_path / "out" / "m.onnx"
    planted = plant(tmp_path / "out", "head.json", "m.onnx.json")
    fit = ["explain", "fit", tmp_path / "pristine", "-o", head, "--checkpoint", checkpoint, "--protocol", "whole"]
    export = ["export", "-o", onnx, "--checkpoint", checkpoint, "--protocol", "whole"]
    try:
        for args in (fit + ["--size", "32x24", "--chains", 0, "--device", "cpu"], export):
            (result,) = finishes(lambda args=args: cli(*args))
            assert result.exit_code == 0, result.output
    finally:  # a writer still waiting on a pipe gets a reader, and the end of it
        for pipe in planted:
            if not regular(pipe):
                os.close(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK))
    assert regular(*planted) and head.is_file() and onnx.is_file()
    assert json.loads(planted[0].read_text())["protocol"] == "whole"
    assert json.loads(planted[1].read_text())["protocol"] == "whole"
