"""The layers of docs/design.md, checked on the source text (nothing is imported): every import of an
arniqa module goes to its own floor or a lower one, and neither the modules nor the packages import
each other in a cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The floors from the bottom (docs/design.md, "Layers import downwards only"); a module may import its
# own floor and the floors below. A floor is named by the first name under arniqa (a package or a
# module); `arniqa` is the package root (load, score, distort, __version__), which cli reads the version
# from, and `__main__` is `python -m arniqa`.
FLOORS = (
    ("constants", "utils"),
    ("degradations", "data"),
    ("models",),
    ("train", "evaluate", "inference", "reports"),
    ("ablation", "demo", "explain", "integrations", "arniqa"),
    ("cli",),
    ("__main__",),
)


def module_files(package: Path) -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is a package)}`` for every ``.py`` file under ``package``."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def import_graph(package: Path) -> dict[str, set[str]]:
    """``{module: the modules of the package it imports}``.

    Every import statement counts, also those inside functions and under ``if TYPE_CHECKING``: a lazy
    import runs when its function does, so it is a dependency like any other; it must point down too
    and cannot hide a cycle. (Imports through ``importlib`` are not seen: ``inference/__init__.py``
    loads its own submodules that way.) ``from P import n`` depends on the module ``P.n`` when there is
    one, else on ``P`` (where ``n`` is defined); the parent packages Python runs first are not counted.
    """
    name = package.name
    files = module_files(package)
    graph = {}
    for module, (path, is_package) in files.items():
        here = module if is_package else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.split(".")[0] == name}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = here.split(".")
                    base = parts[: max(0, len(parts) - node.level + 1)]  # beyond the top: not ours
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.split(".")[0] != name:
                    continue
                targets |= {f"{source}.{a.name}" if f"{source}.{a.name}" in files else source for a in node.names}
        graph[module] = targets - {module}
    return graph


def floor_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def layer_problems(package: Path, floors=FLOORS) -> list[str]:
    """Every breach of the layers under ``package``, one line each; empty when there is none."""
    level = {name: i for i, names in enumerate(floors) for name in names}
    graph = import_graph(package)
    problems = [f"{m}: not on a floor" for m in sorted(graph) if floor_of(m) not in level]
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if target not in graph:
                problems.append(f"{module} imports {target}, which does not exist")
            elif floor_of(module) in level and level.get(floor_of(target), -1) > level[floor_of(module)]:
                problems.append(f"{module} imports {target}, a higher floor")
    problems += [f"module cycle: {' '.join(c)}" for c in cycles(graph)]
    # packages too: two packages of one floor may not import each other, even through different modules
    packages = {}
    for module, targets in graph.items():
        packages.setdefault(floor_of(module), set()).update(floor_of(t) for t in targets)
    problems += [f"package cycle: {' '.join(c)}" for c in cycles({k: v - {k} for k, v in packages.items()})]
    return problems


def test_arniqa_imports_only_downwards_and_without_cycles():
    assert layer_problems(ROOT / "src" / "arniqa") == []


def test_every_floor_names_a_part_of_arniqa():
    parts = {floor_of(m) for m in module_files(ROOT / "src" / "arniqa")}
    assert {name for names in FLOORS for name in names} == parts


def test_the_floors_are_the_ones_docs_design_lists():
    text = (ROOT / "docs" / "design.md").read_text()
    sentence = re.search(r"Layers import downwards only: (.*?)\.\s", text, re.DOTALL).group(1)
    listed = tuple(tuple(re.findall(r"`([\w.]+)`", floor)) for floor in sentence.split("─►"))
    assert listed == FLOORS


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


FAKE = {
    "__init__.py": "",
    "low/__init__.py": "from . import a\n",
    "low/a.py": "from .b import x\nimport os\n",
    "low/b.py": "def f():\n    from ..low import a\n",  # lazy, and back to a: a cycle a -> b -> a
    "low/c.py": "from .. import high\nfrom pkg.low import b\n",  # a higher floor; b, not pkg.low
    "high/__init__.py": "from ..low.a import x\nfrom . import name\n",  # name: defined in high/__init__
    "high/d.py": "from . import name\nfrom ....outside import y\nfrom .. import low\n",
}


def test_imports_are_resolved_like_python_does(tmp_path):
    graph = import_graph(write_tree(tmp_path, FAKE))
    assert graph == {
        "pkg": set(),
        "pkg.low": {"pkg.low.a"},
        "pkg.low.a": {"pkg.low.b"},
        "pkg.low.b": {"pkg.low.a"},
        "pkg.low.c": {"pkg.high", "pkg.low.b"},
        "pkg.high": {"pkg.low.a"},  # `from . import name` in high/__init__.py: itself, dropped
        "pkg.high.d": {"pkg.high", "pkg.low"},  # `from ....outside`: above pkg, not pkg's
    }


def test_upward_imports_and_cycles_are_reported(tmp_path):
    package = write_tree(
        tmp_path,
        {
            **FAKE,
            "low/e.py": "import pkg.gone\n",
            "stray.py": "",
            "high/__init__.py": FAKE["high/__init__.py"] + "from . import f\n",
            "high/f.py": "from ..low import c\n",
        },
    )
    floors = (("low",), ("high", "pkg"))
    assert layer_problems(package, floors) == [
        "pkg.stray: not on a floor",
        "pkg.low.c imports pkg.high, a higher floor",
        "pkg.low.e imports pkg.gone, which does not exist",
        "module cycle: pkg.high pkg.high.f pkg.low.c",
        "module cycle: pkg.low.a pkg.low.b",
        "package cycle: high low",
    ]


@pytest.mark.parametrize("upward", ["from ..high import d", "from ..high.d import z", "import pkg.high.d"])
def test_each_spelling_of_an_upward_import_is_found(tmp_path, upward):
    package = write_tree(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "low/a.py": f"def f():\n    {upward}\n",
            "high/__init__.py": "",
            "high/d.py": "",
        },
    )
    assert layer_problems(package, (("low",), ("high",), ("pkg",))) == ["pkg.low.a imports pkg.high.d, a higher floor"]
