"""A run killed with SIGKILL mid-epoch and resumed ends with the same weights as an uninterrupted run."""

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from arniqa.train import load_config
from arniqa.train.config import plain, read_values
from arniqa.train.loop import Trainer
from arniqa.train.state import STATE_FILE, TrainingError

# The real ARNIQA (ResNet50) on 32 px crops, batch 2: 6 images -> 3 steps per epoch, 2 epochs.
SETTINGS = {
    "data": {"crop_size": 32, "num_workers": 0, "max_images": 6},
    "model": {"backbone": "resnet50", "init": "random"},
    "train": {"epochs": 2, "batch_size": 2, "device": "cpu", "precision": "fp32", "checkpoint_every": 1},
    "log": {"every": 1, "tensorboard": False, "progress": False},
}


# Chains in 2 DataLoader workers, with the tests' stand-in model (the model does not matter
# here, and a ResNet50 step costs seconds); it sleeps in the killed run so that the kill lands mid-run.
WORKERS = ["data.degrade_on=workers", "data.num_workers=2"]
STAND_IN = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
from tiny_arniqa import SlowTinyARNIQA
import arniqa.train.loop as loop
loop.build_model = lambda config: SlowTinyARNIQA(0.2)
from arniqa.train.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def write_config(tmp_path, image_folder, output, overrides=()):
    data = {**SETTINGS["data"], **plain(read_values(None, overrides)).get("data", {}), "root": str(image_folder)}
    values = {**SETTINGS, "output": str(output), "data": data}
    path = tmp_path / f"{output.name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [[], WORKERS], ids=["resnet50-device", "stand-in-workers"])
def test_sigkill_mid_epoch_then_resume_is_bit_exact(tmp_path, image_folder, overrides, monkeypatch):
    command = [sys.executable, "-m", "arniqa.train"]
    if overrides:
        from tiny_arniqa import TinyARNIQA

        import arniqa.train.loop as loop

        monkeypatch.setattr(loop, "build_model", lambda config: TinyARNIQA())
        command = [sys.executable, "-c", STAND_IN]
    # Uninterrupted reference, in this process.
    reference_cfg = load_config(
        write_config(tmp_path, image_folder, tmp_path / "reference", overrides), ["train.checkpoint_every=100"]
    )
    Trainer(reference_cfg).fit()
    reference = weights(tmp_path / "reference" / STATE_FILE)

    # The same run in a subprocess, killed with SIGKILL once its first checkpoint exists. The kill
    # may land on any later step or in the middle of writing a checkpoint: what is asserted holds
    # whichever it is, and the run is long enough (six steps of a ResNet50) not to end first.
    run = tmp_path / "killed"
    config = write_config(tmp_path, image_folder, run, overrides)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen([*command, str(config)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (run / STATE_FILE).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"run ended before the kill: {err.decode()[-2000:]}"
    state = torch.load(run / STATE_FILE, map_location="cpu", weights_only=False)
    total = 2 * 3
    assert 1 <= state["global_step"] < total, "the kill should land before the last step"
    assert state["epoch"] * 3 + state["step"] == state["global_step"]
    assert not (run / "model.safetensors").exists()

    # Resume (in this process) and finish; checkpoints only at the epoch ends, to save time.
    resumed_cfg = load_config(config, ["train.checkpoint_every=100"])
    Trainer(resumed_cfg).fit(resume=run / STATE_FILE)
    final = weights(run / STATE_FILE)
    assert final.keys() == reference.keys()
    for key in reference:
        assert torch.equal(final[key], reference[key]), key
    changed = [key for key in final if not torch.equal(final[key], state["model"][key])]
    assert changed, "the resumed run did train on"
    rows = (run / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4", "5", "6"]  # one row per step, none twice
    assert (run / "model.safetensors").exists()


def test_the_temporary_files_of_a_killed_run_are_removed_by_the_next(tmp_path, image_folder, monkeypatch):
    # before: a run killed while writing state.pt (or model.safetensors) left its hidden temporary copy, as large
    # as the state (hundreds of MB for a ResNet50 with its optimiser), in the run folder for ever; then those of
    # best.safetensors and of the snapshots were still left
    from tiny_arniqa import TinyARNIQA

    import arniqa.train.loop as loop

    monkeypatch.setattr(loop, "build_model", lambda config: TinyARNIQA())
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = [
        run / f".state.{dead.stdout.strip()}.0123abcd.tmp.pt",
        run / f".model.{dead.stdout.strip()}.89abcdef.tmp.safetensors",
        run / f".best.{dead.stdout.strip()}.89abcdef.tmp.safetensors",
        run / "snapshots" / f".step40.{dead.stdout.strip()}.0123abcd.tmp.safetensors",
    ]
    kept = [run / ".state.1.0123abcd.tmp.pt", run / "notes.tmp.pt"]  # pid 1 runs (init); not a temporary name
    for f in left + kept:
        f.write_bytes(b"x" * 100)
    Trainer(load_config(write_config(tmp_path, image_folder, run), ["train.epochs=1"])).fit()
    assert [f for f in left if f.exists()] == [] and all(f.exists() for f in kept)
    assert (run / STATE_FILE).is_file() and (run / "model.safetensors").is_file()


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, image_folder, monkeypatch):
    import arniqa.train.step as step

    calls = []
    real = step.nt_xent

    def nan_on_second_step(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(step, "nt_xent", nan_on_second_step)
    config = load_config(write_config(tmp_path, image_folder, tmp_path / "nan"))
    trainer = Trainer(config)
    with pytest.raises(TrainingError, match=r"loss is nan at epoch 0, step 1.*last good checkpoint"):
        trainer.fit()
    state = torch.load(tmp_path / "nan" / STATE_FILE, map_location="cpu", weights_only=False)
    assert state["global_step"] == 1
    for key, value in trainer.model.named_parameters():  # the failed step changed no weight
        assert torch.equal(value, state["model"][key]), key
    assert not (tmp_path / "nan" / "model.safetensors").exists()


def test_refuses_to_overwrite_a_run_and_checks_resume_settings(tmp_path, image_folder):
    config = load_config(write_config(tmp_path, image_folder, tmp_path / "r"), ["train.max_steps=1"])
    Trainer(config).fit()
    with pytest.raises(TrainingError, match="--resume"):
        Trainer(config).fit()
    other = load_config(write_config(tmp_path, image_folder, tmp_path / "r"), ["train.seed=5"])
    with pytest.raises(TrainingError, match="train.seed"):
        Trainer(other).fit(resume=tmp_path / "r" / STATE_FILE)


def test_resuming_a_finished_run_says_so_and_rewrites_nothing(tmp_path, tiny_model):
    # before: a progress bar at "loss nan lr 0.00e+00", then "model written to ...": config.yaml, run.log and the
    # same model written again
    from faults import cli, train_config

    run = tmp_path / "run"
    config = train_config(tmp_path, run, train={"max_steps": 2})
    assert cli("train", config).exit_code == 0
    files = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in run.rglob("*") if f.is_file()}
    result = cli("train", config, "--resume", run / STATE_FILE)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{run}: the run already finished at global step 2; its model is {run / 'model.safetensors'}, left as it "
        "was (to train on, raise train.epochs or train.max_steps and resume)"
    ]
    assert {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in run.rglob("*") if f.is_file()} == files


def test_resuming_from_the_run_folder_says_which_file_to_give(tmp_path, tiny_model):
    """`--resume run` (the folder) said 'cannot read the training state (Is a directory); check the path'."""
    from faults import cli, train_config

    run = tmp_path / "run"
    config = train_config(tmp_path, run, train={"max_steps": 2, "epochs": 3})
    assert cli("train", config).exit_code == 0
    result = cli("train", config, "--resume", run)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"error: {run}: a folder, not a training state; resume with --resume {run / STATE_FILE}\n"
    assert cli("train", config, "--resume", run / STATE_FILE).exit_code == 0  # as the line says
    result = cli("train", config, "--resume", tmp_path)  # no state.pt in it
    assert result.exit_code == 2 and result.stderr == (
        f"error: {tmp_path}: a folder, not a training state; resume from the state.pt in the folder of the "
        "interrupted run\n"
    )


def test_resuming_a_finished_run_whose_model_is_missing_writes_it_again_and_nothing_else(tmp_path, tiny_model):
    # before: a progress bar at "loss nan lr 0.00e+00", "model written to ...", config.yaml and run.log written again
    from faults import cli, train_config
    from safetensors import safe_open

    def model_file(path):
        with safe_open(path, "pt") as f:
            return f.metadata(), {key: f.get_tensor(key) for key in f.keys()}

    run, model = tmp_path / "run", tmp_path / "run" / "model.safetensors"
    config = train_config(tmp_path, run, train={"max_steps": 2}, log={"progress": True})
    assert cli("train", config).exit_code == 0
    written = model_file(model)  # what the run wrote at its end
    model.unlink()  # ended, but killed before its model was written
    files = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in run.rglob("*") if f.is_file()}
    result = cli("train", config, "--resume", run / STATE_FILE)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{run}: the run already finished at global step 2; its model was missing: written again from the run's "
        f"final state to {model} (to train on, raise train.epochs or train.max_steps and resume)"
    ]
    again = model_file(model)
    assert again[0] == written[0] and again[1].keys() == written[1].keys()
    assert all(torch.equal(again[1][key], written[1][key]) for key in written[1])
    assert {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in run.rglob("*") if f.is_file() and f != model} == files


def lr_column(run):
    """The lr of every step in ``run``'s log.csv, by global step."""
    rows = (run / "log.csv").read_text().splitlines()[1:]
    return {int(r.split(",")[0]): float(r.split(",")[4]) for r in rows}


@pytest.mark.parametrize("schedule", [[], ["optim.warmup_steps=4"]])  # epoch-fraction and step schedules
def test_a_lower_lr_given_on_resume_is_the_one_trained_with(tmp_path, short_run, tiny_model, schedule):
    """The loaded optimiser and scheduler states kept the interrupted run's lr: the advice after a
    non-finite loss (a lower optim.lr, then resume) changed nothing."""
    settings = [*schedule, "log.every=1"]
    Trainer(short_run(*settings, "train.max_steps=2")).fit()
    Trainer(short_run(*settings, "optim.lr=5e-4")).fit(resume=tmp_path / "run" / STATE_FILE)
    Trainer(short_run(*settings, "optim.lr=5e-4", f"output={tmp_path / 'fresh'}")).fit()
    resumed, fresh = lr_column(tmp_path / "run"), lr_column(tmp_path / "fresh")
    assert sorted(resumed) == list(range(1, 10))
    assert [resumed[k] for k in range(3, 10)] == pytest.approx([fresh[k] for k in range(3, 10)], rel=1e-6)


def test_a_resumed_run_counts_its_wall_time_from_where_the_state_was_written(tmp_path, short_run, monkeypatch):
    """log.csv's elapsed_s began again at 0 on resume, and an ablation's training.json gave the last invocation's
    seconds alone: the run's wall time now goes on from the state.pt (the interrupted part, slowed to 0.2 s per
    forward pass here, is counted)."""
    from tiny_arniqa import SlowTinyARNIQA, TinyARNIQA

    import arniqa.train.loop as loop

    monkeypatch.setattr(loop, "build_model", lambda config: SlowTinyARNIQA(0.2))
    Trainer(short_run("log.every=1", "train.max_steps=2")).fit()
    before = torch.load(tmp_path / "run" / STATE_FILE, weights_only=True)["seconds"]
    assert before >= 2 * 0.2  # 2 steps, a forward pass or more each
    monkeypatch.setattr(loop, "build_model", lambda config: TinyARNIQA())
    trainer = Trainer(short_run("log.every=1"))
    trainer.fit(resume=tmp_path / "run" / STATE_FILE)
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]
    elapsed = [float(r.split(",")[6]) for r in rows]
    assert len(elapsed) > 2 and elapsed[2] >= before - 0.05  # the first row after the resume (0.1 s rounding)
    assert elapsed == sorted(elapsed)
    assert trainer.seconds() >= elapsed[-1] - 0.05  # elapsed_s is rounded to 0.1 s
    assert torch.load(tmp_path / "run" / STATE_FILE, weights_only=True)["seconds"] >= elapsed[-1] - 0.05


@pytest.mark.parametrize(
    "setting",
    [
        "model.temperature=0.3",
        "optim.momentum=0.5",
        "optim.trust_coefficient=0.01",  # LARS's
        "optim.t0_epochs=2",  # the restart period while optim.t0_steps is null
        "data.pristine_prob=0.5",
        *("model.se_stages=[1]", "model.se_bias=false"),  # were "does not fit this run", naming no key
        "train.channels_last=false",  # other kernels (deterministic, sync_batchnorm: where they take effect, below)
    ],
)
def test_resume_refuses_other_settings_the_state_would_override_or_that_change_the_run(
    tmp_path, short_run, tiny_model, setting
):
    used = ("model.backbone=se_resnet50", "optim.name=lars")  # where the SE and LARS settings take effect
    Trainer(short_run(*used, "train.max_steps=1")).fit()
    with pytest.raises(TrainingError, match=setting.split("=")[0] + " was .* in the interrupted run"):
        Trainer(short_run(*used, setting)).fit(resume=tmp_path / "run" / STATE_FILE)


def test_settings_the_run_does_not_use_may_change_on_resume_bit_exact(tmp_path, short_run, tiny_model):
    """optim.trust_coefficient was compared with optim.name=sgd, which does not use it, and so were the SE settings
    of a ResNet50 and optim.t0_epochs with optim.t0_steps set: a resume changing them was refused. It is taken, and
    trains as the run uninterrupted."""
    used = ("optim.t0_steps=2", "train.checkpoint_every=1")
    Trainer(short_run(*used, "train.max_steps=4", f"output={tmp_path / 'whole'}")).fit()
    Trainer(short_run(*used, "train.max_steps=2")).fit()
    state = tmp_path / "run" / STATE_FILE
    unused = ["optim.trust_coefficient=0.5", "optim.t0_epochs=3", "model.se_stages=[2]", "model.se_bias=false"]
    Trainer(short_run(*used, "train.max_steps=4", *unused)).fit(resume=state)
    resumed, whole = weights(state), weights(tmp_path / "whole" / STATE_FILE)
    assert all(torch.equal(resumed[key], whole[key]) for key in whole)
    with pytest.raises(TrainingError, match="optim.t0_steps was 2 in the interrupted run, now null; resume"):
        Trainer(short_run("train.max_steps=5", *unused)).fit(resume=state)  # t0_epochs is used now: t0_steps named


def test_resume_names_every_changed_setting_in_one_line(tmp_path, short_run, tiny_model):
    """Only the first changed setting was named: fixing it, the user met the next on the next try."""
    Trainer(short_run("train.max_steps=1")).fit()
    with pytest.raises(TrainingError) as err:
        Trainer(short_run("train.seed=5", "data.crop_size=16")).fit(resume=tmp_path / "run" / STATE_FILE)
    assert "train.seed was 27 in the interrupted run, now 5; data.crop_size was 32 in the interrupted run, now 16" in (
        str(err.value)
    )


def test_resume_names_the_changed_values_as_a_config_file_writes_them(tmp_path, short_run, tiny_model):
    """The values were Python's ('optim.t0_steps was None', 'False', '(1,)'), where a config or --set writes null,
    false, [1]: each is now written as YAML writes it, and reads back as the value."""
    se = "model.backbone=se_resnet50"  # where model.se_stages is used
    Trainer(short_run(se, "train.max_steps=1", "train.channels_last=false")).fit()
    changed = ("optim.t0_steps=100", "train.channels_last=true", "model.se_stages=[1, 2]", "optim.eta_min=0.0001")
    with pytest.raises(TrainingError) as err:
        Trainer(short_run(se, *changed)).fit(resume=tmp_path / "run" / STATE_FILE)
    message = str(err.value)
    said = dict(re.findall(r"(\w+\.\w+) was (.*?) in the interrupted run", message))
    assert said.keys() == {setting.split("=")[0] for setting in changed}
    assert (said["optim.t0_steps"], said["train.channels_last"]) == ("null", "false")
    for setting in changed:
        key, value = setting.split("=")
        assert f"{key} was {said[key]} in the interrupted run, now {value}" in message
    before = short_run("train.max_steps=1", "train.channels_last=false")
    for key, text in said.items():  # each reads back, as YAML, as the interrupted run's value
        section, name = key.split(".")
        assert yaml.safe_load(text) == getattr(getattr(before, section), name)


def rewrite_first_png(folder):
    """One image of ``folder`` rewritten as another picture of another size, under the same name."""
    from PIL import Image

    path = sorted(folder.rglob("*.png"))[0]
    Image.new("RGB", (70, 50), (200, 30, 30)).save(path)


def rename_first_png(folder):
    path = sorted(folder.rglob("*.png"))[0]
    path.rename(path.with_name("zz-" + path.name))  # another name, so another place in the order


def remove_first_png(folder):
    sorted(folder.rglob("*.png"))[0].unlink()  # 5 images: 2 steps per epoch, the state's step 1 still fits


@pytest.mark.parametrize("change", [rewrite_first_png, rename_first_png, remove_first_png])
def test_resume_refuses_a_data_root_holding_other_images(tmp_path, short_run, image_folder, tiny_model, change):
    """data.root was not compared: a resume on other images trained on without a word (the run no longer the one
    started). The images are compared, not the path: see the next test for a moved folder."""
    import shutil

    Trainer(short_run("train.max_steps=1")).fit()
    other = tmp_path / "other"
    shutil.copytree(image_folder, other)
    change(other)
    state = tmp_path / "run" / STATE_FILE
    before = state.read_bytes()
    with pytest.raises(TrainingError) as err:
        Trainer(short_run(f"data.root={other}")).fit(resume=state)
    message = str(err.value)
    count = len(list(other.rglob("*.*")))
    assert message.startswith(f"{state}: data.root holds other images than in the interrupted run ({count} now in ")
    assert f"{str(other)!r}, 6 then in {str(image_folder)!r}" in message
    assert message.endswith("or start a new run in another output folder") and "\n" not in message
    assert state.read_bytes() == before


def test_resume_takes_a_moved_folder_of_the_same_images_and_trains_as_if_never_moved(
    tmp_path, short_run, image_folder, tiny_model
):
    import shutil

    Trainer(short_run("train.max_steps=1")).fit()
    moved = tmp_path / "elsewhere" / "photos"
    shutil.copytree(image_folder, moved)  # copies the files, new times
    shutil.rmtree(image_folder)
    Trainer(short_run(f"data.root={moved}", "train.max_steps=4")).fit(resume=tmp_path / "run" / STATE_FILE)
    shutil.copytree(moved, image_folder)
    Trainer(short_run("train.max_steps=4", f"output={tmp_path / 'fresh'}")).fit()  # the run never interrupted
    resumed, fresh = weights(tmp_path / "run" / STATE_FILE), weights(tmp_path / "fresh" / STATE_FILE)
    assert all(torch.equal(resumed[key], fresh[key]) for key in fresh)
    assert f"data.root was {str(image_folder)!r}, now {str(moved)!r}" in (tmp_path / "run" / "run.log").read_text()


def edit_state(path, **fields):
    """The state.pt at ``path`` rewritten with ``fields`` set (a value None: the field removed, as in older states)
    and ``config`` entries given as ``"section.key": value``."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    for key, value in fields.pop("config", {}).items():
        section, name = key.split(".")
        state["config"][section][name] = value
    for key, value in fields.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    torch.save(state, path)


def test_resume_refuses_degradations_drawn_on_another_device(tmp_path, short_run, tiny_model):
    """data.degrade_on was not compared: a run that drew its degradations with a CUDA generator (degrade_on=device
    on a GPU) resumed with them drawn on the CPU (workers, or a CPU machine) without a word, other random draws
    from there on. Named in the one line with the other differences."""
    from arniqa.train.state import read_state

    Trainer(short_run("train.max_steps=1", "data.degrade_on=workers")).fit()
    state = tmp_path / "run" / STATE_FILE
    cpu_state = torch.load(state, map_location="cpu", weights_only=False)
    edit_state(state, device="cuda", config={"data.degrade_on": "device"})  # as a GPU run in device mode writes it
    for mode in ("workers", "device"):  # on this CPU machine either mode draws on the CPU
        with pytest.raises(TrainingError) as err:
            Trainer(short_run(f"data.degrade_on={mode}", "train.seed=5")).fit(resume=state)
        message = str(err.value)
        assert message.startswith(f"{state}: train.seed was 27 in the interrupted run, now 5; ") and "\n" not in message
        assert (
            "the degradations were drawn on cuda in the interrupted run (data.degrade_on=device), now on cpu "
            f"(data.degrade_on={mode}, training on cpu): other random draws; draw them on cuda with "
            "data.degrade_on=device on a cuda device; resume with the settings"
        ) in message

    torch.save(cpu_state, state)  # drawn on the CPU (workers), resumed on a GPU in device mode: drawn on CUDA
    trainer = Trainer(short_run("data.degrade_on=device"))  # set by hand (auto resumes in workers mode)
    with pytest.raises(TrainingError) as err:
        read_state(state, trainer.config, trainer.images, ("device", "cuda"), trainer.kernels())
    assert "drawn on cpu in the interrupted run (data.degrade_on=workers), now on cuda" in str(err.value)
    assert "draw them on cpu with data.degrade_on=workers" in str(err.value)


def test_auto_resumes_in_the_interrupted_runs_mode_where_it_draws_the_same(tmp_path, short_run, tiny_model):
    """data.degrade_on=auto resolves by the host's cores per GPU process: a run started in workers mode and resumed
    on a GPU host with fewer cores resolved to device (CUDA draws) and was refused, the user left to set the mode
    by hand. auto now takes the interrupted run's mode when it draws the same here (run.log and config.yaml say
    so); a mode set by hand that draws otherwise, or a mode that cannot draw the same here, is still refused."""
    from arniqa.train.state import read_state, resumed_degrade_on

    Trainer(short_run("train.max_steps=1", "data.degrade_on=workers")).fit()
    state = tmp_path / "run" / STATE_FILE
    saved = torch.load(state, map_location="cpu", weights_only=False)
    auto = Trainer(short_run())  # on this CPU auto resolves to device (no GPU)
    assert auto.config.data.degrade_on == "auto" and auto.degrade_on == "device"
    for device in ("cpu", "cuda"):  # a workers run from a CPU or GPU machine, resumed on a GPU host with few cores
        edit_state(state, device=device)
        loaded = read_state(state, auto.config, auto.images, ("device", "cuda"), auto.kernels())
        assert resumed_degrade_on(loaded, "auto", ("device", "cuda")) == "workers"
        with pytest.raises(TrainingError, match="drawn on cpu in the interrupted run"):
            read_state(state, short_run("data.degrade_on=device"), auto.images, ("device", "cuda"), auto.kernels())
    edit_state(state, config={"data.degrade_on": "device"})  # a GPU run in device mode...
    loaded = read_state(state, auto.config, auto.images, ("workers", "cuda"), auto.kernels())  # a GPU host, many cores
    assert resumed_degrade_on(loaded, "auto", ("workers", "cuda")) == "device"
    with pytest.raises(TrainingError, match="drawn on cuda in the interrupted run"):  # on a CPU: no CUDA draws
        read_state(state, auto.config, auto.images, ("device", "cpu"), auto.kernels())

    torch.save(saved, state)  # here, end to end: the workers run resumes in workers mode, not this host's device
    Trainer(short_run("train.max_steps=2")).fit(resume=state)
    log = (tmp_path / "run" / "run.log").read_text()
    assert (
        "data.degrade_on=auto -> workers: degradation chains run on the CPU in the main process "
        "(data.num_workers=0), as in the interrupted run (auto gives device on this host)"
    ) in log
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["degrade_on"] == "workers"
    assert torch.load(state, weights_only=False)["config"]["data"]["degrade_on"] == "workers"


def test_auto_resumes_a_device_mode_run_of_a_cpu_on_a_gpu_host_in_workers_mode(tmp_path, short_run, tiny_model):
    """A run in device mode on a CPU drew its degradations with the CPU generator; resumed on a GPU host, auto
    resolved to device (CUDA draws) and the resume was refused. workers draws those numbers (a CPU resume from
    device to workers is bit-exact, below), so auto takes it; device set by hand is still refused."""
    from arniqa.train.state import read_state, resumed_degrade_on

    Trainer(short_run("train.max_steps=4", f"output={tmp_path / 'whole'}")).fit()
    Trainer(short_run("train.max_steps=2", "data.degrade_on=device")).fit()
    state = tmp_path / "run" / STATE_FILE
    assert torch.load(state, weights_only=False)["device"] == "cpu"
    auto = Trainer(short_run())
    for placement in (("device", "cuda"), ("workers", "cuda"), ("device", "cpu")):  # GPU hosts, few or many cores
        loaded = read_state(state, auto.config, auto.images, placement, auto.kernels())
        assert resumed_degrade_on(loaded, "auto", placement) == ("device" if placement[1] == "cpu" else "workers")
    with pytest.raises(
        TrainingError, match=r"drawn on cpu in the interrupted run \(data.degrade_on=device\), now on cuda"
    ):
        read_state(state, short_run("data.degrade_on=device"), auto.images, ("device", "cuda"), auto.kernels())

    Trainer(short_run("train.max_steps=4", "data.degrade_on=workers")).fit(resume=state)  # what auto takes there
    resumed, whole = weights(state), weights(tmp_path / "whole" / STATE_FILE)
    assert all(torch.equal(resumed[key], whole[key]) for key in whole)


@pytest.fixture
def deterministic_off(monkeypatch):
    """torch's deterministic-algorithms flag off, and again after the test (a run with train.deterministic=true
    sets it for the whole process)."""
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # the run sets it when unset: restored after
    torch.use_deterministic_algorithms(False)
    yield
    torch.use_deterministic_algorithms(False)


def test_kernel_settings_that_change_nothing_here_resume_bit_exact(tmp_path, short_run, tiny_model, deterministic_off):
    """train.deterministic and train.sync_batchnorm were refused whenever changed on resume. On a CPU neither
    changes a step (deterministic algorithms are the CPU's own: a ResNet-50 step is bit-identical either way;
    SyncBatchNorm is used only with several CUDA processes), so the state records them as taking no effect and a
    resume that turns them on is taken, bit-exact."""
    Trainer(short_run("train.max_steps=4", f"output={tmp_path / 'whole'}")).fit()
    Trainer(short_run("train.max_steps=2")).fit()
    state = tmp_path / "run" / STATE_FILE
    assert torch.load(state, weights_only=False)["kernels"] == {"deterministic": None, "sync_batchnorm": None}
    changed = ["train.deterministic=true", "train.sync_batchnorm=true"]
    Trainer(short_run("train.max_steps=4", *changed)).fit(resume=state)
    resumed, whole = weights(state), weights(tmp_path / "whole" / STATE_FILE)
    assert all(torch.equal(resumed[key], whole[key]) for key in whole)


def test_kernel_settings_changed_where_they_take_effect_are_refused(tmp_path, short_run, tiny_model):
    """Where a setting took effect in the interrupted run (the state says so: deterministic on a GPU, SyncBatchNorm
    with several GPU processes) and takes effect in the resumed one, another value is refused; where either run is
    one it changes nothing in, it is taken. A state written before the record: its config's values, as if they
    took effect."""
    from arniqa.train.state import read_state

    Trainer(short_run("train.max_steps=1")).fit()
    state = tmp_path / "run" / STATE_FILE
    config, images = short_run(), Trainer(short_run()).images
    edit_state(state, kernels={"deterministic": False, "sync_batchnorm": True})  # as a 2-GPU run writes it
    with pytest.raises(TrainingError) as err:
        read_state(state, config, images, ("device", "cpu"), {"deterministic": True, "sync_batchnorm": False})
    assert (
        f"{state}: train.deterministic was false in the interrupted run, now true; train.sync_batchnorm was true in "
        "the interrupted run, now false; resume with the settings"
    ) in str(err.value)
    for now in ({"deterministic": False, "sync_batchnorm": True}, {"deterministic": None, "sync_batchnorm": None}):
        read_state(state, config, images, ("device", "cpu"), now)  # the same, or taking no effect here
    edit_state(state, kernels={"deterministic": None, "sync_batchnorm": None})  # a CPU run's
    read_state(state, config, images, ("device", "cpu"), {"deterministic": True, "sync_batchnorm": False})

    edit_state(state, kernels=None, config={"train.deterministic": False})  # an older state
    with pytest.raises(TrainingError, match="train.deterministic was false in the interrupted run, now true"):
        read_state(state, config, images, ("device", "cpu"), {"deterministic": True, "sync_batchnorm": None})
    read_state(state, config, images, ("device", "cpu"), {"deterministic": None, "sync_batchnorm": None})


def test_changes_that_keep_the_draws_and_the_numbers_resume_bit_exact(tmp_path, short_run, tiny_model):
    """What may change on resume without changing the run (each checked: the weights of the run uninterrupted): the
    mode on a CPU (both draw with the CPU generator), the worker count (batches are seeded by step), logging and
    checkpoint cadence; and a state written before the device and precision were recorded still resumes."""
    Trainer(short_run("train.max_steps=4", f"output={tmp_path / 'whole'}")).fit()
    Trainer(short_run("train.max_steps=2", "data.degrade_on=workers")).fit()
    state = tmp_path / "run" / STATE_FILE
    edit_state(state, device=None, precision=None)  # an older state
    changed = ["data.degrade_on=device", "data.num_workers=2", "log.every=3", "train.checkpoint_every=7"]
    Trainer(short_run("train.max_steps=4", *changed)).fit(resume=state)
    resumed, whole = weights(state), weights(tmp_path / "whole" / STATE_FILE)
    assert all(torch.equal(resumed[key], whole[key]) for key in whole)
    assert "not bit-identical" not in (tmp_path / "run" / "run.log").read_text()


def test_another_device_precision_or_process_count_resumes_and_is_noted(tmp_path, short_run, tiny_model):
    """Allowed (another machine; train.precision=fp32 is the advice after a non-finite loss) with the same
    draws, but other rounding: run.log said nothing of it."""
    Trainer(short_run("train.max_steps=1", "data.degrade_on=workers")).fit()
    state = tmp_path / "run" / STATE_FILE
    edit_state(state, device="cuda", precision="bf16", world_size=2)  # as a 2-GPU run in bf16 writes it
    Trainer(short_run("train.max_steps=2", "data.degrade_on=workers")).fit(resume=state)
    assert (
        "resumed with device was cuda, now cpu; precision was bf16, now fp32; world_size was 2, now 1: not "
        "bit-identical to the run uninterrupted from here on"
    ) in (tmp_path / "run" / "run.log").read_text()
    saved = torch.load(state, weights_only=False)
    assert (saved["device"], saved["precision"], saved["world_size"]) == ("cpu", "fp32", 1)  # this machine's now


def best_step(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        import json

        return json.loads(f.metadata()["arniqa"])["global_step"]


VALIDATION = "validation.datasets=[{name: kadid10k, root: /data/KADID10K}]"


def test_resume_with_other_validation_data_chooses_the_best_model_anew(tmp_path, short_run, tiny_model):
    """The saved best score (0.9 on one dataset) was compared with scores on another: no epoch of the resumed run
    could beat it, and the final model was the interrupted run's. Now the best is reset, with one warning line."""
    one_step = ["data.max_images=2", "train.epochs=3"]  # an epoch a step, validated at its end
    Trainer(short_run(*one_step, VALIDATION, "train.max_steps=1"), validate=lambda model: {"srcc": 0.9}).fit()
    run = tmp_path / "run"
    assert best_step(run / "best.safetensors") == 1
    scores = iter([0.5, 0.4])
    other = "validation.datasets=[{name: live, root: /data/LIVE}]"
    with pytest.warns(UserWarning, match=r"its best score 0\.9000 is not compared with the new scores"):
        final = Trainer(short_run(*one_step, other), validate=lambda model: {"srcc": next(scores)}).fit(
            resume=run / STATE_FILE
        )
    assert torch.load(run / STATE_FILE, weights_only=False)["best"] == 0.5
    assert best_step(run / "best.safetensors") == 2 and final.read_bytes() == (run / "best.safetensors").read_bytes()
    assert "validation differs from the interrupted run's" in (run / "run.log").read_text()


def test_resume_with_validation_turned_off_says_the_best_model_stays_and_the_last_is_kept(
    tmp_path, short_run, tiny_model
):
    """Resumed with no validation datasets, the warning said best.safetensors is replaced at the next validation,
    which never comes: it now says best.safetensors stays the interrupted run's and model.safetensors is the last."""
    one_step = ["data.max_images=2", "train.epochs=3"]
    Trainer(short_run(*one_step, VALIDATION, "train.max_steps=1"), validate=lambda model: {"srcc": 0.9}).fit()
    run = tmp_path / "run"
    with pytest.warns(UserWarning) as caught:
        final = Trainer(short_run(*one_step)).fit(resume=run / STATE_FILE)
    (line,) = [str(w.message) for w in caught if "validation differs" in str(w.message)]
    assert "next validation" not in line
    assert line.endswith(
        "no validation now: best.safetensors stays the interrupted run's, model.safetensors is the last"
    )
    assert best_step(run / "best.safetensors") == 1 and best_step(final) == 3


def test_resume_with_the_validation_data_moved_keeps_the_best(tmp_path, short_run, tiny_model):
    one_step = ["data.max_images=2", "train.epochs=3"]
    Trainer(short_run(*one_step, VALIDATION, "train.max_steps=1"), validate=lambda model: {"srcc": 0.9}).fit()
    moved = "validation.datasets=[{name: kadid10k, root: /elsewhere/KADID10K, label: kadid}]"
    Trainer(short_run(*one_step, moved), validate=lambda model: {"srcc": 0.5}).fit(resume=tmp_path / "run" / STATE_FILE)
    assert torch.load(tmp_path / "run" / STATE_FILE, weights_only=False)["best"] == 0.9
    assert best_step(tmp_path / "run" / "best.safetensors") == 1


@pytest.mark.filterwarnings("ignore:.*IMAGENET1K_V1")
def test_a_resumed_run_needs_no_imagenet_file(tmp_path, short_run, tiny_model, monkeypatch):
    """The state holds every weight, yet a resume with model.init=imagenet stopped at once: `error:
    model.weights=...: no such file` (the file moved or deleted after the run started)."""
    from tiny_arniqa import TinyARNIQA

    import arniqa.train.loop as loop

    imagenet = tmp_path / "imagenet.pt"  # the stand-in model's "ImageNet" weights, read by the stand-in loader
    torch.save(TinyARNIQA().state_dict(), imagenet)
    load = lambda model, config: model.load_state_dict(torch.load(imagenet))  # noqa: E731
    monkeypatch.setattr(loop, "load_imagenet", load, raising=False)
    settings = ["model.init=imagenet", f"model.weights={imagenet}"]
    Trainer(short_run(*settings, "train.max_steps=4", f"output={tmp_path / 'whole'}")).fit()
    Trainer(short_run(*settings, "train.max_steps=2")).fit()
    imagenet.unlink()
    Trainer(short_run(*settings, "train.max_steps=4")).fit(resume=tmp_path / "run" / STATE_FILE)
    resumed, whole = weights(tmp_path / "run" / STATE_FILE), weights(tmp_path / "whole" / STATE_FILE)
    assert all(torch.equal(resumed[key], whole[key]) for key in whole)


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "free space"),
        (OSError(errno.EFBIG, "File too large"), "raise the file-size limit with ulimit -f"),  # freed space: no help
        (
            OSError(errno.EROFS, "Read-only file system"),
            "remount the file system writable (or move the run folder to one that is)",
        ),
        (
            OSError(errno.EACCES, "Permission denied"),
            "fix the run folder's permissions",
        ),
    ],
)
def test_a_run_file_that_cannot_be_written_gets_the_advice_of_its_error(tmp_path, error, advice):
    """A read-only run folder was told to 'free disk space (or fix the folder's permissions)', a full disk to fix
    permissions too: each error now gets its own advice. And a run that had written no state.pt yet (its first
    checkpoint failing) was told to 'resume from the last state.pt': it is told to run the command again."""
    from arniqa.train.state import checkpoint_write

    state = tmp_path / "state.pt"
    for then in ("; then run the same command again (no state.pt yet)", f"; then resume with --resume {state}"):
        for path in (state, tmp_path / "snapshots" / "step5.safetensors"):
            with pytest.raises(TrainingError) as caught, checkpoint_write(path, "the last one is kept"):
                raise error
            assert (
                str(caught.value) == f"{path}: cannot write it ({error.strerror}); the last one is kept; {advice}{then}"
            )
        state.write_bytes(b"a state")  # the run wrote one: resume from it


def test_running_out_of_memory_writing_the_state_does_not_say_to_lower_the_batch_size(
    tmp_path, short_run, tiny_model, monkeypatch
):
    """Memory running out as state.pt was serialised said 'lower train.batch_size or data.crop_size', which leaves
    the state (the model and its optimizer) as large; it now names the file and says to free memory."""
    import arniqa.train.state as state

    def no_memory(path, obj):
        raise MemoryError

    monkeypatch.setattr(state, "save_torch", no_memory)
    with pytest.raises(TrainingError) as caught:
        Trainer(short_run("train.max_steps=1")).fit()
    said = str(caught.value)
    assert said.startswith(f"{tmp_path / 'run' / STATE_FILE}: cannot write it (MemoryError); ")
    assert said.endswith(
        "; free memory (the state holds the model and its optimizer, whatever the batch size); then run the same "
        "command again (no state.pt yet)"  # its first checkpoint
    )
    assert "batch_size" not in said
