"""The user docs' Python examples run: every ```python block of the docs below, and the `python3 -c` programs of
their ```bash blocks, against a tiny model (TinyARNIQA with a head: no weights to download, milliseconds an
image), so a renamed function, option or attribute fails here rather than in a user's hands."""

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_arniqa import tiny_checkpoint

import arniqa
import arniqa.inference

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/usage.md", "docs/explain.md", "docs/degradations.md", "docs/evaluation.md")
SKIPPED = {  # a block holding this text: why it does not run here
    "import ray": "needs Ray Data and a cluster",
    "torch.hub.load(": "loads from GitHub",
    "run_evaluation(": "needs a labelled dataset",
}


def _programs() -> list[tuple[str, str]]:
    """(where, source) of each Python block, and of each `python3 -c "..."` in a bash block."""
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text()
        for block in re.finditer(r"^```(python|bash)\n(.*?)^```", text, re.S | re.M):
            line = text[: block.start()].count("\n") + 1
            if block.group(1) == "python":
                found.append((f"{doc}:{line}", block.group(2)))
            else:
                found += [(f"{doc}:{line}", c) for c in re.findall(r'python3? -c "(.*?)"', block.group(2), re.S)]
    return found


PROGRAMS = _programs()


def test_every_skip_still_names_a_block():
    for text in SKIPPED:
        assert any(text in source for _, source in PROGRAMS), f"no block holds {text!r}: drop it from SKIPPED"


@pytest.mark.parametrize("where, source", PROGRAMS, ids=[where for where, _ in PROGRAMS])
def test_the_example_runs(where, source, tmp_path, monkeypatch):
    if reason := next((why for text, why in SKIPPED.items() if text in source), None):
        pytest.skip(reason)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for name in ("photo.jpg", "a.jpg", "b.jpg", "b.png"):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(name)
    # every model the examples name (published ones, checkpoints) is the tiny one, with a regressor and a head
    tiny = tiny_checkpoint(tmp_path / "tiny.safetensors", monkeypatch)
    (tmp_path / "model.safetensors").write_bytes((tmp_path / "plain-tiny.safetensors").read_bytes())
    real_load = arniqa.inference.load

    def load(name_or_path=None, weights_dir=None, **options):
        return real_load(tiny, **options)

    monkeypatch.setattr(arniqa.inference, "load", load)
    monkeypatch.setattr(arniqa, "_cached_scorers", {})
    names = {  # what the examples leave to the reader
        "paths": ["a.jpg", "b.png"],
        "x": torch.rand(3, 24, 32),
        "four_crops": torch.rand(4, 3, 24, 24),
        "crops_4b": torch.rand(8, 3, 24, 24),
        "chains_4b": [[("gaublur", 2), ("jpeg", 1)]] * 8,
    }
    exec(compile(source, where, "exec"), names)


def test_every_test_the_docs_cite_exists():
    """The docs cite tests as the evidence of a promise (`tests/x/test_y.py::test_z`, a path relative to tests/ or,
    in reliability.md, to tests/reliability/, or a bare test name): each file and each name must be there."""
    tests = ROOT / "tests"
    defined = {name for path in tests.rglob("test_*.py") for name in re.findall(r"def (test_\w+)", path.read_text())}
    missing = []
    for doc in ("README.md", *(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md"))):
        text = (ROOT / doc).read_text()
        for path, name in re.findall(r"((?:[\w/]+/)?test_\w+\.py)(?:::(\w+))?", text):
            file = next((f for f in (ROOT / path, tests / path, tests / "reliability" / path) if f.is_file()), None)
            if file is None or (name and not re.search(rf"def {name}\b", file.read_text())):
                missing.append(f"{doc}: {path}::{name}" if name else f"{doc}: {path}")
        missing += [
            f"{doc}: {name}" for name in re.findall(r"(?<![\w/.])(test_\w+)\b(?!\.py)", text) if name not in defined
        ]
    assert not missing, "cited but not found:\n" + "\n".join(missing)


def _alternatives(path: str) -> list[str]:
    """``a-{1,2}.json`` -> ``a-1.json``, ``a-2.json`` (shell braces, as the docs write several files)."""
    if m := re.search(r"\{([^{}]*)\}", path):
        return [p for alt in m.group(1).split(",") for p in _alternatives(path[: m.start()] + alt + path[m.end() :])]
    return [path]


def test_every_file_the_docs_name_exists():
    """Each repository path the docs give (a benchmark, its results JSON, a config, a module, a test file, a results
    folder; globs and braces taken as the shell does; ``<device>`` placeholders and a ``module.function`` after the
    file allowed) and each relative link is there, so a renamed or dropped file fails here."""
    missing = []
    for doc in ("README.md", *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").rglob("*.md")))):
        text = (ROOT / doc).read_text()
        for path in re.findall(
            r"(?<![\w./-])((?:benchmarks|configs|docs/results|src/arniqa|tests)/[\w./*{},<>-]*\w)", text
        ):
            if "<" in path:
                continue  # a pattern of names: training-<device>.json
            for one in _alternatives(path):
                module = re.sub(r"\.\w+$", ".py", one)  # tests/imaging.png_header_only: a function in imaging.py
                if not list(ROOT.glob(one)) and not (ROOT / module).is_file():
                    missing.append(f"{doc}: {one}")
        for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if not re.match(r"[a-z]+:", link) and not ((ROOT / doc).parent / link).exists():
                missing.append(f"{doc}: link {link}")
    assert not missing, "named but not found:\n" + "\n".join(missing)


def _commands(spans: bool = True) -> list[tuple[str, str]]:
    """(where, command) of each `arniqa VERB ...` the docs show: in ```bash blocks (a line, with its `\\` lines)
    and, with ``spans``, in inline code (prose may quote part of one: `arniqa train --resume`), cut at a comment,
    a pipe, `;` or `&&`."""
    found = []
    for doc in ("README.md", *(f"docs/{path.name}" for path in sorted((ROOT / "docs").glob("*.md")))):
        text = (ROOT / doc).read_text()
        blocks = [b.group(1).replace("\\\n", " ") for b in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M)]
        inline = re.findall(r"`([^`]+)`", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)) if spans else []
        for snippet in [line for block in blocks for line in block.splitlines()] + inline:
            for part in re.split(r"\||;|&&", re.split(r"\s#", " ".join(snippet.split()))[0]):
                found += [(doc, m.group(0)) for m in re.finditer(r"(?<![\w./-])arniqa [a-z].*", part)]
    return found


def _verb(words: list[str]):
    """The command ``arniqa WORDS...`` runs and the words after its name (a group's verb: `explain fit`), or None
    when the first word is no verb (`arniqa demo`'s folder `arniqa-demo`, prose)."""
    import typer

    from arniqa.cli import _register, app

    _register()
    verb = typer.main.get_command(app).commands.get(words[0])
    if verb is not None and hasattr(verb, "commands") and len(words) > 1 and words[1] in verb.commands:
        return verb.commands[words[1]], words[2:]
    return (verb, words[1:]) if verb is not None else None


def test_every_option_the_docs_show_exists():
    """Each `--option` (and `-x`) after `arniqa VERB` in the docs is an option of that verb."""
    wrong = []
    for doc, command in _commands():
        found = _verb(command.split()[1:])
        if found is None:
            continue
        verb, words = found
        options = {o for p in verb.params for o in (*p.opts, *p.secondary_opts)}
        flags = {w.split("=")[0] for w in words if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", w)}
        wrong += [f"{doc}: {flag} in `{command}`" for flag in sorted(flags - options)]
    assert not wrong, "not an option of the verb:\n" + "\n".join(wrong)


def test_every_command_line_the_docs_show_parses():
    """Each `arniqa ...` line of a ```bash block parses as the command would parse it: a value after each option
    that takes one, none after a flag, the required options and arguments given, values of their type."""
    from arniqa.cli import _option_errors

    wrong = []
    for doc, command in _commands(spans=False):
        verb, words = _verb(shlex.split(command)[1:])
        try:
            verb.make_context(f"arniqa {verb.name}", words)
        except _option_errors() as e:
            wrong.append(f"{doc}: `{command}`: {e.format_message()}")
    assert not wrong, "\n".join(wrong)
