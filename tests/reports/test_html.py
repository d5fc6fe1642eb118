"""The HTML report (arniqa.reports.html): every row, a histogram of all scores, a page drawn by a real browser."""

import base64
import io
import json
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from PIL import Image

from arniqa.reports.html import members, report, write_report
from arniqa.utils.messages import printable


def _rows(n):
    rng = np.random.default_rng(0)
    return [
        {
            "path": f"img/{i:05d}.jpg",
            "score": float(s),
            "raw_score": "",
            "error": "",
            "explanation": "blur 0.70; noise 0.20; jpeg 0.05",
            "severity": "2.5",
        }
        for i, s in enumerate(rng.random(n))
    ]


def _data(text):
    """The rows a report's script shows, from its data script."""
    return json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])


def test_report_holds_every_row_and_a_histogram_of_all_scores(tmp_path):
    rows = _rows(500) + [{"path": "bad.jpg", "score": "", "raw_score": "", "error": "truncated"}]
    text = report(rows, tmp_path, thumbnails="none").html
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])
    assert len(data["rows"]) == 500 and data["page"] == 100
    heights = re.findall(r'<rect [^>]*height="([0-9.]+)"><title>[^<]*: (\d+)</title>', text)
    assert sum(int(c) for _, c in heights) == 500
    assert "truncated" in text


def test_scores_near_the_float_bounds_are_binned_not_a_crash(tmp_path):
    """Scores of -1e308 and 1e308 (finite) crashed the report: their span, 2e308, is no float (ValueError: cannot
    convert float NaN to integer). The lowest and highest scores fall in the first and last of 30 bins, the middle
    one half-way."""
    rows = [{"path": f"{i}.jpg", "score": s, "error": ""} for i, s in enumerate(["-1e308", "0", "1e308"])]
    text = report(rows, tmp_path, thumbnails="none").html
    counts = [int(c) for c in re.findall(r"<title>[^<]* to [^<]*: (\d+)</title>", text)]
    assert counts == [1 if i in (0, 15, 29) else 0 for i in range(30)]
    assert re.search(r"<title>-1e\+308 to ", text)  # the first bin starts at the lowest score


def test_histogram_labels_of_huge_scores_are_short_and_of_ordinary_ones_as_before(tmp_path):
    """Finite scores of 1e308 gave labels of 309 digits; past a million they have four significant digits, and
    ordinary scores keep three decimals."""
    for scores, low, high in [(["-1e308", "1e308"], "-1e+308", "1e+308"), (["0.05", "73.4567"], "0.050", "73.457")]:
        rows = [{"path": f"{i}.jpg", "score": s, "error": ""} for i, s in enumerate(scores)]
        text = report(rows, tmp_path, thumbnails="none").html
        assert re.findall(r"<text [^>]*>([^<]*)</text>", text)[:2] == [low, high]
        assert max(map(len, re.findall(r"<title>([^<]*)</title>", text))) < 40


def test_numbering_shard_members_parses_no_path_of_a_plain_file(monkeypatch):
    """arniqa report numbers each row among the shard members of its name, and did so by parsing every folder above
    every row: 200,000 rows of photos took 26 s before the report was begun (2-core AMD EPYC); a name with no
    ".tar" in it is passed by at once now (0.3 s, benchmarks/report_scale.py)."""
    import arniqa.inference.shards as shards

    parsed = []
    is_shard = shards.is_shard
    monkeypatch.setattr(shards, "is_shard", lambda folder: parsed.append(str(folder)) or is_shard(folder))
    files = [{"path": f"/srv/photos/2024/{i // 10:03d}/IMG_{i:06d}.jpg"} for i in range(100)]
    tars = [{"path": p} for p in ["s.TAR/a.jpg", "s.TAR/a.jpg", "s.tar.gz/a.jpg", "s.tar.gz/a.jpg", "._s.tar/a.jpg"]]
    numbers = members(files + tars)
    assert numbers == [0] * 100 + [0, 1, 0, 0, 0]  # s.TAR is a shard, s.tar.gz and ._s.tar are not
    assert not any("IMG_" in p or "/srv" in p for p in parsed)
    assert parsed  # the names with .tar in them are still judged


def test_a_non_finite_score_is_listed_as_not_scored_with_its_value(tmp_path):
    """A hand-edited nan/inf score said only "no score"; it is named now, and never plotted or sorted."""
    rows = _rows(3) + [
        {"path": p, "score": s, "raw_score": "", "error": ""} for p, s in [("n.jpg", "nan"), ("i.jpg", float("inf"))]
    ]
    text = report(rows, tmp_path, thumbnails="none").html
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])
    assert [row[0] for row in data["rows"]] == [r["path"] for r in rows[:3]]
    assert _data(text)["failed"] == [
        ["n.jpg", "no score: nan is not a finite number", ""],
        ["i.jpg", "no score: inf is not a finite number", ""],
    ]
    assert "3 images scored, 2 could not be scored" in text


def test_a_report_of_one_image_counts_it_in_the_singular(tmp_path):
    """`arniqa score photo.jpg --html r.html` said "1 images scored" and "score (1 images, ...)"."""
    text = report(_rows(1), tmp_path, thumbnails="none").html
    assert "1 image scored." in text and 'aria-label="histogram of 1 score"' in text
    assert "score (1 image, highest bin 1)" in text and "1 images" not in text


def test_worst_and_best_never_show_an_image_twice(tmp_path):
    """One image was shown as the worst 1 and again as the best 1; with fewer than two (or --best-worst 0) the
    sections are left out, and the table shows the image."""
    for rows, best_worst, shown in [(1, 12, 0), (2, 12, 1), (14, 12, 7), (23, 12, 11), (24, 12, 12), (500, 12, 12)] + [
        (500, 0, 0)
    ]:
        text = report(_rows(rows), tmp_path, thumbnails="none", best_worst=best_worst).html
        data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])
        assert data["n"] == shown and len(data["rows"]) == rows
        assert re.findall(r"<h2>(Worst|Best) (\d+)</h2>", text) == (
            [("Worst", str(shown)), ("Best", str(shown))] if shown else []
        )
        assert ('id="worst"' in text) == ('id="best"' in text) == (shown > 0)


def test_a_report_where_no_image_was_scored_has_only_the_errors(tmp_path):
    """Every image failed: the report had a histogram saying "No scores.", empty "Worst 0" and "Best 0" sections and
    an empty table; it now says none was scored and lists the errors."""
    rows = [{"path": f"bad{i}.jpg", "score": "", "error": "truncated"} for i in range(2)]
    text = report(rows, tmp_path, thumbnails="none").html
    body = text[text.index("<body>") :]
    assert re.findall(r"<h2>([^<]*)</h2>", body) == ["Could not be scored (2)"]
    assert "0 images scored, 2 could not be scored." in body
    assert "<svg" not in body and 'id="images"' not in body and 'id="failed"' in body
    assert _data(text) == {"rows": [], "failed": [[r["path"], "truncated", ""] for r in rows], "page": 100, "n": 0}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_report_renders_in_a_real_browser(tmp_path):
    rows = _rows(10_000)
    page = tmp_path / "report.html"
    write_report(rows, page, thumbnails="none")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tempfile.mkdtemp()}",
    ]
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    body = re.search(r"<tbody>(.*?)</tbody>", dom, re.S)[1]
    cells = re.findall(r"<tr><td class=\"num\">(\d+)</td><td></td><td>([^<]+)</td><td class=\"num\">([0-9.]+)", body)
    assert len(cells) == 100  # one page of 10,000 rows
    lowest = sorted(rows, key=lambda r: r["score"])[:100]
    assert [p for _, p, _ in cells] == [r["path"] for r in lowest]
    assert "page 1 of 100" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, *flags, "--window-size=1200,900", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (900, 1200) and pixels.std() > 10  # something was drawn


def _dom(page, script):
    """The DOM of ``page`` as Chromium draws it, after ``script`` has run at the end of its body."""
    text = page.read_text(encoding="utf-8").replace("</body>", f"<script>{script}</script></body>")
    page.with_name("run.html").write_text(text, encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tempfile.mkdtemp()}"]
    command = [CHROMIUM, *flags, "--dump-dom", page.with_name("run.html").as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120).stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_the_sortable_headers_are_buttons_the_keyboard_reaches(tmp_path):
    """The headers that sort a table (path, score, severity; path, error) answered a click only: a header cell is
    not in the tab order, so the keyboard could not reach or use them (Chromium 150). Each holds a button now, which
    is (and which Enter and Space press), and the header sorted by says so to a screen reader (aria-sort)."""
    rows = _rows(3) + [{"path": "bad.jpg", "score": "", "error": "gone"}]
    page = tmp_path / "r.html"
    write_report(rows, page, thumbnails="none")
    dom = _dom(
        page,
        'const b = [...document.querySelectorAll("th.sort button")];'
        "document.body.dataset.tabs = b.map(x => x.tabIndex + x.type).join();"
        "b[0].focus(); document.body.dataset.focused = document.activeElement.textContent; b[0].click();",
    )
    assert re.search(r'data-tabs="([^"]*)"', dom)[1] == ",".join(["0button"] * 5)  # in the tab order
    assert 'data-focused="path"' in dom
    images = dom[dom.index('<table id="images">') :]
    assert re.findall(r'<th class="sort" data-key="(\d)"( aria-sort="\w+")?>', images[: images.index("</thead>")]) == [
        ("0", ' aria-sort="ascending"'),
        ("1", ""),
        ("3", ""),
    ]
    assert "sorted by path (ascending)" in dom


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_the_worst_and_best_show_file_names_of_windows_paths_too(tmp_path):
    """A result file of arniqa score on Windows (C:\\photos\\2024\\a.jpg) showed each worst and best card the
    whole path: the cards cut names at "/" only. They cut at either separator now."""
    rows = [
        {"path": "C:\\photos\\2024\\low_one.jpg", "score": 0.1},
        {"path": "/mnt/photos/mid.jpg", "score": 0.5},
        {"path": "\\\\nas\\share\\high.jpg", "score": 0.9},
        {"path": "plain.jpg", "score": 0.7},
    ]
    page = tmp_path / "r.html"
    write_report(rows, page, thumbnails="none", best_worst=2)
    dom = _dom(page, "")
    cards = {box: re.search(f'id="{box}">(.*?</div>)</div>', dom)[1] for box in ("worst", "best")}
    assert re.findall(r"</b><br>(.*?)</div>", cards["worst"]) == ["low_<wbr>one.jpg", "mid.jpg"]
    assert re.findall(r"</b><br>(.*?)</div>", cards["best"]) == ["high.jpg", "plain.jpg"]


def test_links_are_urls_of_the_files_whatever_their_names(tmp_path):
    """A file named ``javascript:alert(1).jpg`` made a map link that ran script when clicked, and names with
    ``#``, ``?`` or ``%`` made links to other files; each link must resolve (RFC 3986, by urllib) to its file."""
    import os
    import urllib.parse
    from pathlib import Path

    names = ["javascript:alert(1).jpg", "a#b.jpg", "q?x=1.jpg", "100%.jpg", "sp ace.jpg", os.fsdecode(b"\xff.jpg")]
    (tmp_path / "maps").mkdir()
    for name in names:
        Image.new("RGB", (8, 8)).save(tmp_path / name, "JPEG")
        for maps in (tmp_path, tmp_path / "maps"):
            Image.new("RGB", (8, 8)).save(maps / f"{Path(name).stem}.map.png")
    rows = [{"path": str(tmp_path / n), "score": 0.5} for n in names]
    for maps in (tmp_path, tmp_path / "maps"):  # the maps beside the report, or in a folder
        for mode in ("link", "none"):
            index = {(str(tmp_path / n), 0): maps / f"{Path(n).stem}.map.png" for n in names}
            text = report(rows, tmp_path, maps=index, thumbnails=mode).html
            data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])
            by_path = {r[0]: r for r in data["rows"]}  # shown with \\xNN for bytes that are not UTF-8
            for name in names:
                row = by_path[printable(str(tmp_path / name))]
                links = [(row[5], maps / f"{Path(name).stem}.map.png")]
                if mode == "link":
                    links.append((row[4], tmp_path / name))
                for link, target in links:
                    parts = urllib.parse.urlsplit(link)
                    assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == ("", "", "", ""), link
                    assert tmp_path / urllib.parse.unquote(parts.path, errors="surrogateescape") == target, link


def test_names_that_are_not_utf8_are_shown_not_a_crash(tmp_path):
    """A row that failed, named in bytes that are not UTF-8, stopped the report (and `score --html`) with a
    UnicodeEncodeError; such names are shown with \\xNN, like the error lines."""
    import os

    rows = [
        {"path": os.fsdecode(b"a\xff.jpg"), "score": "", "error": "truncated"},
        {"path": os.fsdecode(b"b\xfe.jpg"), "score": 0.5},
    ]
    text = write_report(rows, tmp_path / "r.html", thumbnails="none").html
    assert _data(text)["failed"] == [["a\\xff.jpg", "truncated", ""]] and '"b\\\\xfe.jpg"' in text


def test_a_name_with_bidirectional_controls_is_shown_escaped(tmp_path):
    """A row named "\u202ertl.jpg" (RIGHT-TO-LEFT OVERRIDE) showed as "gpj.ltr" in the table, the cards and the rows
    that could not be scored (Chromium 150), and so did a result file's name in the title. They show the control
    escaped now, as the command line's messages do."""
    rows = [
        {"path": "\u202ertl.jpg", "score": 0.5},
        {"path": "ok.jpg", "score": 0.7},
        {"path": "\u2067gone.jpg", "score": "", "error": "no such file \u202e"},
    ]
    text = report(rows, tmp_path, thumbnails="none", title="arniqa report: \u202escores.csv").html
    assert not set(text) & set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
    data = _data(text)
    assert [r[0] for r in data["rows"]] == ["\\u202ertl.jpg", "ok.jpg"]
    assert data["failed"] == [["\\u2067gone.jpg", "no such file \\u202e", ""]]
    assert "<title>arniqa report: \\u202escores.csv</title>" in text


def test_link_thumbnails_only_for_files(tmp_path):
    """A tar member named ../x.jpg got a link to a file of that name beside the shard: another image."""
    (tmp_path / "x.jpg").write_bytes(b"another image")
    (tmp_path / "s.tar").write_bytes(b"a shard")
    rows = [{"path": str(tmp_path / "s.tar" / ".." / "x.jpg"), "score": 0.5}]
    text = report(rows, tmp_path, thumbnails="link").html
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])
    assert data["rows"][0][4] is None


def test_link_thumbnails_lead_to_the_files_that_links_and_folders_of_links_name(tmp_path, monkeypatch):
    """Links are made with one lookup a photo and one resolve a folder for all its photos: a link to a photo, a
    photo in a linked folder and one reached through ``link/..`` still lead where the system's resolve says,
    relative to the report, and a link to nothing gets none."""
    import os
    import urllib.parse
    from pathlib import Path

    real = tmp_path / "real" / "deep"
    real.mkdir(parents=True)
    (real / "a.jpg").write_bytes(b"a photo")
    (tmp_path / "linked").symlink_to(real)
    (tmp_path / "a-link.jpg").symlink_to(real / "a.jpg")
    (tmp_path / "nothing.jpg").symlink_to(tmp_path / "gone.jpg")
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(tmp_path)
    paths = ["linked/a.jpg", "a-link.jpg", "linked/../deep/a.jpg", str(real / "a.jpg"), "nothing.jpg", "gone.jpg"]
    text = report([{"path": p, "score": 0.1 * i} for i, p in enumerate(paths)], out, thumbnails="link").html
    links = [row[4] for row in _data(text)["rows"]]
    assert links[:4] == [os.path.relpath(real / "a.jpg", out)] * 4 and links[4:] == [None, None]
    assert all((out / urllib.parse.unquote(link)).resolve() == Path(paths[0]).resolve() for link in links[:4])


def test_a_thumbnail_of_an_image_over_the_pixel_bound_is_not_decoded(tmp_path, monkeypatch):
    """thumbnail() opened images with PIL's limit alone (4 threads, each up to 179 million pixels); it keeps the
    project's bound now (read_image's 100 million), checked on the header."""
    from imaging import png_header_only
    from PIL import PngImagePlugin

    from arniqa.reports.html import thumbnail

    decoded = []
    decode = lambda self: decoded.append(self.size) or 1 / 0  # noqa: E731  (counted, then stopped)
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", decode)
    (tmp_path / "big.png").write_bytes(png_header_only(10_001, 10_000))  # 100,010,000 pixels in 100 bytes
    with pytest.warns(UserWarning, match=r"big\.png: no thumbnail in the report: image too large"):
        assert thumbnail(str(tmp_path / "big.png")) == (None, True)  # none, of a file that is there
    assert decoded == []
    monkeypatch.undo()
    Image.new("RGB", (300, 150), (10, 200, 30)).save(tmp_path / "small.png")
    uri = thumbnail(str(tmp_path / "small.png")).uri
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as small:
        assert small.size == (96, 48)


def test_a_name_with_markup_in_it_stays_inside_the_data_script(tmp_path):
    """A file named ``<!--<script>.jpg`` put the HTML tokenizer's script data into its double-escaped state (HTML
    standard, 13.2.5.20-31), where the data's own ``</script>`` no longer ends the element: the rest of the page
    became script text and the report showed no table. Those states begin only at ``<``, so the data holds none,
    and its JSON still gives every name back."""
    names = ["<!--<script>.jpg", "</script><b>x.jpg", "a<!--b.jpg", "q\"u'o&te.jpg", "new\nline.jpg", "u\u2028.jpg"]
    rows = [{"path": n, "score": 0.1 * i} for i, n in enumerate(names)]
    failed = [{"path": n, "score": "", "error": f"{n}: </script>"} for n in names]  # rows that failed, paged too
    text = report(rows + failed, tmp_path, thumbnails="none").html
    start = text.index('<script id="data" type="application/json">') + len('<script id="data" type="application/json">')
    data = text[start : text.index("</script>", start)]
    assert "<" not in data and "\u2028" not in data
    assert [r[0] for r in json.loads(data)["rows"]] == names
    assert json.loads(data)["failed"] == [[n, f"{n}: </script>", ""] for n in names]


def test_rows_that_could_not_be_scored_are_paged_like_the_table(tmp_path):
    """A nightly run whose photos' disk went away wrote 100,000 error rows, and the report made each a row of a
    plain table: 300,098 elements for a browser to lay out at once, in a 21 MB page. They travel in the data now,
    shown 100 a page and sortable by path and error like the scored images, and the page's markup is the same
    whatever their number."""
    from html.parser import HTMLParser

    class Elements(HTMLParser):
        def __init__(self, text):
            super().__init__()
            self.tags = []
            self.feed(text)

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

    gone = [{"path": f"/nas/{i:06d}.jpg", "score": "", "error": "[Errno 5] Input/output error"} for i in range(100_000)]
    pages = [report(_rows(3) + gone[:k], tmp_path, thumbnails="none").html for k in (1, 100_000)]
    assert Elements(pages[0]).tags == Elements(pages[1]).tags
    failed = pages[1][pages[1].index('<table id="failed">') :]
    assert re.findall(r'<th class="sort" data-key="(\d)"><button type="button">(\w+)</button></th>', failed) == [
        ("0", "path"),
        ("1", "error"),
    ]
    data = _data(pages[1])
    assert data["page"] == 100 and data["failed"] == [[r["path"], r["error"], ""] for r in gone]


@pytest.mark.parametrize("orientation,size", [(None, 96), (6, 96), (8, 64)])
def test_a_jpeg_thumbnail_is_decoded_at_a_reduced_scale_and_matches_one_decoded_whole(
    tmp_path, monkeypatch, orientation, size
):
    """A thumbnail decoded every photo whole (an 11 MP JPEG: 39 ms; 13 at 1/8); a JPEG is decoded at a reduced
    scale now, its longer side at least three times the thumbnail's, and its thumbnail is what a whole decode gives."""
    from imaging import write_jpeg
    from PIL import ImageOps

    from arniqa.reports import html

    path = write_jpeg(tmp_path / "a.jpg", 1600, 1200, orientation)
    decoded = []
    read = html.read_image
    monkeypatch.setattr(html, "read_image", lambda *a, **k: decoded.append(read(*a, **k).size) or read(*a, **k))
    uri = html.thumbnail(str(path), size).uri
    assert max(decoded[0]) == 1600 // (4 if size == 96 else 8)  # 1/4 leaves 400 >= 288, 1/8 200 >= 192
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as small:
        thumb = np.asarray(small.convert("RGB"), np.float64)
    whole = ImageOps.exif_transpose(Image.open(path)).convert("RGB")  # PIL's own decode, upright, then resized
    whole.thumbnail((size, size))
    buffer = io.BytesIO()
    whole.save(buffer, "JPEG", quality=70)  # as the report's thumbnails are
    assert thumb.shape[:2] == (whole.height, whole.width)
    assert max(thumb.shape[:2]) == size and (thumb.shape[0] > thumb.shape[1]) == (orientation in (6, 8))
    assert np.abs(thumb - np.asarray(Image.open(buffer), np.float64)).mean() < 3


@pytest.mark.parametrize("thumbnails", ["embed", "link"])
def test_thumbnails_are_shown_at_the_size_asked(tmp_path, thumbnails):
    """--thumb-size 200 embedded JPEGs of 200 px that the page's style shrank to 96 px (linked photos too)."""
    Image.new("RGB", (400, 300), (10, 200, 30)).save(tmp_path / "a.png")
    rows = [{"path": str(tmp_path / "a.png"), "score": 0.5}, {"path": str(tmp_path / "a.png"), "score": 0.7}]
    for size in (96, 200):
        text = report(rows, tmp_path, thumbnails=thumbnails, size=size).html
        assert re.search(r"td img \{ max-width: (\d+)px; max-height: (\d+)px;", text).groups() == (str(size),) * 2
        width = int(re.search(r"\.card \{ width: (\d+)px;", text)[1])
        assert width >= size + 16  # a card holds its thumbnail with room to spare


def test_a_big_report_embeds_the_lowest_and_highest_scores_and_links_the_rest(tmp_path, monkeypatch):
    """--thumbnails embed put every row's thumbnail inside: 200,000 rows made a 502 MB file (28 min, 2.4 GB of
    memory), and some more a page whose rows no browser's script could read. Past html.EMBEDDED (4 here, for speed),
    the 2 lowest and 2 highest scores, those the worst and best and the table sorted by score show first, are
    embedded; the others link to their files."""
    from arniqa.reports import html

    monkeypatch.setattr(html, "EMBEDDED", 4, raising=False)
    rng = np.random.default_rng(1)
    scores = rng.permutation(9) / 8  # distinct, in no order
    for i in range(9):
        Image.new("RGB", (40, 30), (20 * i, 0, 0)).save(tmp_path / f"{i}.png")
    rows = [{"path": str(tmp_path / f"{i}.png"), "score": float(s), "error": ""} for i, s in enumerate(scores)]
    text = report(rows, tmp_path, best_worst=1).html
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])
    ends = set(np.argsort(scores)[[0, 1, -2, -1]])
    for i, row in enumerate(data["rows"]):
        assert row[4].startswith("data:image/jpeg;base64,") if i in ends else row[4] == f"{i}.png"
    said = [html.report_warnings(report(rows, tmp_path, best_worst=k)) for k in (1, 3, 5)]
    assert said[0] == [
        "warning: 9 scored images: thumbnails are embedded for the 2 lowest and the 2 highest scores, the other 5 link "
        "to their files (all of them inside would make a file of hundreds of MB); --thumbnails link links them all"
    ]
    assert "for the 3 lowest and the 3 highest scores, the other 3 link" in said[1][0]
    assert said[2] == []  # the worst and best 5 would be 10 of 9: all are embedded


def test_a_photo_that_cannot_be_read_for_its_thumbnail_is_named_in_a_warning(tmp_path):
    """A scored photo that no longer decodes (cut short since) lost its thumbnail without a word; it is named in one
    warning now, with what is wrong, and the report is written. A file that is not there is counted by arniqa report
    instead, so it makes no warning here."""
    import warnings

    Image.new("RGB", (40, 30), (0, 90, 0)).save(tmp_path / "good.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "good.jpg").read_bytes()[:200])
    rows = [
        {"path": str(tmp_path / n), "score": s} for n, s in [("good.jpg", 0.2), ("cut.jpg", 0.4), ("gone.jpg", 0.6)]
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = report(rows, tmp_path).html
    assert [str(w.message).split(": ")[:2] for w in caught] == [
        [str(tmp_path / "cut.jpg"), "no thumbnail in the report"]
    ]
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])
    assert [row[4] is not None for row in data["rows"]] == [True, False, False]


def test_an_embedded_photo_that_is_not_there_is_looked_up_once_for_its_warning_and_count(tmp_path, monkeypatch):
    """A photo gone since it was scored was looked up again for the thumbnail's warning and again for the count of
    images that are not files from here (each a round trip on a NAS); one lookup answers both now, besides those of
    the read that failed."""
    import os

    from arniqa.data.images import read_image

    Image.new("RGB", (40, 30), (0, 90, 0)).save(tmp_path / "here.png")
    gone = str(tmp_path / "gone.png")
    rows = [{"path": str(tmp_path / "here.png"), "score": 0.2}, {"path": gone, "score": 0.6}]
    looked_up = []
    for name in ("stat", "lstat"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda p, *a, real=real, **k: looked_up.append(os.fspath(p)) or real(p, *a, **k))
    with pytest.raises(ValueError):
        read_image(gone)
    by_the_read = looked_up.count(gone)
    looked_up.clear()
    made = report(rows, tmp_path)
    monkeypatch.undo()
    assert looked_up.count(gone) == by_the_read + 1
    assert made.unseen == 1 and [r[4] is None for r in _data(made.html)["rows"]] == [False, True]


def test_a_page_is_written_in_pieces_not_as_one_string(tmp_path, monkeypatch):
    """The page was made as one string and written whole: at 200,000 rows its data was held three times over (the
    JSON, it escaped, the page) and again as UTF-8 bytes. It is written in pieces of at most html.JSON_ROWS rows now,
    and the file is the page, byte for byte."""
    from arniqa.reports import html

    rows = _rows(5_000) + [{"path": f"bad{i}<.jpg", "score": "", "error": "x"} for i in range(2_500)]
    made = report(rows, tmp_path, thumbnails="none")
    written = []
    real = html.text_writer
    monkeypatch.setattr(html, "text_writer", lambda text: written.append(text) or real(text))
    write_report(rows, tmp_path / "r.html", thumbnails="none")
    assert not isinstance(written[0], str)  # pieces, never the page whole
    page = made.html
    assert (tmp_path / "r.html").read_bytes() == page.encode("utf-8")
    pieces = list(made.chunks())
    assert "".join(pieces) == page and max(map(len, pieces)) < len(page) / 5
    data = _data(page)  # the pieces make one JSON value, with no "<" in it
    assert [r[0] for r in data["rows"]] == [r["path"] for r in rows[:5_000]]
    assert [r[0] for r in data["failed"]] == [r["path"] for r in rows[5_000:]]


def _style(text):
    """The page's style rules: selector -> {property: value}."""
    css = text[text.index("<style>") + len("<style>") : text.index("</style>")]
    return {
        selector.strip(): dict(map(str.strip, d.split(":", 1)) for d in body.split(";") if d.strip())
        for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", css)
    }


def test_the_page_fits_a_narrow_window(tmp_path):
    """On a 360-px window (Chromium 150) the page was 1,162 px wide: the histogram is drawn 640 px wide and a long
    file name made the table wider still, so the whole page scrolled sideways. The histogram now shrinks to the
    window (its viewBox keeps its shape) and each table scrolls sideways in a box of its own."""
    from html.parser import HTMLParser

    class Boxes(HTMLParser):
        """Each table's enclosing element (tag, class), and the svg's attributes."""

        def __init__(self):
            super().__init__()
            self.open, self.boxes, self.svg = [], {}, None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "table":
                self.boxes[attrs["id"]] = self.open[-1]
            elif tag == "svg":
                self.svg = attrs
            self.open.append((tag, attrs.get("class")))

        def handle_endtag(self, tag):
            while self.open and self.open.pop()[0] != tag:
                pass

    rows = _rows(3) + [{"path": "x" * 300 + ".jpg", "score": 0.5}, {"path": "bad.jpg", "score": "", "error": "gone"}]
    text = report(rows, tmp_path, thumbnails="none").html
    style = _style(text)
    parsed = Boxes()
    parsed.feed(text[text.index("<body>") :])
    assert set(parsed.boxes) == {"images", "failed"}
    for tag, cls in parsed.boxes.values():
        assert tag == "div" and style[f".{cls}"]["overflow-x"] == "auto"
    assert parsed.svg["class"] == "hist" and parsed.svg["viewbox"] == "0 0 640 160"
    assert style[".hist"]["max-width"] == "100%" and style[".hist"]["height"] == "auto"


def test_a_page_that_links_files_says_so(tmp_path, monkeypatch):
    """A report whose thumbnails or maps link to files (--thumbnails link, the rows past html.EMBEDDED, --maps)
    showed them blank, without a word why, once moved without the photos (mailed, copied elsewhere: Chromium 150
    drew no thumbnail and no hint). The page now says how many of each are links, and a page with everything
    inside says nothing of the kind."""
    from arniqa.reports import html

    for i in range(9):
        Image.new("RGB", (40, 30), (20 * i, 0, 0)).save(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 30)).save(tmp_path / f"{i}.map.png")
    rows = [{"path": str(tmp_path / f"{i}.png"), "score": i / 8} for i in range(9)]
    rows.append({"path": str(tmp_path / "gone.png"), "score": 0.5})  # no file: no thumbnail, no link
    maps = {(str(tmp_path / f"{i}.png"), 0): tmp_path / f"{i}.map.png" for i in range(3)}

    def summary(**options):
        text = report(rows, tmp_path, **options).html
        return re.search(r"<p>([^<]*)</p>", text)[1]

    inside = "10 images scored. Scores: higher is better."
    assert summary(thumbnails="embed") == summary(thumbnails="none") == inside
    assert (
        summary(thumbnails="link")
        == f"{inside} 9 thumbnails are links to files, not inside this page: move it together with them."
    )
    assert (
        summary(thumbnails="none", maps=maps)
        == f"{inside} 3 maps are links to files, not inside this page: move it together with them."
    )
    assert "9 thumbnails and 3 maps are links" in summary(thumbnails="link", maps=maps)
    monkeypatch.setattr(html, "EMBEDDED", 4, raising=False)  # 2 lowest and 2 highest inside, 5 of the 9 files linked
    assert "5 thumbnails are links" in summary(thumbnails="embed", best_worst=1)
    assert " 1 thumbnail is a link to files" in report(rows[:1], tmp_path, thumbnails="link").html


def test_a_photo_on_another_drive_is_linked_by_its_file_url(monkeypatch):
    """On Windows a photo on another drive or share than the report (photos on \\\\nas\\photos, the report on C:) has
    no relative path: os.path.relpath raises ValueError, and --thumbnails link, --maps and an embedded report of
    over 10,000 rows stopped with a traceback. Such a photo is linked by its absolute file: URL (RFC 8089)."""
    import ntpath
    import os
    import urllib.parse
    from pathlib import PureWindowsPath

    from arniqa.reports.html import relative_url

    monkeypatch.setattr(os.path, "relpath", ntpath.relpath)  # Windows' rule for paths on two drives
    base = PureWindowsPath("C:/reports")
    share = relative_url(PureWindowsPath("//nas/photos/2024/a b#1.jpg"), base)
    drive = relative_url(PureWindowsPath("D:/photos/é?.jpg"), base)
    assert share == "file://nas/photos/2024/a%20b%231.jpg" and drive == "file:///D:/photos/%C3%A9%3F.jpg"
    parts = urllib.parse.urlsplit(share)
    assert (parts.netloc, urllib.parse.unquote(parts.path), parts.query, parts.fragment) == (
        "nas",
        "/photos/2024/a b#1.jpg",
        "",
        "",
    )


def test_each_scored_row_shows_its_note_and_a_file_without_notes_shows_none(tmp_path):
    """The report's table had no place for a row's note (its first frame scored, downscaled)."""
    rows = [
        {"path": "a.gif", "score": "0.5", "raw_score": "3.0", "error": "", "note": "its first frame is scored"},
        {"path": "b.png", "score": "0.25", "raw_score": "2.0", "error": ""},  # a file of an older arniqa
    ]
    text = report(rows, tmp_path, thumbnails="none").html
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])
    assert [r[6] for r in data["rows"]] == ["its first frame is scored", ""]
    assert "<th>note</th>" in text


def test_a_row_that_could_not_be_scored_shows_its_note_escaped(tmp_path):
    """The table of rows that could not be scored showed path and error only, so an error row's note (an animated
    file whose first frame then failed, an image downscaled and then out of memory) was in the result file but not
    in the report. It has a note column now, its text escaped as the other cells: markup in it stays text."""
    note = "an animated or multi-page image; <b>its first frame</b> & \u202e"
    rows = _rows(2) + [
        {"path": "a.gif", "score": "", "raw_score": "", "error": "image file is truncated", "note": note},
        {"path": "b.jpg", "score": "", "raw_score": "", "error": "no such file", "note": ""},
        {"path": "c.jpg", "score": "", "error": "no such file"},  # a file of an older arniqa: no note column
    ]
    text = report(rows, tmp_path, thumbnails="none").html
    shown = note.replace("\u202e", "\\u202e")  # a bidirectional control escaped, as in the scored rows' notes
    assert _data(text)["failed"] == [
        ["a.gif", "image file is truncated", shown],
        ["b.jpg", "no such file", ""],
        ["c.jpg", "no such file", ""],
    ]
    failed = text[text.index('<table id="failed">') :]
    assert re.findall(r"<th[^>]*>(?:<button[^>]*>)?(\w+)", failed[: failed.index("</thead>")]) == [
        "path",
        "error",
        "note",
    ]
    if CHROMIUM is None:
        return
    page = tmp_path / "r.html"
    page.write_text(text, encoding="utf-8")
    dom = _dom(page, "")
    body = re.search(r'<table id="failed">.*?<tbody>(.*?)</tbody>', dom, re.S)[1]
    cells = re.findall(r"<tr>(.*?)</tr>", body)
    assert cells[0] == (
        '<td class="num">1</td><td>a.gif</td><td>image file is truncated</td><td>an animated or multi-page image; '
        "&lt;b&gt;its first frame&lt;/b&gt; &amp; \\u202e</td>"
    )
    assert cells[2].endswith("<td>no such file</td><td></td>")
