"""The download helper, against a local HTTP server on 127.0.0.1 (no test touches the network)."""

import functools
import hashlib
import http.server
import logging
import threading

import pytest

from arniqa.models.download import DownloadError, cache_dir, fetch
from arniqa.models.files import WeightsError
from arniqa.models.published import PUBLISHED

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
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
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
    with pytest.raises(WeightsError, match=f"SHA-256 {SHA}, expected 0000"):
        fetch(
            "weights.bin", weights_dir=folder, url=base + "weights.bin", sha256="0" * 64, progress=False, download=True
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


def test_a_weights_dir_named_by_the_user_is_used_as_it_is(server, tmp_path):
    """--weights-dir promised no network, but a file missing there was downloaded (or, offline, waited for)."""
    base, _, requests = server
    with pytest.raises(WeightsError, match=f"{tmp_path / 'weights.bin'}: not found; place it there"):
        fetch("weights.bin", weights_dir=tmp_path, url=base + "weights.bin", progress=False)
    assert requests == [] and not (tmp_path / "weights.bin").exists()


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
    with pytest.raises(WeightsError, match="no download URL"):
        fetch("unknown.bin", weights_dir=tmp_path)


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
