"""write_json, jsonable and parse_json: the JSON is standard (NaN and infinities are null) and reads back as the
values written, the old file survives an object that cannot be written, and JSON nested too deeply or holding a
number too long is a decode error where files are read."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from arniqa.utils.jsonfile import MAX_NESTING, jsonable, parse_json, write_json


def test_write_json_turns_nan_and_infinities_into_null(tmp_path):
    path = write_json(
        tmp_path / "sub" / "r.json", {"nan": float("nan"), "inf": np.float32("inf"), "ninf": -math.inf, "x": 0.25}
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"nan": None, "inf": None, "ninf": None, "x": 0.25}


def test_write_json_converts_numpy_torch_tuples_and_paths(tmp_path):
    obj = {
        1: np.float64(0.5),
        "i": np.int64(7),
        "b": np.bool_(True),
        "arr": np.array([[1, 2]]),
        "t": torch.tensor([1.5, float("nan")]),
        "s": torch.tensor(3),
        "p": Path("/x/y"),
        "tup": (1, "a", None),
    }
    back = json.loads(write_json(tmp_path / "o.json", obj).read_text())
    assert back == {
        "1": 0.5,
        "i": 7,
        "b": True,
        "arr": [[1, 2]],
        "t": [1.5, None],
        "s": 3,
        "p": "/x/y",
        "tup": [1, "a", None],
    }
    assert type(back["i"]) is int and type(back["b"]) is bool


def test_jsonable_rejects_what_json_cannot_hold():
    with pytest.raises(TypeError, match="set"):
        jsonable({"x": {1, 2}})


def test_write_json_leaves_the_old_file_when_the_object_cannot_be_written(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"old": 1}')
    with pytest.raises(TypeError):
        write_json(path, {"x": object()})
    assert json.loads(path.read_text()) == {"old": 1}
    assert os.listdir(tmp_path) == ["r.json"]


DEEP = "[" * 100_000  # deeper than Python's JSON parser goes: it raises RecursionError


def test_json_nested_too_deeply_is_a_one_line_error_where_files_are_read(tmp_path):
    from safetensors.torch import save_file

    from arniqa.cli.result_files import read_rows
    from arniqa.inference.sidecar import read_sidecar
    from arniqa.models import WeightsError
    from arniqa.models.checkpoint import arniqa_metadata

    (tmp_path / "m.onnx.json").write_text('{"format": "arniqa-onnx", "x": ' + DEEP)
    with pytest.raises(ValueError, match=r"m.onnx.json: not a JSON sidecar \(nested more than 100 levels deep"):
        read_sidecar(tmp_path / "m.onnx")
    save_file({"w": torch.zeros(1)}, str(tmp_path / "c.safetensors"), metadata={"arniqa": DEEP})
    with pytest.raises(
        WeightsError, match=r"c.safetensors: unreadable arniqa config \(nested more than 100 levels deep"
    ):
        arniqa_metadata(tmp_path / "c.safetensors")
    (tmp_path / "r.json").write_text("[\n" + DEEP + "\n]\n")
    assert read_rows(tmp_path / "r.json", "json") == []  # not a row: the file holds none


def test_a_number_too_long_for_int_is_a_one_line_error_where_files_are_read(tmp_path):
    """json.loads raises int()'s ValueError on a number of more than 4300 digits, which every reader's
    JSONDecodeError let through: `arniqa score --resume` on such a JSON Lines row was a traceback (exit 1), and a
    checkpoint's config said 'error: Exceeds the limit (4300 digits) ...', naming no file."""
    from safetensors.torch import save_file

    from arniqa.cli.result_files import read_rows
    from arniqa.models import WeightsError
    from arniqa.models.checkpoint import arniqa_metadata

    long = "9" * 5000
    with pytest.raises(json.JSONDecodeError, match="a number too long to read"):
        parse_json(f'{{"version": {long}}}')
    assert parse_json(f'{{"version": {long[:4000]}}}') == {"version": int(long[:4000])}  # within the limit
    save_file({"w": torch.zeros(1)}, str(tmp_path / "c.safetensors"), metadata={"arniqa": f'{{"version": {long}}}'})
    with pytest.raises(WeightsError, match=r"c.safetensors: unreadable arniqa config \(a number too long to read"):
        arniqa_metadata(tmp_path / "c.safetensors")
    row = '{"path": "a.png", "score": 0.5, "raw_score": 3.0, "error": null}\n'
    (tmp_path / "r.jsonl").write_text(row + row.replace("0.5", long) + row.replace("a.png", "b.png"))
    assert [r["path"] for r in read_rows(tmp_path / "r.jsonl", "jsonl")] == ["a.png"]  # the rows before it


def test_json_nested_past_the_bound_is_a_decode_error_and_what_is_read_can_be_walked():
    """json reads about 1000 levels, but jsonable stops at about 500 and repr at about 1000: a sidecar whose
    `dataset` nested 500 levels was a RecursionError traceback (its error message repr'd it); 100,000 levels were
    a JSONDecodeError already."""
    nested = []
    for _ in range(MAX_NESTING - 2):
        nested = [nested]
    text = json.dumps({"a": nested})  # MAX_NESTING levels with the object
    assert text.count("[") == MAX_NESTING - 1 and parse_json(text) == {"a": nested}
    assert jsonable(parse_json(text)) == {"a": nested} and repr(parse_json(text))
    for deeper in (json.dumps({"a": [nested]}), json.dumps([{"a": nested}]), "[" * 500 + "]" * 500, "[" * 10**5):
        with pytest.raises(json.JSONDecodeError, match=f"nested more than {MAX_NESTING} levels deep"):
            parse_json(deeper)
