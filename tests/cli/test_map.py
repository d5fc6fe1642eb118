"""arniqa map on the command line (the maps themselves: tests/inference/test_maps.py)."""

import csv
import io
import os

from fresh_cli import fresh_call
from PIL import Image
from tiny_arniqa import tiny_onnx
from typer.testing import CliRunner

from arniqa.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _register, app

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
    assert sorted(os.listdir("maps")) == [".maps.csv.arniqa.json", "a.map.npy", "a.map.png", "maps.csv"]  # a.png alone
    args[3] = "photos/maps"  # a rerun into a folder inside: its maps.csv and .npy files are not said to be skipped
    for _ in range(2):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == EXIT_OK and result.stderr.startswith("skipped 1 file no decoder can open: 1 .txt;")


def test_a_rerun_on_some_images_keeps_the_rows_and_maps_of_the_others(tmp_path, monkeypatch):
    """A second arniqa map into the same folder rewrote maps.csv with its own images alone: the rows of the others
    were lost (their maps unlisted, so arniqa report linked none), and b/x.png mapped alone took a/x.png's map name
    and overwrote it. Now a rerun replaces the rows of the images it maps, where they were (each keeps its map's
    name; a path given absolute is the same image), keeps the others' and adds new ones at the end."""
    import csv

    import numpy as np

    from arniqa.inference import load
    from arniqa.inference.maps import quality_map

    monkeypatch.chdir(tmp_path)
    for name, colour in [("photos/a/x.png", 40), ("photos/b/x.png", 90), ("photos/c.png", 140), ("new/d.png", 190)]:
        os.makedirs(os.path.dirname(name), exist_ok=True)
        Image.new("RGB", (32, 24), (colour, 255 - colour, 60)).save(name)
    tiny_onnx(tmp_path / "tiny.onnx")
    model = ["--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "8"]

    def listed():
        return [(r["path"], r["map"]) for r in csv.DictReader(open("maps/maps.csv", encoding="utf-8"))]

    assert CliRunner().invoke(app, ["map", "photos", "-o", "maps", *model]).exit_code == EXIT_OK
    first = listed()
    assert first == [("photos/a/x.png", "x.map.png"), ("photos/b/x.png", "x-2.map.png"), ("photos/c.png", "c.map.png")]
    kept = {name: open(f"maps/{name}", "rb").read() for name in ("x.map.npy", "x.map.png", "c.map.npy")}
    Image.new("RGB", (32, 24), (250, 0, 0)).save("photos/b/x.png")  # b/x.png changed
    result = CliRunner().invoke(app, ["map", "photos/b/x.png", "new/d.png", "-o", "maps", *model])
    assert result.exit_code == EXIT_OK, result.output
    assert listed() == [*first, ("new/d.png", "d.map.png")]
    assert all(open(f"maps/{name}", "rb").read() == data for name, data in kept.items())
    assert (
        result.stdout
        == "wrote 2 maps to maps (maps.csv lists them, and keeps the 2 rows of other images from earlier runs)\n"
    )
    scorer = load("tiny.onnx", device="cpu")
    for image, grid in [("photos/b/x.png", "x-2.map.npy"), ("new/d.png", "d.map.npy")]:
        expected = quality_map(scorer, Image.open(image).convert("RGB"), crop=16, stride=8).scores
        np.testing.assert_allclose(np.load(f"maps/{grid}"), expected, rtol=1e-6)
    c = str(tmp_path / "photos" / "c.png")
    assert CliRunner().invoke(app, ["map", c, "-o", "maps", *model]).exit_code == EXIT_OK
    assert [path for path, _ in listed()] == ["photos/a/x.png", "photos/b/x.png", c, "new/d.png"]


def test_a_rerun_reads_a_maps_csv_cut_short_and_refuses_one_it_did_not_write(tmp_path, monkeypatch):
    """A run stopped by SIGKILL leaves an image mapped again listed twice (the later row counts) and maybe a row cut
    short: the rerun tidies both. A maps.csv that is no listing of arniqa map is refused before the model loads (its
    rows could not be kept), one line, exit 2, the file untouched."""
    import csv

    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    Image.new("RGB", (32, 24), (200, 100, 50)).save("photos/a.png")
    os.mkdir("maps")
    header = "path,map,mean,min,max,rows,cols,error\n"
    left = header + "old.png,old.map.png,0.1,0,1,2,2,\nold.png,old.map.png,0.2,0,1,2,2,\n"
    left += "gone.png,,,,,,,cannot read it\ngone.png,gone.map.png,0.3,0,1,2,2,\nphotos/a.png,a.map.png,0.5,0,"
    open("maps/maps.csv", "w").write(left)
    tiny_onnx(tmp_path / "tiny.onnx")
    args = ["map", "photos", "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "8"]
    assert CliRunner().invoke(app, args).exit_code == EXIT_OK
    rows = [(r["path"], r["mean"]) for r in csv.DictReader(open("maps/maps.csv", encoding="utf-8"))]
    assert rows[:2] == [("old.png", "0.2"), ("gone.png", "0.3")]  # a file failed, then mapped: one image
    assert [path for path, _ in rows] == ["old.png", "gone.png", "photos/a.png"]
    for text in ["name,score\nx.png,1\n", "\x00\xff binary"]:
        open("maps/maps.csv", "w", encoding="latin-1").write(text)
        result = CliRunner().invoke(app, [*args[:5], "missing-model.onnx", *args[6:]])
        assert (result.exit_code, result.stdout) == (EXIT_USAGE, "")
        assert result.stderr == (
            "error: maps/maps.csv: not a maps.csv of arniqa map, whose rows a rerun keeps; move it away, or choose "
            "another -o\n"
        )
        assert open("maps/maps.csv", encoding="latin-1").read() == text


def test_a_row_cut_inside_its_last_field_is_mapped_again_and_an_edited_row_before_others_is_refused(
    tmp_path, monkeypatch
):
    """A run killed while writing a row of maps.csv can leave all its fields but the end of the last (its note cut,
    no line end): --resume kept it as whole, the cut note written back with a line end. And a row of other fields
    followed by more rows (an edit: a run cut short tears only its last row) was dropped from maps.csv by any rerun,
    its maps unlisted. The row with no line end is now mapped again; the edited one is refused, one line, exit 2,
    maps.csv untouched."""
    import csv

    monkeypatch.chdir(tmp_path)
    frames = [Image.new("RGB", (32, 24), (c, 255 - c, 60)) for c in (40, 200)]
    frames[0].save("anim.gif", save_all=True, append_images=frames[1:])
    Image.new("RGB", (32, 24), (90, 90, 90)).save("still.png")
    tiny_onnx(tmp_path / "tiny.onnx")
    args = ["map", "still.png", "anim.gif", "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16"]
    assert CliRunner().invoke(app, args).exit_code == EXIT_OK
    whole = open("maps/maps.csv", encoding="utf-8").read()
    open("maps/maps.csv", "w", encoding="utf-8").write(whole[:-12])  # the note of anim.gif cut, no line end
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == EXIT_OK and "1 image to map" in result.stderr, result.output
    assert open("maps/maps.csv", encoding="utf-8").read() == whole

    head, still, anim = whole.splitlines(keepends=True)
    edited = head + ",".join(still.split(",")[:1] + still.split(",")[2:]) + anim  # its map field taken out
    open("maps/maps.csv", "w", encoding="utf-8").write(edited)
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert (result.exit_code, result.stdout) == (EXIT_USAGE, ""), result.output
    assert result.stderr == (
        f"error: {os.path.join('maps', 'maps.csv')}: row 1 is not a row of arniqa map (8 fields, not 9) and more rows "
        "follow it (a run cut short tears only its last row: an edit?); a rerun would drop it: fix or delete that "
        "row, or choose another -o\n"
    )
    assert open("maps/maps.csv", encoding="utf-8").read() == edited
    assert [len(row) for row in csv.reader(open("maps/maps.csv", encoding="utf-8"))] == [9, 8, 9]


def test_resume_skips_the_images_listed_whole_and_maps_the_rest_under_the_same_settings(tmp_path, monkeypatch):
    """arniqa map had no --resume: a library's run stopped halfway was mapped again from its first photo. Now, as
    score's --resume, an image listed in maps.csv, mapped or failed, is skipped (a failed one still makes the exit
    status 1), unless its files are missing or cut short; rows made with other settings are refused, one line,
    exit 2, nothing written; rows of runs with mixed settings too, until a run has replaced them all."""
    import csv

    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    for name, colour in [("a", 40), ("b", 90), ("c", 140)]:
        Image.new("RGB", (32, 24), (colour, 255 - colour, 60)).save(f"photos/{name}.png")
    open("photos/bad.png", "w").write("no image")
    tiny_onnx(tmp_path / "tiny.onnx")
    model = ["--checkpoint", "tiny.onnx", "--stride", "8"]

    def run(*args):
        return CliRunner().invoke(app, ["map", *args, "-o", "maps", *model])

    def inodes():
        return {name: os.stat(f"maps/{name}").st_ino for name in os.listdir("maps") if ".map." in name}

    assert run("photos/a.png", "photos/b.png", "photos/bad.png", "--crop", "16").exit_code == EXIT_FAILED
    whole = open("maps/a.map.png", "rb").read()
    open("maps/a.map.png", "wb").write(whole[: len(whole) // 2])  # a copy cut short
    open("maps/b.map.npy", "wb").close()  # left empty
    first = inodes()
    listed = open("maps/maps.csv", "rb").read()

    result = run("photos", "--crop", "8", "--resume")
    assert (result.exit_code, result.stdout) == (EXIT_USAGE, "")
    assert result.stderr == (
        "error: maps/maps.csv: its rows were mapped with --crop 16 → 8; map into another folder, or rerun without "
        "--resume to map everything again\n"
    )
    assert open("maps/maps.csv", "rb").read() == listed and inodes() == first

    os.remove("maps/b.map.png")  # b's files all gone: mapped again under its name
    result = run("photos", "--crop", "16", "--resume")
    assert result.exit_code == EXIT_FAILED, result.output
    assert result.stdout == "wrote 3 maps to maps (maps.csv lists them)\n"
    assert result.stderr == (
        "resuming: 1 of 4 images already in maps/maps.csv; 3 images to map\n"
        "1 of 4 images could not be mapped, 1 of them in the rows resumed (see maps.csv)\n"
    )
    rows = {r["path"]: r for r in csv.DictReader(open("maps/maps.csv", encoding="utf-8"))}
    assert list(rows) == ["photos/a.png", "photos/b.png", "photos/bad.png", "photos/c.png"]
    assert rows["photos/bad.png"]["error"] and [rows[p]["map"] for p in ("photos/a.png", "photos/c.png")] == [
        "a.map.png",
        "c.map.png",
    ]
    assert open("maps/a.map.png", "rb").read() == whole  # mapped again, whole
    assert os.path.isfile("maps/b.map.npy") and os.path.isfile("maps/b.map.png")

    done = inodes()
    result = run("photos", "--crop", "16", "--resume")
    assert (result.exit_code, result.stdout) == (
        EXIT_FAILED,
        "wrote no map to maps: maps.csv lists every image already\n",
    )
    assert inodes() == done

    assert run("photos/c.png", "--crop", "8").exit_code == EXIT_OK  # c again, with another crop: mixed rows
    result = run("photos", "--crop", "16", "--resume")
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith("error: maps/maps.csv: its rows were mapped with --crop 16 or 8 → 16; ")
    assert run("photos", "--crop", "16").exit_code == EXIT_FAILED  # every image again: its settings alone
    assert run("photos", "--crop", "16", "--resume").exit_code == EXIT_FAILED


def test_resume_from_another_folder_says_that_no_row_names_an_input(tmp_path, monkeypatch):
    """`arniqa map photos -o maps`, then `arniqa map lib/photos -o lib/maps --resume` from the folder above: every
    image was mapped again under new names (a-2.map.png) and the run said only that it kept the rows of other
    images. It says now, as score's --resume does, that none of the rows names an input."""
    monkeypatch.chdir(tmp_path)
    os.makedirs("lib/photos")
    for name, colour in [("a", 40), ("b", 90)]:
        Image.new("RGB", (32, 24), (colour, 255 - colour, 60)).save(f"lib/photos/{name}.png")
    tiny_onnx(tmp_path / "tiny.onnx")
    model = ["--checkpoint", str(tmp_path / "tiny.onnx"), "--stride", "8", "--crop", "16"]
    monkeypatch.chdir(tmp_path / "lib")
    assert CliRunner().invoke(app, ["map", "photos", "-o", "maps", *model]).exit_code == EXIT_OK
    result = CliRunner().invoke(app, ["map", "photos", "-o", "maps", *model, "--resume"])  # the same folder
    assert (result.exit_code, result.stderr) == (
        EXIT_OK,
        "resuming: 2 of 2 images already in maps/maps.csv; 0 images to map\n",
    )

    monkeypatch.chdir(tmp_path)  # the rows' photos/a.png read from here: another image
    result = CliRunner().invoke(app, ["map", "lib/photos", "-o", "lib/maps", *model, "--resume"])
    assert result.exit_code == EXIT_OK, result.output
    assert result.stderr == (
        "warning: lib/maps/maps.csv: none of its 2 rows names an input; paths are matched from the folder arniqa "
        "runs in (photos/a.jpg from /home/me and from /tmp differ), so all 2 inputs were mapped again: give the "
        "paths as the run that wrote it did, from the same folder\n"
    )
    assert sorted(n for n in os.listdir("lib/maps") if n.endswith(".map.png")) == [
        "a-2.map.png",
        "a.map.png",
        "b-2.map.png",
        "b.map.png",
    ]


def test_a_terminal_shows_a_bar_of_the_images_mapped(tmp_path, monkeypatch):
    """map said nothing until the end, hours later for a photo library. Now a terminal shows a bar counting the
    images mapped of those to map (off a terminal nothing: the tests above read stderr whole)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORCE_COLOR", "1")  # a terminal: off one, no bar is drawn
    os.mkdir("photos")
    for name in ("a", "b"):
        Image.new("RGB", (32, 24), (200, 100, 50)).save(f"photos/{name}.png")
    tiny_onnx(tmp_path / "tiny.onnx")
    args = ["map", "photos", "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_OK, result.output
    assert "mapping" in result.stderr and " 2 of 2 images " in result.stderr, result.stderr
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert " 0 of 0 images " in result.stderr, result.stderr


def test_two_members_of_a_shard_named_alike_are_two_images_and_a_file_named_twice_one(tmp_path, monkeypatch):
    """A shard made by appending (tar rf) holds two members named 0001.jpg: map wrote the second's map over the
    first's and kept one row of maps.csv, while score gives two. Now each member is mapped under its own name (0001,
    0001-2, as two folders' photos of one name), each with its row, and --resume skips both. A file given twice
    (a.png ./a.png) is still one image, one map."""
    import csv
    import io
    import tarfile

    import numpy as np

    from arniqa.inference import load
    from arniqa.inference.maps import quality_map

    monkeypatch.chdir(tmp_path)
    photos = [Image.new("RGB", (32, 24), (colour, 255 - colour, 60)) for colour in (40, 190)]
    with tarfile.open("shard.tar", "w") as tar:
        for photo in photos:
            data = io.BytesIO()
            photo.save(data, "PNG")
            info = tarfile.TarInfo("0001.png")
            info.size = len(data.getvalue())
            tar.addfile(info, io.BytesIO(data.getvalue()))
    photos[0].save("a.png")
    tiny_onnx(tmp_path / "tiny.onnx")
    model = ["--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "8"]
    result = CliRunner().invoke(app, ["map", "shard.tar", "a.png", "./a.png", "-o", "maps", *model])
    assert result.exit_code == EXIT_OK, result.output
    rows = [(r["path"], r["map"]) for r in csv.DictReader(open("maps/maps.csv", encoding="utf-8"))]
    assert rows == [
        ("shard.tar/0001.png", "0001.map.png"),
        ("shard.tar/0001.png", "0001-2.map.png"),
        ("a.png", "a.map.png"),
    ]
    scorer = load("tiny.onnx", device="cpu")
    for photo, grid in zip(photos, ("0001.map.npy", "0001-2.map.npy")):
        expected = quality_map(scorer, photo, crop=16, stride=8).scores
        np.testing.assert_allclose(np.load(f"maps/{grid}"), expected, rtol=1e-6)
    result = CliRunner().invoke(app, ["map", "shard.tar", "-o", "maps", *model, "--resume"])
    assert (result.exit_code, result.stderr) == (
        EXIT_OK,
        "resuming: 2 of 2 images already in maps/maps.csv; 0 images to map\n",
    )
    assert result.stdout == (
        "wrote no map to maps: maps.csv lists every image already, and keeps the 1 row of other images from earlier "
        "runs\n"
    )
    assert [(r["path"], r["map"]) for r in csv.DictReader(open("maps/maps.csv", encoding="utf-8"))] == rows


def test_retry_failed_maps_the_error_rows_again_in_their_place(tmp_path, monkeypatch):
    """--resume skipped an image whose row held an error for good (a photo cut by a copy, copied again, stayed an
    error until a run without --resume mapped every image again). --resume --retry-failed maps it again, its row
    in the error row's place; one still failing stays one error row, exit 1, and exit 0 once all are mapped."""
    import csv

    import numpy as np

    from arniqa.inference import load
    from arniqa.inference.maps import quality_map

    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    photos = {
        name: Image.new("RGB", (32, 24), (colour, 255 - colour, 60)) for name, colour in zip("abce", range(40, 240, 50))
    }
    for name, photo in photos.items():
        photo.save(f"photos/{name}.png")
    whole = {name: open(f"photos/{name}.png", "rb").read() for name in "be"}
    for name in "be":  # cut short by a copy
        open(f"photos/{name}.png", "wb").write(whole[name][:40])
    tiny_onnx(tmp_path / "tiny.onnx")
    model = ["--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "8"]

    def run(*args):
        return CliRunner().invoke(app, ["map", "photos", *args, "-o", "maps", *model])

    def rows():
        return [
            (r["path"], r["map"], bool(r["error"])) for r in csv.DictReader(open("maps/maps.csv", encoding="utf-8"))
        ]

    assert run().exit_code == EXIT_FAILED
    open("photos/b.png", "wb").write(whole["b"])  # copied again; e still cut
    assert run("--resume").exit_code == EXIT_FAILED and not os.path.exists("maps/b.map.png")
    result = run("--resume", "--retry-failed")
    assert result.exit_code == EXIT_FAILED, result.output
    assert result.stderr == (
        "resuming: 4 of 4 images already in maps/maps.csv (2 failed, to map again); 2 images to map\n"
        "1 of 4 images could not be mapped (see maps.csv)\n"
    )
    assert rows() == [
        ("photos/a.png", "a.map.png", False),
        ("photos/b.png", "b.map.png", False),
        ("photos/c.png", "c.map.png", False),
        ("photos/e.png", "", True),
    ]
    expected = quality_map(load("tiny.onnx", device="cpu"), photos["b"], crop=16, stride=8).scores
    np.testing.assert_allclose(np.load("maps/b.map.npy"), expected, rtol=1e-6)
    open("photos/e.png", "wb").write(whole["e"])
    assert run("--resume", "--retry-failed").exit_code == EXIT_OK
    assert [row[1] for row in rows()] == ["a.map.png", "b.map.png", "c.map.png", "e.map.png"]
    result = run("--retry-failed")
    assert result.exit_code == EXIT_USAGE and "--retry-failed goes with --resume" in result.stderr


def test_a_file_given_twice_is_mapped_once_and_counted_once(tmp_path, monkeypatch):
    """`arniqa map a.png ./a.png bad.png`: one image a.png, one row of maps.csv, as documented, but it was mapped
    twice and counted twice: 'wrote 2 maps', '1 of 3 images could not be mapped', '2 of 3 images already in'."""
    import csv

    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (32, 24), (40, 215, 60)).save("a.png")
    open("bad.png", "w").write("no image")
    tiny_onnx(tmp_path / "tiny.onnx")
    args = ["map", "a.png", "./a.png", "bad.png", "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16"]
    result = CliRunner().invoke(app, args)
    assert (result.exit_code, result.stdout) == (EXIT_FAILED, "wrote 1 map to maps (maps.csv lists them)\n")
    assert result.stderr == "1 of 2 images could not be mapped (see maps.csv)\n"
    assert [r["path"] for r in csv.DictReader(open("maps/maps.csv", encoding="utf-8"))] == ["a.png", "bad.png"]
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.stderr == (
        "resuming: 2 of 2 images already in maps/maps.csv; 0 images to map\n"
        "1 of 2 images could not be mapped, 1 of them in the rows resumed (see maps.csv)\n"
    )


def test_resume_says_what_is_done_and_left_at_the_start(tmp_path, monkeypatch):
    """map --resume said `resuming: ...` at the end of the run, hours later for a library, and not at all when the
    run was stopped; it says it at the start now, with how many images are left to map."""
    import arniqa.inference.maps
    from arniqa.cli import EXIT_INTERRUPTED

    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    for name, colour in [("a", 40), ("b", 90), ("c", 140)]:
        Image.new("RGB", (32, 24), (colour, 255 - colour, 60)).save(f"photos/{name}.png")
    tiny_onnx(tmp_path / "tiny.onnx")
    args = ["map", "photos", "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16"]
    assert CliRunner().invoke(app, [*args[:1], "photos/a.png", *args[2:]]).exit_code == EXIT_OK

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(arniqa.inference.maps, "quality_map", stopped)  # Ctrl-C in the first image
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert result.stderr.startswith("resuming: 1 of 3 images already in maps/maps.csv; 2 images to map\n")


def test_a_folder_named_that_holds_no_image_is_said_as_score_says_it_and_its_maps_are_none(tmp_path, monkeypatch):
    """map passed over a folder or a shard named that held no image in silence, exit 0, where score warns. Now the
    same line ends the run; a folder holding only the maps of an earlier run into it holds no image either."""
    import tarfile

    monkeypatch.chdir(tmp_path)
    os.makedirs("photos")
    os.makedirs("empty")
    Image.new("RGB", (32, 32), (200, 100, 50)).save("photos/a.png")
    (tmp_path / "notes.txt").write_text("x")
    with tarfile.open("labels.tar", "w") as tar:
        tar.add("notes.txt", "0001.txt")
    tiny_onnx(tmp_path / "tiny.onnx")
    model = ["--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "16"]
    result = CliRunner().invoke(app, ["map", "empty", "photos", "labels.tar", "-o", "maps", *model])
    assert result.exit_code == EXIT_OK, result.output
    assert result.stdout == "wrote 1 map to maps (maps.csv lists them)\n"
    [line] = result.stderr.splitlines()
    assert line.startswith("warning: empty, labels.tar: no image files found; give image files, or folders or tar")
    # the maps written into empty/maps (PNG images) are map's own: empty holds no image, said on each run
    for _ in range(2):
        result = CliRunner().invoke(app, ["map", "empty", "photos", "-o", "empty/maps", *model])
        assert result.exit_code == EXIT_OK, result.output
        assert result.stderr.startswith("warning: empty: no image files found;"), result.stderr
    assert sorted(os.listdir("empty/maps")) == [".maps.csv.arniqa.json", "a.map.npy", "a.map.png", "maps.csv"]


def test_files_from_maps_the_paths_of_a_list_as_score_reads_it(tmp_path, monkeypatch):
    """map took its images as arguments only: a library of 200,000 photos is more than a command line holds (xargs
    cut it into runs), and each argument is a typer Path held to the end. --files-from reads a list as score does:
    the arguments first, then the list's paths; blank lines passed over, a CR dropped, -0 for find -print0, a list
    that cannot be read one line (exit 2) before any map is written."""
    import csv

    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    for name, colour in [("a", 40), ("b", 90), ("c", 140)]:
        Image.new("RGB", (32, 24), (colour, 255 - colour, 60)).save(f"photos/{name}.png")
    tiny_onnx(tmp_path / "tiny.onnx")
    model = ["--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "16"]

    def paths(out):
        return [row["path"] for row in csv.DictReader(open(f"{out}/maps.csv", encoding="utf-8"))]

    with open("list.txt", "wb") as f:
        f.write(b"photos/b.png\r\n\n  \nphotos/c.png\n")
    result = CliRunner().invoke(app, ["map", "photos/a.png", "--files-from", "list.txt", "-o", "maps", *model])
    assert result.exit_code == EXIT_OK, result.output
    assert paths("maps") == ["photos/a.png", "photos/b.png", "photos/c.png"]
    assert result.stdout == "wrote 3 maps to maps (maps.csv lists them)\n"
    result = CliRunner().invoke(app, ["map", "-0", "--files-from", "-", "-o", "nul", *model], input=b"photos/c.png\0")
    assert result.exit_code == EXIT_OK and paths("nul") == ["photos/c.png"], result.output
    for args, line in [
        (["--files-from", "missing.txt"], "error: missing.txt: no such file or directory; give --files-from a file"),
        (["--files-from", "photos"], "error: photos: is a directory (a folder goes among PATHS); give --files-from"),
        (["--files-from", "photos/a.png"], "error: photos/a.png: holds a NUL byte, which no file name holds;"),
        (["photos/a.png", "-0"], "-0 (--null) goes with --files-from"),  # a usage error: one line from main()
        ([], "give PATHS, or --files-from LIST"),
    ]:
        result = CliRunner().invoke(app, ["map", *args, "-o", "out", *model])
        assert result.exit_code == 2 and line in " ".join(result.stderr.split()), result.output
        assert line.startswith("error") == (len(result.stderr.splitlines()) == 1), result.stderr
        assert not os.path.exists("out")
    open("empty.txt", "w").close()
    result = CliRunner().invoke(app, ["map", "--files-from", "empty.txt", "-o", "out", *model])
    assert result.exit_code == 2 and "the paths in empty.txt: no image files found" in result.stderr, result.output


def test_maps_csv_is_written_a_row_at_a_time_not_as_one_string(tmp_path, monkeypatch):
    """map wrote maps.csv as one string, twice: the earlier rows at the start and every row at the end, each string
    built from a list of its lines (over 200,000 rows, 13 MB each and as much again in lines: benchmarks/
    retry_memory.py). Both are written a row at a time now: over 20,000 earlier rows, writing maps.csv takes less
    memory than half the file (Python's allocations traced)."""
    import tracemalloc

    import arniqa.cli.map as verb

    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    Image.new("RGB", (32, 24), (40, 200, 60)).save("photos/a.png")
    tiny_onnx(tmp_path / "tiny.onnx")
    n = 20_000
    paths = ["photos/a.png", *(f"photos/gone/{i:05d}.png" for i in range(n - 1))]
    os.mkdir("maps")
    with open("maps/maps.csv", "w", encoding="utf-8") as f:  # an earlier run's rows: every image failed
        f.write("path,map,mean,min,max,rows,cols,error\n")
        f.writelines(f"{path},,,,,,,no such file\n" for path in paths)
    size = os.path.getsize("maps/maps.csv")
    write_maps, peaks = verb._write_maps, []

    def traced(*args):  # the memory taken while maps.csv is written, over what the run held before
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        try:
            return write_maps(*args)
        finally:
            peaks.append(tracemalloc.get_traced_memory()[1] - held)

    monkeypatch.setattr(verb, "_write_maps", traced)
    tracemalloc.start()
    try:  # --resume: nothing left to map, every row written again
        args = ["map", *paths, "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "16", "--resume"]
        result = CliRunner().invoke(app, args)
    finally:
        tracemalloc.stop()
    assert result.exit_code == 1 and result.stdout.startswith("wrote no map to maps: maps.csv lists every image")
    assert os.path.getsize("maps/maps.csv") == size
    assert peaks[0] < size / 2, (peaks, size)  # 0.19 of it; 4.4 times it before


def _retry_bytes_per_row() -> float:
    """The traced peak of map --resume --retry-failed per earlier failed row more (1,000 then 21,000), here."""
    import tracemalloc

    Image.new("RGB", (32, 24), (40, 200, 60)).save("a.png")
    tiny_onnx("tiny.onnx")
    peaks = []
    for n in (10, 1_000, 21_000):  # paths not there: an error row each; the first run imports what mapping needs
        paths = ["a.png", *(f"photos/gone/{i:05d}.png" for i in range(n))]
        with open(f"list{n}.txt", "w") as f:
            f.writelines(f"{path}\n" for path in paths)
        os.mkdir(f"maps{n}")
        with open(f"maps{n}/maps.csv", "w", encoding="utf-8") as f:  # an earlier run's rows: every image failed
            f.write("path,map,mean,min,max,rows,cols,error,note\n")
            f.writelines(f"{path},,,,,,,image file is truncated,\n" for path in paths)
        args = ["map", "--files-from", f"list{n}.txt", "-o", f"maps{n}", "--checkpoint", "tiny.onnx", "--crop", "16"]
        tracemalloc.start()
        try:
            result = CliRunner().invoke(app, [*args, "--resume", "--retry-failed"])
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert result.exit_code == 1 and result.stdout == f"wrote 1 map to maps{n} (maps.csv lists them)\n"
        with open(f"maps{n}/maps.csv", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        assert [row[0] for row in rows[1:]] == paths and rows[1][1] == "a.map.png"
        assert all(row[7].startswith("no such file") for row in rows[2:])  # mapped again: the new error
    return (peaks[2] - peaks[1]) / 20_000


def test_retry_failed_holds_each_earlier_row_as_one_line(tmp_path):
    """map --resume --retry-failed held each earlier row of maps.csv as a list of its fields (a string each), and
    each new row in its place the same (benchmarks/retry_memory.py). Each is held as its line now, one string: 20,000
    more earlier rows, all failed and mapped again, take 1,190 bytes each, 1,390 before (Python's allocations traced
    in a fresh process; the rest: the paths listed and their keys), and maps.csv comes back with each row in its
    place."""
    assert fresh_call(__file__, "_retry_bytes_per_row", tmp_path) < 1_300  # 1,190 bytes; 1,390 before


def test_an_absolute_path_is_held_once_in_its_key(tmp_path):
    """Each image's key in maps.csv held a second copy of its path made absolute, even when it was absolute already
    (find /photos lists such paths): 100 bytes more per image. A path given absolute is now its own key's string."""
    from arniqa.cli.map import _images, _keyed

    given = [str(tmp_path / f"{i}.png") for i in range(3)] + ["a.png", str(tmp_path / "0.png")]
    images = list(_keyed(_images(given)))
    assert [name for _, name, _ in images] == given[:4]  # a file named twice: one image
    assert [key for _, _, key in images] == [(os.path.abspath(path), 0) for path in given[:4]]
    assert all(key[0] is name for _, name, key in images[:3])


def test_maps_csv_says_each_images_note_and_a_maps_csv_written_before_notes_keeps_its_columns(tmp_path, monkeypatch):
    """An animated image mapped on its first frame was said on stderr only: its row of maps.csv now says so in its
    note. A maps.csv of an arniqa before the note column (written here by hand) is kept with its own columns, its
    rows whole, one head."""
    import csv

    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    frames = [Image.new("RGB", (32, 24), (c, 255 - c, 60)) for c in (40, 200)]
    frames[0].save("photos/anim.gif", save_all=True, append_images=frames[1:])
    Image.new("RGB", (32, 24), (90, 90, 90)).save("photos/still.png")
    tiny_onnx(tmp_path / "tiny.onnx")
    model = ["--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "8"]
    assert CliRunner().invoke(app, ["map", "photos", "-o", "maps", *model]).exit_code == EXIT_OK
    rows = list(csv.DictReader(open("maps/maps.csv", encoding="utf-8")))
    assert [(r["path"], r["note"]) for r in rows] == [
        ("photos/anim.gif", "an animated or multi-page image; its first frame is scored, the others are not"),
        ("photos/still.png", ""),
    ]
    old = "path,map,mean,min,max,rows,cols,error\nphotos/gone.png,,,,,,,no such file\n"
    os.mkdir("older")
    open("older/maps.csv", "w", encoding="utf-8").write(old)
    assert CliRunner().invoke(app, ["map", "photos/anim.gif", "-o", "older", *model]).exit_code == EXIT_OK
    lines = list(csv.reader(open("older/maps.csv", encoding="utf-8")))
    assert lines[0] == "path,map,mean,min,max,rows,cols,error".split(",") and all(len(r) == 8 for r in lines)
    assert [r[0] for r in lines[1:]] == ["photos/gone.png", "photos/anim.gif"] and lines[2][1] == "anim.map.png"


def test_map_ends_saying_how_many_images_have_a_warning_and_where_as_score_does(tmp_path, monkeypatch):
    """arniqa score ends with 'N of M images have a warning (see the note column of FILE)'; arniqa map ended without
    it, so a warning past the first 5 of its kind was named nowhere but in maps.csv, unsaid. Map ends with the same
    line now, naming its maps.csv (or saying that a maps.csv of an older arniqa has no note column); error rows with
    a note count, images mapped before (--resume) do not."""
    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    frames = [Image.new("RGB", (32, 24), (c, 255 - c, 60)) for c in (40, 200)]
    for name in ("a.gif", "b.gif", "c.gif"):
        frames[0].save(f"photos/{name}", save_all=True, append_images=frames[1:])
    Image.new("RGB", (32, 24), (90, 90, 90)).save("photos/still.png")
    small = [frame.resize((10, 8)) for frame in frames]  # its first frame smaller than the crop: an error row
    small[0].save("photos/small.gif", save_all=True, append_images=small[1:])
    tiny_onnx(tmp_path / "tiny.onnx")
    model = ["--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "8"]
    result = CliRunner().invoke(
        app, ["map", *(f"photos/{n}" for n in ("a.gif", "b.gif", "still.png")), "-o", "maps", *model]
    )
    assert result.exit_code == EXIT_OK, result.output
    listing = os.path.join("maps", "maps.csv")
    rows = list(csv.DictReader(open(listing, encoding="utf-8")))
    assert sum(bool(r["note"]) for r in rows) == 2
    assert result.stderr.splitlines()[-1] == f"2 of 3 images have a warning (see the note column of {listing})"
    result = CliRunner().invoke(app, ["map", "photos", "-o", "maps", *model, "--resume"])  # c.gif, small.gif new
    assert result.exit_code == 1, result.output
    rows = {r["path"]: r for r in csv.DictReader(open(listing, encoding="utf-8"))}
    assert rows["photos/small.gif"]["error"] and rows["photos/small.gif"]["note"]
    assert result.stderr.splitlines()[-1] == f"2 of 2 images have a warning (see the note column of {listing})"
    result = CliRunner().invoke(app, ["map", "photos/still.png", "-o", "maps", *model])
    assert result.exit_code == EXIT_OK and "warning" not in result.stderr  # none: no line

    os.mkdir("older")
    open("older/maps.csv", "w", encoding="utf-8").write("path,map,mean,min,max,rows,cols,error\n")
    result = CliRunner().invoke(app, ["map", "photos/a.gif", "-o", "older", *model])
    assert result.exit_code == EXIT_OK, result.output
    older = os.path.join("older", "maps.csv")
    assert result.stderr.splitlines()[-1] == (
        f"1 of 1 image has a warning ({older} was written by an older arniqa, without a note column)"
    )


def test_an_animated_file_is_warned_of_once_by_its_path(tmp_path, monkeypatch):
    """map warned twice of an animated file: once by its path as it was read, once more as '<input 0>' as the
    decoded image was mapped. Each file's warning is said once now, naming the file."""
    import warnings

    from arniqa.utils.messages import show_warning

    monkeypatch.setattr(warnings, "showwarning", show_warning)  # as the arniqa command says them, on its stderr
    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    for name in ("a.gif", "b.gif"):
        frames = [Image.new("RGB", (32, 24), (c, 255 - c, 60)) for c in (40, 200)]
        frames[0].save(f"photos/{name}", save_all=True, append_images=frames[1:])
    Image.new("RGB", (32, 24), (90, 90, 90)).save("photos/still.png")
    tiny_onnx(tmp_path / "tiny.onnx")
    args = ["map", "photos", "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_OK, result.output
    said = "an animated or multi-page image; its first frame is scored, the others are not"
    assert result.stderr.splitlines() == [
        *(f"warning: photos/{name}: {said}" for name in ("a.gif", "b.gif")),
        f"2 of 3 images have a warning (see the note column of {os.path.join('maps', 'maps.csv')})",
    ]


def _map_bytes_per_path() -> float:
    """The traced peak of a fresh map per path more (1,000 then 21,000 paths, none there but one), here."""
    import tracemalloc

    Image.new("RGB", (32, 24), (40, 200, 60)).save("a.png")
    tiny_onnx("tiny.onnx")
    peaks = []
    for n in (10, 1_000, 21_000):  # paths not there: an error row each; the first run imports what mapping needs
        with open(f"list{n}.txt", "w") as f:
            f.writelines(["a.png\n", *(f"photos/gone/{i:05d}.png\n" for i in range(n))])
        args = ["map", "--files-from", f"list{n}.txt", "-o", f"maps{n}", "--checkpoint", "tiny.onnx", "--crop", "16"]
        tracemalloc.start()
        try:
            result = CliRunner().invoke(app, args)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert result.exit_code == 1 and result.stdout == "wrote 1 map to maps{} (maps.csv lists them)\n".format(n)
        with open(f"maps{n}/maps.csv", encoding="utf-8") as f:
            assert sum(1 for _ in f) == n + 2  # the header, a.png, the paths not there
    return (peaks[2] - peaks[1]) / 20_000


def test_map_holds_no_row_of_the_images_it_maps(tmp_path):
    """map held every row it wrote, to write maps.csv once more at the end, and each image's key beside it: 0.7 KB
    per image, 134 MB over 200,000 (benchmarks/retry_memory.py). The rows are read back from maps.csv now and the
    keys made as each image is mapped: 20,000 more paths take 540 bytes each, 970 before (Python's
    allocations traced in a fresh process)."""
    assert fresh_call(__file__, "_map_bytes_per_path", tmp_path) < 750  # 540 bytes; 970 before


def test_resume_parses_each_earlier_row_of_maps_csv_once_after_reading_it(tmp_path, monkeypatch):
    """map --resume held each earlier row as its line and parsed it again up to three times before mapping: whether
    it failed, whether its files are whole, its map's name. One pass now tells all three: each row of a mapped image
    is parsed twice in all (read, then once), not four times (csv records counted)."""
    import csv
    import types
    from collections import Counter

    import arniqa.cli.map as verb

    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    for name, colour in zip("abc", (40, 120, 200)):
        Image.new("RGB", (32, 24), (colour, 255 - colour, 60)).save(f"photos/{name}.png")
    tiny_onnx(tmp_path / "tiny.onnx")
    args = ["map", "photos", "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "16"]
    assert CliRunner().invoke(app, args).exit_code == EXIT_OK
    parsed = Counter()

    def reader(lines, *args, **options):  # csv.reader, each record counted by its first field
        for record in csv.reader(lines, *args, **options):
            parsed[record[0]] += 1
            yield record

    monkeypatch.setattr(verb, "csv", types.SimpleNamespace(**{**vars(csv), "reader": reader}))
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == EXIT_OK and "maps.csv lists every image already" in result.stdout, result.output
    assert parsed == {"path": 1, "photos/a.png": 2, "photos/b.png": 2, "photos/c.png": 2}


def test_resume_checks_each_grid_by_its_header_and_size_and_maps_again_one_damaged_any_way(tmp_path):
    """--resume took a map as whole by np.load(mmap_mode="r") of each .npy; it reads the header and the file's size
    now (benchmarks/map_resume.py). Each damage the load caught still fails the check: a grid cut by one byte, a
    file that is no .npy, an empty one, a missing one, a grid of other sides; an intact grid of either header
    version passes, and a grid with bytes after its data (np.save writes none) does not."""
    import numpy as np
    from numpy.lib import format as npy

    from arniqa.cli.map import _suffixes, _whole

    grid = np.arange(6 * 5, dtype=np.float32).reshape(6, 5)
    png = tmp_path / "a.map.png"
    Image.new("RGB", (5, 6)).save(png)
    row = ["a.png", "a.map.png", "0", "0", "0", "6", "5", "", ""]
    data = tmp_path / "a.map.npy"

    def whole(content: bytes, shape=("6", "5")) -> bool:
        data.write_bytes(content)
        return _whole(tmp_path, [*row[:5], *shape, *row[7:]], _suffixes(None))

    np.save(data, grid)
    saved = data.read_bytes()
    assert len(saved) == 128 + grid.nbytes  # the header np.save writes, then the grid
    with open(data, "wb") as f:
        npy.write_array(f, grid, version=(2, 0))
    version_2 = data.read_bytes()
    assert whole(saved) and whole(version_2)
    assert not whole(saved[:-1]) and not whole(version_2[:-1])  # cut short by a byte
    assert not whole(saved[:100])  # cut inside its header
    assert not whole(saved + b"\0")
    assert not whole(b"path,map\n" + saved[9:])  # no .npy
    assert not whole(b"")
    assert not whole(saved, ("5", "6"))
    data.unlink()
    assert not _whole(tmp_path, row, _suffixes(None))  # missing
    with open(data, "wb") as f:
        np.save(f, np.array([[None] * 5] * 6, dtype=object))
    assert not whole(data.read_bytes())  # objects: not a grid, whatever its size


def _as_excel_saves(path) -> bytes:
    """The bytes Excel writes when maps.csv is opened and saved as "CSV UTF-8": a byte order mark, CRLF line ends,
    fields quoted only where they must be, numbers as it shows them (0.5000: 0.5)."""
    rows = list(csv.reader(open(path, newline="", encoding="utf-8")))
    for row in rows[1:]:
        row[2:7] = [f"{float(v):.15g}" if v else "" for v in row[2:7]]
    return b"\xef\xbb\xbf" + "".join(",".join(row) + "\r\n" for row in rows).encode("utf-8")


def test_resume_and_report_read_a_maps_csv_saved_by_excel(tmp_path, monkeypatch):
    """A maps.csv opened in Excel and saved starts with a UTF-8 byte order mark: --resume refused it as not arniqa
    map's, and arniqa report --maps linked no map (its first column was not named path). Both read it now: --resume
    maps nothing again and keeps every row (written back in arniqa's form, the mark dropped), the report links each
    image's map."""
    from arniqa.cli.map import read_map_index

    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    for name, colour in zip("ab", (40, 200)):
        Image.new("RGB", (32, 24), (colour, 255 - colour, 60)).save(f"photos/{name}.png")
    tiny_onnx(tmp_path / "tiny.onnx")
    args = ["map", "photos", "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "8"]
    assert CliRunner().invoke(app, args).exit_code == EXIT_OK
    rows = list(csv.reader(open("maps/maps.csv", newline="", encoding="utf-8")))
    excel = _as_excel_saves("maps/maps.csv")
    open("maps/maps.csv", "wb").write(excel)
    maps = {name: os.stat(f"maps/{name}").st_ino for name in os.listdir("maps") if ".map." in name}
    index = read_map_index(tmp_path / "maps")
    for image in ("photos/a.png", "photos/b.png"):
        assert index[image, 0] == index[str(tmp_path / image), 0] == tmp_path / "maps" / f"{image[7]}.map.png"
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == EXIT_OK, result.output
    assert result.stdout == "wrote no map to maps: maps.csv lists every image already\n"
    assert {name: os.stat(f"maps/{name}").st_ino for name in os.listdir("maps") if ".map." in name} == maps
    kept = list(csv.reader(open("maps/maps.csv", newline="", encoding="utf-8")))
    assert kept == list(csv.reader(excel.decode("utf-8-sig").splitlines()))  # Excel's fields, every row
    assert [row[:2] for row in kept] == [row[:2] for row in rows]
    assert not open("maps/maps.csv", "rb").read().startswith(b"\xef\xbb\xbf")


def test_resume_and_report_read_a_maps_csv_whose_empty_last_fields_excel_left_out(tmp_path, monkeypatch):
    """Excel can save maps.csv with the separators of empty last cells left out (a mapped image's row ends at its
    cols, an error row at its error): --resume refused such rows before others as edited ('row 1 is not a row of
    arniqa map (7 fields, not 9)') and took such a last row as cut short, mapping its image again. Both are read
    now, as with their empty fields: --resume maps nothing again and writes every row back in arniqa's form, and
    arniqa report --maps links each map."""
    from arniqa.cli.map import read_map_index

    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    for name, colour in zip("ab", (40, 200)):
        Image.new("RGB", (32, 24), (colour, 255 - colour, 60)).save(f"photos/{name}.png")
    open("photos/c.png", "wb").write(open("photos/a.png", "rb").read()[:40])  # cut short: an error row
    tiny_onnx(tmp_path / "tiny.onnx")
    args = ["map", "photos", "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "8"]
    assert CliRunner().invoke(app, args).exit_code == EXIT_FAILED
    rows = list(csv.reader(open("maps/maps.csv", newline="", encoding="utf-8")))
    assert [(row[0], bool(row[7]), row[8]) for row in rows[1:]] == [(f"photos/{n}.png", n == "c", "") for n in "abc"]
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    excel = "".join(line.rstrip(",") + "\r\n" for line in text.getvalue().splitlines())
    assert [len(row) for row in csv.reader(excel.splitlines())] == [9, 7, 7, 8]
    open("maps/maps.csv", "w", newline="", encoding="utf-8").write(excel)
    index = read_map_index(tmp_path / "maps")
    assert {key: path.name for key, path in index.items() if not os.path.isabs(key[0])} == {
        ("photos/a.png", 0): "a.map.png",
        ("photos/b.png", 0): "b.map.png",
    }
    maps = {name: os.stat(f"maps/{name}").st_ino for name in os.listdir("maps") if ".map." in name}
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == EXIT_FAILED, result.output  # c's error row, kept
    assert "maps.csv lists every image already" in result.stdout, result.output
    assert {name: os.stat(f"maps/{name}").st_ino for name in os.listdir("maps") if ".map." in name} == maps
    assert list(csv.reader(open("maps/maps.csv", newline="", encoding="utf-8"))) == rows


def test_resume_and_report_say_a_maps_csv_saved_with_semicolons_is_so(tmp_path, monkeypatch):
    """Excel in a locale that writes decimal commas saves maps.csv with ';' between fields: --resume refused it as
    'not a maps.csv of arniqa map', nothing on why, and arniqa report --maps linked no map, saying nothing. Both say
    how its fields are separated and to save it comma-separated; the file is left as it is."""
    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    Image.new("RGB", (32, 24), (40, 200, 60)).save("photos/a.png")
    tiny_onnx(tmp_path / "tiny.onnx")
    args = ["map", "photos", "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "8"]
    assert CliRunner().invoke(app, args).exit_code == EXIT_OK
    rows = list(csv.reader(open("maps/maps.csv", newline="", encoding="utf-8")))
    german = b"\xef\xbb\xbf" + "".join(";".join(r).replace(".", ",") + "\r\n" for r in rows).encode("utf-8")
    assert german.count(b";") == 16 and b"," in german
    open("maps/maps.csv", "wb").write(german)
    problem = (
        "maps/maps.csv: its fields are separated by ';', not commas, as a spreadsheet saves CSV in a locale that "
        "writes decimal commas (the header is one column, 'path;map;mean;min;max;rows;cols;error;note'); save it "
        "again as a comma-separated CSV, or "
    )
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert (result.exit_code, result.stderr) == (EXIT_USAGE, f"error: {problem}choose another -o\n")
    open("scores.csv", "w").write("path,score,raw_score,error,note\nphotos/a.png,0.5,3.0,,\n")
    report = ["report", "scores.csv", "-o", "report.html", "--maps", "maps", "--thumbnails", "none"]
    result = CliRunner().invoke(app, report)
    expected = f"error: {problem}give the folder that arniqa map -o wrote\n"
    assert (result.exit_code, result.stderr) == (EXIT_USAGE, expected), result.output
    assert open("maps/maps.csv", "rb").read() == german
    open("maps/maps.csv", "w").write("name,score\nphotos/a.png,1\n")  # another file: no longer linked in silence
    result = CliRunner().invoke(app, report)
    assert (result.exit_code, result.stderr) == (
        EXIT_USAGE,
        "error: maps/maps.csv: not a maps.csv of arniqa map (its first line is 'name,score'); give the folder that "
        "arniqa map -o wrote\n",
    )


def test_report_leaves_out_a_last_row_with_no_line_end_as_resume_does(tmp_path, monkeypatch):
    """A run killed while writing the last row of maps.csv can leave all its fields but the end of its note, and no
    line end: map --resume and score's result files take such a row as cut, while arniqa report --maps linked its
    map. The report leaves it out too now; a last row with its line end is linked."""
    from arniqa.cli.map import read_map_index

    monkeypatch.chdir(tmp_path)
    os.mkdir("maps")
    Image.new("RGB", (4, 4)).save("maps/a.map.png")
    Image.new("RGB", (4, 4)).save("maps/b.map.png")
    head = "path,map,mean,min,max,rows,cols,error,note\n"
    a, b = "a.png,a.map.png,0.5,0.1,0.9,2,2,,\n", "b.png,b.map.png,0.5,0.1,0.9,2,2,,first frame mapped\n"
    for text, linked in [(head + a + b, ["a.png", "b.png"]), (head + a + b[:-1], ["a.png"]), (head, [])]:
        open("maps/maps.csv", "w", newline="").write(text)
        assert sorted(path for path, _ in read_map_index(tmp_path / "maps") if not os.path.isabs(path)) == linked
