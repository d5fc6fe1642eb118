"""The benchmark scripts that the docs tell users to run: every name they import from arniqa exists."""

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def arniqa_imports(script: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) of every ``from arniqa... import name`` in the script, inside functions too."""
    found = []
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "arniqa":
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_every_name_a_benchmark_imports_from_arniqa_exists(script):
    # before: explain_cpu.py, int8.py and map_localisation.py imported list_images from arniqa.data.images
    # after it had moved to arniqa.data.folders, so `python benchmarks/int8.py ...` was an ImportError
    missing = []
    for line, module, name in arniqa_imports(script):
        if not hasattr(importlib.import_module(module), name):
            try:
                importlib.import_module(f"{module}.{name}")  # a submodule
            except ImportError:
                missing.append(f"line {line}: {module}.{name}")
    assert not missing, f"{script.name}: {missing}"
