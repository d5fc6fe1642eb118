"""One set of exit codes for every verb: 0 ok, 1 some items failed, 2 usage or setup error (docs/usage.md)."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arniqa.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _register, app
from arniqa.utils import runtime

_register()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working folder holding photos/a.png, wide messages (typer would wrap them at 80 columns) and no
    process-wide allocator switch (not in the test process)."""
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: False)
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "photos" / "a.png")
    return tmp_path


def test_the_documented_values():
    assert (EXIT_OK, EXIT_FAILED, EXIT_USAGE) == (0, 1, 2)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "missing.yaml"], "missing.yaml"),
        (["ablate", "missing.yaml"], "missing.yaml"),
        (["distort", "nope.png", "--name", "gaublur", "--level", "1", "-o", "out.png"], "nope.png"),
        # said "no image files found", naming neither the folder nor what counts as an image
        (
            ["score", "empty-folder"],
            "error: empty-folder: no image files found; give image files, or folders or tar "
            "shards holding them: files ending in .jpg, .jpeg, .png",
        ),  # fmt: skip
        (["benchmark", "synthetic", "--pristine", "photos", "-o", "out", "--size", "12x"], "WIDTHxHEIGHT"),
        # --images -1 built the set of all photos but the last (a Python slice), without a word
        (["benchmark", "synthetic", "--pristine", "photos", "-o", "out", "--images", "-1"], "'--images'"),
        # over the bound: the OOM killer, or one process per worker (1000 started 1000)
        (["benchmark", "synthetic", "--pristine", "photos", "-o", "out", "--size", "100000x100000"], "16 to 4096"),
        (
            ["evaluate", "--dataset", "kadid10k", "--root", "photos", "-o", "out", "--workers", "100000"],
            "--workers=100000 is more than",
        ),  # fmt: skip
        (["score", "x.png", "--resume"], "--resume needs -o"),
        # said "photos: no images found" (the output's images are left out) and "photos: no such file"
        (["benchmark", "synthetic", "--pristine", "photos", "-o", "photos"], "photos is or holds the --pristine"),
        (["benchmark", "synthetic", "--pristine", "photos", "-o", "."], ". is or holds the --pristine folder"),
        (["report", "photos", "-o", "report.html"], "photos: a folder; give the CSV, JSON or JSON Lines file"),
        (["map", "empty-folder", "-o", "maps"], "error: empty-folder: no image files found; give image files"),
        # before: the model was loaded (or downloaded) first, then each mistyped path mapped as an error
        (["map", "typo.jpg", "-o", "maps"], "typo.jpg: no such file or folder; check the path (nothing to map)"),
        (["report", "missing.csv", "-o", "report.html"], "missing.csv"),
        (
            ["explain", "fit", "empty-folder", "-o", "head.safetensors"],
            "error: empty-folder: no image files found; give a folder holding image files: files ending in",
        ),  # before: "no images found", with no advice
        (
            ["benchmark", "synthetic", "--pristine", "empty-folder", "-o", "bench"],
            "error: empty-folder: no image files found; give a folder holding image files: files ending in",
        ),  # before: "Invalid value for '--pristine': empty-folder: no images found", with no advice
        *[
            (
                [*verb, "--checkpoint", "m.safetensors", "--weights-dir", "weights"],
                "do not combine it with --checkpoint",
            )
            for verb in (
                ["score", "photos"],
                ["map", "photos", "-o", "maps"],
                ["export", "-o", "m.onnx"],
                ["evaluate", "--dataset", "kadid10k", "--root", "photos", "-o", "out"],
            )
        ],
    ],
)
def test_usage_and_setup_errors_exit_2(workdir, args, message):
    (workdir / "empty-folder").mkdir()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_USAGE, result.output
    assert message in result.output


@pytest.mark.parametrize(
    "args, setting",
    [
        (["train", "run.yaml", "--set", "data.root=notes"], ""),
        (["benchmark", "synthetic", "--pristine", "notes", "-o", "bench"], ""),
        (["explain", "fit", "notes", "-o", "head.safetensors"], ""),
        (["explain", "fit", "photos", "--test", "notes", "-o", "head.safetensors"], ""),
        # before: "data.pristine: 0 images cannot give 6 held-out images and a training part", after the warning
        (["ablate", "study.yaml", "--set", "data.pristine=notes", "-o", "study"], "data.pristine: "),
    ],
)
def test_a_folder_of_no_image_is_one_line_naming_what_it_skipped(workdir, args, setting):
    # before: a warning line of what was skipped, then an error line that said nothing of it (score and map said
    # both in one line): two definitions of the line, one in data/pristine.py and one in cli/command.py
    from arniqa.data.folders import image_rule

    (workdir / "notes").mkdir()
    (workdir / "notes" / "readme.txt").write_text("not a photo")
    (workdir / "run.yaml").write_text("output: run\nmodel:\n  init: random\ntrain:\n  device: cpu\n")
    (workdir / "study.yaml").write_text((Path(__file__).parents[2] / "configs" / "ablation_tiny.yaml").read_text())
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_USAGE
    assert result.output == (
        f"error: {setting}notes: no image files found, skipped 1 file no decoder can open: 1 .txt; give a folder "
        f"holding image files: {image_rule()}\n"
    )


@pytest.mark.parametrize("verb", [["score"], ["map", "-o", "maps"]])
def test_a_folder_of_linked_folders_alone_names_them_in_one_plain_line(workdir, verb):
    # before: "no image files found (skipped 1 link to a folder (not followed: give it as a path to score it))"
    (workdir / "library").mkdir()
    (workdir / "library" / "2024").symlink_to(workdir / "photos")
    result = CliRunner().invoke(app, [verb[0], "library", *verb[1:]])
    assert result.exit_code == EXIT_USAGE
    assert result.output.startswith(
        "error: library: no image files found, skipped 1 link to a folder: library/2024 (not followed; give it as a "
        f"path to {verb[0]} it); give image files"
    )


def test_distort_unknown_name_exits_2(tmp_path):
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    result = CliRunner().invoke(
        app, ["distort", str(tmp_path / "a.png"), "-n", "nosuch", "-l", "1", "-o", str(tmp_path / "b.png")]
    )
    assert result.exit_code == EXIT_USAGE and "nosuch" in result.output


def test_version_exits_0():
    assert CliRunner().invoke(app, ["version"]).exit_code == EXIT_OK


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "bad.yaml"], "bad.yaml: invalid YAML (line 2, column 1: expected the node content"),
        (
            ["train", "tagged.yaml"],
            "tagged.yaml: invalid YAML (line 1, column 7: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'); fix the file",
        ),
        (
            ["train", "ok.yaml", "--set", "seed=[1,"],
            "--set seed=[1,: its value is not valid YAML (line 1, column 4: expected the node content",
        ),
        (
            ["ablate", "ok.yaml", "--set", "seed=!!python/object/apply:os.system ['touch ran']"],
            "--set seed=!!python/object/apply:os.system ['touch ran']: its value is not valid YAML",
        ),
        (
            ["report", "other.csv", "-o", "report.html"],
            "other.csv: not an arniqa csv result file (its first line is 'path,score'); give the CSV, JSON or JSON "
            "Lines file that arniqa score -o wrote",
        ),
        (
            ["report", "missing.csv", "-o", "report.html"],
            "missing.csv: no such file; check the path of the CSV, JSON or JSON Lines file that arniqa score -o wrote",
        ),
        (
            ["score", "photos", "-o", "other.csv", "--resume"],
            "other.csv: not an arniqa csv result file (its first line is 'path,score'); choose another output",
        ),
    ],
)
def test_bad_files_and_values_are_one_line_exit_2_and_run_nothing(workdir, args, message):
    """A config that is not YAML, a YAML tag that would run a command, a --set value that is not YAML, another
    program's CSV: one line naming the file or value, what is wrong and what to do; nothing in them runs."""
    (workdir / "ok.yaml").write_text("seed: 1\n")
    (workdir / "bad.yaml").write_text("seed: [1,\n")
    (workdir / "tagged.yaml").write_text("seed: !!python/object/apply:os.system ['touch ran']\n")
    (workdir / "other.csv").write_text("path,score\na.png,0.5\n")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.output.strip().count("\n") == 0 and message in result.output
    assert not (workdir / "ran").exists()


@pytest.mark.parametrize(
    "args, name",
    [
        (["score", ""], "'PATHS'"),
        (["score", "photos", ""], "'PATHS'"),
        (["map", "", "-o", "maps"], "'PATHS'"),
        (["score", "photos", "-o", ""], "'-o' / '--output'"),
        (["score", "photos", "--checkpoint", ""], "'--checkpoint'"),
        (["gallery", ""], "'IMAGE'"),
        (["ablate", "--out", "", "ok.yaml"], "'-o' / '--output'"),
    ],
)
def test_an_empty_path_is_refused_not_read_as_the_current_folder(workdir, args, name):
    """``arniqa score "$DIR"`` with DIR unset: typer read '' as Path(''), the current folder, and every image under
    it was scored (-o '' and --checkpoint '' named the current folder too); now one line naming the option."""
    (workdir / "ok.yaml").write_text("seed: 1\n")
    result = CliRunner().invoke(app, args, env={"ARNIQA_CACHE": str(workdir / "cache")})
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"Invalid value for {name}: an empty path ('') names no file" in " ".join(result.output.split())
    assert sorted(p.name for p in workdir.iterdir()) == ["ok.yaml", "photos"]


def test_a_file_that_is_no_result_file_is_refused_alike_with_and_without_resume(workdir):
    # before: --resume's line ended 'or score without --resume to replace it', and that run was refused too
    (workdir / "other.csv").write_text("path,score\na.png,0.5\n")
    lines = []
    for resume in (["--resume"], []):
        result = CliRunner().invoke(app, ["score", "photos", "-o", "other.csv", *resume])
        assert result.exit_code == EXIT_USAGE, result.output
        lines.append(result.output.strip())
    said = "error: other.csv: not an arniqa csv result file (its first line is 'path,score'); choose another output"
    assert lines == [said, said]
    assert (workdir / "other.csv").read_text() == "path,score\na.png,0.5\n"


CONFIGS = Path(__file__).resolve().parents[2] / "configs"
IN_THE_WAY = "cannot write it: afile is a file, not a folder; choose an output you can write to"


@pytest.mark.parametrize(
    "args, output",
    [
        (["distort", "photos/a.png", "--name", "gaublur", "--level", "1", "-o", "afile/x.png"], "afile/x.png"),
        (["gallery", "photos/a.png", "-o", "afile/g.png"], "afile/g.png"),
        (["report", "scores.csv", "-o", "afile/r.html"], "afile/r.html"),
        (["score", "photos", "--html", "afile/r.html"], "afile/r.html"),
        (["export", "--checkpoint", "m.safetensors", "-o", "afile/m.onnx"], "afile/m.onnx"),
        (["map", "photos", "-o", "afile"], "afile"),
        (["benchmark", "synthetic", "--pristine", "photos", "-o", "afile/set"], "afile/set"),
        (["explain", "fit", "photos", "-o", "afile/h.safetensors"], "afile/h.safetensors"),
        (["explain", "fit", "photos", "-o", "h.safetensors", "--cache", "afile/c"], "afile/c"),
        (["evaluate", "--dataset", "kadid10k", "--root", "photos", "-o", "afile/e"], "afile/e"),
        (["train", str(CONFIGS / "demo.yaml"), "--set", "output=afile/run"], "afile/run"),
        (["ablate", str(CONFIGS / "ablation_tiny.yaml"), "--set", "output=afile/abl"], "afile/abl"),
        (["demo", "-o", "afile/d"], "afile/d"),
    ],
)
def test_an_output_below_a_file_is_one_line_exit_2_before_any_work(workdir, args, output):
    """Every verb that writes checks its output's folder first: a file standing where a folder is needed is
    named in one line (it was a traceback in eight verbs), before a model loads or training starts."""
    (workdir / "afile").write_text("a file, not a folder")
    (workdir / "scores.csv").write_text("path,score,raw_score,error\nphotos/a.png,0.5,3.0,\n")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.output.strip() == f"error: {output}: {IN_THE_WAY}"


@pytest.mark.parametrize(
    "args, victim",
    [
        (["report", "scores.csv", "-o", "scores.csv"], "scores.csv"),
        (["report", "scores.csv", "-o", "./scores.csv"], "scores.csv"),
        (["score", "photos", "-o", "scores.csv", "--resume", "--html", "scores.csv"], "scores.csv"),
        (["distort", "photos/a.png", "--name", "gaublur", "--level", "1", "-o", "photos/a.png"], "photos/a.png"),
        (["gallery", "photos/a.png", "-o", "photos/../photos/a.png"], "photos/a.png"),
        (["explain", "fit", "photos", "--checkpoint", "scores.csv", "-o", "scores.csv"], "scores.csv"),
    ],
)
def test_an_output_that_is_an_input_is_refused_and_left_whole(workdir, args, victim):
    """`arniqa report scores.csv -o scores.csv` replaced the scores with the report; `distort` and `gallery`
    wrote over their photo, `score --html` over its own result file. Now one line, exit 2, the file untouched."""
    (workdir / "scores.csv").write_text("path,score,raw_score,error\nphotos/a.png,0.5,3.0,\n")
    before = (workdir / victim).read_bytes()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_USAGE, result.output
    output = args[args.index("--html" if "--html" in args else "-o") + 1]
    assert result.output.strip() == (
        f"error: {Path(output)}: it is also an input of this command and would be overwritten; choose another output"
    )
    assert (workdir / victim).read_bytes() == before


@pytest.mark.parametrize("html", ["new.csv", "./new.csv", "sub/../new.csv"])
def test_score_html_onto_a_new_output_is_refused(workdir, html):
    """`score -o new.csv --html new.csv` with no new.csv yet passed the check (it compared files, and one was not
    there) and the report replaced the rows just written, exit 0. Now refused like an existing one: one line,
    exit 2, nothing written."""
    (workdir / "sub").mkdir()
    result = CliRunner().invoke(app, ["score", "photos", "-o", "new.csv", "--html", html])
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.output.strip() == (
        f"error: {Path(html)}: it is also an input of this command and would be overwritten; choose another output"
    )
    assert not (workdir / "new.csv").exists()


@pytest.mark.parametrize("command", ["score-html", "report"])
def test_an_html_report_never_replaces_a_file_that_is_not_one(workdir, command):
    """`arniqa report scores.csv -o photo.png` and `score a.png --html a.png` (a typo of the report's name) replaced
    the photo with the report, exit 0. Now a file that is no HTML file is refused by its first bytes: one line,
    exit 2, the file untouched; an earlier report is replaced as before."""
    photo = workdir / "photos" / "a.png"
    kept = photo.read_bytes()
    (workdir / "scores.csv").write_text("path,score,raw_score,error\nphotos/a.png,0.5,3.0,\n")
    args = ["score", "photos/a.png", "--html", "photos/a.png"] if command == "score-html" else []
    args = args or ["report", "scores.csv", "-o", "photos/a.png"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.output.strip() == (
        "error: photos/a.png: holds something other than an HTML report, which the report would replace; choose "
        "another output (e.g. report.html)"
    )
    assert photo.read_bytes() == kept
    if command == "report":  # an earlier report (any case, after blanks) is written over
        (workdir / "old.html").write_text("\n  <!doctype HTML><html></html>")
        result = CliRunner().invoke(app, ["report", "scores.csv", "-o", "old.html"])
        assert result.exit_code == EXIT_OK, result.output
        written = (workdir / "old.html").read_text()
        assert written.startswith("<!DOCTYPE html>") and "a.png" in written


def test_report_maps_that_are_not_a_maps_folder_say_what_they_are(workdir):
    """--maps of a mistyped folder, and of the maps.csv file itself, said "no maps.csv in it"; each says what it is
    now, in one line with what to give, and no report is written."""
    (workdir / "scores.csv").write_text("path,score,raw_score,error\nphotos/a.png,0.5,3.0,\n")
    (workdir / "maps").mkdir()
    (workdir / "maps" / "maps.csv").write_text("path,map,mean,min,max,rows,cols,error\n")
    give = "give the folder that arniqa map -o wrote"
    for maps, line in [
        ("mpas", f"error: mpas: no such folder; {give} (it holds maps.csv)"),
        ("maps/maps.csv", f"error: maps/maps.csv: not a folder; {give} (it holds maps.csv)"),
        ("photos", f"error: photos: no maps.csv in it; {give}"),
    ]:
        result = CliRunner().invoke(app, ["report", "scores.csv", "-o", "r.html", "--maps", maps])
        assert (result.exit_code, result.stdout, result.stderr) == (EXIT_USAGE, "", line + "\n")
        assert not (workdir / "r.html").exists()


def test_a_write_error_midway_is_one_line_naming_the_file(workdir):
    """Writes after the checks go through one guard: maps.csv that is a folder, a report that is a folder."""
    from tiny_arniqa import tiny_onnx

    tiny_onnx(workdir / "tiny.onnx")
    (workdir / "maps" / "maps.csv").mkdir(parents=True)
    result = CliRunner().invoke(
        app, ["map", "photos", "-o", "maps", "--checkpoint", "tiny.onnx", "--crop", "16", "--stride", "16"]
    )
    assert result.exit_code == EXIT_USAGE, result.output
    assert (
        result.output.strip()
        == "error: maps/maps.csv: cannot write it: is a folder (EISDIR); choose an output you can write to"
    )
    (workdir / "scores.csv").write_text("path,score,raw_score,error\nphotos/a.png,0.5,3.0,\n")
    (workdir / "r.html").mkdir()
    result = CliRunner().invoke(app, ["report", "scores.csv", "-o", "r.html"])
    assert result.exit_code == EXIT_USAGE, result.output
    assert (
        result.output.strip()
        == "error: r.html: cannot write it: is a folder (EISDIR); choose an output you can write to"
    )


def test_train_stopped_before_it_trains_says_how_to_go_on_as_python_m_arniqa_train_does(workdir, monkeypatch, capsys):
    """`arniqa train` said 'interrupted' alone where `python -m arniqa.train` says how to go on; with the config
    read, a state.pt in the run folder (a run stopped as it ended) is the one to resume from, as there."""
    from arniqa.cli import command
    from arniqa.train.__main__ import main

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt  # where Ctrl-C lands: after the config is read, before the run trains

    monkeypatch.setattr("arniqa.train.config.check_data", stopped)
    monkeypatch.setattr("arniqa.train.loop.Trainer", stopped)
    config = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
    args = [str(config), "--set", "data.root=photos", "--set", "output=run"]
    (workdir / "run").mkdir()
    for state in (False, True):
        if state:
            (workdir / "run" / "state.pt").touch()
        CliRunner().invoke(app, ["train", *args])
        code, line = command.stopped_line()
        capsys.readouterr()
        assert main(args) == code == 130 and capsys.readouterr().err == f"error: {line}\n"
        assert workdir.joinpath("run").is_dir()
        said = "resume with --resume run/state.pt" if state else "nothing was trained: run the same command again"
        assert line == f"interrupted; {said}"


@pytest.mark.parametrize("verb", [["score", "photos"], ["map", "photos", "-o", "maps", "--crop", "16"]])
def test_a_checkpoint_without_a_regressor_is_one_line_naming_it_and_the_way_out(workdir, monkeypatch, verb):
    """A training run's model.safetensors holds the encoder alone; before, the line named neither the file nor
    where a regressor comes from."""
    from tiny_arniqa import TinyARNIQA

    import arniqa.models.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "ARNIQA", lambda name, **options: TinyARNIQA())
    checkpoint.save_checkpoint(workdir / "model.safetensors", TinyARNIQA())  # no regressor, as training writes
    result = CliRunner().invoke(app, [*verb, "--checkpoint", "model.safetensors", "--engine", "torch"])
    assert result.exit_code == EXIT_USAGE
    assert result.output.strip() == (
        "error: model.safetensors: the checkpoint has no regressor (a training run's model is the encoder alone); "
        "pass --regressor FILE, or use the checkpoint_<dataset>.safetensors that `arniqa evaluate --checkpoint "
        "model.safetensors` writes"
    )


@pytest.mark.parametrize(
    "args, line",
    [
        (
            ["evaluate", "--dataset", "kadid10k", "--root", ".", "-o", "out", "--crop-size", "7"],
            re.escape("error: Invalid value for '--crop-size': "),
        ),
        # click's words: click 8.4+ (what typer < 0.29 uses) quotes the name, typer 0.29's own click does not
        (["score", "--bogus"], r"error: No such option(: --bogus| '--bogus') \(see arniqa score --help\)"),
        (["evaluate"], re.escape("error: Missing option '--dataset' (see arniqa evaluate --help)")),
        (["nonverb"], re.escape("error: No such command 'nonverb' (see arniqa --help)")),
        # the parser's own errors come without the command; they ended without the pointer
        (["distort", "x.png", "-n"], re.escape("error: Option '-n' requires an argument (see arniqa distort --help)")),
        (
            ["benchmark", "synthetic", "--pristine"],
            re.escape("error: Option '--pristine' requires an argument (see arniqa benchmark synthetic --help)"),
        ),
        (
            ["score", "--resume=yes"],
            re.escape("error: Option '--resume' does not take a value (see arniqa score --help)"),
        ),
        # a value a verb refuses itself names no option: its line is the message, without click's "Invalid value: "
        (["score"], re.escape("error: give PATHS, or --files-from LIST (see arniqa score --help)")),
        (
            ["report", "--thumbnails", "big", "scores.csv", "-o", "r.html"],
            re.escape("error: --thumbnails must be one of ('embed', 'link', 'none') (see arniqa report --help)"),
        ),
    ],
)
def test_the_arniqa_command_gives_a_bad_option_one_line(tmp_path, args, line):
    """typer's own message is a box of five lines or more; the command prints one (typer's testing runner does not
    go through main(), so this runs the real command in a child process)."""
    from fresh_cli import fresh_cli

    done, _ = fresh_cli(*args)
    assert done.returncode == EXIT_USAGE
    lines = done.stderr.strip().splitlines()[:-1]  # the last line is the child's report
    assert len(lines) == 1 and re.match(line, lines[0]), done.stderr
    assert lines[0].endswith("help)")


def test_control_characters_in_a_message_are_escaped(workdir):
    """A file name holding a terminal escape (here from the command line; label files are the usual source) is
    written escaped: it cannot retitle or clear the user's terminal, and the message stays one line."""
    result = CliRunner().invoke(app, ["report", "\x1b]0;pwned\x07\x1b[2J\nscores.csv", "-o", "r.html"])
    assert result.exit_code == EXIT_USAGE
    assert result.output == (
        "error: \\x1b]0;pwned\\x07\\x1b[2J\\x0ascores.csv: no such file; check the path of the CSV, JSON or JSON "
        "Lines file that arniqa score -o wrote\n"
    )


def test_a_broken_pristine_image_stops_the_synthetic_benchmark_in_one_line(workdir):
    """It was a traceback: the set is made of every pristine image, so one that cannot be decoded stops it."""
    (workdir / "photos" / "b.png").write_text("not an image")
    result = CliRunner().invoke(app, ["benchmark", "synthetic", "--pristine", "photos", "-o", "set", "--size", "32x24"])
    assert result.exit_code == EXIT_USAGE
    line = "error: photos/b.png: a text file, not an image (a web page or an error message saved under an image's "
    line += "name?); take it out of the pristine photos (or replace it) and rerun"
    assert (result.stdout, result.stderr) == ("", line + "\n")  # the bar's stop wrote a blank line on stdout


def test_a_map_that_stops_before_its_first_map_leaves_no_empty_folder(workdir):
    # before: maps/sub was made, then the model could not load (a regressor missing from --weights-dir): left empty
    (workdir / "weights").mkdir()
    result = CliRunner().invoke(app, ["map", "photos", "-o", "maps/sub", "--weights-dir", "weights"])
    assert result.exit_code == EXIT_USAGE and "regressor_kadid10k.pth: not found" in result.output
    assert not (workdir / "maps").exists()


def test_benchmark_synthetic_checks_its_pristine_folder_before_importing_torch(workdir):
    # before: the degradation model (torch, torchvision) was imported first: 3.9 s and 870 MB for a mistyped folder
    from fresh_cli import fresh_cli

    done, report = fresh_cli("benchmark", "synthetic", "--pristine", "missing", "-o", "out")
    assert (done.returncode, report["heavy"]) == (EXIT_USAGE, []), done.stderr
    assert "missing: no such folder; give a folder holding image files" in done.stderr.splitlines()[0]
    # and a mistyped --size (data.synthetic imported torch: 6.4 s, 730 MB)
    done, report = fresh_cli("benchmark", "synthetic", "--pristine", "photos", "-o", "out", "--size", "12x")
    assert (done.returncode, report["heavy"]) == (EXIT_USAGE, []), done.stderr
    assert "expected WIDTHxHEIGHT such as 128x96, got '12x'" in done.stderr.splitlines()[0]
    assert not (workdir / "out").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "missing.yaml"],
            "missing.yaml: cannot read config (No such file or directory); check the path of the YAML file",
        ),
        (["train", "unknown.yaml"], "unknown config key seeds; known: output, data"),
        (["train", "broken.yaml"], "broken.yaml: invalid YAML (line 2, column 1"),
        (
            ["train", "ok.yaml", "--set", "optim.lr"],
            "--set optim.lr: expected KEY=VALUE; write it as e.g. --set train.batch_size=8",
        ),
        (["train", "ok.yaml", "--set", "model.backbon=resnet50"], "unknown config key model.backbon"),
        (["train", "ok.yaml", "--set", "train.epochs=0"], "train.epochs must be at least 1, got 0"),
        # the values checked against the models' and the sampler's own names and bounds
        (["train", "ok.yaml", "--set", "model.backbone=resnet5"], "model.backbone must be resnet50 or se_resnet50"),
        (["train", "ok.yaml", "--set", "model.se_stages=[5]"], "model.se_stages must list stages from 1, 2, 3, 4"),
        (["train", "ok.yaml", "--set", "model.se_init=zero"], "model.se_init must be identity or random"),
        (["train", "ok.yaml", "--set", "data.max_distortions=8"], "data.max_distortions must be from 0 to 7"),
        (["train", "ok.yaml", "--set", "train.device=tpu"], "train.device: device tpu is not a device"),
        # the data and the state to resume, checked by the Trainer after torch was imported: 4.3-13 s, 880-1080 MB
        (["train", "ok.yaml"], "data.root is not set; give the training images with --set data.root=FOLDER"),
        # before: "training data folder 'typo' does not exist or is not a folder", and nothing to do
        (
            ["train", "ok.yaml", "--set", "data.root=typo"],
            "typo: no such folder (the training images); give a folder holding",
        ),
        (
            ["train", "ok.yaml", "--set", "data.root=photos/a.png"],
            "photos/a.png: not a folder (the training images); give a",
        ),
        (
            ["train", "ok.yaml", "--set", "data.root=photos", "--resume", "typo.pt"],
            "typo.pt: cannot read the training state (No such file or directory); check the path",
        ),
        (
            ["ablate", "missing.yaml"],
            "missing.yaml: cannot read config (No such file or directory); check the path of the YAML file",
        ),
        (["ablate", "unknown.yaml"], "unknown config key epochs; known: output, seeds"),
        # the pristine split, made by the runner after torch was imported: 7.2-7.7 s, 900 MB
        (["ablate", str(CONFIGS / "ablation_tiny.yaml")], "data.pristine is not set; give the pristine photos with"),
        (
            ["ablate", str(CONFIGS / "ablation_tiny.yaml"), "--set", "data.pristine=typo"],
            "data.pristine: typo: no such folder; give a folder holding image files",
        ),
        (["ablate", str(CONFIGS / "ablation_tiny.yaml"), "--set", "synthetic.size=12x"], "synthetic.size: expected"),
        (
            ["ablate", str(CONFIGS / "ablation_tiny.yaml"), "--set", "evaluation.device=tpu"],
            "evaluation.device: device",
        ),
        (
            ["ablate", str(CONFIGS / "ablation_tiny.yaml"), "--set", "variants.resnet50.backbone=resnet5"],
            "variant resnet50: invalid config: model.backbone must be resnet50 or se_resnet50",
        ),
    ],
)
def test_a_config_that_cannot_be_used_is_one_line_before_torch_is_imported(workdir, args, message):
    # before: reading a config imported the models and the degradation sampler (torch): 4.3-4.5 s and 870 MB
    from fresh_cli import fresh_cli

    (workdir / "ok.yaml").write_text("model: {init: random}\n")
    (workdir / "unknown.yaml").write_text("seeds: [0]\n" if args[0] == "train" else "epochs: 1\n")
    (workdir / "broken.yaml").write_text("train: [\n")
    done, report = fresh_cli(*args)
    assert (done.returncode, report["heavy"]) == (EXIT_USAGE, []), done.stderr
    lines = done.stderr.splitlines()[:-1]  # the last: fresh_cli's report
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


@pytest.mark.parametrize("device", ["tpu", "cuda:01", "CPU"])
def test_demo_says_a_device_name_that_is_no_device_before_importing_torch(workdir, device):
    # before: the demo's training and models (torch) were imported first: 4.6 s and 870 MB here
    from fresh_cli import fresh_cli

    done, report = fresh_cli("demo", "--device", device, "-o", "d")
    assert (done.returncode, report["heavy"]) == (EXIT_USAGE, []), done.stderr
    line = f"error: --device: device {device} is not a device: choose auto, cpu, cuda, cuda:N or mps"
    assert done.stderr.splitlines()[:-1] == [line]  # the last: fresh_cli's report
    assert not (workdir / "d").exists()


@pytest.fixture
def offline(workdir, monkeypatch):
    """``workdir`` with an empty model cache (cache/) that a download would fill, and downloads refused by a proxy
    that is not there."""
    monkeypatch.setenv("ARNIQA_CACHE", str(workdir / "cache"))
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    return workdir


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["map", "photos", "-o", "maps", "--engine", "onnx"],
            "--engine must be one of ('auto', 'torch', 'onnxruntime')",
        ),
        # before: "an ONNX file runs with engine='onnxruntime' (--engine onnxruntime)", after the file checks
        (
            ["map", "photos", "-o", "maps", "--checkpoint", "m.onnx", "--engine", "torch"],
            "m.onnx: an ONNX file runs on ONNX Runtime, not --engine torch",
        ),
        (["map", "photos", "-o", "maps", "--device", "gpu"], "device gpu is not a device: choose auto, cpu, cuda"),
        (["map", "photos", "-o", "maps", "--stride", "300"], "the stride (300 px) is larger than the crop (224 px)"),
        (["export", "-o", "m.onnx", "--protocol", "crop"], "unknown protocol 'crop'; expected one of ['crops'"),
    ],
)
def test_a_mistyped_option_of_map_or_export_is_one_line_before_torch_and_any_download(offline, args, message):
    # before: torch was imported (map, export) and the published model's files fetched (map --engine, export
    # --protocol: a download with an empty cache, refused here by a proxy that is not there) first: 2.3-3.8 s, 530 MB
    from fresh_cli import fresh_cli

    done, report = fresh_cli(*args)
    assert (done.returncode, report["heavy"]) == (EXIT_USAGE, []), done.stderr
    lines = done.stderr.splitlines()[:-1]  # the last: fresh_cli's report
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not list((offline / "cache").rglob("*")) and not (offline / "maps").exists()


@pytest.mark.parametrize("verb", [["score", "photos"], ["map", "photos", "-o", "maps"], ["export", "-o", "out/m.onnx"]])
@pytest.mark.parametrize(
    "option, line",
    [
        # each with what to do (before: 'missing.safetensors: no such checkpoint file' and no more)
        (
            ["--checkpoint", "missing.safetensors"],
            "missing.safetensors: no such checkpoint file; check the path of the .safetensors file, a part or their "
            "folder that arniqa train or evaluate wrote",
        ),
        (
            ["--checkpoint", "runs/missing"],
            "runs/missing: no such checkpoint file; check the path of the .safetensors file, a part or their folder "
            "that arniqa train or evaluate wrote, or name a published model: arniqa-live, arniqa-csiq, ",
        ),
        (
            ["--explainer", "missing"],
            "missing: no such explanation head file; check the path of the head that arniqa explain fit -o wrote",
        ),
        (
            ["--regressor", "missing.pth"],
            "missing.pth: no such regressor file; check the path, or name a published regressor's dataset: live, ",
        ),
        (["--regressor", "kadid", "--checkpoint", "run"], "regressor 'kadid': with a checkpoint pass a regressor file"),
        (["--weights-dir", "missing"], "missing: no such folder (--weights-dir, weights_dir); check the path, or "),
        (["--weights-dir", "weights"], "weights/ARNIQA.pth: not found; place it there, or leave out --weights-dir"),
    ],
)
def test_a_model_file_that_is_not_there_is_one_line_before_torch_and_any_download(offline, verb, option, line):
    # before: the files were looked for in arniqa.models, which imported torch: 2.0-3.5 s and 670-690 MB
    from fresh_cli import fresh_cli

    (offline / "run").mkdir()
    (offline / "run" / "model.safetensors").write_bytes(b"")  # looked at only when the regressor is one
    (offline / "weights").mkdir()
    (offline / "weights" / "regressor_kadid10k.pth").write_bytes(b"")
    done, report = fresh_cli(*verb, *option)
    assert (done.returncode, report["heavy"]) == (EXIT_USAGE, []), done.stderr
    lines = done.stderr.splitlines()[:-1]  # the last: fresh_cli's report
    assert len(lines) == 1 and lines[0].startswith(f"error: {line}"), lines
    assert (
        not list((offline / "cache").rglob("*")) and not (offline / "maps").exists() and not (offline / "out").exists()
    )


@pytest.mark.parametrize("verb", [["score", "photos"], ["map", "photos", "-o", "maps"]])
def test_an_onnx_file_that_is_not_there_is_one_line_saying_what_to_do(workdir, verb):
    # before: 'missing.onnx: no such ONNX file' and no more
    result = CliRunner().invoke(app, [*verb, "--checkpoint", "missing.onnx"])
    line = "error: missing.onnx: no such ONNX file; check the path of the file that arniqa export -o wrote"
    assert (result.exit_code, result.output.splitlines()) == (EXIT_USAGE, [line])
    assert not (workdir / "maps").exists()


@pytest.mark.parametrize("where", ["_register", "app"])
def test_ctrl_c_while_the_verbs_import_is_one_line_exit_130(where):
    """Ctrl-C in the first half second of `arniqa score`, while the verbs' modules import (numpy, PIL, rich) or
    typer builds the command from them (before click catches it), printed a KeyboardInterrupt traceback."""
    import subprocess
    import sys

    stub = (
        "import arniqa.cli as cli\n"
        "def interrupted(*args, **kwargs):\n"
        "    raise KeyboardInterrupt  # where Ctrl-C lands\n"
        f"cli.{where} = interrupted\n"
        "cli.main()\n"
    )
    p = subprocess.run([sys.executable, "-c", stub], capture_output=True, text=True, timeout=120)
    assert p.returncode == 130 and "Traceback" not in p.stderr
    assert p.stderr.splitlines() == ["error: interrupted"]  # no verb has run: nothing to go on from


@pytest.mark.parametrize(
    ("args", "where", "advice"),
    [
        (
            ["score", "photos", "-o", "s.csv"],
            "arniqa.inference.load",
            "the rows written so far are kept and --resume goes on from them",
        ),
        (["score", "photos"], "arniqa.inference.load", None),  # standard output: no file to resume
        (
            ["train", "c.yaml", "--resume", "run/state.pt"],
            "arniqa.train.load_config",
            "resume with --resume run/state.pt",
        ),
        (  # as python -m arniqa.train (it said 'interrupted' alone); a stop in the loop names its state.pt itself
            ["train", "c.yaml"],
            "arniqa.train.load_config",
            "nothing was trained: run the same command again",
        ),
        (["ablate", "c.yaml"], "arniqa.ablation.load_ablation_config", "rerun the same arniqa ablate command to go on"),
        (["demo"], "arniqa.utils.runtime.resolve_device", "rerun arniqa demo with the same -o to go on"),
        (
            ["evaluate", "--dataset", "kadid10k", "--root", "photos", "-o", "e"],
            "arniqa.utils.runtime.check_workers",
            "the features computed so far are cached, a rerun goes on from them",
        ),
        (
            ["explain", "fit", "photos", "-o", "h.safetensors", "--cache", "c"],
            "arniqa.data.folders.list_images",
            "the features in --cache are kept and a rerun skips them",
        ),
        (["explain", "fit", "photos", "-o", "h.safetensors"], "arniqa.data.folders.list_images", None),
        (
            ["benchmark", "synthetic", "--pristine", "photos", "-o", "b"],
            "arniqa.data.folders.list_images",
            "the images written are kept and a rerun goes on from them",
        ),
        (["map", "photos", "-o", "maps"], "arniqa.cli.results.collect_paths", None),  # maps are made anew
    ],
)
def test_each_verb_stopped_says_how_it_goes_on_and_no_other_verb(workdir, monkeypatch, args, where, advice):
    """Ctrl-C or SIGTERM said 'what was written is kept: arniqa score --resume, arniqa train --resume and arniqa ablate
    go on from it' whatever the verb (map, report: nothing to go on from; demo: rerun it). Each verb says its own."""
    from arniqa.cli import command

    reached = []

    def stopped(*args, **kwargs):
        reached.append(where)
        raise KeyboardInterrupt  # where Ctrl-C lands

    monkeypatch.setattr(where, stopped)
    monkeypatch.setattr(command, "_advice", ["another verb's"])  # a verb run before in this process
    CliRunner().invoke(app, args)
    assert reached == [where]
    assert command.stopped_line() == (130, "interrupted" if advice is None else f"interrupted; {advice}")


@pytest.mark.parametrize("verb", [["score", "photos"], ["map", "photos", "-o", "maps", "--crop", "16"]])
def test_running_out_of_memory_loading_the_model_is_one_line_and_exit_2(workdir, monkeypatch, verb):
    """ONNX Runtime out of memory loading the file (its message under `ulimit -d 250000`) was `not an ONNX model
    ONNX Runtime can load`; other ways out of memory while loading were a traceback, exit 1."""
    import onnxruntime
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException
    from tiny_arniqa import tiny_onnx

    def no_memory(*args, **kwargs):
        raise RuntimeException(
            "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Exception during initialization: std::bad_alloc"
        )

    tiny_onnx(workdir / "tiny.onnx")
    monkeypatch.setattr(onnxruntime, "InferenceSession", no_memory)
    result = CliRunner().invoke(app, [*verb, "--checkpoint", "tiny.onnx"])
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.output.strip() == (
        "error: tiny.onnx: out of memory loading the model (MemoryError); free memory or use a machine with more"
    )
    assert not (workdir / "maps").exists()


def _no_reader(args: list, cwd: Path) -> tuple[int, str]:
    """``arniqa ARGS`` (the stand-in model) writing into a pipe whose reader has gone: its exit status and stderr."""
    import os
    import subprocess
    import sys

    import tiny_score

    read, write = os.pipe()
    os.close(read)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400"}
    try:
        command = [sys.executable, tiny_score.__file__, *map(str, args)]
        done = subprocess.run(command, stdout=write, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env, timeout=300)
    finally:
        os.close(write)
    return done.returncode, done.stderr


def _quiet(err: str) -> bool:
    """No error line, no traceback, not Python's "Exception ignored ... BrokenPipeError" at exit."""
    return not re.search(r"error|Traceback|Exception|Broken", err, re.IGNORECASE)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["score", "--help"],
        ["version"],
        ["distortions"],
        ["score", "photos", "--protocol", "whole"],
        ["score", "photos", "--protocol", "whole", "-o", "-"],
        ["score", "photos", "--protocol", "whole", "-o", "/dev/stdout"],
        ["score", "photos", "--protocol", "whole", "--html", "r.html"],
        ["map", "photos", "-o", "maps", "--crop", "8", "--device", "cpu"],
        ["report", "scores.csv", "-o", "/dev/stdout", "--thumbnails", "none"],
    ],
)
def test_a_reader_gone_ends_every_verb_quietly_with_141(workdir, args):
    """`arniqa score photos/ | head -1` printed `error: <stdout>: Broken pipe (EPIPE) after 0 rows ...` and exited 2;
    the other verbs exited 1 (typer's own way), as if some items had failed. Now a reader gone is the end a Unix tool
    has: no line, 128 + SIGPIPE; files written besides stay whole, no lock file or temporary stays."""
    (workdir / "scores.csv").write_text("path,score,raw_score,error\nphotos/a.png,0.5,3.0,\n")
    code, err = _no_reader(args, workdir)
    assert code == 128 + 13 and _quiet(err), err
    left = sorted(p.name for p in workdir.rglob("*"))
    assert not [name for name in left if name.endswith((".lock", ".tmp")) or ".tmp." in name]
    if args[0] == "map":  # all written before the line that says so
        assert (workdir / "maps" / "a.map.png").is_file() and len((workdir / "maps/maps.csv").read_text().split()) == 2
    assert "r.html" not in left  # the rows stopped short: no report of them


def test_score_into_a_pipe_closed_after_one_line_ends_quietly_with_141(workdir):
    """`arniqa score photos/ | head -1`, with a real pipe: the reader takes one line and closes it while the run
    is scoring. Nothing is printed on stderr, not even the progress bar's last line (it was)."""
    import os
    import subprocess
    import sys

    import tiny_score

    tiny_score.write_images(workdir / "many", 5)
    hold = workdir / "go"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TINY_SCORE_HOLD": str(hold)}
    command = [sys.executable, tiny_score.__file__, "score", "many", "--protocol", "whole", "-o", "-"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir, env=env)
    try:
        assert child.stdout.readline() == b"path,score,raw_score,error,note\n"
        child.stdout.close()  # `head -1` exits
        hold.touch()  # the rows come now
        err = child.stderr.read().decode()
        assert child.wait(timeout=300) == 128 + 13 and err == "", err
    finally:
        child.kill()


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/null", "/dev/stdout"])
def test_export_refuses_a_device_or_a_pipe_as_its_output(workdir, kind):
    """`arniqa export -o m.onnx` with m.onnx a named pipe (or a link to /dev/null) wrote the graph into it (waiting for
    a reader), its sidecar m.onnx.json beside it and a lock file beside the device (`/dev/.null.lock`): nothing that
    load() could read back. Export writes a file and its sidecar, so such an output is refused: one line, exit 2,
    before the model loads, saying which kind of stream it is; `-o /dev/stdout` (or /dev/fd/N) was told to end in
    .onnx, as if renaming it would do."""
    import os

    (workdir / "weights").mkdir()
    for name in ("ARNIQA.pth", "regressor_kadid10k.pth"):  # found, never loaded: the output is refused first
        (workdir / "weights" / name).write_bytes(b"")
    named, output = ("/dev/stdout", None) if kind == "/dev/stdout" else ("m.onnx", workdir / "m.onnx")
    if output is not None:
        os.mkfifo(output) if kind == "fifo" else output.symlink_to(os.devnull)
    said = {"fifo": "a named pipe", "link to /dev/null": "a device", "/dev/stdout": "standard output"}[kind]
    before = sorted(os.listdir(workdir))
    result = CliRunner().invoke(app, ["export", "-o", named, "--weights-dir", "weights"])
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.output.strip() == (
        f"error: {named}: {said}, not a file; export writes an ONNX file "
        "and its sidecar FILE.onnx.json beside it, for load() and arniqa score to read: name a file to write, e.g. "
        "model.onnx"
    )
    assert sorted(os.listdir(workdir)) == before


def test_a_file_of_the_wrong_kind_for_an_option_is_one_line_saying_what_to_give(workdir, monkeypatch):
    """`export --checkpoint m.onnx`, `--explainer` naming a checkpoint without a head, `--int8 --calibrate` naming a
    file or an empty folder: the lines named the file and the problem but not what to give instead. --calibrate
    naming a file said 'no such folder' of it; 'not a folder' now, as the folder checks say elsewhere."""
    from tiny_arniqa import TinyARNIQA

    import arniqa.models.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "ARNIQA", lambda name, **options: TinyARNIQA())
    checkpoint.save_checkpoint(workdir / "model.safetensors", TinyARNIQA())  # an encoder, no head
    (workdir / "empty").mkdir()
    runs = {
        ("export", "--checkpoint", "m.onnx", "-o", "out.onnx"): "m.onnx: already an ONNX file; score it as it is, "
        "or export the checkpoint it was made from",
        ("score", "photos", "--explainer", "model.safetensors"): "model.safetensors: holds no explanation head; "
        "give the head that arniqa explain fit -o wrote",
        ("export", "-o", "q.onnx", "--int8", "--calibrate", "photos/a.png"): "photos/a.png: not a folder "
        "(--calibrate: the photos to calibrate the int8 model on); give a folder of photos",
        # before: "(calibrate: ...)", load()'s keyword
        ("score", "photos", "--precision", "int8", "--calibrate", "photos/a.png"): "photos/a.png: not a folder "
        "(--calibrate: the photos to calibrate the int8 model on); give a folder of photos",
        ("score", "photos", "--precision", "int8", "--calibrate", "phtos"): "phtos: no such folder "
        "(--calibrate: the photos to calibrate the int8 model on); give a folder of photos",
    }
    for args, line in runs.items():
        result = CliRunner().invoke(app, list(args))
        assert (result.exit_code, result.output.strip()) == (EXIT_USAGE, f"error: {line}"), args
    assert not (workdir / "out.onnx").exists() and not (workdir / "q.onnx").exists()
    (workdir / "bad.onnx").write_bytes(b"not a graph")
    result = CliRunner().invoke(app, ["score", "photos", "--checkpoint", "bad.onnx"])
    assert result.exit_code == EXIT_USAGE and result.output.count("\n") == 1
    assert re.fullmatch(
        r"error: bad.onnx: not an ONNX model .*\(.+\); give the file that arniqa export wrote, or export the model "
        r"again\n",
        result.output,
    )
