"""Where the ablation keeps its files in the output folder (the runner writes them, the report reads
them), and the stages a run is evaluated at: ``untrained`` (step 0), ``step<k>`` (the snapshot after
global step k, ``evaluation.probe_steps``) and ``trained`` (the final model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from ..utils.jsonfile import parse_json
from ..utils.messages import file_line

RESULT = "result.json"


class AblationError(ValueError):
    """An ablation config, data folder or output folder that cannot be used."""


class Maybe(NamedTuple):
    """A schema for a value that may be null."""

    schema: Any


class Each(NamedTuple):
    """A schema for an object of any keys, each value of ``schema``."""

    schema: Any


NUMBER = (int, float)
# What the study reads of its own JSON files. A schema is a type (or a tuple of types), a dict (an object with these
# keys, others allowed; a key ending in "?" may be missing), [schema] (a list of them), [s1, s2, ...] (a list of
# exactly these), Maybe or Each.
TRAINING = {"seconds": NUMBER, "global_steps": int}  # training.json, and a result's "training"
SPLIT = {"pristine": object, "images": object, "seed": object, "rule": object, "holdout": [str], "train": [str]}
RUNS = [
    {
        "command": str,
        "started": object,
        "seconds": Maybe(NUMBER),
        "done": object,
        "skipped": object,
        "failed": [[object, object, object, object]],  # variant, seed, stage, message
    }
]
MACHINE = {"platform": str, "cpu": str, "cpu_count": object, "torch_threads": object, "python": str, "torch": str}
SUMMARY = {"machine?": MACHINE, "commit?": str}  # what a report rewritten from the results keeps of the earlier one
BENCHMARK = {
    "srcc": {"median": Maybe(NUMBER)},  # NaN is stored as null
    "plcc": {"median": Maybe(NUMBER)},
    "monotonicity?": Maybe({"share": Maybe(NUMBER), "kendall": Maybe(NUMBER)}),
    "per_group?": Each(Maybe({"srcc": Maybe(NUMBER)})),
}
RESULT_SCHEMA = {
    "step?": Maybe(int),
    "parameters": int,
    "training?": Maybe(TRAINING),
    "benchmarks": Each(BENCHMARK),
    "timings": {"benchmarks": Each({"features_s": NUMBER, "protocol_s": NUMBER}), "stage_s": NUMBER},
}
_KINDS = {dict: "an object", list: "a list", str: "a string", bool: "true or false", type(None): "null"}


def _kind(value: Any) -> str:
    return f"a list of {len(value)} items" if isinstance(value, list) else _KINDS.get(type(value), "a number")


def _describe(schema: Any) -> str:
    if isinstance(schema, dict):
        keys = [k for k in schema if not k.endswith("?")]
        return "an object" + (f" with {', '.join(keys)}" if keys else "")
    if isinstance(schema, (list, Each)):
        return "an object" if isinstance(schema, Each) else "a list" + f" of {len(schema)} items" * (len(schema) > 1)
    kinds = schema if isinstance(schema, tuple) else (schema,)
    return " or ".join(dict.fromkeys(_KINDS.get(k, "a number") for k in kinds))


def mismatch(value: Any, schema: Any, where: str = "") -> str | None:
    """What of ``value`` does not fit ``schema`` (see above), named by its place in the file; None when it fits."""
    if isinstance(schema, Maybe):
        return None if value is None else mismatch(value, schema.schema, where)
    container = dict if isinstance(schema, (dict, Each)) else list if isinstance(schema, list) else schema
    fits = isinstance(value, container) and not (isinstance(value, bool) and container in (int, NUMBER))
    if not fits or (isinstance(schema, list) and len(schema) > 1 and len(value) != len(schema)):
        return f"{where or 'the file'} is {_kind(value)}, not {_describe(schema)}"
    dot = "." if where else ""
    if isinstance(schema, dict):
        missing = [k for k in schema if not k.endswith("?") and k not in value]
        if missing:
            return f"{where}{dot}{missing[0]} is missing"
        keys = [k for k in schema if k.rstrip("?") in value]
        places = [(value[k.rstrip("?")], schema[k], f"{where}{dot}{k.rstrip('?')}") for k in keys]
    elif isinstance(schema, Each):
        places = [(v, schema.schema, f"{where}{dot}{k}") for k, v in value.items()]
    elif isinstance(schema, list):
        subs = schema if len(schema) > 1 else schema * len(value)
        places = [(v, sub, f"{where}[{i}]") for i, (v, sub) in enumerate(zip(value, subs))]
    else:
        places = []
    return next((problem for place in places if (problem := mismatch(*place)) is not None), None)


def read_json(path: Path, schema: Any, redo: str) -> Any:
    """The value of one of the study's own JSON files, checked against ``schema`` (see :func:`mismatch`).
    AblationError naming the file, what is wrong and ``redo`` (what to do) when it is unreadable, damaged, nested
    too deeply or of another shape."""
    try:
        value = parse_json(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise AblationError(
            file_line(path, f"not JSON: not UTF-8 text ({err.reason} at byte {err.start})", redo)
        ) from None
    except (OSError, ValueError) as err:
        raise AblationError(
            file_line(path, f"not readable JSON ({getattr(err, 'strerror', None) or err})", redo)
        ) from None
    problem = mismatch(value, schema)
    if problem is not None:
        raise AblationError(file_line(path, problem, redo))
    return value


def read_split(out: Path) -> dict:
    return read_json(split_path(out), SPLIT, "delete it and rerun the study: the seed in the config splits again")


def read_runs(out: Path) -> list:
    path = runs_path(out)
    return read_json(path, RUNS, "delete it (it lists the study's invocations)") if path.exists() else []


def stages(probe_steps=(), untrained: bool = True) -> tuple[str, ...]:
    """The stages of one run in training order; probe step 0 is the ``untrained`` stage."""
    probes = sorted(set(probe_steps))
    first = ("untrained",) if untrained or 0 in probes else ()
    return (*first, *(f"step{k}" for k in probes if k > 0), "trained")


def stage_step(stage: str) -> int | None:
    """The global step a stage's model has: 0, k, or None for ``trained`` (its training.json says)."""
    if stage == "untrained":
        return 0
    if stage.startswith("step") and stage[4:].isdigit():
        return int(stage[4:])
    return None


def run_folder(out: Path, variant: str, seed: int) -> Path:
    return out / variant / f"seed{seed}"


def result_path(out: Path, variant: str, seed: int, stage: str) -> Path:
    return run_folder(out, variant, seed) / stage / RESULT


def has_runs(out: Path) -> bool:
    """Whether any result or training run exists in ``out`` (results that depend on its settings and split)."""
    patterns = (f"*/seed*/*/{RESULT}", "*/seed*/train/state.pt", "*/seed*/train/model.safetensors")
    return any(next(out.glob(p), None) is not None for p in patterns)


def split_path(out: Path) -> Path:
    """The file split of the pristine images (``data/split.json``)."""
    return out / "data" / "split.json"


def runs_path(out: Path) -> Path:
    """One entry per invocation of the study (``runs.json``)."""
    return out / "runs.json"
