"""state.pt is read without running code: a hostile one is refused (exit 2, the file named) by
``train --resume``, ``demo`` and ``ablate`` before anything in it runs; an unreadable one is one
line; a state written the old way (numpy's RNG state as an ndarray) still resumes, bit for bit."""

import io

import numpy as np
import pytest
import torch
from faults import cli, demo_photos, hostile_state, last_line_error, one_line_error, tiny_ablation, train_config
from safetensors.torch import load_file

import arniqa.ablation.runner as runner
from arniqa.cli import EXIT_OK, EXIT_USAGE
from arniqa.train import load_config
from arniqa.train.state import StateError, read_state


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_the_hostile_files_run_code_when_read_unsafely(tmp_path, kind):
    """The control: what the other tests refuse would have run."""
    marker = tmp_path / "ran"
    torch.load(hostile_state(tmp_path / "state.pt", marker, kind), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_train_resume_refuses_a_state_that_would_run_code(tmp_path, tiny_model, kind):
    marker = tmp_path / "ran"
    state = hostile_state(tmp_path / "evil" / "state.pt", marker, kind)
    result = cli("train", train_config(tmp_path, tmp_path / "run"), "--resume", state)
    assert result.exit_code == EXIT_USAGE
    assert one_line_error(result.stderr).startswith(f"error: {state}: refused to read it")
    assert not marker.exists()


def test_demo_refuses_a_run_state_that_would_run_code(tmp_path, tiny_model):
    demo_photos(tmp_path / "demo" / "photos")
    marker = tmp_path / "ran"
    state = hostile_state(tmp_path / "demo" / "run" / "state.pt", marker, "zip")
    result = cli("demo", "-o", tmp_path / "demo", "--steps", 2, "--crop-size", 32)
    assert result.exit_code == EXIT_USAGE
    assert last_line_error(result.stderr).startswith(f"error: {state}: refused to read it")
    assert not marker.exists()


def test_ablate_refuses_a_run_state_that_would_run_code(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setattr(runner, "initial_model", lambda config: torch.nn.Linear(1, 1))  # never used: no untrained stage
    marker = tmp_path / "ran"
    state = hostile_state(tmp_path / "out" / "resnet50" / "seed0" / "train" / "state.pt", marker, "legacy")
    result = cli(*tiny_ablation(tmp_path, "seeds=[0]", "evaluation.untrained=false"))
    assert result.exit_code == EXIT_USAGE, result.output
    assert last_line_error(result.stderr).startswith(f"error: {state}: refused to read it")
    assert not marker.exists()


def test_random_bytes_are_a_one_line_error_naming_the_file(tmp_path):
    config = load_config(train_config(tmp_path, tmp_path / "run"))
    for seed in range(40):
        path = tmp_path / f"state{seed}.pt"
        path.write_bytes(np.random.default_rng(seed).bytes(4096))
        with pytest.raises(StateError) as err:
            read_state(path, config, (6, ""), ("device", "cpu"), {"deterministic": None, "sync_batchnorm": None})
        message = str(err.value)
        assert message.startswith(f"{path}: ") and "\n" not in message


def saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "contents",
    [np.random.default_rng(0).bytes(4096), saved({"weights": torch.zeros(2)})],
    ids=["random-bytes", "not-a-state"],
)
def test_an_unreadable_state_is_one_line_exit_2(tmp_path, tiny_model, contents):
    state = tmp_path / "state.pt"
    state.write_bytes(contents)
    result = cli("train", train_config(tmp_path, tmp_path / "run"), "--resume", state)
    assert result.exit_code == EXIT_USAGE
    assert one_line_error(result.stderr).startswith(f"error: {state}: ")


@pytest.mark.parametrize("record", [[6, "x"], {"count": 6}, {"count": "six", "id": "x"}], ids=["list", "no-id", "text"])
def test_a_damaged_image_record_is_one_line_naming_the_file(tmp_path, tiny_model, record):
    config = train_config(tmp_path, tmp_path / "run", train={"max_steps": 1})
    assert cli("train", config).exit_code == EXIT_OK
    state = tmp_path / "run" / "state.pt"
    torch.save({**torch.load(state, weights_only=True), "images": record}, state)
    result = cli("train", config, "--set", "train.max_steps=2", "--resume", state)
    assert result.exit_code == EXIT_USAGE
    assert one_line_error(result.stderr).startswith(f"error: {state}: ")


def old_way(state: dict) -> dict:
    """``state`` as the code before issue 26 wrote it: numpy's RNG state as ``np.random.get_state()``
    returns it (the key array an ndarray)."""
    name, keys, pos, has_gauss, gauss = state["rng"]["numpy"]
    state["rng"]["numpy"] = (name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss)
    return state


def test_a_state_written_the_old_way_resumes_bit_exact(tmp_path, tiny_model):
    assert cli("train", train_config(tmp_path, tmp_path / "reference")).exit_code == EXIT_OK
    config = train_config(tmp_path, tmp_path / "run", train={"max_steps": 1})
    assert cli("train", config).exit_code == EXIT_OK
    state = tmp_path / "run" / "state.pt"
    torch.save(old_way(torch.load(state, weights_only=True)), state)  # pickled as the old code pickled it
    assert torch.serialization.get_unsafe_globals_in_checkpoint(state)  # it does hold numpy's array types
    (tmp_path / "run" / "model.safetensors").unlink()
    result = cli("train", config, "--set", "train.max_steps=null", "--resume", state)
    assert result.exit_code == EXIT_OK, result.output
    resumed, reference = (
        load_file(tmp_path / "run" / "model.safetensors"),
        load_file(tmp_path / "reference" / "model.safetensors"),
    )
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)
