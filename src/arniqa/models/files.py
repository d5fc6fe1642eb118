"""Reading weight files safely: state dicts (pickle zip or safetensors) and TorchScript archives.

Nothing here runs code stored in a file: pickled state dicts go through
``torch.load(weights_only=True)``, and TorchScript archives through a restricted unpickler that only
rebuilds tensors (see :func:`read_torchscript_tensors`). Nor can a small file make us allocate much:
the archive's entries may not unpack to more bytes than the file holds (torch writes them
uncompressed), a tensor may not hold more values than its storage (a stride-0 view copied out), and a
safetensors header may not exceed :data:`MAX_HEADER`.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch

from ..utils.messages import GET_AGAIN, file_line
from ..utils.names import count
from .paths import WeightsError, is_safetensors, no_such_file, preview_keys

EDITED = "the file is damaged or was edited"  # a file whose config or tensors arniqa never wrote so
SAVE_WEIGHTS = "save the weights alone (model.state_dict()) or as .safetensors"  # for a file holding more than them
MAX_HEADER = 4 << 20  # bytes of a safetensors header (names, shapes, metadata; a ResNet50's: about 30 KB)


def header_excess(path: Path) -> str | None:
    """Why the safetensors file ``path`` is not read, by its header's declared length alone, or None. safetensors
    reads headers up to 100 MB: one of a million empty tensors (67 MB) took 930 MB to open and 2 GB to read."""
    with open(path, "rb") as f:
        head = f.read(8)
    size = int.from_bytes(head, "little")
    if len(head) == 8 and size > MAX_HEADER:
        return f"its header would be {size:,} bytes, more than the {MAX_HEADER:,} of a model's file"
    return None


def check_layer_size(source, name: str, weight: torch.Tensor | None, shape: tuple) -> None:
    """WeightsError unless the file's tensor ``name`` has the ``shape`` its config gives, checked before a
    layer of that shape is built: a config cannot make us allocate what the file's tensors do not hold."""
    found = None if weight is None else tuple(weight.shape)
    if found != shape or not all(isinstance(n, int) for n in shape):
        raise WeightsError(file_line(source, f"{name} is {found}, its config says {shape}", EDITED))


def key_differences(missing, unexpected) -> str:
    """The keys a state dict lacks and holds beyond a model's, for an error: ``missing 2 keys: a, b; unexpected 1
    key: c`` (the first 5 of each, sorted)."""
    differences = (("missing", missing), ("unexpected", unexpected))
    return "; ".join(f"{what} {count(len(keys), 'key')}: {preview_keys(keys)}" for what, keys in differences if keys)


def _check_file(path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise WeightsError(file_line(path, "a folder", "give the weight file in it"))
    if not path.is_file():
        raise WeightsError(no_such_file(path, "weight"))
    return path


def unpacked_excess(path: Path, archive: zipfile.ZipFile) -> str | None:
    """Why the zip archive ``path`` (open as ``archive``) cannot be what PyTorch writes, by its sizes alone: its
    entries unpack to more bytes than the file holds (compressed weights, or entries sharing bytes); None if not.
    PyTorch stores tensors and pickles as they are and compresses only TorchScript code, which is never read."""
    unpacked = sum(
        info.file_size
        for info in archive.infolist()
        if "/code/" not in info.filename or info.compress_type == zipfile.ZIP_STORED
    )
    size = path.stat().st_size
    if unpacked > size:
        return (
            f"its entries unpack to {unpacked} bytes, more than the file's {size} (compressed or overlapping "
            "entries; PyTorch writes them stored)"
        )
    return None


def _check_unpacked(path: Path, archive: zipfile.ZipFile) -> None:
    """WeightsError if the archive's entries unpack to more bytes than the file holds (:func:`unpacked_excess`)."""
    if problem := unpacked_excess(path, archive):
        raise WeightsError(file_line(path, problem, "the file is damaged or crafted"))


def _check_storage(path: Path, tensor: torch.Tensor, name: str = "a tensor") -> None:
    """WeightsError if ``tensor`` has more values than its storage: a view whose copy would be larger than the file."""
    held = tensor.untyped_storage().nbytes() // max(tensor.element_size(), 1)
    if tensor.numel() > held:
        raise WeightsError(
            file_line(
                path,
                f"{name} of shape {tuple(tensor.shape)} repeats the {held} values of its storage",
                "the file is damaged or crafted",
            )
        )


def is_torchscript_archive(path) -> bool:
    """True if ``path`` is a zip archive holding TorchScript code (``<name>/code/...``)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in name for name in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_state_dict(path, keep: Callable[[str], bool] | None = None) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` dict from a ``.safetensors`` file or a torch pickle (weights only).

    A dict that wraps the weights under a single ``state_dict`` or ``model`` entry is unwrapped.
    TorchScript archives are read with :func:`read_torchscript_tensors`. ``keep``: of a ``.safetensors`` file,
    only the tensors whose names it keeps are read.
    """
    path = _check_file(path)
    if is_safetensors(path):
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        try:
            if problem := header_excess(path):
                raise ValueError(problem)
            if keep is None:
                return load_file(str(path))
            with safe_open(str(path), framework="pt") as f:
                return {k: f.get_tensor(k) for k in f.keys() if keep(k)}
        except (SafetensorError, OSError, ValueError) as e:
            raise WeightsError(file_line(path, f"not a readable safetensors file ({e})", GET_AGAIN)) from e
    if is_torchscript_archive(path):
        return read_torchscript_tensors(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            _check_unpacked(path, archive)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on the pickle protocol of a foreign file
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt / foreign files
        with open(path, "rb") as f:
            pickled = zipfile.is_zipfile(path) or f.read(1) == b"\x80"  # torch writes pickles of protocol 2 and up
        if not pickled:  # a text file, an ONNX file, an image: torch's KeyError or UnpicklingError says nothing of it
            raise WeightsError(
                file_line(
                    path,
                    "not a PyTorch weight file (neither the zip archive torch.save writes nor a pickle)",
                    f"give the weights as torch.save writes them or as .safetensors, or {GET_AGAIN}",
                )
            ) from e
        if name := refused_object(e):
            raise WeightsError(
                file_line(
                    path,
                    f"refused to read it: it would load the Python object {name}, and a weight file holds tensors "
                    "alone (loading objects can run code)",
                    SAVE_WEIGHTS,
                )
            ) from e
        raise WeightsError(
            file_line(
                path,
                f"not a readable PyTorch weight file ({unpickling_problem(e)})",
                "the file is damaged or holds more than tensors, which are not loaded",
            )
        ) from e
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict) and not torch.is_tensor(obj.get(wrapper)):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise WeightsError(
            file_line(path, f"expected a dict of tensors (a state_dict), got {_held(obj)}", SAVE_WEIGHTS)
        )
    for name, tensor in obj.items():
        _check_storage(path, tensor, name)
    return dict(obj)


def _held(obj) -> str:
    """What a weight file holds instead of a dict of tensors: ``a list``, ``a dict whose 'epoch' is an int``."""
    if isinstance(obj, dict):
        key, value = next((k, v) for k, v in obj.items() if not torch.is_tensor(v))
        return f"a dict whose {str(key)[:60]!r} is {_a(type(value).__name__)}"
    return _a(type(obj).__name__)


def _a(name: str) -> str:
    """``name`` after its article: ``an int``, ``a list``."""
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def refused_object(err: Exception) -> str | None:
    """The Python object (``module.name``) that ``torch.load(weights_only=True)`` refused to load, as its error
    ``err`` names it, or None for another error."""
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    return found[1] if found else None


def unpickling_problem(err: Exception) -> str:
    """``Type: message`` of ``err`` on one line: torch's weights-only message reduced to its reason (its first
    line advises loading with weights_only=False, which runs the file's code)."""
    text = str(err)
    reason = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    line = reason[1] if reason else next((s for s in text.splitlines() if s.strip()), "")
    return f"{type(err).__name__}: {line.strip()}"


# Storage class names written by the TorchScript pickler, and the dtype they hold.
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _StorageType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _ScriptObject:
    """Stand-in for a scripted module: keeps its attribute dict, runs nothing."""

    def __setstate__(self, state) -> None:
        self.state = state


class _TensorOnlyUnpickler(pickle.Unpickler):
    """Allows the few globals a TorchScript ``data.pkl`` needs to describe tensors; rejects the rest."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, path: Path) -> None:
        super().__init__(file)
        self.archive, self.prefix, self.path = archive, prefix, path
        self.storages: dict[str, torch.Tensor] = {}

    def rebuild_tensor(self, storage, offset, size, stride, *unused) -> torch.Tensor:
        view = torch.as_strided(storage, tuple(size), tuple(stride), offset)
        _check_storage(self.path, view)
        return view  # not copied: tensors share their storage, read once, as torch.load's do

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self.rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "__torch__" or module.startswith("__torch__."):
            return type(name, (_ScriptObject,), {})
        raise WeightsError(
            file_line(self.path, f"refusing to load {module}.{name} from a TorchScript archive", SAVE_WEIGHTS)
        )

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise WeightsError(file_line(self.path, f"unsupported storage record {pid!r}", SAVE_WEIGHTS))
        if key not in self.storages:  # each read once, however often the pickle names it
            data = bytearray(self.archive.read(f"{self.prefix}/data/{key}"))
            flat = (
                torch.frombuffer(data, dtype=storage_type.dtype) if data else torch.empty(0, dtype=storage_type.dtype)
            )
            if flat.numel() != numel:
                raise WeightsError(
                    file_line(self.path, f"storage {key} holds {flat.numel()} values, expected {numel}", GET_AGAIN)
                )
            self.storages[key] = flat
        return self.storages[key]


def read_torchscript_tensors(path) -> dict[str, torch.Tensor]:
    """The top-level tensor attributes (parameters and buffers) of a saved TorchScript module.

    Reads the archive's ``data.pkl`` with an unpickler that only rebuilds tensors from the archive's
    raw storages; no TorchScript or pickled code is loaded or run. Submodules are ignored.
    """
    path = _check_file(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise WeightsError(file_line(path, f"not a zip archive, so not a TorchScript file ({e})", GET_AGAIN)) from e
    with archive:
        _check_unpacked(path, archive)
        pkls = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise WeightsError(file_line(path, "no TorchScript data.pkl in the archive", GET_AGAIN))
        prefix = pkls[0].rsplit("/", 1)[0]
        byteorder = f"{prefix}/byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise WeightsError(file_line(path, "big-endian archives are not supported", SAVE_WEIGHTS))
        with archive.open(pkls[0]) as f:
            try:
                obj = _TensorOnlyUnpickler(f, archive, prefix, path).load()
            except WeightsError:
                raise
            except Exception as e:
                raise WeightsError(
                    file_line(path, f"cannot read TorchScript data ({type(e).__name__}: {e})", GET_AGAIN)
                ) from e
    state = getattr(obj, "state", None)
    if not isinstance(state, dict):
        raise WeightsError(file_line(path, "the TorchScript archive does not hold a module", SAVE_WEIGHTS))
    return {k: v for k, v in state.items() if torch.is_tensor(v)}
