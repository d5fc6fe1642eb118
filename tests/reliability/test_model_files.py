"""A hostile model file never runs code: a pickle that would create a marker file, given to `arniqa score`
as a checkpoint (any name), as the published `ARNIQA.pth`, as a regressor or as an ONNX file, on both
engines, is refused with the documented exit code, and the marker is absent afterwards."""

import pickle
import zipfile

import pytest
import torch
from faults import System, Touch, cli, write_images

from arniqa.cli import EXIT_USAGE


def torch_pickle(path, payload):
    """``path`` in torch.save's zip format whose data.pkl runs ``payload`` when unpickled."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{path.stem}/data.pkl", pickle.dumps(payload, protocol=2))
        z.writestr(f"{path.stem}/version", "3\n")
    return path


def plain_pickle(path, payload):
    path.write_bytes(pickle.dumps(payload, protocol=2))
    return path


def test_the_payloads_run_code_when_read_unsafely(tmp_path):
    """The control: the files below do run code when loaded without care."""
    for make, kind in ((torch_pickle, Touch), (plain_pickle, System)):
        marker = tmp_path / f"ran-{make.__name__}"
        path = make(tmp_path / f"{make.__name__}.pth", kind(marker))
        torch.load(path, weights_only=False) if make is torch_pickle else pickle.loads(path.read_bytes())
        assert marker.exists()


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
@pytest.mark.parametrize(
    "role", ["checkpoint.safetensors", "checkpoint.pth", "checkpoint.onnx", "ARNIQA.pth", "regressor"]
)
@pytest.mark.parametrize("make", [torch_pickle, plain_pickle])
def test_a_hostile_model_file_is_refused_before_it_runs(tmp_path, engine, role, make):
    marker = tmp_path / "ran"
    payload = (Touch if make is torch_pickle else System)(marker)
    photo = write_images(tmp_path / "photos", 1)[0]
    if role.startswith("checkpoint"):
        args = ["--checkpoint", make(tmp_path / role, payload)]
    else:  # the published files in a weights folder, or a regressor given by name; each of them hostile
        (tmp_path / "weights").mkdir()
        for name in ("ARNIQA.pth", "regressor_kadid10k.pth"):
            make(tmp_path / "weights" / name, payload)
        args = ["--weights-dir", tmp_path / "weights"]
        if role == "regressor":
            args += ["--regressor", make(tmp_path / "regressor_x.pth", payload)]
    result = cli("score", photo, *args, "--engine", engine, "--device", "cpu", "-o", tmp_path / "out.csv")
    assert result.exit_code == EXIT_USAGE, result.output
    assert not marker.exists()
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error:"), result.stderr
