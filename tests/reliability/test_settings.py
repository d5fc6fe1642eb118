"""A device or optimiser value that cannot work is one ``error:`` line naming the option or key and
what it accepts, exit 2, before anything runs."""

import pytest
from faults import cli, demo_photos, one_line_error, train_config, write_images

from arniqa.cli import EXIT_USAGE

CHOICES = "choose auto, cpu, cuda, cuda:N or mps"


@pytest.mark.parametrize("verb", ["train", "demo", "score"])
def test_a_bogus_device_is_one_line_naming_the_option_and_the_choices(tmp_path, tiny_model, verb):
    if verb == "train":
        args, option = (
            ["train", train_config(tmp_path, tmp_path / "run"), "--set", "train.device=bogus"],
            "train.device: device bogus",
        )
    elif verb == "demo":
        demo_photos(tmp_path / "demo" / "photos")
        args, option = ["demo", "-o", tmp_path / "demo", "--device", "bogus"], "--device"
    else:
        args, option = ["score", write_images(tmp_path / "images", 1)[0], "--device", "bogus"], "device bogus"
    result = cli(*args)
    assert result.exit_code == EXIT_USAGE
    line = one_line_error(result.stderr)
    assert option in line and CHOICES in line


@pytest.mark.parametrize(
    "setting, message",
    [
        ("optim.lr=-1", "optim.lr must be > 0, got -1.0"),
        ("optim.lr=0", "optim.lr must be > 0, got 0.0"),
        ("optim.momentum=-0.5", "optim.momentum must be >= 0 and < 1, got -0.5"),
        ("optim.weight_decay=-1e-4", "optim.weight_decay must be >= 0, got -0.0001"),
        ("optim.eta_min=-1", "optim.eta_min must be >= 0, got -1.0"),
    ],
)
def test_an_optimiser_value_that_cannot_work_names_its_key(tmp_path, tiny_model, setting, message):
    result = cli("train", train_config(tmp_path, tmp_path / "run"), "--set", setting)
    assert result.exit_code == EXIT_USAGE
    assert message in one_line_error(result.stderr)
    assert not (tmp_path / "run").exists()


def test_a_set_up_error_leaves_no_empty_run_folder_and_keeps_an_existing_one(tmp_path, tiny_model):
    """A run that stopped at set-up (no images under data.root) left the empty run folder it had made."""
    (tmp_path / "empty").mkdir()
    for run in (tmp_path / "new-run", tmp_path / "existing"):
        existed = run.name == "existing"
        if existed:
            run.mkdir()
        result = cli("train", train_config(tmp_path, run), "--set", f"data.root={tmp_path / 'empty'}")
        assert result.exit_code == EXIT_USAGE and "no image files found" in one_line_error(result.stderr)
        assert run.is_dir() == existed  # a folder the user made stays
