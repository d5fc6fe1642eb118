"""The download helper, against a local HTTP server on 127.0.0.1 (no test touches the network)."""

import contextlib
import errno
import functools
import gzip
import hashlib
import http.server
import io
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import pytest
import torch
from local_http import sending, serving
from scoring_data import save_scripted_regressor

from arniqa.models import download
from arniqa.models.download import DownloadError, fetch
from arniqa.models.files import WeightsError
from arniqa.models.registry import PUBLISHED
from arniqa.utils.cache import cache_dir

CONTENT = bytes(range(256)) * 300  # 76.8 kB, several read blocks


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serves ``tmp_path/served`` on 127.0.0.1; yields (base URL, folder, request log)."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # never route the local server through a proxy
    served = tmp_path / "served"
    served.mkdir()
    (served / "weights.bin").write_bytes(CONTENT)
    requests = []

    class Handler(_QuietHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", served, requests
    httpd.shutdown()
    httpd.server_close()


def _closed_port_url() -> str:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _QuietHandler)
    port = httpd.server_address[1]
    httpd.server_close()
    return f"http://127.0.0.1:{port}/weights.bin"


SHA = hashlib.sha256(CONTENT).hexdigest()


def test_download_verify_then_offline(server, tmp_path):
    base, _, requests = server
    folder = tmp_path / "cache"
    path = fetch("weights.bin", weights_dir=folder, url=base + "weights.bin", sha256=SHA, progress=True, download=True)
    assert path == folder / "weights.bin" and path.read_bytes() == CONTENT
    assert requests == ["/weights.bin"]
    assert [p.name for p in folder.iterdir()] == ["weights.bin"]  # no temp file left
    # Second call: served from the folder, no request, even with an unreachable URL.
    again = fetch("weights.bin", weights_dir=folder, url=_closed_port_url(), sha256=SHA.upper(), progress=False)
    assert again == path and requests == ["/weights.bin"]


def test_wrong_hash_removes_the_download(server, tmp_path):
    base, _, _ = server
    folder = tmp_path / "cache"
    with pytest.raises(WeightsError) as e:  # it ended "; it was deleted", nothing to do
        fetch(
            "weights.bin", weights_dir=folder, url=base + "weights.bin", sha256="0" * 64, progress=False, download=True
        )
    assert str(e.value) == (
        f"{base}weights.bin: downloaded file has SHA-256 {SHA}, expected {'0' * 64}, so it was deleted; check the url "
        f"and sha256 given, or place weights.bin in {folder} (or pass --weights-dir, a folder holding it)"
    )
    assert list(folder.iterdir()) == []


def test_http_404_is_a_clear_error(server, tmp_path):
    base, _, _ = server
    folder = tmp_path / "cache"
    with pytest.raises(DownloadError, match=r"HTTP 404.*place missing.bin in .*cache"):
        fetch("missing.bin", weights_dir=folder, url=base + "missing.bin", progress=False, download=True)
    assert list(folder.iterdir()) == []


def test_unreachable_server_says_how_to_work_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # the closed local port itself, not a proxy, must fail
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DownloadError, match=f"place weights.bin in {tmp_path / 'cache'} \\(or pass --weights-dir"):
        fetch("weights.bin", url=_closed_port_url(), progress=False)


def test_offline_a_regressor_is_named_with_the_encoder_it_needs(tmp_path, monkeypatch):
    """Offline, the first run said to place regressor_kadid10k.pth in the cache (or --weights-dir), and the run after
    it, ARNIQA.pth: a run needs both, now named at once; the regressor alone once the encoder is there."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path))
    url = _closed_port_url()
    both = f"place regressor_kadid10k.pth and ARNIQA.pth in {tmp_path} (or pass --weights-dir, a folder holding them)"
    with pytest.raises(DownloadError, match=f"Connection refused; to work offline, {re.escape(both)}$"):
        fetch("regressor_kadid10k.pth", url=url, progress=False)
    with pytest.raises(WeightsError, match="regressor_kadid10k.pth: not found; place it there with ARNIQA.pth, or"):
        fetch("regressor_kadid10k.pth", weights_dir=tmp_path)  # --weights-dir
    (tmp_path / "ARNIQA.pth").write_bytes(_archive())
    one = f"place regressor_kadid10k.pth in {tmp_path} (or pass --weights-dir, a folder holding it)"
    with pytest.raises(DownloadError, match=f"{re.escape(one)}$"):
        fetch("regressor_kadid10k.pth", url=url, progress=False)
    with pytest.raises(WeightsError, match="regressor_kadid10k.pth: not found; place it there, or leave out"):
        fetch("regressor_kadid10k.pth", weights_dir=tmp_path)


def test_a_weights_dir_named_by_the_user_is_used_as_it_is(server, tmp_path):
    """--weights-dir promised no network, but a file missing there was downloaded (or, offline, waited for)."""
    base, _, requests = server
    with pytest.raises(WeightsError, match=f"{tmp_path / 'weights.bin'}: not found; place it there"):
        fetch("weights.bin", weights_dir=tmp_path, url=base + "weights.bin", progress=False)
    assert requests == [] and not (tmp_path / "weights.bin").exists()


def test_a_weights_dir_that_is_not_there_is_named(server, tmp_path):
    """A mistyped --weights-dir said 'weights/regressor_kadid10k.pth: not found; place it there', of a folder that
    does not exist."""
    base, _, requests = server
    said = f"{tmp_path / 'wieghts'}: no such folder (--weights-dir, weights_dir); check the path, or leave it out"
    with pytest.raises(WeightsError, match=re.escape(said) + " to download weights.bin into the cache$"):
        fetch("weights.bin", weights_dir=tmp_path / "wieghts", url=base + "weights.bin", progress=False)
    assert requests == [] and [p.name for p in tmp_path.iterdir()] == ["served"]


@pytest.mark.parametrize(
    "placed, wanted",
    [
        ("regressor_kadid.pth", "regressor_kadid10k.pth"),
        ("REGRESSOR_KonIQ.pth", "regressor_koniq10k.pth"),
        ("arniqa.pth", "ARNIQA.pth"),
    ],
)
def test_a_published_file_placed_under_another_name_is_named(tmp_path, placed, wanted):
    """A published file placed in --weights-dir under a pyiqa spelling of its dataset, or in another case, was
    'not found; place it there' beside it; the line now names it and the name to give it."""
    (tmp_path / placed).write_bytes(b"weights")
    (tmp_path / "regressor_tid2013.pth").write_bytes(b"another regressor")  # not this file under another name
    with pytest.raises(WeightsError) as e:
        fetch(wanted, weights_dir=tmp_path)
    assert str(e.value) == f"{tmp_path / wanted}: not found, but the folder holds {placed}; rename it {wanted}"
    with pytest.raises(WeightsError, match="regressor_live.pth: not found; place it there"):
        fetch("regressor_live.pth", weights_dir=tmp_path)


def test_unknown_hash_is_logged(server, tmp_path, caplog):
    base, _, _ = server
    with caplog.at_level(logging.INFO, logger="arniqa.models.download"):
        fetch("weights.bin", weights_dir=tmp_path / "c", url=base + "weights.bin", progress=False, download=True)
    assert SHA in caplog.text


def test_existing_file_with_a_wrong_known_hash(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"tampered")
    with pytest.raises(WeightsError, match="does not match the expected"):
        fetch("weights.bin", weights_dir=tmp_path, sha256=SHA)
    assert (tmp_path / "weights.bin").exists()  # a user's file is left in place


def test_cache_folder_from_environment(server, tmp_path, monkeypatch):
    base, _, _ = server
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "env-cache"))
    assert cache_dir() == tmp_path / "env-cache"
    path = fetch("weights.bin", url=base + "weights.bin", sha256=SHA, progress=False)
    assert path == tmp_path / "env-cache" / "weights.bin"


def test_published_table_offline(tmp_path):
    names = {"ARNIQA.pth"} | {
        f"regressor_{d}.pth" for d in ("live", "csiq", "tid2013", "kadid10k", "flive", "spaq", "clive", "koniq10k")
    }
    assert set(PUBLISHED) == names
    for name, entry in PUBLISHED.items():
        assert entry.url == f"https://github.com/miccunifi/ARNIQA/releases/download/weights/{name}"
    # A published file placed in the weights folder is used as is: no network access is attempted.
    (tmp_path / "ARNIQA.pth").write_bytes(b"placed by the user")
    assert fetch("ARNIQA.pth", weights_dir=tmp_path) == tmp_path / "ARNIQA.pth"


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="bare file name"):
        fetch("../escape.bin", weights_dir=tmp_path)
    with pytest.raises(WeightsError) as e:  # it named the problem alone
        fetch("unknown.bin", weights_dir=tmp_path)
    assert str(e.value) == (
        f"{tmp_path / 'unknown.bin'}: not found, and no download URL is known for 'unknown.bin'; place it there, or "
        "pass its url"
    )


def test_weights_dir_that_is_a_file_is_named(tmp_path):
    """A file given as the weights folder raised FileExistsError from mkdir, after a look for the file in it."""
    (tmp_path / "ARNIQA.pth").write_bytes(b"the encoder, given instead of its folder")
    with pytest.raises(WeightsError, match=r"ARNIQA\.pth: not a folder, so ARNIQA\.pth cannot be there; pass the"):
        fetch("ARNIQA.pth", weights_dir=tmp_path / "ARNIQA.pth")
    assert (tmp_path / "ARNIQA.pth").read_bytes() == b"the encoder, given instead of its folder"


def test_a_cache_that_cannot_be_made_names_it_and_the_way_out(tmp_path, monkeypatch):
    """A cache folder that cannot be made (a read-only home in a container) was `[Errno 2] No such file ...`."""
    (tmp_path / "afile").write_text("a file where the cache's parent should be")
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "afile" / "cache"))
    with pytest.raises(WeightsError, match=r"afile/cache: cannot make the weights cache \(.*\); set ARNIQA_CACHE"):
        fetch("weights.bin", url="http://127.0.0.1:9/weights.bin", progress=False)
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "afile"))
    with pytest.raises(WeightsError, match=r"afile: not a folder, so weights.bin cannot be there; set ARNIQA_CACHE"):
        fetch("weights.bin", url="http://127.0.0.1:9/weights.bin", progress=False)


# Hostile and broken servers. ARNIQA.pth is fetched from a local URL into a fresh folder: a failed download
# must raise DownloadError (the CLI's one line, exit 2) and leave nothing there, not even a temporary file.

TENSOR = torch.arange(1000, dtype=torch.float32)


def _archive() -> bytes:
    """A file as torch.save writes the published ARNIQA.pth: a zip archive with the tensor stored as is."""
    buffer = io.BytesIO()
    torch.save({"w": TENSOR}, buffer)
    return buffer.getvalue()


PAGE = b"<!DOCTYPE html>\n<html><body>Sign in to the hotel network</body></html>"


@pytest.fixture
def serve(monkeypatch):
    """``serve(answer)``: the base URL of a 127.0.0.1 server answering with ``answer``, closed after the test."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with contextlib.ExitStack() as stack:
        yield lambda answer: stack.enter_context(serving(answer))


def _fetch(url, folder):
    return fetch("ARNIQA.pth", weights_dir=folder, url=url, progress=False, download=True)


def test_torch_and_torchscript_files_download_whole(serve, tmp_path):
    """The positive control of the checks below: both kinds of published file pass them, byte for byte."""
    scripted = save_scripted_regressor(tmp_path / "r.pth", torch.ones(1, 8), torch.tensor(2.0)).read_bytes()
    for body in (_archive(), scripted):
        folder = tmp_path / f"cache{len(body)}"
        path = _fetch(serve(sending(body, len(body))), folder)
        assert path.read_bytes() == body and [p.name for p in folder.iterdir()] == ["ARNIQA.pth"]
    assert torch.equal(torch.load(folder.parent / f"cache{len(_archive())}" / "ARNIQA.pth")["w"], TENSOR)


def test_a_body_cut_short_of_its_content_length_is_not_kept(serve, tmp_path):
    """The connection closing before Content-Length bytes came was a whole download: the cut file was cached."""
    body = _archive()
    half = len(body) // 2
    with pytest.raises(DownloadError, match=f"closed after {half} of {len(body)} bytes; to work offline, place"):
        _fetch(serve(sending(body[:half], len(body))), tmp_path)
    assert list(tmp_path.iterdir()) == []


def _flipped(body: bytes) -> bytes:
    """``body`` with one byte of the tensor's data changed (its zip entry's CRC no longer matches)."""
    at = body.index(TENSOR.numpy().tobytes()) + 2000
    return body[:at] + bytes([body[at] ^ 1]) + body[at + 1 :]


def _deflated(body: bytes) -> bytes:
    """``body`` with every entry compressed (PyTorch stores them as they are): what reading it would unpack is
    not bounded by the file's size."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(body)) as z, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as packed:
        for info in z.infolist():
            packed.writestr(info.filename, z.read(info))
    return out.getvalue()


@pytest.mark.parametrize(
    "body, length, problem",
    [
        (PAGE, len(PAGE), "it is a web page"),  # a captive portal's answer, 200 with text/html
        (PAGE, None, "it is a web page"),
        (_archive()[:3000], None, r"not a readable zip archive \(File is not a zip file\)"),  # no length: cut unseen
        (_flipped(_archive()), len(_archive()), r"not a readable zip archive \(Bad CRC-32 for file 'archive/data/0'"),
        (b"x" * 1000, 10, "not a readable zip archive"),  # more bytes than Content-Length: the first 10 are kept
        (_deflated(_archive()), None, r"its entries unpack to 4\d\d\d bytes, more than the file's \d+ \(compressed"),
    ],
    ids=["page", "page-no-length", "cut-no-length", "flipped-byte", "longer-than-length", "compressed"],
)
def test_a_download_that_is_no_weight_file_is_never_kept(serve, tmp_path, body, length, problem):
    """A 200 answer that is no weight file (a network's login page) was renamed into place as ARNIQA.pth."""
    kept = min(len(body), length or len(body))
    with pytest.raises(DownloadError, match=f"the {kept} bytes received are not a PyTorch weight file: {problem}"):
        _fetch(serve(sending(body, length, "text/html")), tmp_path)
    assert list(tmp_path.iterdir()) == []


def _encoded(body: bytes, encoding: str):
    """An answer: 200, ``body`` with a Content-Encoding of ``encoding`` and its Content-Length."""

    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Encoding", encoding)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def test_a_download_sent_compressed_says_so_and_how_to_get_the_file(serve, tmp_path):
    """A server (or a proxy) sending the file gzip-compressed got "not a readable zip archive (File is not a zip
    file)": nothing said the bytes were compressed, nor what to do. An identity encoding is the file as it is."""
    url = serve(_encoded(gzip.compress(_archive()), "gzip"))
    with pytest.raises(DownloadError) as raised:
        _fetch(url, tmp_path)
    assert str(raised.value) == (
        f"cannot download {url}: the server sent it compressed (Content-Encoding: gzip), which a download does not "
        "unpack; download it by hand (a browser or curl --compressed unpacks it), then place ARNIQA.pth in "
        f"{tmp_path} (or pass --weights-dir, a folder holding it)"
    )
    assert list(tmp_path.iterdir()) == []
    assert _fetch(serve(_encoded(_archive(), "Identity")), tmp_path).read_bytes() == _archive()


def test_a_bad_file_in_the_cache_is_named_with_what_to_do(serve, tmp_path):
    """A web page kept as ARNIQA.pth by an earlier version was read as weights: an unpickling error whose advice
    was to load it with weights_only=False, and one with a byte changed on the disk was used. Now its name, what
    it is, and to delete it; a new download then works."""
    url = serve(sending(_archive(), len(_archive())))
    (tmp_path / "ARNIQA.pth").write_bytes(PAGE)
    with pytest.raises(
        download.WeightsError,
        match=f"{tmp_path / 'ARNIQA.pth'}: not a PyTorch weight file: it is a web page .*; delete it, and the next "
        f"run downloads it again from {url}",
    ):
        _fetch(url, tmp_path)
    assert (tmp_path / "ARNIQA.pth").read_bytes() == PAGE  # left for the user
    (tmp_path / "ARNIQA.pth").write_bytes(_archive()[:-100])  # cut short: no zip directory at its end
    with pytest.raises(download.WeightsError, match="not a readable zip archive.*; delete it"):
        _fetch(url, tmp_path)
    (tmp_path / "ARNIQA.pth").write_bytes(_flipped(_archive()))  # a byte changed on the disk: torch.load takes it
    with pytest.raises(download.WeightsError, match=r"\(Bad CRC-32 for file 'archive/data/0'\); delete it, and the"):
        _fetch(url, tmp_path)
    (tmp_path / "ARNIQA.pth").unlink()
    assert _fetch(url, tmp_path).read_bytes() == _archive()


def _endless(handler):
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.end_headers()
    with contextlib.suppress(OSError):  # the client hangs up
        for _ in range(256):  # 16 MiB: 16 times the bound the test sets
            handler.wfile.write(bytes(1 << 16))


def test_a_download_is_bounded_in_size(serve, tmp_path, monkeypatch):
    """A server streaming without end was written to disk until it was full (300 MB taken here in 3 s)."""
    monkeypatch.setattr(download, "MAX_BYTES", 1 << 20)
    with pytest.raises(DownloadError, match="the server sent more than 1,048,576 bytes"):
        _fetch(serve(_endless), tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DownloadError, match="the server announces 1048577 bytes, more than the 1,048,576"):
        _fetch(serve(sending(b"", (1 << 20) + 1)), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_stalled_download_times_out(serve, tmp_path, monkeypatch):
    """The timeout (60 s; lowered here) holds for each read: a server that stops mid-body is given up."""
    monkeypatch.setattr(download, "TIMEOUT", 0.2)
    release = threading.Event()

    def stall(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b"x" * 1000)
        handler.wfile.flush()
        release.wait(30)

    try:
        with pytest.raises(DownloadError, match="no data for 0.2 s after 1000 bytes; to work offline"):
            _fetch(serve(stall), tmp_path)
    finally:
        release.set()
    assert list(tmp_path.iterdir()) == []


def _slowly(body: bytes, length: int, step: int, every: float):
    """An answer: 200, a Content-Length of ``length``, ``body`` ``step`` bytes at a time, one every ``every`` s."""

    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(length))
        handler.send_header("Connection", "close")
        handler.end_headers()
        with contextlib.suppress(OSError):  # the client hangs up
            for at in range(0, len(body), step):
                handler.wfile.write(body[at : at + step])
                time.sleep(every)
        handler.close_connection = True

    return answer


def test_a_drip_fed_download_is_given_up(serve, tmp_path, monkeypatch):
    """A server sending a byte every TIMEOUT - 1 s was never given up (the timeout is per read): here a byte every
    0.05 s against a 0.5 s timeout, 60 bytes, then it hangs up. Now fewer than MIN_BYTES in TIMEOUT s end it, while
    a slow but steady download spanning two such windows finishes."""
    monkeypatch.setattr(download, "TIMEOUT", 0.5)
    monkeypatch.setattr(download, "MIN_BYTES", 500)
    body = _archive()
    with pytest.raises(
        DownloadError,
        match=r"only \d+ bytes in [\d.]+ s after 0 bytes, fewer than the 500 a download must get in 0.5 s; to work",
    ):
        _fetch(serve(_slowly(body[:60], len(body), 1, 0.05)), tmp_path / "drip")
    assert list((tmp_path / "drip").iterdir()) == []
    steady = _slowly(body, len(body), len(body) // 50, 0.02)  # 1 s, 5 times MIN_BYTES per TIMEOUT
    assert _fetch(serve(steady), tmp_path / "steady").read_bytes() == body


def test_temporary_files_of_killed_downloads_are_removed_by_the_next(serve, tmp_path):
    """A download SIGKILLed mid-way left its hidden temporary file (up to 112 MB) in the cache for ever; then one
    was removed only by the next download of that same file. The next download into the folder removes those of
    any file whose process is gone and which were untouched for LEFT_AFTER (600) s; a live process's, one written
    to lately (a pid of another machine sharing the folder), and names of another form stay."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, live = int(gone.stdout), os.getpid()
    removed = [
        f".ARNIQA.{dead}.0123abcd.tmp.pth",
        f".regressor_live.{dead}.0123abcd.tmp.pth",
        f".a.b.{dead}.89abcdef.tmp",  # a.b, no suffix
    ]
    kept = [
        f".ARNIQA.{live}.0123abcd.tmp.pth",
        f".ARNIQA.{dead}.4567abcd.tmp.pth",  # recent
        f".ARNIQA.{dead}.0123abcd.tmp.pth.bak",
        f"ARNIQA.{dead}.0123abcd.tmp.pth",  # not hidden
        f".ARNIQA.{dead}.0123ABCD.tmp.pth",  # not a lower-case hex token
    ]
    for name in removed + kept:
        (tmp_path / name).write_bytes(b"part of a download")
        if name != kept[1]:
            os.utime(tmp_path / name, (time.time() - download.LEFT_AFTER - 60,) * 2)
    url = serve(sending(_archive(), len(_archive())))
    fetch("model.pth", weights_dir=tmp_path, url=url, progress=False, download=True)  # not a file of those
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.pth", *kept])


def _status(code):
    def answer(handler):
        handler.send_error(code)

    return answer


def _raw(data: bytes):
    def answer(handler):
        handler.wfile.write(data)
        handler.close_connection = True

    return answer


def _cut_chunk(handler):
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler.wfile.write(b"400\r\n" + b"x" * 100)  # a chunk of 1024 bytes, cut after 100
    handler.close_connection = True


@pytest.mark.parametrize(
    "answer, problem",
    [
        (_raw(b"hello there\r\n\r\n"), r"the answer is not HTTP \(BadStatusLine"),  # was a traceback
        (_cut_chunk, r"the connection broke after 100 bytes \(IncompleteRead"),  # was a traceback
        (_raw(b""), "Remote end closed connection without response"),
        (_status(500), "HTTP 500 Internal Server Error"),
        (_status(404), "HTTP 404 Not Found"),
    ],
    ids=["garbage", "cut-chunk", "closed-at-once", "500", "404"],
)
def test_broken_answers_are_a_download_error(serve, tmp_path, answer, problem):
    with pytest.raises(DownloadError, match=f"cannot download http://127.0.0.1:.*: {problem}.*; to work offline"):
        _fetch(serve(answer), tmp_path)
    assert list(tmp_path.iterdir()) == []


def _redirect(to):
    def answer(handler):
        handler.send_response(302)
        handler.send_header("Location", to)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def test_redirects_are_followed_to_http_only(serve, tmp_path):
    """A redirect to ftp:// was followed; to file:// and data: urllib refused already. Only http(s) is followed."""
    other = serve(sending(_archive(), len(_archive())))  # another port
    assert _fetch(serve(_redirect(other + "w")), tmp_path / "a").read_bytes() == _archive()
    secret = tmp_path / "secret.pth"
    secret.write_bytes(_archive())
    for to in (secret.as_uri(), "ftp://127.0.0.1:9/ARNIQA.pth", "data:,x"):
        with pytest.raises(DownloadError, match=r"HTTP 302 .*" + to.split(":")[0]):
            _fetch(serve(_redirect(to)), tmp_path / "b")
        assert list((tmp_path / "b").iterdir()) == []


def test_a_redirect_loop_is_one_line(serve, tmp_path):
    """A server redirecting to itself was 'HTTP 302 The HTTP server returned a redirect error that would lead to an
    infinite loop.\\x0aThe last 30x error message was:\\x0aFound' on the command line."""
    url = serve(_redirect("/again"))
    with pytest.raises(DownloadError) as e:
        _fetch(url, tmp_path)
    said = f"cannot download {url}: HTTP 302 redirects in a loop or more than 10, the last: Found; to work offline"
    assert str(e.value).startswith(said) and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_no_redirect_from_https_to_http():
    """Nothing verifies the published files' bytes: a redirect may not drop TLS."""
    handler = download._HttpRedirects()
    request = urllib.request.Request("https://example.org/ARNIQA.pth")
    with pytest.raises(urllib.error.HTTPError, match="never https to http"):
        handler.redirect_request(request, io.BytesIO(), 302, "Found", {}, "http://example.org/ARNIQA.pth")
    followed = handler.redirect_request(request, io.BytesIO(), 302, "Found", {}, "https://cdn.example.org/a")
    assert urllib.parse.urlsplit(followed.full_url).netloc == "cdn.example.org"


def test_a_cache_that_cannot_be_written_names_it_and_the_way_out(serve, tmp_path):
    """A download that could not be written was `[Errno 21] Is a directory: ...`, with no way out."""
    (tmp_path / "ARNIQA.pth").mkdir()  # a folder where the file goes
    with pytest.raises(
        download.WeightsError, match=r"ARNIQA\.pth: cannot write the download \(Is a directory\); set ARNIQA_CACHE"
    ):
        _fetch(serve(sending(_archive(), len(_archive()))), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["ARNIQA.pth"]


def _dripping_head(status: str, rest: bytes, seconds: float, ended: threading.Event):
    """An answer: the status line, then a header a byte every 0.05 s for ``seconds``, then ``rest`` (the other
    headers, the blank line and the body). ``ended`` is set when the client hangs up mid-way."""

    def answer(handler):
        try:
            handler.wfile.write(f"HTTP/1.1 {status}\r\nX-Drip: ".encode())
            for _ in range(round(seconds / 0.05)):
                handler.wfile.write(b".")
                handler.wfile.flush()
                time.sleep(0.05)
            handler.wfile.write(b"\r\n" + rest)
        except OSError:
            ended.set()
        handler.close_connection = True

    return answer


def test_a_drip_fed_status_and_headers_are_given_up(serve, tmp_path, monkeypatch):
    """A server drip-feeding its status line and headers (before the body) was waited for as long as it liked:
    urllib reads them before the download's own checks, and the socket timeout holds for each read. Here a header
    byte every 0.05 s for 3 s against a 0.5 s timeout was waited out, and the file then kept. Now the answer must
    be whole within TIMEOUT s of the request, redirects included: a 302 and then a 200 each dripping for 0.4 s
    are given up too."""
    monkeypatch.setattr(download, "TIMEOUT", 0.5)
    body = _archive()
    whole = f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
    ended = threading.Event()
    with pytest.raises(
        DownloadError,
        match=r"^cannot download http://127.0.0.1:\d+/: no complete answer \(status and headers\) within 0.5 s; "
        "to work offline, place ARNIQA.pth in",
    ):
        _fetch(serve(_dripping_head("200 OK", whole, 3, ended)), tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert ended.wait(5)  # the connection was closed, not left dripping
    target = serve(_dripping_head("200 OK", whole, 0.4, threading.Event()))
    redirect = f"Location: {target}\r\nContent-Length: 0\r\n\r\n".encode()
    with pytest.raises(DownloadError, match=r"no complete answer \(status and headers\) within 0.5 s"):
        _fetch(serve(_dripping_head("302 Found", redirect, 0.4, threading.Event())), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_proxy_drip_feeding_its_answer_to_connect_is_given_up(tmp_path, monkeypatch):
    """An https download through a proxy (HTTPS_PROXY) reads the proxy's answer to CONNECT before the request is
    sent; a proxy drip-feeding it (a header byte every 0.05 s for 3 s against a 0.5 s timeout) was waited out.
    Now it counts in the answer's TIMEOUT too, and the connection is closed."""
    monkeypatch.setattr(download, "TIMEOUT", 0.5)
    proxy = socket.create_server(("127.0.0.1", 0))
    ended = threading.Event()

    def drip():
        client, _ = proxy.accept()
        with client:
            client.recv(1 << 16)  # CONNECT weights.example:443
            try:
                client.sendall(b"HTTP/1.1 200 Connection established\r\nX-Drip: ")
                for _ in range(60):
                    client.sendall(b".")
                    time.sleep(0.05)
            except OSError:
                ended.set()

    threading.Thread(target=drip, daemon=True).start()
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{proxy.getsockname()[1]}")
    with proxy, pytest.raises(DownloadError, match=r"no complete answer \(status and headers\) within 0.5 s; to work"):
        _fetch("https://weights.example/ARNIQA.pth", tmp_path)
    assert ended.wait(5)  # the connection was closed mid-drip (3 s of it), not waited out
    assert list(tmp_path.iterdir()) == []


def test_a_dead_proxy_is_named(tmp_path, monkeypatch):
    """With HTTPS_PROXY naming a proxy that is down, the line said 'cannot download https://...: Connection refused',
    as if the server were down; it now names the proxy and where it was set."""
    for name in ("no_proxy", "NO_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    proxy = _closed_port_url().removesuffix("/weights.bin")
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    said = f"cannot download https://weights.example/ARNIQA.pth through the proxy {proxy} (HTTPS_PROXY): "
    with pytest.raises(DownloadError, match=re.escape(said) + ".*Connection refused; to work offline"):
        _fetch("https://weights.example/ARNIQA.pth", tmp_path)
    monkeypatch.setenv("no_proxy", "weights.example")  # bypassed: not named
    with pytest.raises(DownloadError, match=r"cannot download https://weights\.example/ARNIQA\.pth: "):
        _fetch("https://weights.example/ARNIQA.pth", tmp_path)


def test_all_proxy_is_used_where_no_proxy_of_the_scheme_is_set(serve, tmp_path, monkeypatch):
    """ALL_PROXY alone (as curl reads it) was ignored: the download went direct, and on a cluster that only lets the
    proxy out waited out the timeout. It goes through that proxy now, after HTTP_PROXY's, and NO_PROXY still holds."""
    asked = []

    def proxy(handler):  # a proxy answering a GET of an absolute URL with the file
        asked.append(handler.path)
        sending(_archive(), len(_archive()))(handler)

    for name in ("no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", serve(proxy))
    url = "http://weights.invalid/ARNIQA.pth"  # a name that never resolves (RFC 6761): only a proxy can fetch it
    assert _fetch(url, tmp_path / "via").read_bytes() == _archive() and asked == [url]
    monkeypatch.setenv("HTTP_PROXY", dead := _closed_port_url().removesuffix("/weights.bin"))
    with pytest.raises(DownloadError, match=re.escape(f"{url} through the proxy {dead} (HTTP_PROXY): ")):
        _fetch(url, tmp_path / "dead")
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.setenv("NO_PROXY", "weights.invalid")
    with pytest.raises(DownloadError, match=re.escape(f"cannot download {url}: ")):  # direct: not resolved
        _fetch(url, tmp_path / "direct")
    assert asked == [url]
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.delenv("ALL_PROXY")
    monkeypatch.setenv("all_proxy", "socks5h://127.0.0.1:9")  # left unused (direct, as before ALL_PROXY was read)
    with pytest.raises(DownloadError, match=re.escape(f"{url} directly (ALL_PROXY names a socks5h proxy, ")):
        _fetch(url, tmp_path / "socks")


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "SOCKS4", "https"])
def test_a_socks_proxy_is_named_as_one_urllib_cannot_use(tmp_path, monkeypatch, scheme):
    """HTTPS_PROXY naming a SOCKS proxy (as clusters set for ssh tunnels) was spoken HTTP to: a refused connection
    or a garbled answer, as if the proxy were down. So was an https:// one (its CONNECT sent in plain text where it
    awaits TLS: 'Remote end closed connection without response'). They are named now, with what to do, and never
    connected to."""
    for name in ("no_proxy", "NO_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(download, "TIMEOUT", 1)  # before: a CONNECT unanswered, waited for
    with socket.create_server(("127.0.0.1", 0)) as listening:
        listening.settimeout(0.2)
        proxy = f"{scheme}://127.0.0.1:{listening.getsockname()[1]}"
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        said = (
            f"cannot download https://weights.example/ARNIQA.pth through the proxy {proxy} (HTTPS_PROXY): the proxy's "
            f"scheme is {scheme}, and a download speaks only plain HTTP to a proxy; name an http:// proxy in "
            f"HTTPS_PROXY; to work offline, place ARNIQA.pth in {tmp_path} "
        )
        with pytest.raises(DownloadError, match=re.escape(said)):
            _fetch("https://weights.example/ARNIQA.pth", tmp_path)
        with pytest.raises(TimeoutError):
            listening.accept()
    assert list(tmp_path.iterdir()) == []


def test_processes_starting_together_download_a_file_once(serve, tmp_path):
    """A cluster's 4 jobs starting together on one shared cache each downloaded ARNIQA.pth (4 x 112 MB). One
    downloads it now, the others wait for it and use its file; a failed download leaves the next one to try."""
    cache, ready, asked = tmp_path / "cache", tmp_path / "ready", []
    ready.mkdir()

    def answer(handler):
        asked.append(handler.path)
        first = len(asked) == 1
        for _ in range(600 if first else 0):  # the first answer: once all 4 are about to fetch
            if len(list(ready.iterdir())) == 4:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # meanwhile the others reach the lock
        (sending(b"failed", None) if first else sending(CONTENT, len(CONTENT)))(handler)

    url = serve(answer) + "w.bin"
    fetching = (
        "import os, sys; from pathlib import Path; from arniqa.models.download import fetch; "
        "Path(sys.argv[4], str(os.getpid())).touch(); "
        "fetch('w.bin', sys.argv[1], url=sys.argv[2], sha256=sys.argv[3], download=True)"
    )
    command = [sys.executable, "-c", fetching, str(cache), url, SHA, str(ready)]
    jobs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    said = [job.communicate(timeout=60)[1] for job in jobs]
    assert sorted(job.returncode for job in jobs) == [0, 0, 0, 1]  # 1: the one whose download failed
    assert len(asked) == 2 and (cache / "w.bin").read_bytes() == CONTENT
    assert [p.name for p in cache.iterdir()] == ["w.bin"]  # no temporary file, no lock file left
    assert any(f"waiting for another arniqa process (pid {job.pid}) downloading" in s for job in jobs for s in said)


def test_a_file_system_without_locks_still_downloads(serve, tmp_path, monkeypatch):
    """The lock of a download is left out where the file system has none (flock: ENOLCK on an NFS mount without
    its lock service), as before it was taken: the download is whole all the same."""
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert _fetch(serve(sending(_archive(), len(_archive()))), tmp_path).read_bytes() == _archive()


def test_a_full_disk_says_to_free_space(serve, tmp_path, monkeypatch):
    """A download that filled the disk said to set ARNIQA_CACHE to 'a folder you can write', of a folder the user
    can write; it now says to free space there first. Nothing is left of it."""

    class Full(io.BytesIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(
        download, "open", lambda path, mode: Full() if mode == "wb" else open(path, mode), raising=False
    )
    said = r"ARNIQA\.pth: cannot write the download \(No space left on device\); free space there, or set ARNIQA_CACHE"
    with pytest.raises(WeightsError, match=said):
        _fetch(serve(sending(_archive(), len(_archive()))), tmp_path)
    assert list(tmp_path.iterdir()) == []


def _busy_then(answer, code: int, retry_after: str | None, times: int, asked: list):
    """An answer: ``code`` with a Retry-After of ``retry_after`` (none if None) to the first ``times`` requests,
    then ``answer``; each request is counted in ``asked``."""

    def busy(handler):
        asked.append(time.monotonic())
        if len(asked) > times:
            return answer(handler)
        handler.send_response(code)
        if retry_after is not None:
            handler.send_header("Retry-After", retry_after)
        handler.send_header("Content-Length", "0")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True

    return busy


@pytest.mark.parametrize(
    "code, retry_after",
    [(429, "0"), (503, "1"), (429, time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 60)))],
    ids=["429", "503-one-second", "429-date-passed"],
)
def test_a_server_asking_to_retry_later_is_waited_for(serve, tmp_path, capfd, code, retry_after):
    """A 429 (Too Many Requests) or 503 with Retry-After, as a host answers the jobs of a cluster starting together,
    was a failure at once (`HTTP 429 Too Many Requests`, exit 2). Now the time asked is waited (a date already
    passed: none), each wait said once on stderr, and the file downloaded."""
    asked = []
    url = serve(_busy_then(sending(_archive(), len(_archive())), code, retry_after, 2, asked))
    path = fetch("ARNIQA.pth", weights_dir=tmp_path, url=url, progress=True, download=True)
    assert path.read_bytes() == _archive() and len(asked) == 3
    lines = capfd.readouterr().err.splitlines()
    waits = [line for line in lines if line.startswith(f"HTTP {code} ")]
    seconds = "1" if retry_after == "1" else "0"
    assert waits == [
        f"HTTP {code} {http.HTTPStatus(code).phrase} from {url}: retrying in {seconds} s as it asks "
        f"({n} of {download.RETRIES})"
        for n in (1, 2)
    ]
    if retry_after == "1":  # the time asked, waited between the requests
        assert asked[1] - asked[0] >= 0.9 and asked[2] - asked[1] >= 0.9


def test_a_retry_after_date_in_minus_0000_is_gmt(serve, tmp_path, monkeypatch):
    """A Retry-After date with the zone -0000 (GMT, as every HTTP date) was read as local time: ten hours behind UTC,
    a date passed a minute ago asked a wait of 35940 s, more than a download waits, and the download failed. It is
    GMT now: no wait, and the file downloaded."""
    passed = time.strftime("%a, %d %b %Y %H:%M:%S -0000", time.gmtime(time.time() - 60))
    asked = []
    url = serve(_busy_then(sending(_archive(), len(_archive())), 503, passed, 1, asked))
    with monkeypatch.context() as local:
        local.setenv("TZ", "UTC+10")  # POSIX: ten hours behind UTC
        time.tzset()
        try:
            assert _fetch(url, tmp_path).read_bytes() == _archive() and len(asked) == 2
        finally:
            local.undo()
            time.tzset()


def test_a_server_asking_too_long_a_wait_or_too_often_is_one_line(serve, tmp_path, monkeypatch):
    """A Retry-After beyond the bound is not waited: one line saying so and what to do; nor is a server still busy
    after RETRIES waits. Without Retry-After, and for other codes, the failure is at once as before."""
    monkeypatch.setattr(download, "RETRY_WAIT", 1)
    monkeypatch.setattr(download, "RETRIES", 2)
    archive = sending(_archive(), len(_archive()))
    for code, retry_after, times, requests, problem in [
        (
            429,
            "3600",
            1,
            1,
            "HTTP 429 Too Many Requests, the server asking to retry in 3600 s, more than the 1 s a "
            "download waits; rerun later",
        ),
        (503, "0", 5, 3, "HTTP 503 Service Unavailable again after waiting 2 times as the server asked; rerun later"),
        (429, None, 1, 1, "HTTP 429 Too Many Requests"),
        (429, "soon", 1, 1, "HTTP 429 Too Many Requests"),
        (500, "0", 1, 1, "HTTP 500 Internal Server Error"),
    ]:
        asked = []
        url = serve(_busy_then(archive, code, retry_after, times, asked))
        start = time.monotonic()
        with pytest.raises(DownloadError, match=f"cannot download {url}: {re.escape(problem)}; to work offline, place"):
            _fetch(url, tmp_path)
        assert len(asked) == requests and time.monotonic() - start < 5  # the 3600 s asked not waited
        assert list(tmp_path.iterdir()) == []
