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
# every guide, so that a block added to training.md or reliability.md runs too
DOCS = ("README.md", *(str(path.relative_to(ROOT)) for path in sorted((ROOT / "docs").rglob("*.md"))))
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


def _defined(module: Path) -> set[str]:
    """The names a module defines at its top level (functions, classes, assignments); a package's ``__init__`` also
    the names it imports (its API), another module not (a name imported there lives elsewhere)."""
    import ast

    names = set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and module.name == "__init__.py":
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def test_every_function_the_docs_cite_is_in_the_module_they_name():
    """A module's function cited as ``data/png.png_data_short`` or ``arniqa.data.images.ImageError`` is defined (or
    imported) there: a function moved to another module (data/images.py split in four, utils/files.py in six) fails
    here until the docs name its new module. Paths of test files (``data/test_png.py::...``) are not modules."""
    src = ROOT / "src" / "arniqa"
    packages = "|".join(p.name for p in sorted(src.iterdir()) if (p / "__init__.py").is_file())
    cited = re.compile(
        rf"(?<![\w/.-])(?:src/arniqa/|arniqa\.)?((?:{packages})(?:[/.][a-z_]\w*)+?)(?:\.py)?[.:]([A-Za-z_]\w*)"
    )
    stale = []
    for doc in DOCS:
        for line in (ROOT / doc).read_text().splitlines():
            for m in cited.finditer(line):
                module = src / (m.group(1).replace(".", "/") + ".py")
                if not module.is_file():
                    module = src / m.group(1).replace(".", "/") / "__init__.py"
                if (module.parent / f"{m.group(2)}.py").is_file() and module.name == "__init__.py":
                    continue  # a module of the package: arniqa.data.iqa.registry
                if module.is_file() and m.group(2) != "py" and m.group(2) not in _defined(module):
                    stale.append(f"{doc}: {m.group(0)}")
    assert not stale, "cited but not defined there:\n" + "\n".join(stale)


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


GUIDES = {  # the guide that describes each verb's options
    "score": "usage",
    "export": "usage",
    "map": "explain",
    "report": "explain",
    "explain fit": "explain",
    "evaluate": "evaluation",
    "benchmark synthetic": "degradations",
    "train": "training",
    "ablate": "results/README",
    "distort": "degradations",
    "gallery": "degradations",
    "distortions": "degradations",
    "demo": "training",
    "version": "usage",
}


def _verbs(command, path=()):
    """The words of each verb of the typer ``command`` (``explain fit``), walking its groups."""
    if not hasattr(command, "commands"):
        return [" ".join(path)]
    return [v for name, sub in command.commands.items() for v in _verbs(sub, (*path, name))]


def test_every_verb_is_in_the_cli_reference_with_its_guide():
    """Each verb `arniqa --help` lists, walked from the app (a new verb is covered), has a row in docs/usage.md's
    *Every verb* table naming its guide, the guide test_every_option_of_a_verb_is_in_its_guide reads; `arniqa
    version` was in no doc."""
    import typer

    from arniqa.cli import _register, app

    _register()
    text = (ROOT / "docs/usage.md").read_text()
    table = text[text.index("### Every verb") : text.index("### Exit codes")]
    rows = dict(re.findall(r"^\| `arniqa ([a-z ]+)` \|.*\| (?:\[\S+\]\(([\w/]+)\.md\)|this guide) \|$", table, re.M))
    verbs = _verbs(typer.main.get_command(app))
    assert set(verbs) == set(GUIDES) == set(rows)
    assert {verb: rows[verb] or "usage" for verb in verbs} == GUIDES


def test_every_option_of_a_verb_is_in_its_guide():
    """Each option `arniqa VERB --help` lists is named in the guide of that verb, so an option added (map's
    --resume) or a guide that leaves one out (report's --format) fails here."""
    missing = []
    for words, guide in GUIDES.items():
        verb, _ = _verb(words.split())
        text = (ROOT / f"docs/{guide}.md").read_text()
        for p in verb.params:
            names = (*p.opts, *p.secondary_opts)
            if (
                p.param_type_name == "option"
                and "--help" not in names
                and not any(re.search(rf"(?<![\w-]){n}(?![\w-])", text) for n in names)
            ):
                missing.append(f"docs/{guide}.md: arniqa {words} {p.opts[-1]}")
    assert not missing, "not in the verb's guide:\n" + "\n".join(missing)


def test_the_seeds_studys_tables_are_its_committed_results():
    """docs/results/ablation-cpu-20x/README.md's per-run table and step-time ratios, recomputed from the files beside
    it: each run's result.json (SRCC by stage, PLCC and monotone share at the end), its train/log.csv (the last
    logged loss; s/step as the runner's cost table takes it, batch 8 over the median samples/s)."""
    import csv
    import json

    folder = ROOT / "docs/results/ablation-cpu-20x"
    variants = {"ResNet50": "resnet50", "SE-ResNet50 (all stages)": "se_resnet50"}
    variants["SE-ResNet50 (stages 1-3)"] = "se_resnet50_stages123"
    text = (folder / "README.md").read_text()
    seconds, rows = {}, 0
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] not in variants or len(cells) != 11:
            continue
        variant, seed = variants[cells[0]], int(cells[1])
        run = folder / "study" / variant / f"seed{seed}"
        bench = {
            stage: json.loads((run / stage / "result.json").read_text())["benchmarks"]["synthetic"]
            for stage in ("untrained", "step400", "step800", "trained")
        }
        with open(run / "train" / "log.csv", newline="") as f:
            log = list(csv.DictReader(f))
        seconds[variant, seed] = 8 / np.median([float(r["samples_per_s"]) for r in log])
        expected = [f"{b['srcc']['median']:.3f}" for b in bench.values()]
        expected += [f"{bench['trained']['plcc']['median']:.3f}", f"{bench['trained']['monotonicity']['share']:.2f}"]
        expected += [f"{float(log[-1]['loss']):.2f}", f"{seconds[variant, seed]:.2f}"]
        assert cells[2:10] == expected, f"{variant} seed {seed}"
        rows += 1
    assert rows == 9
    # the cost table's ratios to ResNet50 at the same seed (seed 2 of stages 1-3 ran alone in another session)
    for name, seeds in (("SE-ResNet50 (all stages)", (0, 1, 2)), ("SE-ResNet50 (stages 1-3)", (0, 1))):
        line = next(line for line in text.splitlines() if line.startswith(f"| {name} | ") and " M (+" in line)
        stated = [float(x) for x in re.findall(r"(\d\.\d\d)x", line)]
        ratios = [seconds[variants[name], s] / seconds["resnet50", s] for s in seeds]
        assert stated == [round(r, 2) for r in ratios], name


def test_the_gpu_sessions_tables_are_its_json_files():
    """docs/results/gpu-session-h200/README.md's scoring and training-step tables, recomputed from scoring.json and
    step-*.json beside it (GPU figures that cannot be measured again here)."""
    import json

    folder = ROOT / "docs/results/gpu-session-h200"
    text = (folder / "README.md").read_text()
    speed = {}
    for row in json.loads((folder / "scoring.json").read_text())["rows"]:
        speed[row["protocol"], row["size"], row["path"]] = row["images_per_s"]
    columns = [["loop"], ["fp32@b1@w8", "fp32@b8@w8", "fp32@b32@w8"], ["bf16@b1@w8", "bf16@b8@w8", "bf16@b32@w8"]]
    columns += [["nvjpeg-fp32@b8"], ["encoder-fp32@b32", "encoder-bf16@b32"]]
    rows = 0
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not re.fullmatch(r"(crops|whole|pyiqa) \d+x\d+", cells[0]):
            continue
        protocol, size = cells[0].split()
        for cell, paths in zip(cells[1:], columns):
            digits = 0 if paths[0].startswith("encoder") else 1
            assert cell == " / ".join(f"{speed[protocol, size, p]:.{digits}f}" for p in paths), (cells[0], paths)
        rows += 1
    assert rows == 6
    for where, workers in (("device", 8), ("workers", 15)):
        step = json.loads((folder / f"step-{where}-b16.json").read_text())
        assert step["workers"] == workers
        full, encoder = step["full_s_per_step"], step["encoder_s_per_step"]
        ratio = f"{full / encoder:.{1 if full > 2 * encoder else 2}f}x"  # 7.9x, 1.03x
        line = f"| `{where}` | {workers} | {encoder:.3f} | {full:.3f} | {ratio} | {16 / full:.0f} |"
        assert line in text, line


def test_the_learning_curve_pilots_figures_are_their_committed_results():
    """docs/results/curve-cpu-pilots/README.md's SRCC by step, per-group SRCC and step time, recomputed from each
    pilot's result.json files and log.csv."""
    import csv
    import json

    folder = ROOT / "docs/results/curve-cpu-pilots"
    text = (folder / "README.md").read_text()
    groups = {"blur": "blur", "colour": "color_distortion", "spatial": "spatial_distortion", "jpeg": "jpeg"}
    groups |= {"brightness": "brightness_change", "noise": "noise", "sharpness/contrast": "sharpness_contrast"}
    stages = ("untrained", "step400", "step800", "trained")
    results = {}
    for pilot in ("reference-sgd", "adamw"):
        run = folder / pilot / "resnet50" / "seed0"
        results[pilot] = {
            s: json.loads((run / s / "result.json").read_text())["benchmarks"]["synthetic"] for s in stages
        }
        with open(run / "train" / "log.csv", newline="") as f:
            step = 8 / np.median([float(r["samples_per_s"]) for r in csv.DictReader(f)])
        assert f"a training step about {step:.1f} s" in text
    lines = [line for line in text.splitlines() if line.startswith(("| reference: SGD", "| AdamW"))]
    for line, pilot in zip(lines, results, strict=True):
        srcc = [results[pilot][s]["srcc"]["median"] for s in stages]
        cells = [c.strip() for c in line.strip("|").split("|")][2:]
        assert cells == [f"{x:.3f}" for x in srcc] + [f"**{srcc[-1] - srcc[0]:+.3f}**"], pilot
    for name, key in groups.items():
        before, ref, adamw = (results[p][s]["per_group"][key]["srcc"] for p, s in (("adamw", "untrained"),
            ("reference-sgd", "trained"), ("adamw", "trained")))  # fmt: skip
        assert f"{name} {before:.2f} -> {ref:.2f} / {adamw:.2f}" in " ".join(text.split()), name


def test_the_lr_1e3_ablation_table_is_its_summary_json():
    """docs/results/README.md's issue-6 table (SRCC mean and std over seeds, per-seed differences to ResNet50) and
    its monotone shares, recomputed from the per-run rows of ablation-cpu-lr1e-3/summary.json, the study's one
    committed source (its result.json files were not kept)."""
    import json

    summary = json.loads((ROOT / "docs/results/ablation-cpu-lr1e-3/summary.json").read_text())
    runs = {(r["variant"], r["stage"], r["seed"]): r for r in summary["benchmarks"]["synthetic"]["runs"]}
    text = (ROOT / "docs/results/README.md").read_text()
    names = {"ResNet50": "resnet50", "SE-ResNet50 (SE in all stages)": "se_resnet50"}
    names["SE-ResNet50 (SE in stages 1–3)"] = "se_resnet50_stages123"
    seeds = (0, 1, 2)

    def srcc(variant, stage):
        return np.array([runs[variant, stage, s]["srcc"] for s in seeds])

    def spread(x):
        return f"{x.mean():.3f} ± {np.sqrt(((x - x.mean()) ** 2).sum() / (len(x) - 1)):.3f}"

    for name, variant in names.items():
        diffs = srcc(variant, "trained") - srcc("resnet50", "trained")
        per_seed = "–" if variant == "resnet50" else ", ".join(f"{d:+.3f}".replace("-", "−") for d in diffs)
        row = f"| {name} | {spread(srcc(variant, 'untrained'))} | {spread(srcc(variant, 'trained'))} | {per_seed} |"
        assert row in text, row
    mono = [np.mean([runs["resnet50", stage, s]["mono"] for s in seeds]) for stage in ("untrained", "trained")]
    assert f"the monotone share {mono[0]:.2f} → {mono[1]:.2f}" in " ".join(text.split())


def test_the_issue_16_reports_are_written_again_from_their_results(tmp_path):
    """docs/results/README.md: `arniqa ablate ... --report-only` writes ablation-cpu-20x's two reports again from
    the committed results, the same report.md and summary.json (but for the output folder it records)."""
    import json
    import shutil

    from typer.testing import CliRunner

    from arniqa.cli import _register, app

    _register()
    for config, folder in (("curve-cpu.yaml", "curve"), ("ablation-cpu.yaml", "study")):
        committed = ROOT / "docs/results/ablation-cpu-20x" / folder
        out = shutil.copytree(committed, tmp_path / folder)
        (out / "report.md").unlink()
        result = CliRunner().invoke(app, ["ablate", str(ROOT / "configs" / config), "-o", str(out), "--report-only"])
        assert result.exit_code == 0, result.output
        assert (out / "report.md").read_text() == (committed / "report.md").read_text()
        written, before = (json.loads((d / "summary.json").read_text()) for d in (out, committed))
        assert written["config"].pop("output") == str(out)
        before["config"].pop("output")
        assert written == before


def test_the_cpu_training_step_paragraph_is_training_cpu_json():
    """docs/training.md's CPU step figures (encoder, full step, overhead, each part, fused against for-each SGD) are
    those of benchmarks/results/training-cpu.json, the file it names."""
    import json

    run = json.loads((ROOT / "benchmarks/results/training-cpu.json").read_text())
    text = " ".join((ROOT / "docs/training.md").read_text().split())
    stated = [
        f"encoder forward+backward {run['encoder_s_per_step']:.2f} s/step",
        f"full training step {run['full_s_per_step']:.2f} s/step",
        f"(**{100 * run['overhead']:+.1f} %**",
        f"decoding and crops {run['decode_and_crops_s']:.3f} s",
        f"degradation chains {run['degradations_s']:.3f} s",
        f"NT-Xent {run['loss_s']:.3f} s",
        f"fused SGD {run['optimizer_s']:.3f} s against {run['optimizer_foreach_s']:.3f} s",
        f"({run['optimizer_foreach_s'] / run['optimizer_s']:.1f}x as fast",
        f"median of {run['steps']} steps",
    ]
    assert run["optimizer_fused"] and run["device_name"] in text
    assert [s for s in stated if s not in text] == []


def test_the_report_size_table_is_report_cpu_json():
    """docs/explain.md's report sizes and write times at 10,000 rows are those of benchmarks/results/report-cpu.json."""
    import json

    run = json.loads((ROOT / "benchmarks/results/report-cpu.json").read_text())
    text = (ROOT / "docs/explain.md").read_text()
    assert f"{run['rows']:,} rows as `arniqa score` writes them" in " ".join(text.split())
    for r in run["results"]:
        line = next(line for line in text.splitlines() if line.startswith(f"| `{r['thumbnails']}`"))
        size, seconds = [c.strip() for c in line.strip("|").split("|")][1:]
        assert size.startswith(f"{r['bytes'] / 1e6:.{1 if r['bytes'] > 1e7 else 2}f} MB"), line
        digits = 2 if r["seconds"] < 1 else 1 if r["seconds"] < 10 else 0
        assert seconds.startswith(f"{r['seconds']:.{digits}f} s"), line
    embed, none = (next(r["bytes"] for r in run["results"] if r["thumbnails"] == t) for t in ("embed", "none"))
    assert f"({(embed - none) / run['rows'] / 1e3:.1f} kB more per row)" in text


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


def test_the_system_folders_the_docs_name_are_the_ones_a_walk_does_not_enter():
    from arniqa.data.folders import SYSTEM_FOLDERS, is_system_folder

    text = (ROOT / "docs/usage.md").read_text()
    listed = re.search(r"\)`\): (Synology `@eaDir`.*?) \(`data/folders\.SYSTEM_FOLDERS`", text).group(1)
    names = [n for n in re.findall(r"`([^`]+)`", listed) if "THUMB" not in n]
    assert all(map(is_system_folder, names)), names
    assert not is_system_folder(".Trash-") and not is_system_folder("eaDir") and not is_system_folder(".thumbnails")
    assert {n.casefold() for n in names} - {".trash-1000"} == SYSTEM_FOLDERS


def test_the_against_pyiqa_figures_are_the_peers_json_files_they_name():
    """docs/usage.md's *Against pyiqa* table and its earlier-machine sentence give the figures of the
    benchmarks/results files they name (the sentence named peers-cpu.json, two rounds of 1.50 and 1.48, for the
    three rounds of peers-cpu-rerun.json)."""
    import json
    from statistics import median

    text = (ROOT / "docs/usage.md").read_text()
    section = " ".join(text[text.index("**Against pyiqa.**") : text.index("`python benchmarks/inference.py`")].split())
    named = re.search(r"`benchmarks/results/(peers-[\w-]+\.json)`\):", section).group(1)
    run = json.loads((ROOT / "benchmarks/results" / named).read_text())
    lines = text.splitlines()
    start = lines.index("| run | s per round | × pyiqa per round | median × pyiqa | max \\|Δ score\\| |") + 2
    table = [line for line in lines[start : start + len(run["rows"]) + 1] if line.startswith("| ")]
    assert len(table) == len(run["rows"])  # a row each, no more
    for row, line in zip(run["rows"], table, strict=True):
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        assert cells[1] == ", ".join(f"{s:.2f}" for s in row["seconds"]), line
        assert cells[2] == ", ".join(f"{s:.2f}" for s in row["speed_vs_pyiqa_per_round"]), line
        assert cells[3] == f"{row['median_speed_vs_pyiqa']:.2f}", line
    earlier = re.search(r"\(`(peers-[\w-]+\.json)`, [^)]*\) the same benchmark gave ([\d.]+)× pyiqa \(([^)]*)\) "
                        r"and crops ([\d.]+)× below its limit", section)  # fmt: skip
    run = json.loads((ROOT / "benchmarks/results" / earlier.group(1)).read_text())
    rows = {row["run"]: row for row in run["rows"]}
    defaults = rows["arniqa pyiqa protocol, defaults"]
    assert earlier.group(2) == f"{defaults['median_speed_vs_pyiqa']:.2f}"
    assert earlier.group(3) == ", ".join(f"{s:.2f}" for s in defaults["speed_vs_pyiqa_per_round"])
    crops = median(rows["arniqa crops protocol, defaults"]["images_per_s"])
    assert earlier.group(4) == f"{run['encoder_alone_crops_images_per_s'] / crops:.2f}"


def test_the_training_config_table_is_the_configs_defaults():
    """docs/training.md's *Configuration* table: each key it lists (`optim.lr`, `momentum`, `weight_decay`: one
    section) has the default it gives, and every key of the config is in it."""
    from arniqa.train.config import Config, parse_yaml, plain

    defaults = Config().to_dict()
    text = (ROOT / "docs/training.md").read_text()
    table = text[text.index("| key | default | meaning |") :].split("\n\n")[0].splitlines()[2:]
    listed, wrong = set(), []
    for line in table:
        keys, default = (c.strip() for c in line.strip("|").split("|")[:2])
        keys = re.findall(r"`([\w.]+)`", keys)
        section = keys[0].split(".")[0] if "." in keys[0] else None
        dotted = [k if "." in k or section is None else f"{section}.{k}" for k in keys]
        default = default.replace("`", "")
        if " /" in default:  # `model.init` / `model.weights`: `imagenet` / (nothing)
            values = [plain(parse_yaml(v)) or "" for v in default.split("/")]
        else:  # one value, or several: `[1, 2, 3, 4]`, true
            values = plain(parse_yaml(f"[{default}]") if len(keys) > 1 else [parse_yaml(default)])
        assert len(values) == len(dotted), line
        for key, value in zip(dotted, values):
            part, *rest = key.split(".")
            actual = defaults[part][rest[0]] if rest else defaults[part]
            value = float(value) if isinstance(actual, float) else value  # 1e-3: a float to the config, as --set's
            if value != actual and not (value is None and actual == ""):  # an empty cell: the empty string
                wrong.append(f"{key}: the table says {value!r}, the config {actual!r}")
            listed.add(key)
    # a key the table names only in a row's text: `optim.trust_coefficient` (0.001)
    for key, value in re.findall(r"`([a-z]+\.\w+)` \(([^)]+)\)", "\n".join(table)):
        part, name = key.split(".")
        if plain(parse_yaml(value)) != defaults[part][name]:
            wrong.append(f"{key}: the table says {value}, the config {defaults[part][name]!r}")
        listed.add(key)
    every = {f"{part}.{key}" for part, keys in defaults.items() if isinstance(keys, dict) for key in keys}
    every |= {part for part, value in defaults.items() if not isinstance(value, dict)}  # output
    assert not wrong, "\n".join(wrong)
    assert every - listed == set(), "config keys the table leaves out"


def test_the_evaluation_spec_has_the_names_and_defaults_of_evaluates_options():
    """docs/evaluation.md: `EvaluationSpec` takes "the same names and defaults as the options" of `arniqa
    evaluate`: each option is a field of that name and default (a required option: a field without one), but for
    --ray and --ray-workers, which make the spec's `runner`."""
    import dataclasses

    from arniqa.evaluate.run import EvaluationSpec

    assert "same names and defaults as the options" in " ".join((ROOT / "docs/evaluation.md").read_text().split())
    fields = {f.name: f.default for f in dataclasses.fields(EvaluationSpec)}
    verb, _ = _verb(["evaluate"])
    wrong = []
    for p in verb.params:
        if p.name in ("help", "ray", "ray_workers"):
            continue
        default = dataclasses.MISSING if p.required else p.default
        if p.name not in fields:
            wrong.append(f"--{p.name}: no field")
        elif fields[p.name] != default and str(fields[p.name]) != str(default):  # a Path field, a str option
            wrong.append(f"{p.name}: the option's default {default!r}, the field's {fields[p.name]!r}")
    assert not wrong, "\n".join(wrong)
