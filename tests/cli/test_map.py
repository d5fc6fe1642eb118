"""arniqa map on the command line (the maps themselves: tests/inference/test_maps.py)."""

import os

from PIL import Image
from tiny_arniqa import tiny_onnx
from typer.testing import CliRunner

from arniqa.cli import EXIT_OK, _register, app

_register()


def test_what_a_folder_walk_left_out_is_said_once_at_the_end(tmp_path, monkeypatch):
    """map said nothing of the files it skipped in a folder (the summary came only when no image was left): a
    linked folder, a text file and a dangling link were lost unseen. Now the note score gives ends the run."""
    monkeypatch.chdir(tmp_path)
    for folder in ("photos", "elsewhere"):
        os.mkdir(folder)
        Image.new("RGB", (32, 32), (200, 100, 50)).save(f"{folder}/a.png")
    (tmp_path / "photos" / "notes.txt").write_text("x")
    (tmp_path / "photos" / "linked").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "photos" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    tiny_onnx(tmp_path / "tiny.onnx")
    args = ["map", "photos", "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "16"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_OK, result.output
    assert result.stdout == "wrote 1 map to maps (maps.csv lists them)\n"
    assert result.stderr == (
        "skipped 1 file no decoder can open: 1 .txt; 1 link to a folder: photos/linked (not followed; give it as a "
        "path to map it); 1 entry that is no file: photos/gone.jpg (dangling link)\n"
    )
    assert sorted(os.listdir("maps")) == ["a.map.npy", "a.map.png", "maps.csv"]  # photos/a.png alone
    args[3] = "photos/maps"  # a rerun into a folder inside: its maps.csv and .npy files are not said to be skipped
    for _ in range(2):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == EXIT_OK and result.stderr.startswith("skipped 1 file no decoder can open: 1 .txt;")
