"""WebDataset tar shards as input (``arniqa.inference.shards``): brace patterns, member rows, bad members."""

import csv
import gzip
import io
import tarfile
import tracemalloc
from pathlib import Path

import pytest
import tiny_score
from imaging import APPLE_DOUBLE
from PIL import Image
from scoring_data import jpeg, make_shards, published_weights, write_shard
from typer.testing import CliRunner

import arniqa.cli.score  # noqa: F401  (registers the verb)
from arniqa.cli import app
from arniqa.data.folders import list_images
from arniqa.inference.listing import iter_inputs
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
    items = list(shard_items(tmp_path / "000000.tar"))
    assert [it.name for it in items] == [
        f"{tmp_path}/000000.tar/{k}" for k in ("0000.jpg", "0001.jpg", "0002.jpg", "sub/0003.png", "0004.jpg")
    ]
    with tarfile.open(tmp_path / "000000.tar") as tar:
        for it in items:
            assert it.read() == tar.extractfile(it.key).read()
    cut = list(shard_items(tmp_path / "000001.tar"))
    assert (
        isinstance(cut[0], Member) and isinstance(cut[-1], Unreadable) and cut[-1].name == str(tmp_path / "000001.tar")
    )
    missing = [Unreadable(str(tmp_path / "missing.tar"), "no such file; check the path")]
    assert list(shard_items(tmp_path / "missing.tar")) == missing
    (tmp_path / "text.tar").write_text("not a tar")
    assert "not a tar file" in next(shard_items(tmp_path / "text.tar")).reason


def test_members_are_images_by_the_folder_walks_rule(tmp_path):
    """A tar made on a Mac holds ._NAME AppleDouble members (metadata, no image): each was an error row, exit 1,
    where a folder of the same files skips them; an image member not named as one was passed over, where a folder
    scores it. The members taken are now the files a folder walk takes; the others are read to their header only."""
    raw = io.BytesIO()
    Image.new("RGB", (16, 12)).save(raw, format="TIFF", tiffinfo={254: 1})  # NewSubfileType 1: a reduced preview
    members = {
        "a.jpg": jpeg(24, 16, 0),
        "._a.jpg": APPLE_DOUBLE,
        "a.cls": b"7",
        "b": jpeg(24, 16, 1),  # no extension: known by its header
        "._c.png": jpeg(24, 16, 2),  # an image under an AppleDouble name: known by its header too
        "._d": APPLE_DOUBLE,
        "d.json": b"{}",
        "e.npy": bytes(16 << 20),  # read to its first MiB only
        "clip.mpg": b"\x00\x00\x01\xb3" + bytes([0x16, 0x00, 0xF0, 0x13]) + bytes(200),  # MPEG-1 video: refused
        "DSC_1.NEF": raw.getvalue(),  # a camera RAW file: a TIFF whose first image is a preview
        "f.jpg": jpeg(24, 16, 3),  # listed after members read to their header
    }
    write_shard(tmp_path / "s.tar", members)
    (tmp_path / "files").mkdir()
    for name, data in members.items():
        (tmp_path / "files" / name).write_bytes(data)
    tracemalloc.start()
    try:
        items = list(shard_items(tmp_path / "s.tar"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
    assert [it.key for it in items] == ["a.jpg", "b", "._c.png", "f.jpg"]
    assert sorted(it.key for it in items) == [p.name for p in list_images(tmp_path / "files")]
    assert [it.read() for it in items] == [members[it.key] for it in items]


def test_a_macs_appledouble_of_a_shard_is_no_shard(tmp_path):
    """._000000.tar beside a shard a Mac copied was read as a shard: a 'not a tar file' row, exit 1; it is now
    skipped as the folder walk skips the other AppleDouble files."""
    write_shard(tmp_path / "000000.tar", {"a.jpg": jpeg(24, 16, 0)})
    (tmp_path / "._000000.tar").write_bytes(APPLE_DOUBLE)
    skipped = []
    items = list(iter_inputs([tmp_path], skipped.append))
    assert [it.name for it in items] == [f"{tmp_path}/000000.tar/a.jpg"]
    assert skipped == [str(tmp_path / "._000000.tar")]


def test_members_under_a_system_folder_are_passed_over_as_a_folder_walk_skips_them(tmp_path):
    """tar cf library.tar library/ on a Synology share holds each photo's thumbnails under @eaDir: each was a row."""
    members = {
        "library/a.jpg": jpeg(24, 16, 0),
        "library/@eaDir/a.jpg/SYNOPHOTO_THUMB_XL.jpg": jpeg(24, 16, 1),
        "library/#recycle/b.jpg": jpeg(24, 16, 2),
        "@eaDir/c.jpg": jpeg(24, 16, 3),  # at the top of the shard too
        "library/eaDir/d.jpg": jpeg(24, 16, 4),  # a folder of the user's
        "@eaDir": jpeg(24, 16, 5),  # a file of that name is no folder: an image
    }
    write_shard(tmp_path / "s.tar", members)
    assert [it.key for it in shard_items(tmp_path / "s.tar")] == ["library/a.jpg", "library/eaDir/d.jpg", "@eaDir"]


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
    assert "not an image" in by[f"{shard0}/0001.jpg"]["error"]
    assert "truncated or corrupt" in by[f"{shard0}/0002.jpg"]["error"]
    assert "0 bytes" in by[f"{shard0}/sub/0003.png"]["error"]
    assert by[f"{shard1}/b.jpg"]["error"].startswith("tar member cut short (")
    assert by[f"{shard1}/b.jpg"]["error"].endswith("; copy or download the shard again")
    assert "unreadable after 2 image members" in by[shard1]["error"]
    assert by[f"{tmp_path}/000002.tar"]["error"] == "no such file; check the path"
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
    with open(part, "w", newline="") as f:  # the error holds commas: quoted as the run writes it
        csv.writer(f, lineterminator="\n").writerows(
            [
                ("path", "score", "raw_score", "error"),
                *((r["path"], r["score"], r["raw_score"], r["error"]) for r in rows[:6]),
            ]
        )
    r = _score([tmp_path / "{000000..000002}.tar", tmp_path / "files", *common, "-o", part, "--resume"])
    assert r.exit_code == 1 and "resuming: 6 of 11" in r.stderr, r.stderr
    assert [row["path"] for row in _rows(part)] == [row["path"] for row in rows]


def _pax_shard(path, headers: dict[str, str]):
    """A shard of a.jpg (PAX ``headers`` on it) and b.jpg."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, pax in (("a.jpg", headers), ("b.jpg", {})):
            info = tarfile.TarInfo(name)
            info.size, info.pax_headers = 4, pax
            tar.addfile(info, io.BytesIO(b"\xff\xd8\xff\xe0"))
    return path


def test_headers_tarfile_cannot_use_sparse_and_compressed_shards_are_rows(tmp_path):
    """tarfile raises ValueError (a PAX sparse map that is no number) and OverflowError (a PAX size past 2**63)
    besides TarError: each is the shard's row, and the shards after it are listed."""
    shards = [
        _pax_shard(tmp_path / "0.tar", {"GNU.sparse.size": "x"}),
        _pax_shard(tmp_path / "1.tar", {"size": str(10**26)}),
        tmp_path / "2.tar",
        tmp_path / "3.tar",
    ]
    with tarfile.open(
        shards[2], "w", format=tarfile.GNU_FORMAT
    ) as tar:  # a sparse member: its bytes are not the file's
        info = tarfile.TarInfo("holes.jpg")
        info.type, info.size = tarfile.GNUTYPE_SPARSE, 512
        tar.addfile(info, io.BytesIO(bytes(512)))
    shards[3].write_bytes(gzip.compress(write_shard(tmp_path / "plain", {"a.jpg": b"x"}).read_bytes()))
    write_shard(tmp_path / "4.tar", {"ok.jpg": b"x"})
    items = list(iter_inputs([tmp_path / "{0..4}.tar"]))
    assert [it.name for it in items] == [
        str(shards[0]),
        f"{shards[1]}/a.jpg",  # PAX headers on a.jpg, overflow past it
        str(shards[1]),
        f"{shards[2]}/holes.jpg",
        str(shards[3]),
        f"{tmp_path}/4.tar/ok.jpg",
    ]
    assert items[0].reason.startswith("not a tar file (invalid literal for int()")
    assert items[0].reason.endswith("; name the tar file, or copy or download it again")
    assert items[2].reason.startswith("tar data unreadable after 1 image member (")  # was '1 image members'
    assert items[2].reason.endswith("; copy or download it again")
    assert items[3].reason.startswith("skipped: a sparse file") and "without --sparse" in items[3].reason
    assert items[4].reason.endswith("; it is gzip-compressed: decompress it to score it (shards are plain tar files)")
    assert items[5].read() == b"x"


def test_members_are_listed_in_flat_memory(tmp_path):
    """10,000 members: tarfile's own list of every header and the member list are not kept (about 6 MB before)."""
    with tarfile.open(tmp_path / "many.tar", "w") as tar:
        for k in range(10_000):
            info = tarfile.TarInfo(f"{k:05d}.jpg")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    tracemalloc.start()
    try:
        count = sum(1 for _ in shard_items(tmp_path / "many.tar"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 10_000 and peak < 2_000_000


def test_member_names_leaving_the_shard_are_only_names(tmp_path, monkeypatch):
    """``../../x.jpg``, an absolute name and a PAX path with ``..`` are scored from the shard's bytes; nothing
    is written but the output and its settings file."""
    import arniqa.inference

    monkeypatch.setattr(arniqa.inference, "load", tiny_score.load)
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    image = jpeg(24, 16, 0)
    write_shard(work / "s.tar", {"../../x.jpg": image, "/abs/y.jpg": image})
    with tarfile.open(work / "s.tar", "a", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("z.jpg")
        info.size, info.pax_headers = len(image), {"path": "../../../z.jpg"}
        tar.addfile(info, io.BytesIO(image))
    (work / "x.jpg").write_bytes(image)  # the same bytes as a file: the reference score
    before = sorted(tmp_path.rglob("*"))
    out = work / "s.csv"
    r = CliRunner().invoke(
        app, ["score", str(work / "s.tar"), str(work / "x.jpg"), "--protocol", "whole", "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    rows = _rows(out)
    assert [row["path"] for row in rows] == [
        f"{work}/s.tar/{n}" for n in ("../../x.jpg", "/abs/y.jpg", "../../../z.jpg")
    ] + [f"{work}/x.jpg"]
    assert len({row["score"] for row in rows}) == 1
    settings = work / ".s.csv.arniqa.json"
    assert sorted(tmp_path.rglob("*")) == sorted([*before, out, settings]) and not Path("/abs").exists()


def test_a_fifo_named_as_a_shard_is_a_row_not_a_wait(tmp_path):
    """`arniqa score x.tar` where x.tar is a FIFO waited forever in tarfile.open for a writer."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "x.tar"
    os.mkfifo(fifo)
    code = f"from arniqa.inference.shards import shard_items; print([u.reason for u in shard_items({str(fifo)!r})])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    said = "not a regular file (a device, FIFO or socket), not a tar shard; name the tar file"
    assert done.stdout.strip() == f"['{said}']", done.stderr


def test_a_shard_whose_name_cannot_be_looked_up_says_so_as_a_file_does(tmp_path):
    # before: 'not a tar file ([Errno 36] File name too long: ...)', as if its bytes had been read
    loop = tmp_path / "loop.tar"
    loop.symlink_to(loop)
    for shard, why in (
        (
            tmp_path / ("y" * 300 + ".tar"),
            "cannot read file (File name too long); give a shorter path (a name in it, or the whole, is longer than "
            "the system takes)",
        ),
        (loop, "a symbolic link loop (following it leads back to it); make the link point to the file, or remove it"),
    ):
        [row] = shard_items(shard)
        assert row.name == str(shard) and row.reason == why


def test_a_shard_gone_before_its_member_is_read_says_what_to_do(tmp_path):
    """A shard removed (or made unreadable) between its listing and a member's read said 'cannot read the shard (No
    such file or directory)' and nothing more."""
    shard = write_shard(tmp_path / "0.tar", {"a.jpg": b"x"})
    [member] = shard_items(shard)
    shard.unlink()
    with pytest.raises(ValueError) as e:
        member.read()
    assert str(e.value) == f"{shard}/a.jpg: cannot read the shard (No such file or directory); check the path"


def test_a_header_cut_short_or_corrupt_after_the_first_is_the_shards_row(tmp_path):
    """A shard cut inside a header, or with a header damaged in transfer, after its first member listed the members
    before it and ended there without a word: the members after it were never scored and the run exited 0."""
    shard = write_shard(tmp_path / "whole.tar", {f"{k}.jpg": bytes(600) for k in "abc"})
    with tarfile.open(shard) as tar:  # the reference: where tarfile put the third member's header
        third = tar.getmembers()[2].offset
    data = shard.read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: third + 100])
    flipped = bytearray(data)
    flipped[third + 10] ^= 0xFF  # in the name field: the checksum no longer holds
    (tmp_path / "flipped.tar").write_bytes(bytes(flipped))
    (tmp_path / "no-end.tar").write_bytes(data[:third])  # ends between members, no end-of-archive block: kept
    for name, why in (("cut.tar", "header cut short"), ("flipped.tar", "invalid header")):
        items = list(shard_items(tmp_path / name))
        assert [it.name for it in items] == [
            f"{tmp_path}/{name}/a.jpg",
            f"{tmp_path}/{name}/b.jpg",
            str(tmp_path / name),
        ]
        assert items[-1].reason == (
            f"tar data unreadable after 2 image members ({why} at byte {third}); copy or download it again"
        )
    assert [it.name for it in shard_items(tmp_path / "no-end.tar")] == [f"{tmp_path}/no-end.tar/{k}.jpg" for k in "ab"]
    assert [it.key for it in shard_items(shard)] == ["a.jpg", "b.jpg", "c.jpg"]


def test_a_compressed_shard_named_as_one_says_to_decompress_it(tmp_path, monkeypatch):
    """``arniqa score 'shards/{0..1}.tar.gz'`` (shards the ``webdataset`` package reads) gave each the row 'not an
    image file Pillow can read; convert it to PNG or JPEG'."""
    import bz2

    import arniqa.inference

    monkeypatch.setattr(arniqa.inference, "load", tiny_score.load)
    tar = write_shard(tmp_path / "plain", {"a.jpg": jpeg(24, 16, 0)}).read_bytes()
    (tmp_path / "0.tar.gz").write_bytes(gzip.compress(tar))
    (tmp_path / "1.tar.gz").write_bytes(gzip.compress(tar))
    (tmp_path / "b.TBZ2").write_bytes(bz2.compress(tar))
    out = tmp_path / "s.csv"
    r = _score([tmp_path / "{0..1}.tar.gz", tmp_path / "b.TBZ2", "--protocol", "whole", "-o", out])
    assert r.exit_code == 1, r.output
    advice = (
        "a tar shard, not an image file; it is {}-compressed: decompress it to score it (shards are plain tar files)"
    )
    assert [(row["path"], row["error"]) for row in _rows(out)] == [
        (f"{tmp_path}/0.tar.gz", advice.format("gzip")),
        (f"{tmp_path}/1.tar.gz", advice.format("gzip")),
        (f"{tmp_path}/b.TBZ2", advice.format("bzip2")),
    ]


def test_a_shard_damaged_before_its_first_image_member_is_not_called_no_tar(tmp_path):
    """A WebDataset shard (``key.cls`` before ``key.jpg``) cut inside its first label, or in the header after it,
    got the row 'not a tar file (...); name the tar file': it is a tar cut short, to be copied again."""
    shard = write_shard(tmp_path / "whole.tar", {"0.cls": b"7" * 600, "0.jpg": jpeg(24, 16, 0)})
    with tarfile.open(shard) as tar:  # the reference: where tarfile put the label's data and the image's header
        label, image = tar.getmembers()
    data = shard.read_bytes()
    (tmp_path / "in-label.tar").write_bytes(data[: label.offset_data + 100])
    (tmp_path / "in-header.tar").write_bytes(data[: image.offset + 100])
    for name, why in (
        ("in-label.tar", "unexpected end of data"),
        ("in-header.tar", f"header cut short at byte {image.offset}"),
    ):
        [row] = shard_items(tmp_path / name)
        assert row == Unreadable(
            str(tmp_path / name), f"tar data unreadable after 0 image members ({why}); copy or download it again"
        )


def test_a_zip_archive_named_as_a_shard_is_named_a_zip(tmp_path):
    """A zip of photos named ``.tar`` (another tool's 'shard') got 'not a tar file (bad checksum); name the tar
    file, or copy or download it again': copying it again gives the same zip."""
    import zipfile

    with zipfile.ZipFile(tmp_path / "0.tar", "w") as z:
        z.writestr("a.jpg", jpeg(24, 16, 0))
    [row] = shard_items(tmp_path / "0.tar")
    assert row.reason.startswith("not a tar file (")
    assert row.reason.endswith("; it is zip-compressed: decompress it to score it (shards are plain tar files)")


def _extended(kind: bytes, size: int, data: bytes = b"") -> bytes:
    """A GNU long-name (``L``) or PAX (``x``) header declaring ``size`` bytes (base-256 when large), then ``data``
    padded to whole blocks."""
    info = tarfile.TarInfo("././@LongLink")
    info.type, info.size = kind, size
    return info.tobuf(format=tarfile.GNU_FORMAT) + data.ljust(-(-len(data) // 512) * 512, b"\0")


def _after_a_member(tmp_path, name: str, tail: bytes) -> Path:
    """A shard holding ``a.jpg``, then ``tail`` in place of its end-of-archive blocks."""
    body = write_shard(tmp_path / "whole.tar", {"a.jpg": jpeg(24, 16, 0)}).read_bytes().rstrip(b"\0")
    path = tmp_path / name
    path.write_bytes(body + b"\0" * (-len(body) % 512) + tail)
    return path


@pytest.mark.parametrize(
    "tail, why",
    [
        # 3 KB declaring 1 TiB: tarfile reads an extended header in one read of its declared size, which allocates
        # that size first (a MemoryError traceback stopped the run, or 1 TiB of address space taken)
        (_extended(tarfile.GNUTYPE_LONGNAME, 1 << 40, b"x.jpg"), "empty header"),
        (_extended(tarfile.XHDTYPE, 1 << 40, b"14 path=x.jpg\n"), "empty header"),
        # tarfile reads each extended header by a call into itself: a RecursionError traceback stopped the run
        (
            b"".join(_extended(tarfile.GNUTYPE_LONGNAME, 6, b"x.jpg\0") for _ in range(2000)),
            "too many extended headers (PAX or GNU long names) in a row",
        ),
        (
            b"".join(_extended(tarfile.XHDTYPE, 14, b"14 path=x.jpg\n") for _ in range(2000)),
            "too many extended headers (PAX or GNU long names) in a row",
        ),
    ],
    ids=["long-name-1tib", "pax-1tib", "long-names-chained", "pax-chained"],
)
def test_extended_headers_declaring_more_than_the_shard_or_chained_are_the_shards_row(tmp_path, tail, why):
    shard = _after_a_member(tmp_path, "0.tar", tail)
    tracemalloc.start()
    try:
        items = list(shard_items(shard))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [it.name for it in items] == [f"{shard}/a.jpg", str(shard)]
    assert items[1].reason == f"tar data unreadable after 1 image member ({why}); copy or download it again"
    assert peak < 20 * shard.stat().st_size + 2_000_000  # what the shard holds, not what its headers declare


def test_members_named_alike_each_get_a_row_and_resume_scores_the_one_missing(tmp_path, monkeypatch):
    """Two members of one name (two shards' worth concatenated, ``0.jpg`` in each) are two images: a resume cut after
    the first one's row scores the second, and a whole output scores nothing again."""
    import arniqa.inference

    monkeypatch.setattr(arniqa.inference, "load", tiny_score.load)
    shard = tmp_path / "0.tar"
    with tarfile.open(shard, "w") as tar:
        for name, data in (("0.jpg", jpeg(24, 16, 0)), ("0.jpg", jpeg(40, 24, 1)), ("1.jpg", jpeg(32, 16, 2))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    clean, out = tmp_path / "clean.csv", tmp_path / "out.csv"
    assert _score([shard, "--protocol", "whole", "-o", clean]).exit_code == 0
    rows = _rows(clean)
    assert [row["path"] for row in rows] == [f"{shard}/0.jpg", f"{shard}/0.jpg", f"{shard}/1.jpg"]
    assert rows[0]["score"] != rows[1]["score"]  # two images, each scored
    lines = clean.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:2]))  # the header and the first 0.jpg's row
    r = _score([shard, "--protocol", "whole", "-o", out, "--resume"])
    assert r.exit_code == 0 and "resuming: 1 of 3" in r.stderr
    assert out.read_bytes() == clean.read_bytes()
    r = _score([shard, "--protocol", "whole", "-o", out, "--resume"])
    assert r.exit_code == 0 and "resuming: 3 of 3" in r.stderr and out.read_bytes() == clean.read_bytes()
