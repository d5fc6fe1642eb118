"""The image files under a folder: one walk and one image-file rule for every command that reads folders.

A folder is walked depth first, each folder's entries sorted by name (the order of ``sorted(folder.rglob("*"))``),
one listing per level held, so a tree of any depth or width is walked in flat memory; links to folders are not
followed, and the system folders a NAS or an operating system keeps among the photos (:data:`SYSTEM_FOLDERS`:
thumbnails, trash, snapshots) are not entered, both reported. A file is an image when its extension belongs to a
format we decode or, whatever its name, a decoder recognises its header (:func:`is_image`); the other files are
skipped. Entries that are no file (dangling links, link loops, FIFOs, sockets, devices) and folders that cannot be
listed are reported as broken, never passed over in silence. :func:`skipped_summary` says all in one line.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..utils.files import LIMIT_ERRORS, READ_FIXES, inside
from ..utils.locks import LOCK_NAME, LOCK_SUFFIX, SETTINGS_SUFFIX
from ..utils.messages import printable, say, warning_line
from ..utils.names import agree, count
from .images import IMAGE_EXTENSIONS, can_identify, is_image_file

NAMED = 10  # entries that are no file named in the skipped note; the others are counted
# A Mac writes ._NAME beside each file it copies to a share or a disk that cannot hold its metadata (AppleDouble):
# no image, whatever NAME's extension.
APPLE_DOUBLE = "._"
LINKED_FOLDER = "link to a folder"  # what walk reports a linked folder as (not followed)
# The folders a NAS, an operating system or a desktop keeps for itself among the photos: generated thumbnails,
# trash, snapshots (a copy of the whole tree), indexes. A walk does not enter them (any case); one named as a path
# is walked, and a file in one named is scored.
SYSTEM_FOLDERS = frozenset(
    name.casefold()
    for name in (
        "@eaDir",  # Synology: thumbnails (SYNOPHOTO_THUMB_XL.jpg) and metadata of each photo
        "#recycle",  # Synology: trash
        "#snapshot",  # Synology: snapshots
        ".@__thumb",  # QNAP: thumbnails
        "@Recycle",  # QNAP: trash
        "@Recently-Snapshot",  # QNAP: snapshots
        ".snapshot",  # NetApp and others: snapshots
        "~snapshot",  # NetApp, seen over SMB
        "$RECYCLE.BIN",  # Windows: trash
        "System Volume Information",  # Windows: restore points, indexes
        ".Trashes",  # macOS: trash of a disk
        ".Spotlight-V100",  # macOS: search index
        ".fseventsd",  # macOS: file system events
        ".DocumentRevisions-V100",  # macOS: versions of documents
        ".TemporaryItems",  # macOS: temporary files
        ".AppleDouble",  # netatalk (Mac shares): the metadata of each file, under the file's own name
        "lost+found",  # Linux: pieces of files a disk check recovered
        ".Trash",  # Linux desktops and macOS: trash (and .Trash-UID below)
    )
)
SYSTEM_FOLDER = "system folder"  # what walk reports a system folder as (not entered)
_USER_TRASH = re.compile(r"\.trash-\d+")  # .Trash-1000: a Linux desktop's trash on a disk, per user id


def is_image(path: str | os.PathLike, header: Callable[[], object] | None = None) -> bool:
    """True for a file of an image extension (:func:`~arniqa.data.images.is_image_file`), else when a decoder
    recognises its header (read only for files of other names, and for :func:`is_apple_double` names).
    ``header``: what gives the bytes to read it from when they are not the file at ``path`` (a tar member's)."""
    if not is_apple_double(path) and is_image_file(path):
        return True
    return can_identify(path if header is None else header())


def is_apple_double(path: str | os.PathLike) -> bool:
    """True for a name a Mac gives its AppleDouble files (:data:`APPLE_DOUBLE`)."""
    return os.path.basename(path).startswith(APPLE_DOUBLE)


def is_system_folder(name: str) -> bool:
    """True for the name of a folder a walk does not enter (:data:`SYSTEM_FOLDERS`, ``.Trash-UID``), in any case."""
    name = name.casefold()
    return name in SYSTEM_FOLDERS or _USER_TRASH.fullmatch(name) is not None


def is_arniqa_own(path: str | os.PathLike) -> bool:
    """True for the hidden files arniqa writes beside an output file NAME, when NAME lies beside them:
    ``.NAME.lock`` while a run writes it, ``.NAME.arniqa.json`` (arniqa score's and map's settings); and for the lock
    ``.arniqa.lock`` of an output folder, inside it. Another file so named is the user's."""
    folder, name = os.path.split(path)
    if name == LOCK_NAME:
        return True
    suffix = next((s for s in (SETTINGS_SUFFIX, LOCK_SUFFIX) if name.endswith(s)), None)
    output = name[1 : -len(suffix)] if suffix and name.startswith(".") else ""
    return output not in ("", ".", "..") and os.path.lexists(os.path.join(folder, output))


SHOWN_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".heic", ".avif")  # the common ones


IMAGE_FOLDER = "a folder holding image files"  # what list_images takes, in a message


def image_rule() -> str:
    """What :func:`is_image` takes, in words for a message: the common suffixes it knows, how many others, and the
    header rule."""
    shown = [s for s in SHOWN_SUFFIXES if s in IMAGE_EXTENSIONS]
    return (
        f"files ending in {', '.join(shown)} or {len(IMAGE_EXTENSIONS - set(shown))} other suffixes (any case), "
        "or whose header a decoder recognises"
    )


def walk(
    folder: Path,
    on_broken: Callable[[str, str], object] = lambda path, why: None,
    exclude: str | os.PathLike | None = None,
) -> Iterator[Path]:
    """The files under ``folder`` in ``sorted(folder.rglob("*"))`` order, one directory listing per level
    held (links to folders are not followed, as rglob does not; no recursion, so any depth is walked), but the
    system folders below ``folder`` (:func:`is_system_folder`: not entered); ``on_broken(path, why)`` is called
    for each entry that is no file (:func:`not_a_file`: a link to a folder too, why :data:`LINKED_FOLDER`), each
    system folder (why :data:`SYSTEM_FOLDER`) and each folder that cannot be listed (no permission, a path too
    long, replaced by a file since it was listed). ``exclude``: the output folder of the command walking (``map -o
    photos/maps``, ``benchmark synthetic -o photos/kadid``), which may lie among its inputs: it is neither entered
    nor reported, so a rerun never takes the command's own files for inputs (:func:`~arniqa.utils.files.inside`)."""
    if exclude is not None and inside(folder, exclude):
        return
    levels = [_listing(folder, on_broken)]
    while levels:
        entry = next(levels[-1], None)
        if entry is None:
            levels.pop()
            continue
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = not is_dir and entry.is_file()
        except OSError:
            is_dir = is_file = False
        if not is_file and exclude is not None and inside(path, exclude):  # its files below it: none reached
            continue
        if is_dir and is_system_folder(entry.name):
            on_broken(str(path), SYSTEM_FOLDER)
        elif is_dir:
            levels.append(_listing(path, on_broken))
        elif is_file:
            yield path
        elif why := not_a_file(path):
            on_broken(str(path), why)


def _listing(folder: Path, on_broken: Callable[[str, str], object]) -> Iterator[os.DirEntry]:
    """The entries of ``folder`` sorted by name; a folder that cannot be listed is reported, and empty."""
    try:
        with os.scandir(folder) as entries:
            return iter(sorted(entries, key=lambda e: e.name))
    except FileNotFoundError:
        return iter(())  # removed since it was listed: nothing left in it
    except OSError as e:
        fix = f"; {READ_FIXES[e.errno]}" if e.errno in LIMIT_ERRORS else ""  # else the line names what to give
        on_broken(str(folder), f"folder cannot be listed: {e.strerror or e}{fix}")
        return iter(())


def not_a_file(path: Path) -> str | None:
    """Why a folder entry that is neither a file nor a folder is no file (:data:`LINKED_FOLDER` for a link to a
    folder); None for one that became a file since it was listed."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "dangling link"
    except OSError as e:
        return "link loop" if e.errno == errno.ELOOP else f"cannot be read ({e.strerror or e})"
    if stat.S_ISDIR(mode):
        return LINKED_FOLDER  # not followed, as rglob does not
    if stat.S_ISREG(mode):
        return None  # became a file since it was listed
    return {stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket"}.get(stat.S_IFMT(mode), "device")


def skipped_kind(path: str) -> str:
    """How :func:`skipped_summary` counts a skipped file: its extension, or as a Mac's AppleDouble file or one of
    arniqa's own."""
    if is_apple_double(path):
        return "._* (Mac AppleDouble)"
    if is_arniqa_own(path):
        return "arniqa's own (.NAME.lock, .NAME.arniqa.json)"
    return Path(path).suffix.lower() or "(no extension)"


# The folders a walk reports but does not enter, named apart from the entries that are no file: how many, what
# they are, why not entered.
FOLDERS_APART = {
    LINKED_FOLDER: ("links to folders", "not followed"),
    SYSTEM_FOLDER: ("system folders", "thumbnails, trash, snapshots: not entered"),
}


class Broken:
    """The folders' entries that are no file, as ``on_broken(path, why)`` reports them: the first :data:`NAMED`
    ``(path, why)`` and how many in all, and the folders not entered (:data:`FOLDERS_APART`) apart, by kind, the
    first :data:`NAMED` and how many; memory stays flat whatever their number."""

    def __init__(self) -> None:
        self.named: list[tuple[str, str]] = []
        self.count = 0
        self.folders: dict[str, list[str]] = {why: [] for why in FOLDERS_APART}
        self.folder_counts: Counter = Counter()

    def __call__(self, path: str, why: str) -> None:
        if why in FOLDERS_APART:
            self.folder_counts[why] += 1
            if len(self.folders[why]) < NAMED:
                self.folders[why].append(path)
            return
        self.count += 1
        if len(self.named) < NAMED:
            self.named.append((path, why))


def skipped_summary(
    skipped: Counter | Iterable[str] = (), broken: Broken | Iterable[tuple[str, str]] = (), verb: str = ""
) -> str:
    """``skipped 3 files no decoder can open: 2 .txt, 1 .xyz; 1 link to a folder: photos/more (not followed;
    give it as a path to score it); 1 system folder: photos/@eaDir (thumbnails, trash, snapshots: not entered;
    give it as a path to score it); 2 entries that are no file: a.jpg (dangling link), b (link loop)`` (most
    common extension first; past :data:`NAMED` names, ``...``); empty when nothing was skipped. ``skipped``: the
    counts per :func:`skipped_kind` (a Counter), or the skipped paths; ``broken``: the entries that are no file
    (a :class:`Broken`, or their (path, why)); ``verb``: what the command does with the paths it is given
    (``score``), where a folder not entered can be one."""
    counts = skipped if isinstance(skipped, Counter) else Counter(map(skipped_kind, skipped))
    if not isinstance(broken, Broken):
        entries, broken = broken, Broken()
        for path, why in entries:
            broken(path, why)
    parts = []
    if n := sum(counts.values()):
        kinds = ", ".join(f"{k} {ext}" for ext, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        parts.append(f"{count(n, 'file')} no decoder can open: {kinds}")
    for why, (plural, reason) in FOLDERS_APART.items():
        if n := broken.folder_counts[why]:
            names = _names(map(printable, broken.folders[why]), n)
            take = f"; give {agree(n, 'it', 'each')} as a path to {verb} it" if verb else ""
            parts.append(f"{count(n, why, plural)}: {names} ({reason}{take})")
    if broken.count:
        names = _names((f"{printable(f)} ({why})" for f, why in broken.named), broken.count)
        entries = f"{count(broken.count, 'entry', 'entries')} {agree(broken.count, 'that is', 'that are')}"
        parts.append(f"{entries} no file: {names}")
    return "skipped " + "; ".join(parts) if parts else ""


def _names(named: Iterable[str], total: int) -> str:
    """The names given, and ``...`` when there are ``total``, more than them."""
    named = list(named)
    return ", ".join(named) + (", ..." if total > len(named) else "")


def not_a_folder(path: Path) -> str:
    """What is wrong with ``path``, which is not a folder: something else is there, or nothing."""
    return "not a folder" if path.exists() else "no such folder"


def training_root(root: str | os.PathLike) -> Path:
    """``root``, the folder of the training images, as a Path; ValueError when it is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: {not_a_folder(root)} (the training images); give {IMAGE_FOLDER}")
    return root


def training_images(root: str | Path) -> list[Path]:
    """The training images under ``root``, sorted.

    KADIS-700k layout (``root/ref_imgs/*.png``, or ``root/KADIS700/ref_imgs/*.png``): the image files in
    ``ref_imgs`` only, its pristine PNGs (not ``dist_imgs``). Otherwise every image file in the tree; both as
    :func:`list_images` lists them.
    Raises ValueError when ``root`` is not a folder or holds no image.
    """
    root = training_root(root)
    for kadis in (root / "ref_imgs", root / "KADIS700" / "ref_imgs"):
        if kadis.is_dir():
            if files := list_images(kadis):
                return files
    return list_images(root, required=True)


class NoImages(ValueError):
    """Inputs that hold no image file (:func:`no_images` says it)."""


def no_images(paths: list[str], summary: str = "", give: str = IMAGE_FOLDER, total: int | None = None) -> str:
    """The one line for inputs ``paths`` that hold no image file: the first three, what was skipped in them
    (``summary``, :func:`skipped_summary`), and what to give (``give``: what the command takes, and
    :func:`image_rule`); ``total``: how many inputs there are, where ``paths`` holds only the first few."""
    total = len(paths) if total is None else total
    more = f" (and {total - 3} more)" if total > 3 else ""
    found = f"no image files found, {summary}" if summary else "no image files found"
    return f"{', '.join(paths[:3])}{more}: {found}; give {give}: {image_rule()}"


def list_images(
    folder: str | os.PathLike,
    exclude: str | os.PathLike | None = None,
    warn: bool = True,
    required: bool = False,
    give: str = IMAGE_FOLDER,
) -> list[Path]:
    """The image files (:func:`is_image`) in the tree under ``folder``, sorted, but those under ``exclude``
    (a command's output folder inside ``folder``, whose images a rerun must not take as inputs). What was
    skipped or broken is said in one warning line on stderr (:func:`skipped_summary`), unless ``warn`` is False
    (the folder listed again, said already); ValueError when ``folder`` is not a folder, and, when ``required``,
    :class:`NoImages` when it holds no image file (what was skipped said in that one line, not in a warning; ``give``:
    what to give instead, as :func:`no_images` takes it)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: {not_a_folder(folder)}; give {IMAGE_FOLDER}")
    skipped: Counter = Counter()
    broken = Broken()
    files = []
    for path in walk(folder, broken, exclude):
        if is_image(path):
            files.append(path)
        else:
            skipped[skipped_kind(str(path))] += 1
    summary = skipped_summary(skipped, broken)
    if required and not files:
        raise NoImages(no_images([str(folder)], summary, give))
    if warn and summary:
        say(warning_line(f"{folder}: {summary}"))
    return files
