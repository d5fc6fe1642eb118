"""arniqa score's result files (cli/results.py): rows read back from cut files, JSON reopened for appending."""

import json
import os
import re
from pathlib import Path

import pytest

from arniqa.cli.result_files import format_for, iter_done, output_format, read_rows, result_row
from arniqa.cli.results import RowWriter, collect_paths


def test_rows_of_a_cut_json_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(
        '[\n{"path": "a", "score": 0.5, "raw_score": 3.0, "error": null},\n'
        '{"path": "b", "score": null, "raw_score": null, "error": "x"},\n{"path": "c", "sc'
    )
    assert [r["path"] for r in read_rows(path, "json")] == ["a", "b"]
    assert set(iter_done(path, "json")) == {"a", "b"}
    with RowWriter(path, "json", append=True) as w:  # the cut line goes, the old rows stay
        w.write_row(result_row("c", 0.25, 2.0, None))
    rows = json.loads(path.read_text())
    assert rows == [
        {"path": "a", "score": 0.5, "raw_score": 3.0, "error": None},
        {"path": "b", "score": None, "raw_score": None, "error": "x"},
        {"path": "c", "score": 0.25, "raw_score": 2.0, "error": None},
    ]


def test_csv_append_keeps_one_header(tmp_path):
    path = tmp_path / "r.csv"
    with RowWriter(path, "csv") as w:
        w.write_row(result_row("a", 0.5, 3.0, None))
    with RowWriter(path, "csv", append=True) as w:
        w.write_row(result_row("b", None, None, "no such file"))
    assert path.read_text() == "path,score,raw_score,error,note\na,0.5,3.0,,\nb,,,no such file,\n"
    assert set(iter_done(path, "csv")) == {"a", "b"}


def test_a_name_with_a_carriage_return_is_one_csv_row_kept_by_resume(tmp_path):
    """A tar member or file named with a bare CR (``a\rb.png``) was written unquoted: Python's csv reader and
    pandas read two records there, and --resume kept only the rows before it (the rest were scored again)."""
    import csv

    path = tmp_path / "r.csv"
    names = ["a\rb.png", "c\r\nd.png", "e.png"]
    with RowWriter(path, "csv") as w:
        for name in names:
            w.write_row(result_row(name, 0.5, 3.0, None))
    with open(path, newline="") as f:
        assert [r[0] for r in csv.reader(f)] == ["path", *names]
    assert [r["path"] for r in read_rows(path, "csv")] == names
    assert set(iter_done(path, "csv")) == set(names)


def test_paths_and_formats(tmp_path):
    (tmp_path / "d" / "s").mkdir(parents=True)
    for name in ("d/b.png", "d/s/a.jpg", "d/notes.txt"):
        (tmp_path / name).write_bytes(b"")
    got, skipped, broken, empty = collect_paths([tmp_path / "missing.png", tmp_path / "d"])
    assert got == [str(tmp_path / "missing.png"), str(tmp_path / "d/b.png"), str(tmp_path / "d/s/a.jpg")]
    assert skipped == [str(tmp_path / "d/notes.txt")] and broken == [] and empty == []
    assert (
        format_for("x.JSON", None) == "json"
        and format_for(None, None) == "csv"
        and format_for("x.json", "csv") == "csv"
    )
    for name in ("scores.jsonl", "s.NDJSON"):  # CSV under a JSON Lines name was written, and read as JSON Lines
        assert format_for(name, None) == "jsonl" and format_for(name, "json") == "json"
    # CSV was written under these names (exit 0), and pandas read it as the format the name says, and failed
    for name, kind in (("s.parquet", "Parquet"), ("s.XLSX", "Excel"), ("s.tsv", "tab-separated"), ("s.csv.gz", "gzip")):
        suffix = re.escape(name[name.rindex(".") :].lower())
        with pytest.raises(ValueError, match=rf"^{re.escape(name)}: {suffix} is the suffix of {kind}.*--format$"):
            output_format(name, None)
        assert output_format(name, "jsonl") == "jsonl" and format_for(name, None) == "csv"  # a report reads it
    assert [output_format(n, None) for n in ("s.csv", "s.JSON", "s.ndjson", "s.txt", "s", None)] == [
        "csv",
        "json",
        "jsonl",
        "csv",
        "csv",
        "csv",
    ]


def test_write_scores_rows_in_order_and_failures_counted(tmp_path):
    from arniqa.cli.results import write_scores
    from arniqa.inference import ItemResult

    class Stub:  # what write_scores needs of a Scorer
        def iter_scores(self, paths):
            for i, p in enumerate(paths):
                yield ItemResult(i, p, error="no such file") if p == "bad" else ItemResult(i, p, 0.5 + i, 3.0 + i)

    out, ticks = tmp_path / "s.csv", []
    assert write_scores(Stub(), ["a", "bad", "c"], out, "csv", advance=lambda: ticks.append(1)) == 1
    assert out.read_text() == "path,score,raw_score,error,note\na,0.5,3.0,,\nbad,,,no such file,\nc,2.5,5.0,,\n"
    assert len(ticks) == 3
    assert write_scores(Stub(), ["a"], tmp_path / "raw.json", "json", scale=False) == 0
    assert json.loads((tmp_path / "raw.json").read_text()) == [
        {"path": "a", "score": 3.0, "raw_score": 3.0, "error": None, "note": None}
    ]


def test_report_warnings_are_one_line_whatever_the_file_is_named(tmp_path):
    from typer.testing import CliRunner

    import arniqa.cli.report  # noqa: F401  (registers the verb)
    from arniqa.cli import app

    scores = tmp_path / "sco\nres\x1b[2J.csv"
    scores.write_text("path,score,raw_score,error\na.png,0.5,3.0,\nb.png,abc,1,\n")
    result = CliRunner().invoke(app, ["report", str(scores), "-o", str(tmp_path / "r.html"), "--thumbnails", "none"])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"warning: {tmp_path}/sco\\x0ares\\x1b[2J.csv: 1 line after row 1 does not parse as a result row and is "
        "left out"
    )
    assert result.stderr.count("\n") == 1


def test_report_names_the_lines_it_leaves_out(tmp_path):
    """Rows after one that does not parse are left out (the resume rule); the report said nothing and exited 0."""
    from typer.testing import CliRunner

    import arniqa.cli.report  # noqa: F401  (registers the verb)
    from arniqa.cli import app

    scores = tmp_path / "scores.csv"
    scores.write_text("path,score,raw_score,error\na.png,0.5,3.0,\nb.png,abc,1,\nc.png,0.7,3.8,\n")
    result = CliRunner().invoke(app, ["report", str(scores), "-o", str(tmp_path / "r.html"), "--thumbnails", "none"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"warning: {scores}: 2 lines after row 1 do not parse as result rows and are left out (a run cut short, "
        "or an edit); arniqa score --resume completes a cut-short file\n"
    )
    scores.write_text("path,score,raw_score,error\na.png,0.5,3.0,\nc.png,0.7,3.8,\n")
    result = CliRunner().invoke(app, ["report", str(scores), "-o", str(tmp_path / "r.html"), "--thumbnails", "none"])
    assert result.exit_code == 0 and not result.stderr


def test_report_says_which_images_get_no_thumbnail(tmp_path, monkeypatch):
    """Run from another folder than arniqa score, a report lost every thumbnail without a word."""
    import json
    import re

    from PIL import Image
    from typer.testing import CliRunner

    import arniqa.cli.report  # noqa: F401  (registers the verb)
    from arniqa.cli import app

    (tmp_path / "photos").mkdir()
    Image.new("RGB", (20, 10), (200, 0, 0)).save(tmp_path / "photos" / "a.png")
    scores = tmp_path / "scores.csv"
    scores.write_text("path,score,raw_score,error\nphotos/a.png,0.5,3.0,\nshard.tar/b.png,0.7,3.8,\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    said = {
        1: "1 scored image is not a file from here, so it has",
        2: "2 scored images are not files from here, so they have",
    }
    for cwd, unseen in ((tmp_path, 1), (elsewhere, 2)):
        monkeypatch.chdir(cwd)
        result = CliRunner().invoke(app, ["report", str(scores), "-o", "r.html"])
        assert result.exit_code == 0, result.output
        assert result.stderr.startswith(f"warning: {said[unseen]} no thumbnail")
        data = re.search(r'<script id="data" type="application/json">(.*?)</script>', (cwd / "r.html").read_text())
        thumbs = [row[4] for row in json.loads(data[1])["rows"]]
        assert sum(t is None for t in thumbs) == unseen  # the warning counts what the report lacks


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_report_counts_rows_of_a_non_finite_score_as_not_scored(tmp_path, monkeypatch, fmt):
    """A hand-edited nan/inf score is shown as no score, like an error row; the thumbnail warning counted such rows
    among the scored images."""
    from typer.testing import CliRunner

    import arniqa.cli.report  # noqa: F401  (registers the verb)
    from arniqa.cli import app

    monkeypatch.chdir(tmp_path)  # no image is a file here
    rows = [("a.png", "0.5"), ("b.png", "nan"), ("c.png", "inf"), ("d.png", "-inf"), ("e.png", "0.25")]
    scores = tmp_path / f"scores.{fmt}"
    if fmt == "csv":
        scores.write_text("path,score,raw_score,error\n" + "".join(f"{p},{s},1,\n" for p, s in rows))
    else:
        lines = [f'{{"path": "{p}", "score": {float(s)}, "raw_score": 1, "error": null}}' for p, s in rows]
        lines = [line.replace("nan", "NaN").replace("inf", "Infinity") for line in lines]
        scores.write_text("[\n" + ",\n".join(lines) + "\n]\n" if fmt == "json" else "".join(f"{x}\n" for x in lines))
    result = CliRunner().invoke(app, ["report", str(scores), "-o", "r.html"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: 2 scored images are not files from here")
    data = re.search(r'<script id="data" type="application/json">(.*?)</script>', (tmp_path / "r.html").read_text())
    assert [row[:2] for row in json.loads(data[1])["rows"]] == [["a.png", 0.5], ["e.png", 0.25]]
    assert "Could not be scored (3)" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("fault", ["deleted", "replaced", "folder removed"])
def test_an_output_deleted_while_rows_are_written_stops_the_writer_naming_it(tmp_path, fault):
    """`arniqa score -o out/s.csv` whose folder was removed mid-run (a clean-up of /tmp) wrote on into the deleted
    file and exited 0: every row lost, nothing said. Now the next row is an OutputError (exit 2) naming the file."""
    import shutil

    from arniqa.cli.result_files import OutputError

    out = tmp_path / "out" / "s.csv"
    out.parent.mkdir()
    w = RowWriter(out, "csv")
    w.write_row(result_row("a", 0.5, 3.0, None))
    if fault == "deleted":
        out.unlink()
    elif fault == "replaced":
        (tmp_path / "other.csv").write_text("path,score,raw_score,error\n")
        (tmp_path / "other.csv").replace(out)
    else:
        shutil.rmtree(out.parent)
    with pytest.raises(OutputError, match=re.escape(f"{out}: deleted while this run wrote it")) as e:
        w.write_row(result_row("b", 0.25, 2.0, None))
    assert "the rows in it are lost (1 written)" in str(e.value)
    w.close(quiet=True)
    if fault == "replaced":
        assert out.read_text() == "path,score,raw_score,error\n"  # the file put there is left as it is


@pytest.mark.parametrize(
    "row",
    [
        '{"path": 5, "score": 0.5, "raw_score": 3.0, "error": null}',
        '{"path": ["a.png"], "score": 0.5, "raw_score": 3.0, "error": null}',
        '{"path": "a.png", "score": "good", "raw_score": 3.0, "error": null}',
        '{"path": "a.png", "score": 0.5, "raw_score": true, "error": null}',
        '{"path": "a.png", "score": null, "raw_score": null, "error": 7}',
    ],
    ids=["path a number", "path a list", "score a word", "raw_score a bool", "error a number"],
)
def test_report_of_a_json_row_of_other_values_than_a_rows_says_so(tmp_path, row):
    """A JSON row whose path was a number (an edit, another tool's file) was a TypeError traceback in report's
    thumbnails; a row's values are now of a row's types, as a CSV row's numbers are, or it does not parse."""
    from typer.testing import CliRunner

    import arniqa.cli.report  # noqa: F401  (registers the verb)
    from arniqa.cli import app

    scores = tmp_path / "scores.json"
    scores.write_text(f"[\n{row}\n]\n")
    result = CliRunner().invoke(app, ["report", str(scores), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and not (tmp_path / "r.html").exists()
    assert result.stderr == (
        f"error: {scores}: its first row does not parse as a result row (an edit?); fix that row, or score again\n"
    )


def test_report_of_a_file_whose_first_row_does_not_parse_says_so(tmp_path):
    """A result file whose first row was edited (a word for a score) was refused as 'no rows' while it held
    them; the line now says that row does not parse, and a file of a header alone still has no rows."""
    from typer.testing import CliRunner

    import arniqa.cli.report  # noqa: F401  (registers the verb)
    from arniqa.cli import app

    scores = tmp_path / "scores.csv"
    scores.write_text("path,score,raw_score,error\na.png,good,3.0,\nb.png,0.5,3.0,\nc.png,0.7,3.8,\n")
    result = CliRunner().invoke(app, ["report", str(scores), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and not (tmp_path / "r.html").exists()
    assert result.stderr == (
        f"error: {scores}: its first row does not parse as a result row, nor do the 2 lines after it (an edit?); "
        "fix that row, or score again\n"
    )
    scores.write_text("path,score,raw_score,error\na.png,0.5\n")  # a row with a field cut away
    result = CliRunner().invoke(app, ["report", str(scores), "-o", str(tmp_path / "r.html")])
    assert result.stderr == (
        f"error: {scores}: its first row does not parse as a result row (an edit?); fix that row, or score again\n"
    )
    scores.write_text("path,score,raw_score,error\n")
    result = CliRunner().invoke(app, ["report", str(scores), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert result.stderr == f"error: {scores}: no rows; give a result file that arniqa score wrote rows into\n"


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_retried_rows_are_put_in_place_reading_the_file_once(tmp_path, monkeypatch, fmt):
    """--resume --retry-failed read the result file twice at the end (once to find the rows, once to copy them):
    two passes over a 200,000-row file on a network share. It is read once, and the file is the one a run without
    the failures writes."""
    import arniqa.cli.result_files as result_files

    def rows(retried):
        out = tmp_path / f"{retried}.{fmt}"
        with RowWriter(out, fmt) as w:
            for name in "abcd":
                if name in "bd" and not retried:
                    w.write_row(result_row(name, None, None, "image truncated"))
                else:
                    w.write_row(result_row(name, 0.25 * "abcd".index(name), 2.0, None))
        return out

    path, expected = rows(False), rows(True)
    opened = []
    real_open = open
    monkeypatch.setattr(result_files, "open", lambda f, *a, **k: opened.append(f) or real_open(f, *a, **k), False)
    retried = {n: {"path": n, "score": 0.25 * "abcd".index(n), "raw_score": 2.0, "error": None} for n in "bd"}
    result_files.replace_rows(path, fmt, retried.values())
    assert path.read_bytes() == expected.read_bytes()
    assert opened.count(path) == 1


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_retried_rows_take_the_places_of_their_error_rows_in_any_order(tmp_path, fmt):
    """Retried rows come in the order they were scored (a --resume that matched its rows one by one: the file's),
    read as the file is; in another order, or for only some of the error rows, each still goes to the first error
    row of its path not yet replaced, the rest of the file as it was."""
    import arniqa.cli.result_files as result_files

    names = ["a", "b", "c", "a", "d"]  # a twice: its two rows take its two retried rows in turn

    def written(scores: dict) -> Path:  # each row: scores[i] if given, else an error row
        out = tmp_path / f"{len(list(tmp_path.iterdir()))}.{fmt}"
        with RowWriter(out, fmt) as w:
            for i, name in enumerate(names):
                if i in scores:
                    w.write_row(result_row(name, scores[i], 2.0, None))
                else:
                    w.write_row(result_row(name, None, None, "image truncated"))
        return out

    def retried(*done):  # (row index, score)
        return [result_row(names[i], score, 2.0, None) for i, score in done]

    for order in ([(0, 0.1), (2, 0.3), (3, 0.4), (4, 0.5)], [(4, 0.5), (0, 0.1), (3, 0.4), (2, 0.3)]):
        path = written({1: 0.2})
        read = []
        rows = (read.append(row) or row for row in retried(*order))
        result_files.replace_rows(path, fmt, rows)
        assert path.read_bytes() == written({0: 0.1, 1: 0.2, 2: 0.3, 3: 0.4, 4: 0.5}).read_bytes()
        assert len(read) == 4
    path = written({1: 0.2})
    result_files.replace_rows(path, fmt, retried((3, 0.4), (2, 0.3)))  # a's first row takes a's one retried row
    assert path.read_bytes() == written({0: 0.4, 1: 0.2, 2: 0.3}).read_bytes()


def test_a_spool_gives_back_its_rows_in_order_any_path_as_it_was(tmp_path):
    from arniqa.cli.result_files import Spool

    rows = [result_row("a\udcff.png", None, None, "image truncated"), result_row("b.png", 0.25, 2.0, None)]
    with Spool(tmp_path / "s.csv") as spool:
        assert (len(spool), list(spool)) == (0, [])
        for row in rows:
            spool.add(row)
        assert (len(spool), list(spool), list(spool)) == (2, rows, rows)
    assert list(tmp_path.iterdir()) == []  # no file left, nor named while it was open


def test_report_warns_of_the_thumbnails_it_does_not_embed(tmp_path, monkeypatch):
    """Past html.EMBEDDED thumbnails (2 here), arniqa report links the rest to their files, and says so in one line."""
    from PIL import Image
    from typer.testing import CliRunner

    import arniqa.cli.report  # noqa: F401  (registers the verb)
    from arniqa.cli import app
    from arniqa.reports import html

    monkeypatch.setattr(html, "EMBEDDED", 2, raising=False)
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (20, 10), (200, 0, 0)).save("a.png")
    Path("scores.csv").write_text("path,score,raw_score,error\n" + "".join(f"a.png,0.{i},,\n" for i in range(1, 6)))
    result = CliRunner().invoke(app, ["report", "scores.csv", "-o", "r.html", "--best-worst", "1"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: 5 scored images: thumbnails are embedded for the 1 lowest and the 1 highest scores, the other 3 link "
        "to their files (all of them inside would make a file of hundreds of MB); --thumbnails link links them all"
    ]
    result = CliRunner().invoke(
        app, ["report", "scores.csv", "-o", "r.html", "--best-worst", "1", "--thumbnails", "link"]
    )
    assert result.exit_code == 0 and result.stderr == ""


def test_report_looks_up_each_photo_once(tmp_path, monkeypatch):
    """--thumbnails link checked each photo, resolved it (a lookup per folder above it), and the verb checked it
    again for its warning and each map twice: 470 lookups in the library for 100 rows here, each a round trip on a
    NAS. Now one a photo and one a map, and the warnings count what the report lacks."""
    import csv
    import os

    from PIL import Image
    from typer.testing import CliRunner

    import arniqa.cli.report  # noqa: F401  (registers the verb)
    from arniqa.cli import app

    library = tmp_path / "nas" / "photos" / "2024" / "05"
    library.mkdir(parents=True)
    (tmp_path / "maps").mkdir()
    photos = [library / f"{k}.png" for k in range(3)]
    for p in photos:
        Image.new("RGB", (8, 8), (9, 9, 9)).save(p)
    rows = [(library / f"gone{k}.png" if k % 10 == 3 else photos[k % 3], k / 100) for k in range(100)]
    with open(tmp_path / "scores.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "score", "raw_score", "error"), *[(p, s, 1, "") for p, s in rows]])
    with open(tmp_path / "maps" / "maps.csv", "w", newline="") as f:  # maps of the first two photos
        csv.writer(f).writerows([("path", "map", "mean", "min", "max", "rows", "cols", "error")])
        csv.writer(f).writerows([(p, f"{k}.png", 0, 0, 0, 1, 1, "") for k, p in enumerate(photos[:2])])
    for k in range(2):
        (tmp_path / "maps" / f"{k}.png").write_bytes(b"a map")
    looked_up = []
    for name in ("stat", "lstat"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda p, *a, real=real, **k: looked_up.append(os.fspath(p)) or real(p, *a, **k))
    command = ["report", str(tmp_path / "scores.csv"), "-o", str(tmp_path / "r.html"), "--maps", str(tmp_path / "maps")]
    result = CliRunner().invoke(app, [*command, "--thumbnails", "link"])
    monkeypatch.undo()
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"warning: {tmp_path / 'maps'}: 40 scored images have no map in its maps.csv (run arniqa map on the same "
        "paths, from the same folder, to link them)",
        "warning: 10 scored images are not files from here, so they have no thumbnail (paths relative to the folder "
        "arniqa score ran in, or tar members): run arniqa report from that folder",
    ]
    mapped = sum(p in photos[:2] for p, _ in rows)
    assert sum(p.startswith(str(library)) for p in looked_up) <= len(rows) + 4  # one a photo, one resolve a folder
    assert sum(p.startswith(str(tmp_path / "maps")) and p.endswith("png") for p in looked_up) == mapped


def test_each_row_scored_is_made_once(photos, tmp_path, monkeypatch):
    """write_scores made each row, then RowWriter.write made it again from its fields; it writes the row it made."""
    import tiny_score

    from arniqa.cli import results

    made = []
    real = results.result_row
    monkeypatch.setattr(results, "result_row", lambda *a, **k: made.append(a[0]) or real(*a, **k))
    rows = []
    paths = [str(p) for p in photos] + [str(tmp_path / "gone.png")]
    failed = results.write_scores(tiny_score.load(protocol="whole"), paths, tmp_path / "s.csv", rows=rows)
    assert failed == 1 and made == paths
    assert [r["path"] for r in read_rows(tmp_path / "s.csv", "csv")] == [r["path"] for r in rows] == paths


@pytest.mark.parametrize(
    "fault, said",
    [
        ("open", "cannot read file (Permission denied); check its permissions"),
        ("read", "cannot read file (Input/output error); check the disk or share it is on"),
    ],
)
def test_report_of_a_scores_file_it_cannot_read_says_so_not_that_it_cannot_write(tmp_path, monkeypatch, fault, said):
    """An unreadable SCORES was 'cannot write it: permission denied (EACCES); choose an output you can write to'.
    (Denied through open, as root reads any file.)"""
    import builtins
    import errno
    import os

    from typer.testing import CliRunner

    import arniqa.cli.report  # noqa: F401  (registers the verb)
    from arniqa.cli import app

    scores = tmp_path / "scores.csv"
    scores.write_text("path,score,raw_score,error\na.png,0.5,3.0,\n")
    real_open = builtins.open

    class Failing:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def __iter__(self):
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    def faulty(file, *args, **kwargs):
        if str(file) != str(scores):
            return real_open(file, *args, **kwargs)
        if fault == "open":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return Failing(real_open(file, *args, **kwargs))

    monkeypatch.setattr(builtins, "open", faulty)
    result = CliRunner().invoke(app, ["report", str(scores), "-o", str(tmp_path / "r.html"), "--thumbnails", "none"])
    assert (result.exit_code, result.output) == (2, f"error: {scores}: {said}\n")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc/self/fd")
@pytest.mark.parametrize("name", ["/dev/stderr", "/dev/stdout", "/proc/self/fd/2"])
def test_report_onto_a_descriptor_open_for_append_follows_what_the_file_holds(tmp_path, name):
    """`arniqa report scores.csv -o /dev/stderr 2>> log.txt`: a log holding text was refused as 'something other than
    an HTML report', and an empty one was opened again by name with "w", which cuts what `>>` keeps. The report is
    now written through the descriptor: the earlier text stays, the report follows it, and the `wrote` line is not
    written into a report on standard output."""
    import subprocess
    import sys

    scores = tmp_path / "scores.csv"
    scores.write_text("path,score,raw_score,error\na.png,0.5,3.0,\nb.png,0.7,3.8,\n")
    log = tmp_path / "log.txt"
    log.write_text("earlier line\n")
    stdout = name == "/dev/stdout"
    with open(log, "a") as f:
        done = subprocess.run(
            [sys.executable, "-m", "arniqa", "report", scores, "-o", name, "--thumbnails", "none"],
            stdout=f if stdout else subprocess.PIPE,
            stderr=subprocess.PIPE if stdout else f,
            text=True,
            timeout=300,
        )
    text = log.read_text()
    assert done.returncode == 0, (done.stdout, done.stderr, text)
    assert text.startswith("earlier line\n<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count("<!DOCTYPE html>") == 1 and '"a.png"' in text and '"b.png"' in text
    assert (done.stderr if stdout else done.stdout) == f"wrote {name} (2 rows)\n"
    assert sorted(os.listdir(tmp_path)) == ["log.txt", "scores.csv"]


# The result file of an arniqa before the note column, as it wrote it: its head and rows, by hand (not by the code here)
OLD_FILES = {
    "csv": "path,score,raw_score,error\na.png,0.5,3.0,\nbad.png,,,no such file\n",
    "json": '[\n{"path": "a.png", "score": 0.5, "raw_score": 3.0, "error": null},\n'
    '{"path": "bad.png", "score": null, "raw_score": null, "error": "no such file"}\n]\n',
    "jsonl": '{"path": "a.png", "score": 0.5, "raw_score": 3.0, "error": null}\n'
    '{"path": "bad.png", "score": null, "raw_score": null, "error": "no such file"}\n',
}
OLD_EXPLAINED = "path,score,raw_score,error,explanation,severity\na.png,0.5,3.0,,blur 0.9,2.5\n"


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_rows_appended_to_a_file_written_before_notes_keep_its_columns(tmp_path, fmt):
    """A file of an arniqa before the note column is read and appended to with its own columns: one head per file, no
    row of other columns; its rows read back as they were, and a retried row takes its place without a note."""
    import csv
    import io

    from arniqa.cli.result_files import replace_rows

    path = tmp_path / f"old.{fmt}"
    path.write_text(OLD_FILES[fmt])
    old = ["path", "score", "raw_score", "error"]
    assert [r["path"] for r in read_rows(path, fmt)] == ["a.png", "bad.png"]
    with RowWriter(path, fmt, append=True) as w:
        w.write_row(result_row("c.gif", 0.25, 2.0, None, note="its first frame is scored"))
    replace_rows(path, fmt, [result_row("bad.png", 0.75, 4.0, None, note="downscaled")])
    text = path.read_text()
    if fmt == "csv":
        lines = list(csv.reader(io.StringIO(text)))
        assert lines[0] == old and all(len(line) == 4 for line in lines)
        assert lines[1:] == [["a.png", "0.5", "3.0", ""], ["bad.png", "0.75", "4.0", ""], ["c.gif", "0.25", "2.0", ""]]
    else:
        rows = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
        assert [list(r) for r in rows] == [old] * 3
        assert [(r["path"], r["score"]) for r in rows] == [("a.png", 0.5), ("bad.png", 0.75), ("c.gif", 0.25)]
    assert set(iter_done(path, fmt)) == {"a.png", "bad.png", "c.gif"}


def test_a_file_written_before_notes_with_explanations_is_appended_to_as_it_was(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text(OLD_EXPLAINED)
    columns = ("path", "score", "raw_score", "error", "explanation", "severity", "note")
    with RowWriter(path, "csv", append=True, columns=columns) as w:
        w.write_row(result_row("b.gif", 0.25, 2.0, None, columns, explanation="noise 0.8", severity=1.0, note="x"))
    assert path.read_text() == OLD_EXPLAINED + "b.gif,0.25,2.0,,noise 0.8,1.0\n"
    with pytest.raises(Exception, match="its columns are"):  # rows without explanations: refused as before
        RowWriter(path, "csv", append=True)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_write_scores_tells_opened_the_columns_its_rows_get(tmp_path, fmt):
    """Whether a resumed file gets a note column was decided twice: by arniqa score, reading the file's columns once
    more before the writer opened it, and by the writer, keeping the file's own. The writer's decision is the one:
    ``opened`` is told the columns the rows get, an older file's (no note) when appending to one."""
    from arniqa.cli.results import write_scores
    from arniqa.inference import ItemResult

    class Stub:  # what write_scores needs of a Scorer
        def iter_scores(self, paths):
            for i, p in enumerate(paths):
                yield ItemResult(i, p, 0.5, 3.0, note="downscaled")

    old = tmp_path / f"old.{fmt}"  # written by an arniqa before the note column
    old.write_text("path,score,raw_score,error\na,0.5,3.0,\n" if fmt == "csv" else '{"path": "a", "score": 0.5, '
                   '"raw_score": 3.0, "error": null}\n')  # fmt: skip
    told = []
    for out, append in ((old, True), (tmp_path / f"new.{fmt}", True), (old, False)):
        write_scores(Stub(), ["b"], out, fmt, append=append, opened=told.append)
        assert [set(row) for row in read_rows(out, fmt)] == [set(told[-1])] * (2 if append and out == old else 1)
    older, new = ("path", "score", "raw_score", "error"), ("path", "score", "raw_score", "error", "note")
    assert told == [older, new, new]  # not appended to: replaced, with a note column


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_each_row_carries_its_note_in_every_format(tmp_path, fmt):
    """The warnings about a file went to stderr only (the first 5 of each kind): a row now says its own in its note,
    empty (null) when there are none, and reads back with it."""
    from arniqa.cli.results import write_scores
    from arniqa.inference import ItemResult

    class Stub:  # what write_scores needs of a Scorer
        def iter_scores(self, paths):
            for i, p in enumerate(paths):
                yield ItemResult(i, p, 0.5, 3.0, note="its first frame is scored" if p == "a.gif" else None)

    out, noted = tmp_path / f"s.{fmt}", []
    write_scores(Stub(), ["a.gif", "b.png"], out, fmt, noted=lambda: noted.append(1))
    assert [(r["path"], r["note"] or None) for r in read_rows(out, fmt)] == [
        ("a.gif", "its first frame is scored"),
        ("b.png", None),
    ]
    assert len(noted) == 1
    if fmt == "csv":
        assert out.read_text().splitlines()[0] == "path,score,raw_score,error,note"


@pytest.mark.parametrize(
    "row, read",
    [
        ("a.png,0.5,3.2", ["a.png", "0.5", "3.2", "", ""]),  # Excel left out the empty error and note
        ("a.png,0.5,3.2,", ["a.png", "0.5", "3.2", "", ""]),  # the note alone (a row of the run had an error)
        ("a.png,,,cannot read it", ["a.png", "", "", "cannot read it", ""]),
        ("a.png,3.2,,", None),  # a field taken out of the middle (the score): an edit, not Excel's
        ("a.png,0.5,3.2,cannot read it", None),  # a score and an error: no row arniqa writes, cut short
        ("a.png,,3.2,cannot read it", None),
        ("a.png,0.5", None),
    ],
)
def test_a_row_whose_empty_last_fields_a_spreadsheet_left_out_is_read_filled_in(tmp_path, row, read):
    """A row with fewer fields than the header was read as no row. One of a row's form with its empty last fields
    left out (a scored row up to its raw score, an error row up to its error), as Excel saves it, is read now, the
    rest empty; one that is so only with other fields shifted (a field taken out of the middle) stops the rows."""
    out = tmp_path / "scores.csv"
    out.write_bytes(f"path,score,raw_score,error,note\r\n{row}\r\nb.png,0.25,1.5,,\r\n".encode())
    rows = [[r[c] for c in ("path", "score", "raw_score", "error", "note")] for r in read_rows(out, "csv")]
    assert rows == ([] if read is None else [read, ["b.png", "0.25", "1.5", "", ""]])
