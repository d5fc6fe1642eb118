"""Which files a model is read from, worked out without torch, so that the command names a missing one before it
imports torch: the files of a checkpoint (:func:`checkpoint_files`: a file, its parts, or a folder), an ONNX file
(:func:`is_onnx`) or a safetensors one (:func:`is_safetensors`), the line for a model file that is not there
(:func:`no_such_file`), and :class:`WeightsError`. May import nothing of arniqa."""

from __future__ import annotations

import re
from pathlib import Path

from ..utils.messages import file_line


class WeightsError(ValueError):
    """A weight file is missing, unreadable, or does not fit the model."""


PART_NAME = re.compile(r"(?P<stem>.+)-(?P<part>\d{5,})-of-(?P<parts>\d{5,})\.safetensors")


def is_onnx(path) -> bool:
    """True when ``path`` names an ONNX file (``arniqa export``'s): known by its suffix, in any case."""
    return Path(path).suffix.lower() == ".onnx"


def is_safetensors(path) -> bool:
    """True when ``path`` names a ``.safetensors`` file (a checkpoint, a regressor, a head): by its suffix, in any
    case."""
    return Path(path).suffix.lower() == ".safetensors"


def part_path(path, part: int, parts: int) -> Path:
    """The file of part ``part`` of ``parts`` of the checkpoint ``path``: ``<stem>-00001-of-00003.safetensors``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-{part:05d}-of-{parts:05d}.safetensors")


def preview_keys(keys, n: int = 5) -> str:
    keys = sorted(keys)
    more = f" ... ({len(keys)} in all)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _set_name(path: Path) -> str:
    """A checkpoint file's name, or for a part the pattern of its set's names."""
    m = PART_NAME.fullmatch(path.name)
    return path.name if m is None else f"{m['stem']}-*-of-{m['parts']}.safetensors"


# the files of each kind that a user gives, for the line saying one is not there
WRITTEN_BY = {
    "checkpoint": "the .safetensors file, a part or their folder that arniqa train or evaluate wrote",
    "explanation head": "the head that arniqa explain fit -o wrote",
    "ONNX": "the file that arniqa export -o wrote",
}


def no_such_file(path, kind: str = "checkpoint", names: str = "") -> str:
    """The one line for a ``kind`` file at ``path`` that is not there, with what to do: check the path (of the file
    :data:`WRITTEN_BY` says), or name one of ``names`` (the published models or regressors the argument may name)."""
    of = f" of {WRITTEN_BY[kind]}" if kind in WRITTEN_BY else ""
    alternative = f", or name {names}" if names else ""
    return file_line(path, f"no such {kind} file", f"check the path{of}{alternative}")


def no_head(path) -> str:
    """The line for a file at ``path`` given as an explanation head that holds none, with what to give instead."""
    return file_line(path, "holds no explanation head", f"give {WRITTEN_BY['explanation head']}")


def checkpoint_files(path, kind: str = "checkpoint") -> list[Path]:
    """The files of the checkpoint at ``path``: a checkpoint file, any part of one (all its parts, in
    order), or a folder whose ``.safetensors`` files are one checkpoint (a file or one set of parts). ``kind``: what
    the file is to the caller, named when it is not there (``explanation head``: no such explanation head file)."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(no_such_file(path, kind))
    if path.is_dir():
        found = sorted(p for p in path.glob("*.safetensors") if not p.name.startswith("."))  # not temporary files
        names = sorted({_set_name(p) for p in found})
        if len(names) != 1:
            held = f"({preview_keys(names)})" if names else "(no .safetensors file)"
            fix = "give the path of one of them" if names else f"give {WRITTEN_BY[kind]}"
            raise WeightsError(file_line(path, f"a folder with {len(names)} checkpoints, not one {held}", fix))
        path = found[0]
    m = PART_NAME.fullmatch(path.name)
    if m is None:
        return [path]
    n, stem = int(m["parts"]), path.with_name(m["stem"])
    # the set's files on disk, by part number: what the name says (10**9 parts) is never listed whole
    siblings = [p for p in path.parent.glob("*.safetensors") if _set_name(p) == _set_name(path) and p.is_file()]
    numbered = ((int(PART_NAME.fullmatch(p.name)["part"]), p) for p in siblings)
    found = {i: p for i, p in numbered if 1 <= i <= n and p == part_path(stem, i, n)}
    if missing := n - len(found):
        first = (part_path(stem, i, n).name for i in range(1, n + 1) if i not in found)
        shown = [name for name, _ in zip(first, range(5))]
        more = f" ... ({missing} in all)" if missing > len(shown) else ""
        raise WeightsError(
            file_line(
                path, f"missing {missing} of its {n} parts: {', '.join(shown)}{more}", "put all its parts in one folder"
            )
        )
    if extra := sorted(p.name for p in siblings if p not in found.values()):
        raise WeightsError(
            file_line(path, f"parts beyond its {n}: {preview_keys(extra)}", "move them out of the folder")
        )
    return [found[i] for i in range(1, n + 1)]
