"""A visual report of scored images as one HTML file (``arniqa report``, ``arniqa score --html``).

No server, no network: the rows and the thumbnails (small JPEGs as base64, at most :data:`EMBEDDED` of them, or
links relative to the report, which the page counts) travel inside the file as JSON; a short script renders a
table of 100 rows per page (so a page loads 100 thumbnails whatever the number of rows), sortable by score, path or
severity. Above it: the score histogram (inline SVG) and the worst and best images; below it, the rows that could
not be scored, paged and sortable too. Each row shows its explanation (``arniqa score --explain``) and, given the
folder of ``arniqa map``, its quality map (linked).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import stat
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from ..data.images import ImageError, read_image
from ..utils.files import atomic_write, text_writer
from ..utils.messages import printable, warn_file, warning_line
from ..utils.names import agree, count
from ..utils.streams import is_stream

THUMBNAILS = ("embed", "link", "none")
PAGE_ROWS = 100
# The most thumbnails a report embeds: 10,000 of 96 px are about 28 MB, which Chromium opens in about 3 s. Those of the
# lowest and highest scores are embedded (what the worst and best, and the table sorted by score, show first); the
# others link to their files. 178,000 embedded made a 502 MB file; at about 190,000 its rows would be more characters
# than a string in Chromium's script may hold (2**29 - 24): no table, no worst and best.
EMBEDDED = 10_000
# A thumbnail's JPEG is decoded at the smallest scale whose longer side is at least this many times the thumbnail's (a
# HEIC's, from the smallest thumbnail stored in it that is).
# At 2 (Pillow's thumbnail's reducing_gap), 1600-px photos went to 1/8 and their thumbnails were 2.3 levels in 255 off
# those decoded whole; at 3, to 1/4 and 0.2 (docs/explain.md, "Report size").
DRAFT = 3


def _number(value) -> float | None:
    if value is None or value == "":
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def has_score(row: dict) -> bool:
    """Whether a result row has a score to show: a finite number and no error. Other rows (an error, a hand-edited
    ``nan`` or ``inf``) are listed as not scored."""
    return _number(row.get("score")) is not None and not row.get("error")


def _why_not(row: dict) -> str:
    """Why ``row`` has no score to show (:func:`has_score`)."""
    if row.get("error"):
        return str(row["error"])
    given = row.get("score")
    return "no score" if given is None or given == "" else f"no score: {given} is not a finite number"


class Thumbnail(NamedTuple):
    """A thumbnail's ``data:`` URI (None: there is none), and whether its path names a file from here."""

    uri: str | None
    found: bool


def thumbnail(path: str, size: int = 96, quality: int = 70) -> Thumbnail:
    """The ``data:`` URI of a JPEG of the image at ``path`` whose longer side is ``size``, and whether ``path`` is a
    file (:class:`Thumbnail`); no URI if unreadable or over :func:`read_image`'s bound (4 threads decode them), with a
    warning when it is a file (one that is not there is counted: :func:`report_warnings`). A JPEG is decoded at a
    reduced scale, a HEIC from a thumbnail stored in it (:data:`DRAFT`)."""
    try:
        image = read_image(path, draft=DRAFT * size)
    except (ImageError, OSError, ValueError) as e:
        found = os.path.isfile(path)  # the one lookup of a photo not read: its warning, or arniqa report's count
        if found:
            problem = e.reason if isinstance(e, ImageError) else str(e)
            warn_file(
                f"{printable(str(path))}: no thumbnail in the report: {problem}",
                "unreadable, so without a thumbnail in the report",
                stacklevel=2,
            )
        return Thumbnail(None, found)
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Thumbnail("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), True)


def _label(score: float) -> str:
    """A score as a histogram label: three decimals, or four significant digits from a million on (1e+308, not its
    309 digits)."""
    return f"{score:.3f}" if abs(score) < 1e6 else f"{score:.4g}"


def histogram_svg(scores: list[float], bins: int = 30, width: int = 640, height: int = 160) -> str:
    """An inline SVG bar chart of ``scores`` (at least one) in ``bins`` equal bins from their minimum to their
    maximum."""
    lo, hi = min(scores), max(scores)
    half = hi / 2 - lo / 2 or 0.5  # halves: the span from -1e308 to 1e308 is no float
    counts = [0] * bins
    for s in scores:
        counts[min(int((s / 2 - lo / 2) / half * bins), bins - 1)] += 1

    def edge(i: int) -> float:
        t = i / bins
        return lo * (1 - t) + hi * t if hi > lo else lo + t

    top = max(counts)
    bar = width / bins
    plot = height - 20
    rects = "".join(
        f'<rect x="{i * bar:.1f}" y="{plot - c / top * plot:.1f}" width="{bar - 1:.1f}" height="{c / top * plot:.1f}">'
        f"<title>{_label(edge(i))} to {_label(edge(i + 1))}: {c}</title></rect>"
        for i, c in enumerate(counts)
    )
    return (
        f'<svg class="hist" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="histogram of {count(len(scores), "score")}">{rects}'
        f'<text x="0" y="{height - 4}">{_label(lo)}</text>'
        f'<text x="{width}" y="{height - 4}" text-anchor="end">{_label(hi)}</text>'
        f'<text x="{width / 2}" y="{height - 4}" text-anchor="middle">score ({count(len(scores), "image")}, '
        f"highest bin {top})</text></svg>"
    )


def relative_url(path: Path, base: Path) -> str:
    """``path`` as a URL relative to the folder ``base``, every character a URL gives meaning to percent-encoded:
    a file named ``javascript:alert(1).jpg`` must not become a link that runs script, nor ``a#b.jpg`` one cut at
    ``#``. Names in any bytes keep them (``surrogateescape``). A file no relative path leads to (on Windows,
    another drive or share) is its absolute ``file:`` URL."""
    try:
        rel = os.path.relpath(path, base).replace(os.sep, "/")
    except ValueError:  # on Windows, another drive or share than the report's: no relative path leads there
        return path.as_uri()
    return urllib.parse.quote(rel, safe="/", errors="surrogateescape")


def map_of(path: str, maps: dict[tuple[str, int], Path], member: int = 0) -> Path | None:
    """The map PNG of the image ``path`` in ``maps`` (by the path as given, else made absolute), if it is there;
    ``member``: which shard member of that name (:func:`members`)."""
    png = maps.get((path, member)) or maps.get((os.path.abspath(path), member))
    return png if png is not None and png.is_file() else None


def members(rows: list[dict]) -> list[int]:
    """Each row's number among the shard members of its name (a shard made by appending may hold two members of
    one name, whose rows share a path): 0, 1, ... in row order; 0 for a file."""
    from ..inference.shards import in_shard

    seen: dict[str, int] = {}
    numbers = []
    for r in rows:
        path = str(r["path"])
        numbers.append(seen.get(path, 0))
        if in_shard(path):
            seen[path] = numbers[-1] + 1
    return numbers


def _map_link(path: str, maps: dict[tuple[str, int], Path] | None, base: Path, member: int) -> str | None:
    png = None if maps is None else map_of(path, maps, member)
    return None if png is None else relative_url(png, base)


def _files(rows: list[dict]) -> list[Path | None]:
    """Each row's file, resolved, or None where its path names no file (not there, a tar member: shard.tar/../x.jpg).
    One lookup a row (a round trip on a NAS) and one resolve a folder: a file that is no link is in its folder."""
    folders: dict[Path, Path] = {}
    files: list[Path | None] = []
    for r in rows:
        f = Path(r["path"])
        try:
            mode = f.lstat().st_mode
        except (OSError, ValueError):
            mode = 0
        if stat.S_ISREG(mode):  # no link: the file is in its folder
            if f.parent not in folders:
                folders[f.parent] = f.parent.resolve()
            files.append(folders[f.parent] / f.name)
        else:
            files.append(f.resolve() if stat.S_ISLNK(mode) and f.is_file() else None)
    return files


def _links(rows: list[dict], base: Path) -> list[str | None]:
    return [None if f is None else relative_url(f, base) for f in _files(rows)]


def _embedded_ends(scored: int, best_worst: int) -> int | None:
    """How many of the lowest and of the highest of ``scored`` scores get an embedded thumbnail when not all do
    (:data:`EMBEDDED`, or more for a larger ``best_worst``); None when all do."""
    half = max(EMBEDDED // 2, best_worst)
    return half if scored > 2 * half else None


class _Thumbs(NamedTuple):
    thumbs: list[str | None]  # each row's thumbnail: a data: URI, a link, or None
    unseen: int  # rows that are no file from here (none for "none")
    ends: int | None  # embed: how many of the lowest and of the highest scores are embedded when not all are


def _thumbs(rows: list[dict], mode: str, size: int, base: Path, best_worst: int) -> _Thumbs:
    """Each row's thumbnail, and what the report lacks of them (:class:`_Thumbs`)."""
    if mode == "none":
        return _Thumbs([None] * len(rows), 0, None)
    if mode == "link":
        links = _links(rows, base)
        return _Thumbs(links, links.count(None), None)
    embed, linked = range(len(rows)), []
    thumbs: list[str | None] = [None] * len(rows)
    half = _embedded_ends(len(rows), best_worst)
    if half is not None:  # as the page sorts them: by score, then by row
        order = sorted(embed, key=lambda i: (_number(rows[i]["score"]), i))
        embed, linked = order[:half] + order[-half:], order[half:-half]
        for i, link in zip(linked, _links([rows[i] for i in linked], base)):
            thumbs[i] = link
    unseen = sum(thumbs[i] is None for i in linked)
    with ThreadPoolExecutor(4) as pool:
        for i, made in zip(embed, pool.map(lambda i: thumbnail(rows[i]["path"], size), embed)):
            thumbs[i] = made.uri
            unseen += not made.found
    return _Thumbs(thumbs, unseen, half)


def _linked_note(thumbs: list[str | None], maps: list[str | None]) -> str:
    """What of the page is files it links (not inside it), said on the page: moved without them, it shows none."""
    thumbnails = sum(t is not None and not t.startswith("data:") for t in thumbs)
    mapped = sum(m is not None for m in maps)
    linked = [count(n, noun) for n, noun in ((thumbnails, "thumbnail"), (mapped, "map")) if n]
    if not linked:
        return ""
    links = agree(thumbnails + mapped, "is a link", "are links")
    return f" {' and '.join(linked)} {links} to files, not inside this page: move it together with them."


JSON_ROWS = 1_000  # rows in one piece of the page's data, as it is written


def _json(value) -> str:
    """``value`` as compact JSON with no "<" at all: "</script>" would end the data element, "<!--<script>" would keep
    it from ending."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def _payload(rows: list[list], failed: list[list], n: int) -> Iterator[str]:
    """The page's data (:func:`_json` of its object), in pieces of at most :data:`JSON_ROWS` rows."""
    for key, values in (("rows", rows), ("failed", failed)):
        yield ('{"' if key == "rows" else ',"') + key + '":['
        for start in range(0, len(values), JSON_ROWS):
            yield ("," if start else "") + _json(values[start : start + JSON_ROWS])[1:-1]
        yield "]"
    yield f',"page":{PAGE_ROWS},"n":{n}}}'


class Report(NamedTuple):
    """A report's page, in pieces (:meth:`chunks`, which :attr:`html` joins: the page of 200,000 rows is written
    without ever being one string), and what it lacks: how many images are scored, how many of them are no file
    from here (no thumbnail), how many have no map (of the maps given), and, when not all are embedded, how many of
    the lowest and of the highest scores have their thumbnail embedded (``ends``)."""

    head: str  # the page before its data
    rows: list[list]  # the data: the scored rows as the page's script reads them,
    failed: list[list]  # the rows that could not be scored,
    n: int  # and how many of the worst and of the best it shows
    scored: int
    unseen: int
    unmapped: int
    ends: int | None

    def chunks(self) -> Iterator[str]:
        yield self.head
        yield from _payload(self.rows, self.failed, self.n)
        yield _TAIL

    @property
    def html(self) -> str:
        return "".join(self.chunks())


def report_warnings(made: Report, maps: Path | None = None) -> list[str]:
    """The warning lines of a report (arniqa report's and arniqa score --html's): the thumbnails not embedded (past
    :data:`EMBEDDED`), the scored images with no map in the folder ``maps`` (``--maps``), and those that are no file
    from here, so have no thumbnail."""
    said = []
    if (half := made.ends) is not None:
        said.append(
            f"{count(made.scored, 'scored image')}: thumbnails are embedded for the {half} lowest and the {half} "
            f"highest scores, the other {made.scored - 2 * half} link to their files (all of them inside would make "
            "a file of hundreds of MB); --thumbnails link links them all"
        )
    if unmapped := made.unmapped:
        said.append(
            f"{maps}: {count(unmapped, 'scored image')} {agree(unmapped, 'has', 'have')} no map in its maps.csv (run "
            "arniqa map on the same paths, from the same folder, to link them)"
        )
    if unseen := made.unseen:
        said.append(
            f"{count(unseen, 'scored image')} {agree(unseen, 'is not a file', 'are not files')} from here, so "
            f"{agree(unseen, 'it has', 'they have')} no thumbnail (paths relative to the folder arniqa score ran in, "
            "or tar members): run arniqa report from that folder"
        )
    return [warning_line(line) for line in said]


def report(
    rows: list[dict],
    base: Path,
    maps: dict[tuple[str, int], Path] | None = None,
    thumbnails: str = "embed",
    size: int = 96,
    best_worst: int = 12,
    title: str = "arniqa report",
) -> Report:
    """The report (:class:`Report`) of result ``rows`` (dicts with ``path``, ``score``, ``error``, when explained
    ``explanation`` and ``severity``, and the ``note`` of a file of this version); links are relative to the folder
    ``base``. ``maps``: (image path, as in ``rows`` or absolute, and :func:`members`' number) -> its map PNG
    (``arniqa map``'s maps.csv, read by ``arniqa report --maps``)."""
    if thumbnails not in THUMBNAILS:
        raise ValueError(f"thumbnails must be one of {THUMBNAILS}, got {thumbnails!r}")
    ok = [has_score(r) for r in rows]
    scored = [r for r, good in zip(rows, ok) if good]
    numbers = [n for n, good in zip(members(rows), ok) if good]
    failed = [r for r, good in zip(rows, ok) if not good]
    thumbs, unseen, ends = _thumbs(scored, thumbnails, size, base, best_worst)
    data = [
        [
            printable(str(r["path"])),
            _number(r["score"]),
            r.get("explanation") or "",
            _number(r.get("severity")),
            t,
            _map_link(str(r["path"]), maps, base, n),
            printable(str(r.get("note") or "")),
        ]
        for r, t, n in zip(scored, thumbs, numbers)
    ]
    n = min(best_worst, len(data) // 2)  # the worst and the best never show the same image twice
    why = [[printable(str(r["path"])), printable(_why_not(r)), printable(str(r.get("note") or ""))] for r in failed]
    summary = f"{count(len(scored), 'image')} scored" + (f", {len(failed)} could not be scored" if failed else "")
    summary += ". Scores: higher is better." + _linked_note(thumbs, [d[5] for d in data])
    # a section only when it has something to show: no empty table, no worst and best of one image
    shown = f"<h2>Score histogram</h2>\n{histogram_svg([d[1] for d in data])}\n" if data else ""
    if n:
        shown += _EXTREMES.format(n=n)
    head = _HEAD.format(
        title=html.escape(printable(title)),
        size=size,  # embedded thumbnails are made that size, linked photos shown at it
        card=max(size + 16, 112),
        summary=summary,
        scored=shown + _TABLE if data else "",
        errors=_FAILED.format(failed=len(failed)) if failed else "",
    )
    unmapped = 0 if maps is None else sum(d[5] is None for d in data)
    return Report(head, data, why, n, len(data), unseen, unmapped, ends)


HTML_START = (b"<!doctype html", b"<html")  # how an HTML file begins (after blanks), in any case


def check_output(path) -> None:
    """ValueError when the report would replace a file that is no HTML file (a photo, a result file: `arniqa report
    scores.csv -o photo.png`, `score a.png --html a.png`), known by its first bytes; a missing or empty file, an
    HTML file (an earlier report), a device, a pipe or an open descriptor (``/dev/stderr``, whatever it is open
    on) may be written."""
    path = Path(path)
    if not path.is_file() or is_stream(path):  # /dev/stderr redirected to a log: written after what it holds
        return
    try:
        with open(path, "rb") as f:
            start = f.read(256).lstrip().lower()
    except OSError:
        return  # the write says why it cannot be written
    if start and not start.startswith(HTML_START):
        raise ValueError(
            f"{printable(str(path))}: holds something other than an HTML report, which the report would replace; "
            "choose another output (e.g. report.html)"
        )


def write_report(
    rows: list[dict],
    path,
    maps=None,
    thumbnails: str = "embed",
    size: int = 96,
    best_worst: int = 12,
    title: str = "arniqa report",
) -> Report:
    """Write :func:`report` to ``path`` (atomically); returns it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    made = report(rows, path.parent.resolve(), maps, thumbnails, size, best_worst, title)
    atomic_write(path, text_writer(made.chunks()))
    return made


_HEAD, _TAIL = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ margin: 0 0 .2em; }} h2 {{ margin: 1.2em 0 .4em; font-size: 1.15em; }}
.hist {{ max-width: 100%; height: auto; }} .wide {{ overflow-x: auto; }}
.hist rect {{ fill: #4a7ab5; }} .hist text {{ font-size: 11px; fill: #444; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.card {{ width: {card}px; font-size: 12px; overflow-wrap: anywhere; }}
.card img, td img {{ max-width: {size}px; max-height: {size}px; display: block; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left;
  vertical-align: middle; }}
th.sort button {{ font: inherit; color: #1d4f91; text-decoration: underline; background: none; border: 0;
  padding: 0; cursor: pointer; }}
.pager {{ margin: .6em 0; }} .pager button {{ margin-right: .4em; }}
.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
</style></head><body>
<h1>{title}</h1>
<p>{summary}</p>
{scored}{errors}<script id="data" type="application/json">{payload}</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const rows = D.rows;
const ENTITIES = {{"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}};
function esc(s) {{ return String(s).replace(/[&<>"]/g, c => ENTITIES[c]); }}
function img(r) {{ return r[4] ? '<img loading="lazy" src="' + esc(r[4]) + '" alt="">' : ""; }}
// The table of id with its rows, D.page a page, in their order until a header's button (th.sort: the column
// data-key, named in keys; a button, which the keyboard reaches) sorts them; cells gives a row's cells after its
// number.
function paged(id, rows, keys, singular, plural, cells) {{
  const table = document.getElementById(id), pager = document.getElementById(id + "-pager");
  let order = rows.map((_, i) => i), key = -1, asc = true, page = 0;
  function sortBy(k) {{
    if (k === key) asc = !asc; else {{ key = k; asc = true; }}
    order.sort((a, b) => {{
      const x = rows[a][k], y = rows[b][k];
      if (x === y) return a - b;
      if (x === null) return 1; if (y === null) return -1;
      return (x < y ? -1 : 1) * (asc ? 1 : -1);
    }});
    table.querySelectorAll("th.sort").forEach(th => Number(th.dataset.key) === key ?
      th.setAttribute("aria-sort", asc ? "ascending" : "descending") : th.removeAttribute("aria-sort"));
    page = 0; render();
  }}
  function render() {{
    const pages = Math.max(1, Math.ceil(order.length / D.page));
    table.tBodies[0].innerHTML = order.slice(page * D.page, (page + 1) * D.page).map((i, j) =>
      "<tr><td class=num>" + (page * D.page + j + 1) + "</td>" + cells(rows[i]) + "</tr>").join("");
    pager.innerHTML =
      '<button class="prev"' + (page ? "" : " disabled") + '>previous</button><button class="next"' +
      (page + 1 < pages ? "" : " disabled") + '>next</button> page ' + (page + 1) + " of " + pages + ", " +
      order.length + " " + (order.length === 1 ? singular : plural) +
      (key < 0 ? ", in file order" : ", sorted by " + keys[key] + (asc ? " (ascending)" : " (descending)"));
    pager.querySelector(".prev").onclick = () => {{ page--; render(); }};
    pager.querySelector(".next").onclick = () => {{ page++; render(); }};
  }}
  table.querySelectorAll("th.sort button").forEach(b => b.onclick = () => sortBy(Number(b.parentNode.dataset.key)));
  return {{sortBy, render}};
}}
function cards(id, idx) {{
  document.getElementById(id).innerHTML = idx.map(i => {{
    const r = rows[i];
    const wrap = t => esc(t).replace(/_/g, "_<wbr>");  // long names break after an underscore
    return '<div class="card">' + img(r) + "<b>" + r[1].toFixed(4) + "</b><br>" + wrap(r[0].split(/[\\\\/]/).pop()) +
      (r[2] ? "<br>" + wrap(r[2]) : "") + "</div>";
  }}).join("");
}}
if (rows.length) {{
  paged("images", rows, ["path", "score", "", "severity"], "image", "images", r => {{
    const map = r[5] ? '<a href="' + esc(r[5]) + '"><img loading="lazy" src="' + esc(r[5]) + '" alt="map"></a>' : "";
    return "<td>" + img(r) + "</td><td>" + esc(r[0]) + "</td><td class=num>" + r[1].toFixed(4) + "</td><td>" +
      esc(r[2]) + "</td><td class=num>" + (r[3] === null ? "" : r[3].toFixed(1)) + "</td><td>" + map + "</td><td>" +
      esc(r[6]) + "</td>";
  }}).sortBy(1);
}}
const byScore = rows.map((_, i) => i).sort((a, b) => rows[a][1] - rows[b][1] || a - b);
if (D.n) {{ cards("worst", byScore.slice(0, D.n)); cards("best", byScore.slice(-D.n).reverse()); }}
if (D.failed.length) {{
  const cells = r => "<td>" + esc(r[0]) + "</td><td>" + esc(r[1]) + "</td><td>" + esc(r[2]) + "</td>";
  paged("failed", D.failed, ["path", "error"], "row", "rows", cells).render();
}}
</script>
</body></html>
""".split("{payload}")
_TAIL = _TAIL.format()  # its doubled braces as the page has them

_EXTREMES = """<h2>Worst {n}</h2><div class="cards" id="worst"></div>
<h2>Best {n}</h2><div class="cards" id="best"></div>
"""

_TABLE = """<h2>All images</h2>
<div class="pager" id="images-pager"></div>
<div class="wide">
<table id="images"><thead><tr><th>#</th><th>image</th>
<th class="sort" data-key="0"><button type="button">path</button></th>
<th class="sort" data-key="1"><button type="button">score</button></th><th>explanation</th>
<th class="sort" data-key="3"><button type="button">severity</button></th><th>map</th><th>note</th></tr></thead>
<tbody></tbody></table></div>
"""

# the rows that could not be scored, 100 a page too: a run whose photos' disk went away writes one per photo
_FAILED = """<h2>Could not be scored ({failed})</h2>
<div class="pager" id="failed-pager"></div>
<div class="wide">
<table id="failed"><thead><tr><th>#</th><th class="sort" data-key="0"><button type="button">path</button></th>
<th class="sort" data-key="1"><button type="button">error</button></th><th>note</th></tr></thead>
<tbody></tbody></table></div>
"""
