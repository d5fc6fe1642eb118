"""The checks every verb shares (cli/command.py)."""

import os

import pytest
import typer

from arniqa.cli.command import EXIT_FAILED, EXIT_USAGE, output_folders


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), typer.Exit(EXIT_USAGE), OSError("disk full")])
def test_a_stopped_run_leaves_no_empty_folder_it_made_inside_its_output_either(tmp_path, stop):
    """A run stopped after it had made a folder inside its output (demo's run/, benchmark's images/) but before it
    wrote there left that empty folder, so its output folder was not empty and stayed too. Now the empty folders
    inside an output folder the run made go with it; a folder holding a file, and anything in an output folder that
    was there before, stay."""
    made, kept, there = tmp_path / "a" / "out", tmp_path / "kept", tmp_path / "there"
    (there / "empty").mkdir(parents=True)
    with pytest.raises(type(stop)):
        with output_folders(made, kept, there):
            (made / "run" / "tensorboard").mkdir(parents=True)
            (made / "images").mkdir()
            (kept / "run").mkdir()
            (kept / "run" / "state.pt").write_text("saved")
            (there / "run").mkdir()
            raise stop
    found = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert found == ["kept", "kept/run", "kept/run/state.pt", "there", "there/empty", "there/run"]


def test_a_finished_run_keeps_the_empty_folders_it_made_inside_its_output(tmp_path):
    """Exit 1 (some items failed) ends a run that went through: what it made stays as it made it."""
    out = tmp_path / "out"
    with pytest.raises(typer.Exit):
        with output_folders(out):
            (out / "maps").mkdir()
            (out / "rows.csv").write_text("")
            raise typer.Exit(EXIT_FAILED)
    assert sorted(os.listdir(out)) == ["maps", "rows.csv"]
