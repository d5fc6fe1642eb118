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


def test_a_read_error_no_verb_knows_is_one_line_naming_the_file_and_what_to_do(tmp_path, capsys):
    """A read error of a file the command does not write (an input, a dataset's image) was Python's bare
    "[Errno 5] Input/output error: '/data/a.png'". Now it is "FILE: problem; what to do", as a photo's; a write into
    an output is said as before, and an error naming no file keeps its own message. A folder named where a file is
    read said 'check the disk or share it is on'; it says to name a file."""
    import errno

    from arniqa.cli.command import fail_io

    there, gone, out = tmp_path / "a.png", tmp_path / "gone.png", tmp_path / "out"
    there.write_bytes(b"x")
    cases = [
        (OSError(errno.EIO, "Input/output error", str(there)), f"{there}: cannot read file (Input/output error); "
         "check the disk or share it is on"),
        (PermissionError(errno.EACCES, "Permission denied", str(there)), f"{there}: cannot read file (Permission "
         "denied); check its permissions"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", str(gone)), f"{gone}: no such file; check the "
         "path"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", str(tmp_path)), f"{tmp_path}: cannot read file (Is a "
         "directory); name a file, not a folder"),
        (OSError(errno.EIO, "Input/output error"), "[Errno 5] Input/output error"),
        (OSError(errno.ENOSPC, "No space left on device", str(out / "rows.csv")), f"{out / 'rows.csv'}: cannot write "
         "it: "),  # a write's line, whose words its own tests check
    ]  # fmt: skip
    for e, said in cases:
        with pytest.raises(typer.Exit) as stop:
            fail_io(e, out)
        assert stop.value.exit_code == EXIT_USAGE
        line = capsys.readouterr().err
        assert line.count("\n") == 1 and line.startswith(f"error: {said}")
        assert line == f"error: {said}\n" or said.endswith("cannot write it: ")
