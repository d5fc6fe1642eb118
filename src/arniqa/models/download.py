"""Downloading weight files: :func:`fetch` finds a file in the cache folder (``$ARNIQA_CACHE``, else
``~/.cache/arniqa``) or downloads it there, with SHA-256 verification; offline use works from the cache."""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import hashlib
import http.client
import itertools
import logging
import math
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from ..utils.cache import cache_dir, one_maker, sha256_of
from ..utils.files import NO_SPACE, atomic_write, make_room, remove_left_temporaries
from ..utils.messages import file_line, say, with_fix
from .paths import WeightsError
from .registry import ENCODER_FILE, PUBLISHED, regressor_filename

log = logging.getLogger(__name__)

# Seconds without a byte (connecting, or between two reads) before a download is given up; also the time its
# answer (status line and headers, over all redirects) has to be whole, counted from the request.
TIMEOUT = 60
# Fewer bytes than this in TIMEOUT seconds (17 kB/s) give a download up: a server sending a byte a minute never
# reaches the per-read timeout. A window at a time, not a total time, so a slow but steady link finishes.
MIN_BYTES = 1 << 20
MAX_BYTES = 512 << 20  # a download's bound: the largest published file, ARNIQA.pth, is about 112 MB
# A download's temporary file left by a killed process is removed by the next download into its folder once
# untouched this long (seconds): a download still going writes to it at least every TIMEOUT seconds.
LEFT_AFTER = 600
# An answer 429 (Too Many Requests) or 503 (Service Unavailable) with a Retry-After of at most RETRY_WAIT seconds is
# waited out and the request made again, RETRIES times at most: a cluster's jobs starting together may all ask a
# host at once.
RETRIES = 4
RETRY_WAIT = 120
CACHE_ADVICE = (
    "set ARNIQA_CACHE to a folder you can write, or pass --weights-dir (weights_dir), a folder holding the files"
)


class DownloadError(OSError):
    """A file could not be downloaded (network error, HTTP error, a body cut short or not a weight file)."""


def fetch(
    filename: str,
    weights_dir=None,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    download: bool | None = None,
) -> Path:
    """The local path of ``filename``, downloading it into the cache folder on first use.

    * ``weights_dir`` (default :func:`cache_dir`) is searched first; a file already there is used
      without any network access (offline use: place the files there).
    * ``download`` (default: only without ``weights_dir``) allows fetching a missing file into the folder;
      a folder the user names (``--weights-dir``) is used as it is, so a missing file there is an error.
    * ``url`` and ``sha256`` default to the :data:`PUBLISHED` entry for ``filename``.
    * A download goes to a temporary file in the same folder and is renamed into place only when whole:
      its answer's status line and headers whole within :data:`TIMEOUT` seconds of the request (redirects
      and a proxy's answer to CONNECT included), as long as its Content-Length says, at most
      :data:`MAX_BYTES`, no :data:`TIMEOUT` seconds without data nor with fewer than :data:`MIN_BYTES`, the
      SHA-256 matching when one is known, and a ``.pth`` file a PyTorch zip archive whose entries pass their
      CRC check. Otherwise the temporary file is
      deleted and :class:`DownloadError` (or, for a hash mismatch, :class:`WeightsError`) raised. Temporary
      files that killed downloads left in the folder (their process gone, untouched for :data:`LEFT_AFTER`
      seconds) are removed first.
    * One process at a time downloads a file into a folder (a lock file beside it, ``.NAME.lock``, released
      however the process ends): the others wait for it (saying so on stderr, with ``progress``), then use its
      file, or download it themselves if it failed.
    * When no SHA-256 is known (the published files, for now) the computed digest is logged
      (``logging`` INFO) so it can be pinned.
    * A file already in the folder is checked against a known SHA-256 too, and, where downloads go (the
      cache), a ``.pth`` file must be a PyTorch zip archive whose entries pass their CRC check; otherwise
      WeightsError names it and says to delete it (it is left for the user to inspect).
    """
    if Path(filename).name != filename or filename in ("", ".", ".."):
        raise ValueError(f"fetch() takes a bare file name, got {filename!r}")
    folder = Path(weights_dir).expanduser() if weights_dir is not None else cache_dir()
    where = "pass the folder that holds it" if weights_dir is not None else "set ARNIQA_CACHE to a folder"
    if folder.exists() and not folder.is_dir():
        raise WeightsError(file_line(folder, f"not a folder, so {filename} cannot be there", where))
    known = PUBLISHED.get(filename)
    url = url or (known.url if known else None)
    sha256 = (sha256 or (known.sha256 if known else None) or "").lower() or None
    may_download = weights_dir is None if download is None else download
    target = folder / filename
    if target.is_file():
        return _checked(target, sha256, url if may_download else None)
    if url is None:
        raise WeightsError(
            file_line(
                target, f"not found, and no download URL is known for {filename!r}", "place it there, or pass its url"
            )
        )
    if not may_download and not folder.exists():
        raise WeightsError(
            file_line(
                folder,
                "no such folder (--weights-dir, weights_dir)",
                f"check the path, or leave it out to download {filename} into the cache",
            )
        )
    if not may_download and (misnamed := _misnamed(target)):
        raise WeightsError(file_line(target, f"not found, but the folder holds {misnamed}", f"rename it {filename}"))
    if not may_download:
        raise WeightsError(
            file_line(
                target,
                "not found",
                f"place it there{f' with {ENCODER_FILE}' if _with_encoder(target) else ''}, or leave out --weights-dir "
                f"(weights_dir) to download it into the cache from {url}",
            )
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsError(
            file_line(folder, f"cannot make the weights cache ({e.strerror or e})", CACHE_ADVICE)
        ) from None

    try:
        with one_maker(target, "downloading", progress):  # a cluster's jobs starting together download it once
            if target.is_file():  # downloaded by the process waited for
                return _checked(target, sha256, url)
            remove_left_temporaries(folder, LEFT_AFTER)
            digest = _download(url, target, sha256, progress)
    except DownloadError:
        raise
    except OSError as e:  # writing into the folder: no permission, disk full, a folder named like the file
        room = f"{make_room(e, ' there')}, or " if e.errno in NO_SPACE else ""
        raise WeightsError(
            file_line(target, f"cannot write the download ({e.strerror or e})", f"{room}{CACHE_ADVICE}")
        ) from None
    if sha256 is None:
        log.info("downloaded %s (sha256 %s; no known hash to check against)", target, digest)
    return target


def _misnamed(target: Path) -> str | None:
    """The file in ``target``'s folder that is ``target`` under another name: in another case (``arniqa.pth``), or
    a regressor named after another spelling of its dataset (``regressor_kadid.pth``); None if none is."""

    def stands_for(name: str) -> str:
        found = re.fullmatch(r"regressor_(.+)\.pth", name.lower())
        with contextlib.suppress(ValueError):
            return regressor_filename(found[1]) if found else name.lower()
        return name.lower()

    with contextlib.suppress(OSError):
        for p in sorted(target.parent.iterdir()):
            if p.name != target.name and stands_for(p.name) == stands_for(target.name) and p.is_file():
                return p.name
    return None


def _checked(target: Path, sha256: str | None, url: str | None) -> Path:
    """``target``, a file in the folder, unless its SHA-256 is not ``sha256`` (when known) or, where it is
    downloaded from ``url`` (not None), a ``.pth`` file is no PyTorch zip archive: WeightsError saying to delete it."""
    if sha256 is not None and (digest := sha256_of(target)) != sha256:
        raise WeightsError(
            file_line(target, f"SHA-256 {digest} does not match the expected {sha256}", "delete the file")
        )
    if url is not None and (problem := _not_torch_archive(target)):
        raise WeightsError(
            file_line(
                target,
                f"not a PyTorch weight file: {problem}",
                f"delete it, and the next run downloads it again from {url}",
            )
        )
    return target


def _download(url: str, target: Path, sha256: str | None, progress: bool) -> str:
    """Download ``url`` to ``target`` through a temporary file; verify, then rename. Returns the digest."""
    h = hashlib.sha256()

    proxy = _proxy(url)
    via = f" through the proxy {proxy[0]} ({proxy[1]})" if proxy else _unused_all_proxy()

    def failed(problem, fix: str = "") -> DownloadError:
        return DownloadError(f"cannot download {url}{via}: {with_fix(problem, fix or _offline_hint(target))}")

    def write(tmp: Path) -> None:
        # urllib speaks plain HTTP to a proxy: to a SOCKS one, and to an https:// one, which awaits TLS
        if proxy and (kind := _scheme(proxy[0])).lower() != "http":
            raise failed(
                f"the proxy's scheme is {kind}, and a download speaks only plain HTTP to a proxy; name an http:// "
                f"proxy in {proxy[1]}"
            )
        response = _answer(url, failed, progress)
        received = 0

        def read(size: int) -> bytes:
            try:
                return response.read1(size)  # what has come, so a stall is seen after the bytes before it
            except TimeoutError as e:
                raise failed(f"no data for {TIMEOUT} s after {received} bytes") from e
            except (OSError, http.client.HTTPException) as e:
                raise failed(f"the connection broke after {received} bytes ({_reason(e)})") from e

        with response, open(tmp, "wb") as out:
            # asked for as stored (http.client sends Accept-Encoding: identity); a proxy or server may compress anyway
            if (packed := response.headers.get("Content-Encoding", "identity").strip()).lower() != "identity":
                raise failed(
                    f"the server sent it compressed (Content-Encoding: {packed}), which a download does not unpack",
                    f"download it by hand (a browser or curl --compressed unpacks it), then "
                    f"{_offline_hint(target, 'place')}",
                )
            # the Content-Length; None when the server gives none (or a bad one)
            total = getattr(response, "length", None)
            if total is not None and total > MAX_BYTES:
                raise failed(f"the server announces {total} bytes, more than the {MAX_BYTES:,} a weight file may have")
            since, before = time.monotonic(), 0  # the current window's start, and the bytes received before it
            for block in _blocks(read, total, target.name, progress):
                received += len(block)
                if received > MAX_BYTES:
                    raise failed(f"the server sent more than {MAX_BYTES:,} bytes, more than a weight file may have")
                if (elapsed := time.monotonic() - since) >= TIMEOUT:
                    if received - before < MIN_BYTES:
                        raise failed(
                            f"only {received - before} bytes in {elapsed:.1f} s after {before} bytes, fewer than "
                            f"the {MIN_BYTES:,} a download must get in {TIMEOUT} s"
                        )
                    since, before = time.monotonic(), received
                h.update(block)
                out.write(block)
        if total is not None and received != total:
            raise failed(f"the connection closed after {received} of {total} bytes")
        if sha256 is not None and h.hexdigest() != sha256:
            raise WeightsError(
                file_line(
                    url,
                    f"downloaded file has SHA-256 {h.hexdigest()}, expected {sha256}, so it was deleted",
                    f"check the url and sha256 given, or {_offline_hint(target, 'place')}",
                )
            )
        if problem := _not_torch_archive(tmp):
            raise failed(f"the {received} bytes received are not a PyTorch weight file: {problem}")

    atomic_write(target, write)
    return h.hexdigest()


def _answer(url: str, failed, progress: bool):
    """The answer to a GET of ``url``. A 429 or 503 asking to retry after at most :data:`RETRY_WAIT` seconds is
    waited out (one line on stderr each time, with ``progress``) and asked again, :data:`RETRIES` times at most."""
    for retry in itertools.count(1):
        try:
            with _Deadline(TIMEOUT) as deadline:
                handlers = (urllib.request.ProxyHandler(_proxies()), _Answers(deadline), _HttpRedirects)
                return urllib.request.build_opener(*handlers).open(url, timeout=TIMEOUT)
        except urllib.error.HTTPError as e:
            status = f"HTTP {e.code} {e.reason}"
            wait = _retry_after(e.headers) if e.code in (429, 503) else None
            e.close()
            if wait is None:
                raise failed(status) from e
            if wait > RETRY_WAIT:
                raise failed(
                    f"{status}, the server asking to retry in {math.ceil(wait)} s, more than the {RETRY_WAIT} s a "
                    "download waits; rerun later"
                ) from e
            if retry > RETRIES:
                raise failed(f"{status} again after waiting {RETRIES} times as the server asked; rerun later") from e
            if progress:
                say(f"{status} from {url}: retrying in {math.ceil(wait)} s as it asks ({retry} of {RETRIES})")
            time.sleep(wait)
        except (urllib.error.URLError, OSError) as e:
            raise failed(getattr(e, "reason", e)) from e
        except http.client.HTTPException as e:  # not an HTTP answer (BadStatusLine, LineTooLong)
            raise failed(f"the answer is not HTTP ({type(e).__name__}: {_reason(e)})") from e


def _retry_after(headers) -> float | None:
    """The seconds an answer's Retry-After header asks to wait (a number, or an HTTP date: 0 once passed), or None
    without a header that reads as either."""
    value = (headers.get("Retry-After") or "").strip() if headers is not None else ""
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        # an HTTP date is GMT (RFC 9110); email.utils gives one in -0000 as a naive time, which reads as local
        return max(0.0, when.replace(tzinfo=when.tzinfo or datetime.timezone.utc).timestamp() - time.time())
    return None


def _not_torch_archive(path: Path) -> str | None:
    """Why the ``.pth`` file ``path`` is not what ``torch.save`` and TorchScript write (a zip archive holding
    ``<name>/data.pkl`` whose entries unpack to no more than the file holds, :func:`.files.unpacked_excess`, and
    whose stored entries pass their CRC check: torch.load checks none), or None (None for other kinds of file).
    About 0.1 s for ARNIQA.pth (112 MB, read from the page cache)."""
    if path.suffix != ".pth":
        return None
    from .files import unpacked_excess  # here: it imports torch

    with open(path, "rb") as f:
        if f.read(512).lstrip().startswith(b"<"):
            return "it is a web page (a network's login page, or an error page?)"
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if not any(i.filename.endswith("/data.pkl") and i.filename.count("/") == 1 for i in entries):
                return "a zip archive without data.pkl"
            if problem := unpacked_excess(path, archive):
                return problem
            stored = [i for i in entries if i.compress_type == zipfile.ZIP_STORED]  # all but TorchScript code
            for info in stored:
                with archive.open(info) as entry:  # the CRC is checked at the entry's end
                    while entry.read(1 << 20):
                        pass
    except Exception as e:  # zipfile raises many types for damaged archives
        return f"not a readable zip archive ({_reason(e)})"
    return None


class _HttpRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http and https only, and from https only to https: never to file:// or ftp://,
    and never to a plain-text copy of a file that nothing verifies."""

    # urllib's gave a loop's error on three lines
    inf_msg = f"redirects in a loop or more than {urllib.request.HTTPRedirectHandler.max_redirections}, the last: "

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https") or (req.type == "https" and scheme != "https"):
            raise urllib.error.HTTPError(
                req.full_url,
                code,
                f"{msg}, a redirect to {newurl} (not followed: only http(s), never https to http)",
                headers,
                fp,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Deadline:
    """The time the answer to a request (connecting, a proxy's answer to CONNECT, the status line and the
    headers, over all redirects) may take. The socket timeout holds for each read only, and urllib reads the
    headers before the download's own checks, so a server drip-feeding them was waited for as long as it liked.
    When the time is up a timer shuts down the socket being read, which wakes the read. (A TLS handshake has
    Python's own deadline: the socket timeout, for the whole handshake.)"""

    def __init__(self, seconds: float):
        self.problem = f"no complete answer (status and headers) within {seconds} s"
        self.lock = threading.Lock()
        self.reading = None  # the socket an answer is read from now
        self.passed = False
        self.timer = threading.Timer(seconds, self._pass)
        self.timer.daemon = True

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()

    def _pass(self):
        with self.lock:
            self.passed = True
            if self.reading is not None:
                with contextlib.suppress(OSError):  # closed meanwhile
                    # the plain socket's shutdown: an SSLSocket's own drops its TLS state under the reading thread
                    socket.socket.shutdown(self.reading, socket.SHUT_RDWR)

    def within(self, read, sock):
        """``read()``, from ``sock``; TimeoutError when the time is up before it returns."""
        with self.lock:
            if self.passed:
                raise TimeoutError(self.problem)
            self.reading = sock
        try:
            result = read()
        except Exception:
            if self._stop():
                raise TimeoutError(self.problem) from None
            raise
        if self._stop():  # a shut socket's end may have ended what was read
            if result is not None:
                result.close()
            raise TimeoutError(self.problem)
        return result

    def _stop(self) -> bool:
        """Stops watching the socket; whether the time ran out meanwhile (it may have been shut)."""
        with self.lock:
            self.reading = None
            return self.passed


class _Answers(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    """Opens http and https connections whose answers ``deadline`` bounds (in place of urllib's handlers)."""

    def __init__(self, deadline: _Deadline):
        super().__init__()
        self.deadline = deadline

    def do_open(self, http_class, req, **kwargs):
        deadline = self.deadline

        class Connection(http_class):
            def _tunnel(self):  # http.client's reading of a proxy's answer to CONNECT (an https URL's)
                deadline.within(super()._tunnel, self.sock)

            def getresponse(self):
                return deadline.within(super().getresponse, self.sock)

        return super().do_open(Connection, req, **kwargs)


def _reason(e: BaseException) -> str:
    """An exception as a short reason: its message, else its type's name (http.client's are often empty)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _blocks(read, total: int | None, name: str, progress: bool, size: int = 1 << 16):
    """Blocks from ``read(size)`` until it returns nothing, with a progress bar (``progress``; the one rule,
    :func:`~arniqa.utils.console.progress_bar`)."""
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TransferSpeedColumn

    from ..utils.console import progress_bar

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with progress_bar(*columns, show=progress, transient=True) as bar:
        task = bar.add_task(f"downloading {name}", total=total)
        while block := read(size):
            bar.update(task, advance=len(block))
            yield block


def _proxies() -> dict[str, str]:
    """The proxies a download goes through, by scheme: urllib's (``HTTPS_PROXY`` and the like, else the system's
    settings), and ``ALL_PROXY``'s (an http one) for http and https where those name none, as curl takes it (urllib
    ignores it). ``NO_PROXY`` holds for all of them (urllib's ProxyHandler)."""
    proxies = urllib.request.getproxies()
    every = proxies.get("all")
    if every and _scheme(every).lower() == "http":  # a SOCKS one is left to the tools that use it
        for scheme in ("http", "https"):
            proxies.setdefault(scheme, every)
    return proxies


def _scheme(proxy: str) -> str:
    """The scheme of a proxy's URL, as written: ``http`` where it names none (``gw:3128``), as urllib and curl read
    it."""
    named = re.match(r"([A-Za-z][\w+.-]*)://", proxy)
    return named[1] if named else "http"


def _unused_all_proxy() -> str:
    """Where a download goes direct while ``ALL_PROXY`` names a proxy it cannot speak to (SOCKS, https://): that it
    is left unused, to say in a failure (a cluster that lets only that proxy out)."""
    every = urllib.request.getproxies().get("all")
    if every is None or (kind := _scheme(every)).lower() == "http":
        return ""
    speaks = "a download speaks only plain HTTP to a proxy: name an http:// one in HTTPS_PROXY"
    return f" directly (ALL_PROXY names a {kind} proxy, and {speaks})"


def _proxy(url: str) -> tuple[str, str] | None:
    """The proxy a download sends ``url`` through and what named it (``HTTPS_PROXY``), to name in a failure (a dead
    one reads as the server being down); None when it goes direct."""
    parts = urllib.parse.urlsplit(url)
    proxy = _proxies().get(parts.scheme)
    if proxy is None or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    names = (f"{parts.scheme}_proxy", f"{parts.scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
    return proxy, next((name for name in names if os.environ.get(name) == proxy), "the system's proxy settings")


def _with_encoder(target: Path) -> bool:
    """Whether ``target`` is a published regressor whose folder lacks the encoder too: a run needs both, so a line
    names both at once, not one run after the other."""
    return target.name in PUBLISHED and target.name != ENCODER_FILE and not (target.parent / ENCODER_FILE).is_file()


def _offline_hint(target: Path, lead: str = "to work offline, place") -> str:
    """Where to place ``target`` by hand (and the encoder, :func:`_with_encoder`), after ``lead``."""
    files = [target.name, ENCODER_FILE] if _with_encoder(target) else [target.name]
    them = "them" if len(files) > 1 else "it"
    where = f"in {target.parent} (or pass --weights-dir, a folder holding {them})"
    return f"{lead} {' and '.join(files)} {where}"
