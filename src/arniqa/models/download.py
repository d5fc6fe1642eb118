"""Downloading weight files: :func:`fetch` finds a file in the cache folder (``$ARNIQA_CACHE``, else
``~/.cache/arniqa``) or downloads it there, with SHA-256 verification; offline use works from the cache."""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request
from pathlib import Path

from ..utils.files import atomic_write, cache_dir, sha256_of
from .files import WeightsError
from .published import PUBLISHED

log = logging.getLogger(__name__)


class DownloadError(OSError):
    """A file could not be downloaded (network error, HTTP error)."""


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
    * A download goes to a temporary file in the same folder, is hashed, and is renamed into place
      only if the SHA-256 matches; on a mismatch the file is deleted and :class:`WeightsError` raised.
    * When no SHA-256 is known (the published files, for now) nothing is verified and the computed
      digest is logged (``logging`` INFO) so it can be pinned.
    * A file already in the folder is checked against a known SHA-256 too; a mismatch raises
      (the file is left for the user to inspect or delete).
    """
    if Path(filename).name != filename or filename in ("", ".", ".."):
        raise ValueError(f"fetch() takes a bare file name, got {filename!r}")
    folder = Path(weights_dir).expanduser() if weights_dir is not None else cache_dir()
    where = "pass the folder that holds it" if weights_dir is not None else "set ARNIQA_CACHE to a folder"
    if folder.exists() and not folder.is_dir():
        raise WeightsError(f"{folder}: not a folder, so {filename} cannot be there; {where}")
    known = PUBLISHED.get(filename)
    url = url or (known.url if known else None)
    sha256 = (sha256 or (known.sha256 if known else None) or "").lower() or None
    target = folder / filename
    if target.is_file():
        if sha256 is not None and (digest := sha256_of(target)) != sha256:
            raise WeightsError(f"{target}: SHA-256 {digest} does not match the expected {sha256}; delete the file")
        return target
    if url is None:
        raise WeightsError(f"{target}: not found, and no download URL is known for {filename!r}")
    if not (weights_dir is None if download is None else download):
        raise WeightsError(
            f"{target}: not found; place it there, or leave out --weights-dir (weights_dir) to download it "
            f"into the cache from {url}"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsError(
            f"{folder}: cannot make the weights cache ({e.strerror or e}); set ARNIQA_CACHE to a folder you can "
            "write, or pass --weights-dir (weights_dir), a folder holding the files"
        ) from None
    digest = _download(url, target, sha256, progress)
    if sha256 is None:
        log.info("downloaded %s (sha256 %s; no known hash to check against)", target, digest)
    return target


def _download(url: str, target: Path, sha256: str | None, progress: bool) -> str:
    """Download ``url`` to ``target`` through a temporary file; verify, then rename. Returns the digest."""
    h = hashlib.sha256()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=60)
            except urllib.error.HTTPError as e:
                raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}; {_offline_hint(target)}") from e
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise DownloadError(f"cannot download {url}: {reason}; {_offline_hint(target)}") from e
            with response:
                total = int(response.headers.get("Content-Length") or 0) or None
                for block in _blocks(response, total, target.name, progress):
                    h.update(block)
                    out.write(block)
        if sha256 is not None and h.hexdigest() != sha256:
            raise WeightsError(f"{url}: downloaded file has SHA-256 {h.hexdigest()}, expected {sha256}; it was deleted")

    atomic_write(target, write)
    return h.hexdigest()


def _blocks(response, total: int | None, name: str, progress: bool, size: int = 1 << 16):
    """Read ``response`` in blocks, with a rich progress bar on stderr when ``progress``."""
    if not progress:
        while block := response.read(size):
            yield block
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from ..utils.console import terminal

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=terminal(stderr=True), transient=True) as bar:
        task = bar.add_task(f"downloading {name}", total=total)
        while block := response.read(size):
            bar.update(task, advance=len(block))
            yield block


def _offline_hint(target: Path) -> str:
    return f"to work offline, place {target.name} in {target.parent} (or pass --weights-dir, a folder holding it)"
