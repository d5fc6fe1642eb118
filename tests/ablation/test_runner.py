"""The ablation runner end to end at tiny scale: results, report, paired differences, skip and resume,
probe stages (snapshots evaluated as ``step<k>``) and the per-group breakdown."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

import arniqa.ablation.runner as runner
import arniqa.train.loop as loop
from arniqa.ablation import AblationError, load_ablation_config, run_ablation
from arniqa.ablation.runner import initial_model
from arniqa.degradations.registry import GROUP_OF

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ablation_tiny.yaml"
VARIANTS = ("resnet50", "se_resnet50_stages123")
SEEDS = (0, 1)


def write_textures(folder: Path, n: int) -> list[Path]:
    """``n`` random-texture RGB PNGs (smooth colour blobs plus fine noise), 56x72 px."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    paths = []
    for i in range(n):
        blobs = np.kron(rng.random((8, 10, 3)), np.ones((8, 8, 1)))[:56, :72]
        pixels = (blobs * 200 + rng.random((56, 72, 3)) * 55).astype(np.uint8)
        paths.append(folder / f"tex{i}.png")
        Image.fromarray(pixels).save(paths[-1])
    return paths


@pytest.fixture
def study(tmp_path, monkeypatch):
    """Config for 8 pristine images (6 held out), and a record of every training call."""
    write_textures(tmp_path / "pristine", 8)
    calls = []
    real_fit = loop.Trainer.fit

    def counting_fit(trainer, resume=None):
        calls.append((trainer.config.model.backbone, trainer.config.train.seed, resume))
        return real_fit(trainer, resume)

    monkeypatch.setattr(loop.Trainer, "fit", counting_fit)
    config = load_ablation_config(CONFIG, [f"data.pristine={tmp_path / 'pristine'}", f"output={tmp_path / 'out'}"])
    return config, tmp_path / "out", calls


def result(out: Path, variant: str, seed: int, stage: str) -> dict:
    return json.loads((out / variant / f"seed{seed}" / stage / "result.json").read_text())


def test_ablation_end_to_end_skip_and_resume(study):
    config, out, calls = study
    # an invocation stopped before its end (Ctrl-C, a session's end) is still listed in runs.json
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "split_pristine", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            run_ablation(config, command="arniqa ablate stopped", quiet=True)
    outcome = run_ablation(config, command="arniqa ablate tiny", quiet=True)
    assert outcome["failed"] == [] and outcome["done"] == 8 and outcome["skipped"] == 0
    assert len(calls) == 4 and all(resume is None for *_, resume in calls)

    # the split is by file, disjoint, and the benchmark is built from the held-out part only
    split = json.loads((out / "data" / "split.json").read_text())
    assert len(split["holdout"]) == 6 and len(split["train"]) == 2
    assert not set(split["holdout"]) & set(split["train"])
    sources = (out / "benchmarks" / "synthetic" / "sources.csv").read_text()
    assert all(p in sources for p in split["holdout"]) and not any(p in sources for p in split["train"])

    # every result has the expected structure
    for variant in VARIANTS:
        for seed in SEEDS:
            for stage in ("untrained", "trained"):
                r = result(out, variant, seed, stage)
                assert (r["variant"], r["seed"], r["stage"]) == (variant, seed, stage)
                bench = r["benchmarks"]["synthetic"]
                assert bench["images"] == 6 * 2 * 5 and bench["references"] == 6 and bench["splits"] == 3
                assert -1 <= bench["srcc"]["median"] <= 1 and -1 <= bench["plcc"]["median"] <= 1
                assert 0 <= bench["monotonicity"]["share"] <= 1 and len(bench["monotonicity"]["per_split"]) == 3
                assert (r["training"] is None) == (stage == "untrained")
            trained, untrained = result(out, variant, seed, "trained"), result(out, variant, seed, "untrained")
            assert trained["training"]["global_steps"] == 1
            assert trained["fingerprint"] != untrained["fingerprint"]  # training changed the weights
    assert (
        result(out, VARIANTS[1], 0, "untrained")["parameters"] > result(out, VARIANTS[0], 0, "untrained")["parameters"]
    )

    # report files, and paired differences equal to the per-seed differences of the result files
    for name in ("report.md", "summary.json", "loss_curves.png", "synthetic_bars.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    for stage in ("trained", "untrained"):
        for measure in ("srcc", "plcc"):
            se = np.array(
                [result(out, VARIANTS[1], s, stage)["benchmarks"]["synthetic"][measure]["median"] for s in SEEDS]
            )
            base = np.array(
                [result(out, VARIANTS[0], s, stage)["benchmarks"]["synthetic"][measure]["median"] for s in SEEDS]
            )
            got = summary["benchmarks"]["synthetic"]["differences"][VARIANTS[1]][stage][measure]
            np.testing.assert_allclose(got["differences"], se - base, atol=1e-12)
            assert got["seeds"] == list(SEEDS)
            assert got["mean"] == pytest.approx(np.mean(se - base))
            assert got["std"] == pytest.approx(
                np.sqrt(np.sum((se - base - np.mean(se - base)) ** 2) / (len(SEEDS) - 1))
            )
            if got["std"] > 0:
                assert got["t"] == pytest.approx(stats.ttest_rel(se, base).statistic)
            by_variant = summary["benchmarks"]["synthetic"]["by_variant"][VARIANTS[1]][stage][measure]
            assert by_variant["mean"] == pytest.approx(se.mean())
    invocations = json.loads((out / "runs.json").read_text())
    assert [r["command"] for r in invocations] == ["arniqa ablate stopped", "arniqa ablate tiny"]
    assert invocations[0]["seconds"] is None and invocations[1]["seconds"] > 0
    assert (invocations[1]["done"], invocations[1]["skipped"]) == (8, 0)
    report = (out / "report.md").read_text()
    assert "stopped before its end" in report and "arniqa ablate stopped" in report
    assert "arniqa ablate tiny" in report and "Paired differences" in report and "140,000" in report
    diff = summary["benchmarks"]["synthetic"]["differences"][VARIANTS[1]]["trained"]["srcc"]
    assert f"{diff['mean']:+.4f}" in report

    # a rerun skips everything: no training, result files untouched
    files = sorted(out.glob("*/seed*/*/result.json"))
    assert len(files) == 8
    mtimes = [f.stat().st_mtime_ns for f in files]
    calls.clear()
    again = run_ablation(config, quiet=True)
    assert again["done"] == 0 and again["skipped"] == 8 and calls == []
    assert [f.stat().st_mtime_ns for f in files] == mtimes

    # an interrupted training run (a checkpoint, no final model) resumes from its state.pt
    folder = out / VARIANTS[0] / "seed1"
    state = folder / "train" / "state.pt"
    assert not state.exists()  # finished runs drop their resumable state
    for name in ("trained/result.json", "train/model.safetensors", "training.json"):
        (folder / name).unlink()
    interrupted = loop.Trainer(config.train_config(VARIANTS[0], 1, folder / "train", out / "data" / "train"))
    interrupted.seconds_before = 1000.0  # an interrupted invocation's time: the total goes on from it
    interrupted.save_state()
    assert state.is_file()
    resumed = run_ablation(config, quiet=True)
    assert resumed["done"] == 1 and resumed["skipped"] == 7
    assert calls == [("resnet50", 1, state)]
    training = result(out, VARIANTS[0], 1, "trained")["training"]
    assert training["resumed"] is True and training["seconds"] > 1000.0
    assert [f.stat().st_mtime_ns for f in files if folder not in f.parents] == [
        m for f, m in zip(files, mtimes) if folder not in f.parents
    ]


def test_untrained_baseline_is_the_training_start(tmp_path):
    """The untrained model of a variant and seed has exactly the weights its training run starts from."""
    write_textures(tmp_path / "pristine", 2)
    config = load_ablation_config(CONFIG, [f"data.pristine={tmp_path / 'pristine'}"])
    train_config = config.train_config(VARIANTS[1], 1, tmp_path / "run", tmp_path / "pristine")
    start = loop.Trainer(train_config).model.state_dict()
    mine = initial_model(train_config).state_dict()
    assert start.keys() == mine.keys()
    assert all(torch.equal(start[k], mine[k]) for k in start)
    other = initial_model(config.train_config(VARIANTS[1], 0, tmp_path / "run", tmp_path / "pristine")).state_dict()
    assert not all(torch.equal(other[k], mine[k]) for k in mine)  # another seed, other weights


def test_changed_settings_are_refused(study):
    config, out, calls = study
    other = {"data": {}, "synthetic": {}, "datasets": [], "recipe": {}, "evaluation": {}}
    finished = out / "resnet50" / "seed0" / "trained" / "result.json"
    finished.parent.mkdir(parents=True)
    finished.write_text("{}")
    (out / "study.json").write_text(json.dumps(other))
    with pytest.raises(AblationError, match="other settings"):
        run_ablation(config, quiet=True)
    assert calls == [] and json.loads((out / "study.json").read_text()) == other


@pytest.fixture
def tiny_models(monkeypatch):
    """Every model of the study (trained, untrained, loaded from a snapshot) is the tests' stand-in: what the runner
    does with a model does not depend on its size, and a ResNet50 costs seconds per step and per evaluation."""
    from tiny_arniqa import TinyARNIQA

    import arniqa.models.checkpoint as checkpoint

    monkeypatch.setattr(loop, "build_model", lambda config: TinyARNIQA())
    monkeypatch.setattr(runner, "initial_model", lambda config: TinyARNIQA())
    monkeypatch.setattr(checkpoint, "ARNIQA", lambda name, **options: TinyARNIQA())
    monkeypatch.setattr(TinyARNIQA, "encoder", property(lambda self: self.conv), raising=False)


@pytest.fixture
def probed(tmp_path, monkeypatch):
    write_textures(tmp_path / "pristine", 10)  # 6 held out, 4 train: 2 steps per epoch of batch 2
    calls = []
    real_fit = loop.Trainer.fit
    monkeypatch.setattr(
        loop.Trainer,
        "fit",
        lambda trainer, resume=None: calls.append(trainer.config.train.seed) or real_fit(trainer, resume),
    )
    overrides = [
        f"data.pristine={tmp_path / 'pristine'}",
        f"output={tmp_path / 'out'}",
        "seeds=[0]",
        "recipe.train.max_steps=3",
        "recipe.train.epochs=2",
        "evaluation.untrained=false",
        "evaluation.probe_steps=[0, 1, 2]",
    ]
    return load_ablation_config(CONFIG, overrides), tmp_path / "out", calls


def read(out, variant, stage):
    return json.loads((out / variant / "seed0" / stage / "result.json").read_text())


def test_probes_are_snapshots_evaluated_once_and_resumable(probed, tiny_models):
    config, out, calls = probed
    outcome = run_ablation(config, quiet=True)
    assert outcome["failed"] == [] and outcome["done"] == 2 * 4  # untrained, step1, step2, trained
    assert calls == [0, 0]  # one training run per variant, whatever the number of probes
    for variant in config.variants:
        results = {st: read(out, variant, st) for st in ("untrained", "step1", "step2", "trained")}
        assert [r["step"] for r in results.values()] == [0, 1, 2, 3]
        assert len({r["fingerprint"] for r in results.values()}) == 4  # four different models
        snapshots = sorted(p.name for p in (out / variant / "seed0" / "train" / "snapshots").iterdir())
        assert snapshots == ["step1.safetensors", "step2.safetensors"]
        bench = results["step1"]["benchmarks"]["synthetic"]
        groups = {GROUP_OF[t] for t in ("gaublur", "whitenoise")}
        assert set(bench["per_group"]) == groups and set(bench["per_type"]) == {"gaublur", "whitenoise"}
        assert all(-1 <= g["srcc"] <= 1 for g in bench["per_group"].values())
        # one type per group here: the group's SRCC is its type's
        assert bench["per_group"]["blur"]["srcc"] == pytest.approx(bench["per_type"]["gaublur"]["srcc"])
    assert (out / "learning_curves.png").is_file()
    report = (out / "report.md").read_text()
    assert "step1" in report and "learning_curves.png" in report and "cannot show" in report

    # a lost probe result is evaluated again from its snapshot, without training
    (out / "resnet50" / "seed0" / "step1" / "result.json").unlink()
    before = read(out, "resnet50", "step2")
    calls.clear()
    again = run_ablation(config, quiet=True)
    assert again["done"] == 1 and again["skipped"] == 7 and calls == []
    assert read(out, "resnet50", "step2") == before
    # a snapshot that is gone cannot be made up: the stage fails, naming the file
    (out / "resnet50" / "seed0" / "step1" / "result.json").unlink()
    (out / "resnet50" / "seed0" / "train" / "snapshots" / "step1.safetensors").unlink()
    failed = run_ablation(config, quiet=True)["failed"]
    assert len(failed) == 1 and "step1.safetensors is missing" in failed[0][3]


def test_probe_steps_past_the_end_are_refused(probed):
    config, out, _ = probed
    late = load_ablation_config(
        CONFIG,
        [
            f"data.pristine={config.data.pristine}",
            f"output={out}",
            "seeds=[0]",
            "recipe.train.max_steps=3",
            "evaluation.probe_steps=[2]",
        ],
    )
    with pytest.raises(AblationError, match=r"probe_steps \[2\].*2 steps"):  # epochs 1 of 2 steps: 2 in all
        run_ablation(late, quiet=True)
    one_step = load_ablation_config(
        CONFIG, [f"data.pristine={config.data.pristine}", f"output={out}", "seeds=[0]", "evaluation.probe_steps=[1]"]
    )  # the tiny config trains 1 step
    with pytest.raises(AblationError, match=r"probe_steps \[1\]: a run has 1 step \(4 images, batch 2\); probe before"):
        run_ablation(one_step, quiet=True)


@pytest.mark.parametrize(
    "override, message",
    [
        ("evaluation.device=tpu", "evaluation.device: device tpu is not a device"),  # when the config is read
        ("recipe.train.device=bogus", "train.device: device bogus is not a device"),
        ("recipe.train.batch_size=3", "training part has 2 images, fewer than one batch of 3"),
        ("data.holdout_images=7", "training part has 1 image, fewer than one batch of 2"),
    ],
)
def test_a_study_that_every_job_would_fail_is_refused_before_any_work(study, override, message):
    """Each of these failed every job one by one, after the benchmarks were built; now one error first."""
    config, out, calls = study
    with pytest.raises(AblationError, match=message):
        doomed = load_ablation_config(CONFIG, [f"data.pristine={config.data.pristine}", f"output={out}", override])
        run_ablation(doomed, quiet=True)
    assert not calls and not (out / "benchmarks").exists()


def test_a_study_without_pristine_photos_is_refused_not_run_on_the_working_folder(study, monkeypatch):
    """`data.pristine` unset (the tiny config's "", or `--set data.pristine=$DIR` with DIR unset) listed the working
    folder: run from a folder of photos, the study trained and evaluated on them."""
    config, out, calls = study
    monkeypatch.chdir(config.data.pristine)  # 8 photos here
    for unset in ([], ["data.pristine="]):
        doomed = load_ablation_config(CONFIG, [f"output={out}", *unset])
        with pytest.raises(AblationError, match=r"^data.pristine is not set; give the pristine photos with --set"):
            run_ablation(doomed, quiet=True)
    assert not calls and not (out / "data").exists()


def test_a_bad_pristine_folder_is_refused_before_the_study_writes_anything(study, tmp_path):
    """`arniqa ablate --set data.pristine=TYPO -o NEW` said so (exit 2) but left NEW/runs.json and NEW/study.json
    behind. Now the folder is checked first: nothing is written and the output folder made for it is removed; an
    output that was there already is left as it was, empty."""
    from typer.testing import CliRunner

    from arniqa.cli import _register, app

    config, out, calls = study
    _register()
    (tmp_path / "few").mkdir()
    write_textures(tmp_path / "few" / "photos", 3)  # 6 to hold out
    write_textures(tmp_path / "one", 1)  # 6 to hold out
    there = tmp_path / "there"
    there.mkdir()
    for pristine, said in (
        (tmp_path / "typo", "no such folder; give a folder holding image files"),
        (tmp_path / "few", "3 images cannot give 6 held-out images"),
        (tmp_path / "one", "1 image cannot give 6 held-out images"),
    ):
        for output in (out / "new", there):
            args = ["ablate", str(CONFIG), "--set", f"data.pristine={pristine}", "-o", str(output)]
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 2 and "error: data.pristine: " in result.output and said in result.output
            assert not out.exists() and there.is_dir() and not list(there.iterdir())
    assert not calls


def test_a_failing_job_whose_message_holds_brackets_is_reported_and_the_others_go_on(study, monkeypatch):
    """rich read ``[/]`` in the message as markup: a MarkupError stopped the whole study at its first failure."""
    config, out, _ = study
    stages = []

    def run_one(config, out, variant, seed, stage, sets, console):
        stages.append((variant, seed, stage))
        if len(stages) == 1:
            raise ValueError("cannot read photos[/]x.png")
        return {}

    monkeypatch.setattr(runner, "run_one", run_one)
    outcome = run_ablation(config, quiet=True)
    assert len(stages) == len(runner.jobs(config)) > 1 and outcome["done"] == len(stages) - 1
    assert outcome["failed"] == [(*stages[0], "ValueError: cannot read photos[/]x.png")]


def test_the_study_s_step_lines_go_to_stderr_and_stdout_holds_the_report_path(study, monkeypatch):
    """`arniqa ablate`'s step lines (`data: ...`, `[1/8] resnet50  seed 0  untrained`, `done in`) went to stdout,
    which a pipeline reads as the verb's result; they are on stderr now, as every verb's progress, and stdout holds
    the report's path alone, as with --report-only."""
    from typer.testing import CliRunner

    from arniqa.cli import _register, app

    config, out, _ = study
    monkeypatch.setattr(runner, "run_one", lambda *args: {})
    _register()
    args = ["ablate", str(CONFIG), "--set", f"data.pristine={config.data.pristine}", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"report written to {out / 'report.md'}\n"
    steps = [line for line in result.stderr.splitlines() if re.search(r" \[\d/8\] ", line)]
    assert len(steps) == len(runner.jobs(config)) and " [1/8] resnet50  seed 0  untrained " in steps[0]


def test_a_signal_in_a_training_run_stops_the_study_and_a_rerun_goes_on(study, monkeypatch, tmp_path):
    """Ctrl-C or SIGTERM in a training run ends it with its state saved (train.stopping.Stopped). The study's
    loop took that for one failed job and went on training the next variant; it now ends the study: exit
    128 + the signal, one line saying to rerun, and nothing recorded as failed."""
    import signal

    from typer.testing import CliRunner

    from arniqa.cli import _register, app
    from arniqa.train.stopping import Stopped

    config, out, calls = study
    real = loop.Trainer.fit

    def stopped_once(trainer, resume=None):
        if not calls:
            calls.append("stopped")
            raise Stopped(signal.SIGTERM, "at epoch 0, step 1; state.pt holds global step 1", tmp_path / "no")
        return real(trainer, resume)

    monkeypatch.setattr(loop.Trainer, "fit", stopped_once)
    with pytest.raises(Stopped):
        run_ablation(config, quiet=True)
    assert calls == ["stopped"] and not list(out.glob("*/seed*/trained/result.json"))

    calls.clear()
    _register()
    args = ["ablate", str(CONFIG), "--set", f"data.pristine={config.data.pristine}", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 128 + signal.SIGTERM
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: stopped by SIGTERM at epoch 0, step 1; state.pt holds global step 1; "
        "rerun the same arniqa ablate command to go on"
    ]
    assert "failed:" not in result.output


@pytest.mark.parametrize("text", ["{", "[" * 100_000 + "]" * 100_000, "[]"])
def test_a_damaged_study_json_is_named_before_any_work(study, text):
    """study.json was read with json.loads: a damaged one was json's bare message (no file named) or a
    RecursionError traceback; a list a TypeError traceback."""
    config, out, calls = study
    out.mkdir()
    (out / "study.json").write_text(text)
    with pytest.raises(AblationError, match=re.escape(f"{out / 'study.json'}: ")):
        run_ablation(config, quiet=True)
    assert not calls and not (out / "data").exists()


def test_a_broken_image_fails_its_runs_and_rerunning_as_the_line_says_finishes_the_study(
    tmp_path, monkeypatch, tiny_models
):
    """A training image that could not be decoded failed the run with the trainer's line, 'then resume with
    --resume RUN/state.pt', an option arniqa ablate does not have. The line says to rerun the command, and doing so
    (the file put back) resumes the interrupted run and finishes the study with an uninterrupted study's results."""
    from faults import cli, tiny_ablation

    from arniqa.cli import EXIT_FAILED, EXIT_OK

    # two steps of one epoch each (2 training images, batch 2), a state.pt after each
    settings = ("seeds=[0]", "recipe.train.epochs=2", "recipe.train.max_steps=2", "recipe.train.checkpoint_every=1")
    args = tiny_ablation(tmp_path, *settings)
    out = tmp_path / "out"
    whole = cli(*args, "-o", tmp_path / "whole")  # the same study, uninterrupted
    assert whole.exit_code == EXIT_OK, whole.output

    kept = {}
    real_save = loop.Trainer.save_state

    def save_then_break(trainer):  # the first run's first state.pt written, its images' ends zeroed (a disk fault)
        real_save(trainer)
        if not kept:
            for link in (out / "data" / "train").iterdir():
                kept[link.resolve()] = data = link.resolve().read_bytes()
                link.resolve().write_bytes(data[:100] + bytes(len(data) - 100))

    monkeypatch.setattr(loop.Trainer, "save_state", save_then_break)
    broken = cli(*args)
    assert broken.exit_code == EXIT_FAILED, broken.output
    failed = [
        line for line in broken.stderr.splitlines() if line.startswith("failed: ") and " seed 0 trained: " in line
    ]
    assert [line.split(":")[1] for line in failed] == [f" {v} seed 0 trained" for v in VARIANTS]
    assert "--resume" not in broken.stderr
    assert all("truncated or corrupt image data" in line for line in failed)
    assert all(
        line.endswith("; copy or download it again; then rerun the same arniqa ablate command to go on")
        for line in failed
    )
    assert (out / "resnet50" / "seed0" / "train" / "state.pt").is_file()  # the first run stopped after step 1

    monkeypatch.setattr(loop.Trainer, "save_state", real_save)
    for path, data in kept.items():  # as the line says: the file again, then the same command
        path.write_bytes(data)
    again = cli(*args)
    assert again.exit_code == EXIT_OK, again.output
    for variant in VARIANTS:
        finished, uninterrupted = result(out, variant, 0, "trained"), result(tmp_path / "whole", variant, 0, "trained")
        assert finished["fingerprint"] == uninterrupted["fingerprint"] and finished["step"] == 2
        assert finished["benchmarks"] == uninterrupted["benchmarks"]
    assert result(out, "resnet50", 0, "trained")["training"]["resumed"] is True


def test_a_rerun_may_change_the_recipe_keys_that_change_no_result(study):
    """A rerun with a lower recipe.data.num_workers (or another checkpoint cadence, TensorBoard or progress bar) was
    refused as 'other settings': none changes a result (the worker count builds bit-identical batches:
    train/test_batches.py). They may change, in a study.json written before too; the other keys are still refused."""
    config, out, calls = study
    free = ["recipe.data.num_workers=2", "recipe.train.checkpoint_every=3", "recipe.log.tensorboard=true"]
    first = load_ablation_config(CONFIG, [f"data.pristine={config.data.pristine}", f"output={out}", *free])
    finished = out / "resnet50" / "seed0" / "trained" / "result.json"
    finished.parent.mkdir(parents=True)
    finished.write_text("{}")
    recorded = {**runner.study_settings(first), "recipe": first.recipe}  # as study.json held them before
    for saved in (runner.study_settings(first), recorded):
        (out / "study.json").write_text(json.dumps(saved))
        runner._check_study(config, out)  # the tiny config: num_workers 0, no TensorBoard
    assert json.loads((out / "study.json").read_text()) == recorded  # the results' settings: nothing to write
    for changed in ("recipe.train.batch_size=4", "recipe.log.every=2", "recipe.data.degrade_on=workers"):
        other = load_ablation_config(CONFIG, [f"data.pristine={config.data.pristine}", f"output={out}", changed])
        with pytest.raises(AblationError, match=r"other settings \(recipe differ"):
            runner._check_study(other, out)
    assert calls == []
