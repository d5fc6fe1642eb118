"""Weight files cannot make us allocate more than they hold: zip bombs, stride-0 views, one storage named many times."""

import io
import pickle
import warnings
import zipfile

import pytest
import torch
import torch.nn as nn

from arniqa.models import WeightsError
from arniqa.models.files import read_state_dict
from arniqa.models.published import load_published_regressor

WIDE = (1, 2**22)  # 16 MiB of float32 from a one-value storage


class SharedBuffers(nn.Module):
    """A TorchScript module whose buffers are all views of one storage, as a crafted file may name it many times."""

    def __init__(self, base: torch.Tensor, n: int) -> None:
        super().__init__()
        for i in range(n):
            self.register_buffer(f"b{i}", base[:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _recompress(src, dst):
    """``src`` rewritten with every entry deflated (PyTorch writes them stored)."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
        for info in z.infolist():
            out.writestr(info.filename, z.read(info))
    return dst


def test_a_missing_weight_file_says_to_check_the_path(tmp_path):
    """Said `absent.pth: no such weight file` and nothing to do."""
    with pytest.raises(WeightsError) as e:
        read_state_dict(tmp_path / "absent.pth")
    assert str(e.value) == f"{tmp_path / 'absent.pth'}: no such weight file; check the path"
    with pytest.raises(WeightsError) as e:  # a folder was "no such weight file" too
        read_state_dict(tmp_path)
    assert str(e.value) == f"{tmp_path}: a folder; give the weight file in it"


def test_compressed_archives_are_refused_before_unpacking(tmp_path, make_scripted_regressor):
    scripted = make_scripted_regressor(tmp_path / "scripted.pth", torch.zeros(1, 4096), torch.tensor(0.0))
    plain = tmp_path / "plain.pth"
    torch.save({"weights": torch.zeros(1, 4096), "biases": torch.tensor(0.0)}, plain)
    for src in (scripted, plain):
        bomb = _recompress(src, tmp_path / f"bomb_{src.name}")
        assert sum(i.file_size for i in zipfile.ZipFile(bomb).infolist()) > bomb.stat().st_size
        with pytest.raises(WeightsError, match=f"bomb_{src.name}: its entries unpack to .* more than the file"):
            read_state_dict(bomb)
    assert load_published_regressor(scripted).in_features == 4096  # as written, both read
    assert read_state_dict(plain)["weights"].shape == (1, 4096)


def test_a_view_larger_than_its_storage_is_refused(tmp_path, make_scripted_regressor):
    """A stride-0 tensor of 4M values over one stored value: copying it out would allocate what the file lacks."""
    wide = torch.ones(1).expand(*WIDE)
    scripted = make_scripted_regressor(tmp_path / "regressor_live.pth", wide, torch.tensor(0.0))
    plain = tmp_path / "plain.pth"
    torch.save({"weights": wide, "biases": torch.tensor(0.0)}, plain)
    for path in (scripted, plain):
        assert path.stat().st_size < 10_000
        with pytest.raises(WeightsError, match=rf"{path.name}: .*shape \(1, 4194304\) repeats the 1 values"):
            load_published_regressor(path)


def test_a_storage_named_many_times_is_read_once(tmp_path):
    """Every tensor shares the archive's one storage: naming it again costs the file a few bytes, not a copy."""
    base = torch.arange(64, dtype=torch.float32)
    path = tmp_path / "shared.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated
        torch.jit.script(SharedBuffers(base, 8)).save(str(path))
    tensors = read_state_dict(path)
    assert len(tensors) == 8 and all(torch.equal(t, base) for t in tensors.values())
    assert len({t.untyped_storage().data_ptr() for t in tensors.values()}) == 1


@pytest.mark.parametrize("content", [b"hello\n", b"\x08\x08\x12\x07pytorch", b"\x89PNG\r\n\x1a\n"])
def test_a_file_that_is_no_pickle_is_not_said_to_hold_more_than_tensors(tmp_path, content):
    """A text, ONNX or PNG file given as `--regressor` or `model.weights` was 'not a readable PyTorch weight file
    (KeyError: 101); it holds more than tensors, which are not loaded': a reason it does not have."""
    path = tmp_path / "regressor.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError) as err:
        read_state_dict(path)
    assert str(err.value) == (
        f"{path}: not a PyTorch weight file (neither the zip archive torch.save writes nor a pickle); give the weights "
        "as torch.save writes them or as .safetensors, or copy or download it again"
    )
    hostile = tmp_path / "hostile.pth"  # a pickle that would build an object: refused, naming it
    torch.save({"a": torch.zeros(1), "b": zipfile.ZipInfo()}, hostile)
    with pytest.raises(WeightsError, match="it would load the Python object zipfile.ZipInfo"):
        read_state_dict(hostile)


def test_a_safetensors_file_is_known_by_its_suffix_in_any_case(tmp_path):
    # Before: only a lower-case ".safetensors" was read as safetensors; "W.SafeTensors" went to the pickle reader.
    from safetensors.torch import save_file

    weights = {"weight": torch.arange(6.0).reshape(2, 3), "bias": torch.tensor([0.5, -1.0])}
    path = tmp_path / "W.SafeTensors"
    save_file(weights, str(path))
    read = read_state_dict(path)
    assert read.keys() == weights.keys()
    assert all(torch.equal(read[k], weights[k]) for k in weights)


class _Calls:
    """Pickles as a call of ``print``: a file that runs code when read."""

    def __reduce__(self):
        return (print, ("ran",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_pickle_that_would_run_code_is_refused_in_one_line_that_names_the_object(tmp_path, protocol):
    """`model.weights=evil.pth` printed torch's pickle-protocol warning as a second line, and its error quoted
    torch's first line, 'Re-running torch.load with weights_only set to False will likely succeed', advice that
    runs the file's code, without saying what the file holds."""
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"a": _Calls()}, protocol=protocol))
    with warnings.catch_warnings(record=True) as caught, pytest.raises(WeightsError) as err:
        warnings.simplefilter("always")
        read_state_dict(path)
    message = str(err.value)
    assert not caught and "\n" not in message and "weights_only" not in message
    if protocol == 2:  # torch names the object it refused
        assert message.startswith(f"{path}: refused to read it: it would load the Python object ")
        assert "print, and a weight file holds tensors alone" in message
    else:  # torch's reader stops at the first instruction of protocol 4 that it does not know, before any object
        assert message.startswith(f"{path}: not a readable PyTorch weight file (UnpicklingError: Unsupported operand")


def test_a_pickle_of_more_than_tensors_says_which_entry_and_to_save_the_weights_alone(tmp_path):
    """A training script's dict ({'epoch': 3, 'net': ...}) or a list of tensors was 'expected a dict of tensors (a
    state_dict), got dict', with nothing to do."""
    path = tmp_path / "run.pth"
    torch.save({"net.weight": torch.zeros(2), "epoch": 3}, path)
    with pytest.raises(WeightsError) as err:
        read_state_dict(path)
    assert str(err.value) == (
        f"{path}: expected a dict of tensors (a state_dict), got a dict whose 'epoch' is an int; save the weights "
        "alone (model.state_dict()) or as .safetensors"
    )
    torch.save([torch.zeros(2)], path)
    with pytest.raises(WeightsError) as err:
        read_state_dict(path)
    assert str(err.value) == (
        f"{path}: expected a dict of tensors (a state_dict), got a list; save the weights alone (model.state_dict()) "
        "or as .safetensors"
    )


def test_a_torchscript_archive_without_its_data_or_module_says_what_to_do(tmp_path):
    """A TorchScript archive (a published regressor) without data.pkl, or whose data.pkl holds no module, was named
    with its problem alone."""
    path = tmp_path / "regressor_csiq.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("r/code/__torch__.py", "")
    with pytest.raises(WeightsError) as err:
        read_state_dict(path)
    assert str(err.value) == f"{path}: no TorchScript data.pkl in the archive; copy or download it again"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("r/code/__torch__.py", "")
        z.writestr("r/data.pkl", pickle.dumps([1, 2], protocol=2))
    with pytest.raises(WeightsError) as err:
        read_state_dict(path)
    assert str(err.value) == (
        f"{path}: the TorchScript archive does not hold a module; save the weights alone (model.state_dict()) or as "
        ".safetensors"
    )


class _Record:
    """An object the pickle names by a persistent id, as a TorchScript data.pkl names its storages."""

    def __init__(self, pid):
        self.pid = pid


class _RecordPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _Record) else None


def _torchscript(path, data: bytes, byteorder: bytes | None = None):
    """A zip laid out as a TorchScript archive whose data.pkl holds ``data``."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("r/data.pkl", data)
        if byteorder is not None:
            z.writestr("r/byteorder", byteorder)
    return path


def test_a_damaged_torchscript_archive_says_what_to_do(tmp_path):
    """Not a zip, big-endian, a data.pkl that cannot be read, a storage record of another kind: each was named
    with its problem alone."""
    from arniqa.models.files import read_torchscript_tensors

    path = tmp_path / "regressor_live.pth"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(WeightsError) as err:
        read_torchscript_tensors(path)
    assert str(err.value) == (
        f"{path}: not a zip archive, so not a TorchScript file (File is not a zip file); copy or download it again"
    )
    _torchscript(path, pickle.dumps({}, protocol=2), byteorder=b"big")
    with pytest.raises(WeightsError) as err:
        read_torchscript_tensors(path)
    assert str(err.value) == (
        f"{path}: big-endian archives are not supported; save the weights alone (model.state_dict()) or as .safetensors"
    )
    _torchscript(path, b"", byteorder=b"little")
    with pytest.raises(WeightsError) as err:
        read_torchscript_tensors(path)
    assert str(err.value) == (
        f"{path}: cannot read TorchScript data (EOFError: Ran out of input); copy or download it again"
    )
    data = io.BytesIO()
    _RecordPickler(data, protocol=2).dump([_Record(("storage", "FloatStorage", "0", "cpu", 1))])
    _torchscript(path, data.getvalue())  # the storage type a name, not the class torch's pickler names
    with pytest.raises(WeightsError) as err:
        read_torchscript_tensors(path)
    assert str(err.value) == (
        f"{path}: unsupported storage record ('storage', 'FloatStorage', '0', 'cpu', 1); save the weights alone "
        "(model.state_dict()) or as .safetensors"
    )
