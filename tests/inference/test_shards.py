"""WebDataset tar shards as input (``arniqa.inference.shards``): brace patterns, member rows, bad members."""

import csv
import io
import tarfile

import pytest
from scoring_data import make_shards, published_weights
from typer.testing import CliRunner

import arniqa.cli.score  # noqa: F401  (registers the verb)
from arniqa.cli import app
from arniqa.inference.shards import Member, Unreadable, expand_braces, shard_items


def test_brace_patterns_expand_as_a_shell_does():
    assert expand_braces("s/{000000..000003}.tar") == [f"s/00000{i}.tar" for i in range(4)]
    assert expand_braces("{8..11}") == ["8", "9", "10", "11"]
    assert expand_braces("{3..1}") == ["3", "2", "1"]
    assert expand_braces("{a,b}-{1..2}") == ["a-1", "a-2", "b-1", "b-2"]
    assert expand_braces("plain.tar") == ["plain.tar"]
    assert expand_braces("x{y}z") == ["x{y}z"]  # neither a range nor a list: literal
    with pytest.raises(ValueError, match="more than"):
        expand_braces("{0..99999999}")


def test_members_are_read_by_offset_as_tarfile_extracts_them(tmp_path):
    make_shards(tmp_path)
    items = shard_items(tmp_path / "000000.tar")
    assert [it.name for it in items] == [
        f"{tmp_path}/000000.tar/{k}" for k in ("0000.jpg", "0001.jpg", "0002.jpg", "sub/0003.png", "0004.jpg")
    ]
    with tarfile.open(tmp_path / "000000.tar") as tar:
        for it in items:
            assert it.read() == tar.extractfile(it.key).read()
    cut = shard_items(tmp_path / "000001.tar")
    assert (
        isinstance(cut[0], Member) and isinstance(cut[-1], Unreadable) and cut[-1].name == str(tmp_path / "000001.tar")
    )
    assert shard_items(tmp_path / "missing.tar") == [Unreadable(str(tmp_path / "missing.tar"), "no such file")]
    (tmp_path / "text.tar").write_text("not a tar")
    assert "not a tar file" in shard_items(tmp_path / "text.tar")[0].reason


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    return published_weights(tmp_path_factory.mktemp("weights"))


def _rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _score(args):
    return CliRunner().invoke(app, ["score", *map(str, args)], catch_exceptions=False)


def test_score_shards_rows_errors_and_resume(weights_dir, tmp_path):
    good = make_shards(tmp_path)
    (tmp_path / "files").mkdir()
    for name in ("0000.jpg", "0001.jpg"):
        (tmp_path / "files" / name).write_bytes(good[name])
    common = ["--weights-dir", weights_dir, "--protocol", "whole", "--engine", "torch"]
    out = tmp_path / "s.csv"
    r = _score([tmp_path / "{000000..000002}.tar", tmp_path / "files", *common, "-o", out])
    assert r.exit_code == 1
    rows = _rows(out)
    shard0, shard1 = f"{tmp_path}/000000.tar", f"{tmp_path}/000001.tar"
    assert [row["path"] for row in rows] == [
        f"{shard0}/0000.jpg",
        f"{shard0}/0001.jpg",
        f"{shard0}/0002.jpg",
        f"{shard0}/sub/0003.png",
        f"{shard0}/0004.jpg",
        f"{shard1}/a.jpg",
        f"{shard1}/b.jpg",
        shard1,
        f"{tmp_path}/000002.tar",
        f"{tmp_path}/files/0000.jpg",
        f"{tmp_path}/files/0001.jpg",
    ]
    by = {row["path"]: row for row in rows}
    assert "not an image file" in by[f"{shard0}/0001.jpg"]["error"]
    assert "truncated or corrupt" in by[f"{shard0}/0002.jpg"]["error"]
    assert "0 bytes" in by[f"{shard0}/sub/0003.png"]["error"]
    assert "cut short" in by[f"{shard1}/b.jpg"]["error"]
    assert "unreadable after 2 image members" in by[shard1]["error"]
    assert by[f"{tmp_path}/000002.tar"]["error"] == "no such file"
    # a member scores as the same bytes in a file (the independent path: open_image on a file)
    for member, file in (
        (f"{shard0}/0000.jpg", "0000.jpg"),
        (f"{shard0}/0004.jpg", "0001.jpg"),
        (f"{shard1}/a.jpg", "0000.jpg"),
    ):
        assert by[member]["error"] == ""
        assert float(by[member]["score"]) == pytest.approx(float(by[f"{tmp_path}/files/{file}"]["score"]), abs=1e-6)
    # resume: only what is missing is scored
    part = tmp_path / "part.csv"
    part.write_text(
        "path,score,raw_score,error\n"
        + "".join(f"{row['path']},{row['score']},{row['raw_score']},{row['error']}\n" for row in rows[:6])
    )
    r = _score([tmp_path / "{000000..000002}.tar", tmp_path / "files", *common, "-o", part, "--resume"])
    assert r.exit_code == 1 and "resuming: 6 of 11" in r.stderr
    assert [row["path"] for row in _rows(part)] == [row["path"] for row in rows]
