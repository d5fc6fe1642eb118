"""The ablation report on a hand-made results tree: t intervals over seeds, paired differences
overall and per distortion group, cost per variant, learning curves, the scope text."""

import csv
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from faults import full_disk_for_text
from scipy import stats

from arniqa.ablation import AblationError, load_ablation_config, write_report

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ablation_tiny.yaml"
SEEDS = (0, 1, 2)
# median SRCC of the final models; the SE variant is better by 0.05, 0.07, 0.03
SRCC = {"resnet50": (0.40, 0.45, 0.50), "se_resnet50_stages123": (0.45, 0.52, 0.53)}
# SRCC within two groups: SE helps blur clearly, hurts noise clearly
BLUR = {"resnet50": (0.30, 0.35, 0.40), "se_resnet50_stages123": (0.40, 0.44, 0.51)}
NOISE = {"resnet50": (0.60, 0.62, 0.64), "se_resnet50_stages123": (0.50, 0.53, 0.53)}
SPEED = {"resnet50": (4.0, 5.0, 6.0), "se_resnet50_stages123": (2.0, 2.5, 3.0)}  # samples/s in log windows


def fake_result(variant, seed, stage, step):
    i = SEEDS.index(seed)
    scale = {"untrained": 0.5, "step5": 0.8, "trained": 1.0}[stage]
    return {
        "variant": variant,
        "seed": seed,
        "stage": stage,
        "step": step,
        "parameters": 100 if variant == "resnet50" else 120,
        "training": None if stage == "untrained" else {"global_steps": 10, "seconds": 50.0, "resumed": False},
        "benchmarks": {
            "synthetic": {
                "srcc": {"median": SRCC[variant][i] * scale},
                "plcc": {"median": 0.5},
                "monotonicity": None,
                "per_group": {"blur": {"srcc": BLUR[variant][i] * scale}, "noise": {"srcc": NOISE[variant][i] * scale}},
            }
        },
        "timings": {"benchmarks": {"synthetic": {"features_s": 1.0, "protocol_s": 1.0}}, "stage_s": 2.0},
    }


@pytest.fixture
def tree(tmp_path):
    out = tmp_path / "out"
    config = load_ablation_config(CONFIG, [f"output={out}", "seeds=[0, 1, 2]", "evaluation.probe_steps=[0, 5]"])
    (out / "data").mkdir(parents=True)
    (out / "data" / "split.json").write_text(
        json.dumps(
            {"pristine": "/p", "images": 10, "seed": 0, "rule": "6 held out", "train": ["a"] * 4, "holdout": ["b"] * 6}
        )
    )
    for variant in SRCC:
        for seed in SEEDS:
            for stage, step in (("untrained", 0), ("step5", 5), ("trained", 10)):
                path = out / variant / f"seed{seed}" / stage / "result.json"
                path.parent.mkdir(parents=True)
                path.write_text(json.dumps(fake_result(variant, seed, stage, step)))
            with open(_log(out, variant, seed), "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["global_step", "epoch", "step", "loss", "lr", "samples_per_s", "elapsed_s"])
                for k in range(1, 11):
                    w.writerow([k, 0, k - 1, 3.4 - 0.01 * k, 1e-3, SPEED[variant][k % 3], k])
    return config, out


def _log(out, variant, seed):
    folder = out / variant / f"seed{seed}" / "train"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "log.csv"


def scipy_interval(values):
    v = np.asarray(values)
    return stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))


def test_report_intervals_groups_cost_and_curves(tree):
    config, out = tree
    write_report(config, out)
    summary = json.loads((out / "summary.json").read_text())["benchmarks"]["synthetic"]
    for variant, values in SRCC.items():
        got = summary["by_variant"][variant]["trained"]["srcc"]
        assert got["mean"] == pytest.approx(np.mean(values))
        assert (got["low"], got["high"]) == pytest.approx(scipy_interval(values))
    diff = np.subtract(SRCC["se_resnet50_stages123"], SRCC["resnet50"])
    got = summary["differences"]["se_resnet50_stages123"]["trained"]["srcc"]
    assert got["differences"] == pytest.approx(diff)
    assert (got["low"], got["high"]) == pytest.approx(scipy_interval(diff))
    for group, table in (("blur", BLUR), ("noise", NOISE)):
        d = np.subtract(table["se_resnet50_stages123"], table["resnet50"])
        g = summary["groups"]["se_resnet50_stages123"]["trained"][group]
        assert g["mean"] == pytest.approx(d.mean()) and (g["low"], g["high"]) == pytest.approx(scipy_interval(d))
    # probes at step 5 are a stage with their own paired differences
    step5 = summary["differences"]["se_resnet50_stages123"]["step5"]["srcc"]
    assert step5["mean"] == pytest.approx(0.8 * diff.mean())

    report = (out / "report.md").read_text()
    lines = {
        line.split("|")[2].strip(): line
        for line in report.splitlines()
        if line.startswith("| se_resnet50_stages123 | ") and ("helps" in line or "hurts" in line)
    }
    assert "helps" in lines["blur"] and "hurts" in lines["noise"]
    assert "| group |" in report and "cannot show" in report and "learning_curves.png" in report
    # cost: batch 2 / median samples/s of the log windows; parameters from the results
    assert "| resnet50 | 100 | 0.400 | 3 |" in report  # 2 / 5.0
    assert "| se_resnet50_stages123 | 120 | 0.800 | 3 |" in report  # 2 / 2.5
    assert (out / "learning_curves.png").stat().st_size > 1000
    assert "Each run trained on 4 pristine images for 10 steps of batch 2 at " in report
    assert "* n = 3 seeds per variant." in report and "consistent over the 3 seeds." in report
    # the types and seeds as prose, not Python lists (['gaublur', 'whitenoise'], [0, 1, 2])
    assert "40x32 px x 2 types (`gaublur`, `whitenoise`) x 5 levels (seed 0)" in report
    assert "* Seeds: 0, 1, 2\n" in report


def test_the_scale_of_a_one_image_one_step_run_is_said_in_the_singular(tree):
    """It said "trained on 1 pristine images for 1 step(s)"."""
    from arniqa.ablation.report import scale_text

    config, out = tree
    text = scale_text(config, {"train": ["a"]}, {"run": {"training": {"global_steps": 1}}})
    assert text.startswith("**Scale.** Each run trained on 1 pristine image for 1 step of batch 2 at ")
    one_seed = load_ablation_config(CONFIG, [f"output={out}", "seeds=[0]", "evaluation.probe_steps=[0, 5]"])
    report = write_report(one_seed, out).read_text()
    assert "* n = 1 seed per variant." in report and "consistent over the 1 seed." in report
    assert "* With 1 seed an interval is wide" in report and "they train on 4 pristine images, not" in report


def test_a_report_rewritten_elsewhere_names_the_machine_and_commit_that_made_the_results(tree, monkeypatch):
    """`arniqa ablate --report-only` (and a rerun that skipped every stage) named the machine and commit that
    rewrote the report as the study's, e.g. a laptop for a study run on a GPU machine."""
    from typer.testing import CliRunner

    from arniqa.ablation import report as report_module
    from arniqa.cli import _register, app

    _register()
    config, out = tree
    machine = {"platform": "Linux", "cpu_count": 16, "torch_threads": 16, "python": "3.11", "torch": "2.11"}
    study = dict(machine, cpu="the study's CPU")
    monkeypatch.setattr(report_module, "describe", lambda: study)
    monkeypatch.setattr(report_module, "git_commit", lambda: "aaaa")
    write_report(config, out)
    monkeypatch.setattr(report_module, "describe", lambda: dict(machine, cpu="the reader's CPU"))
    monkeypatch.setattr(report_module, "git_commit", lambda: "bbbb")
    result = CliRunner().invoke(app, ["ablate", str(CONFIG), "-o", str(out), "--report-only"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["machine"], summary["commit"]) == (study, "aaaa")
    report = (out / "report.md").read_text()
    assert "CPU the study's CPU (16 logical cores)" in report and "* Commit: `aaaa`" in report
    # a process that made results names itself
    write_report(config, out, made_here=True)
    assert json.loads((out / "summary.json").read_text())["commit"] == "bbbb"


def test_a_report_rewritten_with_runs_missing_says_which(tree):
    """`arniqa ablate --report-only` on a study with a run's results missing (deleted, another machine's copy not
    yet back) said 'report written' alone: the report's count of finished runs was the only word of it."""
    from typer.testing import CliRunner

    from arniqa.cli import _register, app

    _register()
    _, out = tree
    for stage in ("untrained", "trained"):
        (out / "resnet50" / "seed1" / stage / "result.json").unlink()
    with pytest.warns(UserWarning) as said:  # `warning: ` and the line on stderr, as every command's warnings
        result = CliRunner().invoke(app, ["ablate", str(CONFIG), "-o", str(out), "--report-only"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"report written to {out / 'report.md'}\n"
    assert [str(w.message) for w in said] == [
        f"{out}: 2 of 8 runs have no result (resnet50 seed 1 untrained, resnet50 seed 1 trained); the report "
        "leaves them out: rerun arniqa ablate without --report-only to run them"
    ]
    assert "Finished runs: 6 of 8" in (out / "report.md").read_text()
    (out / "resnet50" / "seed1" / "trained" / "result.json").write_text(
        json.dumps(fake_result("resnet50", 1, "trained", 10))
    )
    (out / "resnet50" / "seed1" / "untrained" / "result.json").write_text(
        json.dumps(fake_result("resnet50", 1, "untrained", 0))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = CliRunner().invoke(app, ["ablate", str(CONFIG), "-o", str(out), "--report-only"])
    assert result.exit_code == 0, result.output


def test_a_report_that_cannot_be_written_whole_leaves_the_earlier_one_as_it_was(tree, monkeypatch):
    # before: summary.json and each plot were replaced one after the other, so a full disk at report.md left the new
    # summary and plots beside the earlier report, which described other results
    config, out = tree
    write_report(config, out)
    names = ["summary.json", "report.md", "synthetic_bars.png", "learning_curves.png", "loss_curves.png"]
    before = {name: (out / name).read_bytes() for name in names}
    result = out / "resnet50" / "seed0" / "trained" / "result.json"  # another result: every file changes
    changed = fake_result("resnet50", 0, "trained", 10)
    changed["benchmarks"]["synthetic"]["srcc"]["median"] = 0.99
    result.write_text(json.dumps(changed))
    with monkeypatch.context() as disk_full, pytest.raises(OSError, match="No space left"):
        full_disk_for_text(disk_full, lambda path: path.name.startswith(".report."))  # its temporary file, last
        write_report(config, out)
    assert {name: (out / name).read_bytes() for name in names} == before
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temporary file left
    write_report(config, out)
    changed = [name for name in names if (out / name).read_bytes() != before[name]]
    assert changed == ["summary.json", "report.md", "synthetic_bars.png", "learning_curves.png"]  # not the losses


def _changed(where, value, base=None):
    """JSON of ``base`` (a finished result) with the value at ``where`` (keys) replaced, or removed (``...``)."""
    data = json.loads(json.dumps(base or fake_result("resnet50", 0, "trained", 10)))
    inner = data
    for key in where[:-1]:
        inner = inner[key]
    inner.pop(where[-1]) if value is ... else inner.__setitem__(where[-1], value)
    return json.dumps(data)


MONO = "benchmarks.synthetic.monotonicity.share is missing"
RUN = {"command": "c", "started": "s", "seconds": 1, "done": 0, "skipped": 0, "failed": [["v", 0, "trained", "m"]]}
SPLIT = {"pristine": "/p", "images": 10, "seed": 0, "rule": "r", "train": ["a"] * 4, "holdout": ["b"] * 6}
DEEP = "[" * 100_000 + "]" * 100_000  # PyYAML and json stop at Python's recursion limit
DEEPISH = '[{"command": "c", "started": "s", "seconds": 1, "done": 0, "skipped": 0, "failed": ' + "[" * 500
DEEPISH += "]" * 500 + "}]"  # read by json, but not by what walks it again (jsonable stops at about 500)


@pytest.mark.parametrize(
    "name, text, problem",
    [
        ("runs.json", "garbage", "not readable JSON (Expecting value"),
        ("runs.json", DEEP, "not readable JSON (nested more than 100 levels deep"),
        ("runs.json", DEEPISH, "not readable JSON (nested more than 100 levels deep"),
        ("runs.json", "[1]", "[0] is a number, not an object with command, started, seconds, done, skipped, failed"),
        ("data/split.json", '{"train": []}', "pristine is missing; delete it and rerun the study"),
        ("data/split.json", DEEP, "not readable JSON (nested more than 100 levels deep"),
        ("resnet50/seed0/trained/result.json", "[]", "the file is a list of 0 items, not an object with parameters"),
        ("resnet50/seed0/trained/result.json", b"\xff{}", "not JSON: not UTF-8 text (invalid start byte at byte 0)"),
        # an object with a key missing or of another type: a KeyError, TypeError, ValueError or AttributeError
        ("runs.json", json.dumps([{**RUN, "failed": [["v", 0, "trained"]]}]), "[0].failed[0] is a list of 3 items"),
        ("runs.json", json.dumps([{**RUN, "seconds": "1"}]), "[0].seconds is a string, not a number"),
        ("data/split.json", json.dumps({**SPLIT, "train": 4}), "train is a number, not a list; delete it and rerun"),
        ("resnet50/seed0/trained/result.json", '{"benchmarks": {}}', "parameters is missing; delete it, and the study"),
        ("resnet50/seed0/trained/result.json", _changed(["timings", "stage_s"], ...), "timings.stage_s is missing"),
        ("resnet50/seed0/trained/result.json", _changed(["training", "global_steps"], ...), "training.global_steps is"),
        (
            "resnet50/seed0/trained/result.json",
            _changed(["benchmarks", "synthetic", "srcc", "median"], "0.4"),
            "benchmarks.synthetic.srcc.median is a string, not a number; delete it, and the study evaluates",
        ),
        (
            "resnet50/seed0/trained/result.json",
            _changed(["benchmarks", "synthetic", "per_group"], None),
            "benchmarks.synthetic.per_group is null, not an object",
        ),
        (
            "resnet50/seed0/step5/result.json",
            _changed(["benchmarks", "synthetic", "monotonicity"], {"kendall": 0.1}),
            MONO,
        ),
    ],
)
def test_a_damaged_file_of_the_study_is_named_with_what_to_do(tree, name, text, problem):
    """runs.json, split.json and a result.json were read with json.loads and indexed: garbage was json's bare
    `Expecting value: line 1 column 1 (char 0)` naming no file, deep nesting a RecursionError traceback, another
    shape a TypeError or KeyError traceback; an object lacking a key the report reads, or with a value of another
    type, was a KeyError, TypeError, ValueError or AttributeError traceback."""
    config, out = tree
    (out / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(AblationError, match=re.escape(f"{out / name}: {problem}")):
        write_report(config, out)
