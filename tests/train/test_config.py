import re
from pathlib import Path

import pytest
import yaml

from arniqa.train.config import MAX_CONFIG_BYTES, Config, ConfigError, load_config, plain, read_values

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_are_the_reference_recipe():
    c = Config()
    assert (c.optim.lr, c.optim.momentum, c.optim.weight_decay) == (1e-3, 0.9, 1e-4)
    assert (c.optim.t0_epochs, c.optim.t_mult, c.optim.eta_min) == (1, 2, 1e-6)
    assert (c.train.epochs, c.train.batch_size, c.model.temperature) == (10, 16, 0.1)
    assert (c.data.crop_size, c.data.max_distortions, c.data.pristine_prob) == (224, 4, 0.05)
    assert c.validation.alpha == 0.1
    # seed 27 (main.py), validation after every epoch (validation.frequency: 1) over 10 splits, SGD, and
    # the supervised ImageNet ResNet50 start (arniqa-reference.md section 2)
    assert (c.train.seed, c.validation.every, c.validation.num_splits) == (27, 1, 10)
    assert (c.optim.name, c.optim.warmup_steps, c.optim.t0_steps) == ("sgd", 0, None)
    assert (c.model.backbone, c.model.init) == ("resnet50", "imagenet")


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  batch_size: 8\nmodel:\n  init: random\noptim:\n  lr: 0.01\n")
    c = load_config(path, ["optim.lr=2e-3", "train.max_steps=5", "output=runs/x", "model.se_stages=[2, 3]"])
    assert c.train.batch_size == 8 and c.optim.lr == 0.002 and c.train.max_steps == 5
    assert c.output == "runs/x" and c.model.se_stages == [2, 3]
    assert c.optim.momentum == 0.9  # untouched default
    assert isinstance(load_config(path, ["optim.weight_decay=0"]).optim.weight_decay, float)


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "unknown config key"),
        ("train.batch_size=abc", "expected a whole number"),
        ("train.precision=fp8", "precision"),
        ("model.init=imagenet", "model.weights"),
        ("novalue", "KEY=VALUE"),
        ("train.max_steps=0", "max_steps"),
        # these passed the check and failed later (after the run folder was made) or not at all
        ("model.temperature=.nan", "model.temperature must be > 0 and finite"),
        ("model.temperature=.inf", "model.temperature must be > 0 and finite"),  # every gradient 0
        ("optim.eta_min=0.01", r"optim.eta_min \(0.01\) must be below optim.lr"),  # the lr climbed
        ("train.seed=-1", "train.seed must be from 0 to 2"),
        ("train.seed=4294967296", "train.seed must be from 0 to 2"),
        ("data.max_distortions=8", "data.max_distortions must be from 0 to 7"),
        ("data.pristine_prob=1.5", "data.pristine_prob must be from 0 to 1"),
        ("validation.alpha=0", "validation.alpha must be > 0"),
        ("validation.alpha=.nan", "validation.alpha must be > 0"),
        ("validation.num_splits=0", "validation.num_splits must be at least 1"),
        # refused when the model was built, naming no key; [true] was taken for stage 1
        (
            "model.se_stages=[9]",
            re.escape("model.se_stages must list stages from 1, 2, 3, 4, each at most once, got [9]"),
        ),
        ("model.se_stages=[true]", "model.se_stages must list stages from 1, 2, 3, 4"),
        ("model.se_stages=[2, 2]", "model.se_stages must list stages from 1, 2, 3, 4"),
        # `--set output=$RUN` with RUN unset trained into the working folder, its config.yaml replaced by the run's
        ("output=", "output is empty; name the run folder"),
        ("output= ", "output is empty; name the run folder"),
        # named with the key beside it and no value: "train.batch_size and train.epochs must be at least 1"
        ("train.batch_size=-1", r"config: train.batch_size must be at least 1, got -1$"),
        ("train.epochs=0", r"config: train.epochs must be at least 1, got 0$"),
        ("log.every=0", r"config: log.every must be at least 1, got 0$"),
        ("optim.t_mult=0", r"config: optim.t_mult must be at least 1, got 0$"),
    ],
)
def test_bad_values_are_named(tmp_path, override, message):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  init: random\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path, [override])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")


@pytest.mark.parametrize("name", ["arniqa_resnet50.yaml", "arniqa_se_resnet50.yaml", "demo.yaml"])
def test_shipped_configs_load(name):
    c = load_config(CONFIGS / name)
    if name != "demo.yaml":
        assert c.model.init == "imagenet" and c.train.batch_size == 16 and c.train.epochs == 10
        assert c.optim == Config().optim  # the reference's optimiser and schedule
    assert c.model.backbone == ("resnet50" if name == "arniqa_resnet50.yaml" else "se_resnet50")


@pytest.mark.parametrize("se_init", ["identity", "random"])
def test_se_init_reaches_the_imagenet_loader(se_init, monkeypatch, tmp_path):
    import arniqa.train.factory as factory

    calls = []
    monkeypatch.setattr(factory, "load_resnet50_imagenet", lambda encoder, path, se_init: calls.append((path, se_init)))
    (tmp_path / "r50.pth").write_bytes(b"")  # there: the loader, replaced, would read it
    config = load_config(
        None, ["model.backbone=se_resnet50", f"model.weights={tmp_path / 'r50.pth'}", f"model.se_init={se_init}"]
    )
    factory.build_model(config)
    assert calls == [(str(tmp_path / "r50.pth"), se_init)]
    with pytest.raises(ConfigError, match="model.se_init must be identity or random"):
        load_config(None, ["model.init=random", "model.se_init=zeros"])


def test_a_key_given_twice_in_a_yaml_file_is_refused_naming_its_line(tmp_path):
    """PyYAML keeps the last of two equal keys without a word: an edited config trained with a value its reader
    did not see."""

    twice = tmp_path / "twice.yaml"
    twice.write_text("optim:\n  lr: 0.1\n  momentum: 0.9\n  lr: 0.001\n")
    assert yaml.safe_load(twice.read_text())["optim"]["lr"] == 0.001  # what the plain loader does
    with pytest.raises(ConfigError, match=r"twice.yaml: invalid YAML \(line 4, column 3: the key lr is given twice"):
        load_config(twice)
    merged = tmp_path / "merged.yaml"  # a merge key's value may be overridden: that is not a repeat
    merged.write_text("base: &b {lr: 0.1, momentum: 0.5}\noptim:\n  <<: *b\n  lr: 0.01\n")
    assert plain(read_values(merged)["optim"]) == {"lr": 0.01, "momentum": 0.5}


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.batch_size=null", "config key train.batch_size: no value (null); expected a whole number"),
        ("train.epochs=~", "config key train.epochs: no value (null); expected a whole number"),
        ("optim.lr=null", "config key optim.lr: no value (null); expected a number"),
        ("data.crop_size=null", "config key data.crop_size: no value (null); expected a whole number"),
        ("output=null", "config key output: no value (null); expected text"),
        ("validation.datasets=null", "config key validation.datasets: no value (null); expected a list"),
    ],
)
def test_a_key_without_a_value_is_named(tmp_path, override, message):
    """`batch_size:` left empty in a YAML file, or `--set train.batch_size=null`, reached the checks as None: a
    TypeError traceback (`'<' not supported between NoneType and int`). Null stays a value where it is the
    default (train.max_steps, data.max_images, optim.t0_steps)."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, ["model.init=random", override])
    *section, key = override.partition("=")[0].split(".")
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  init: random\n" + (f"{section[0]}:\n  {key}:\n" if section else f"{key}:\n"))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)  # the same key left empty in the file
    optional = load_config(None, ["model.init=random", "train.max_steps=null", "data.max_images=~"])
    assert optional.train.max_steps is None and optional.data.max_images is None


def test_a_config_that_is_not_utf8_text_is_one_line_naming_it(tmp_path):
    """It was Python's bare `'utf-8' codec can't decode byte 0xff in position 0`, naming no file; then it named
    the file and the problem but not what to do."""
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xff\xfe t\x00r\x00a\x00i\x00n\x00")  # saved as UTF-16
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert (
        str(raised.value)
        == f"{path}: not a YAML config: not UTF-8 text (invalid start byte at byte 0); save it as UTF-8"
    )


def test_an_unknown_key_in_a_validation_dataset_is_refused(tmp_path):
    """`split:` for `splits:` was passed over: the run validated on random splits instead of the official files."""
    entry = f"{{name: kadid10k, root: {tmp_path}, split: {tmp_path / 'splits'}}}"
    with pytest.raises(
        ConfigError, match=r"unknown key split \(did you mean 'splits'\?\); known: name, root, splits, label"
    ):
        load_config(None, ["model.init=random", f"validation.datasets=[{entry}]"])
    ok = f"{{name: kadid10k, root: {tmp_path}, splits: 3, label: k}}"
    assert (
        load_config(None, ["model.init=random", f"validation.datasets=[{ok}]"]).validation.datasets[0]["label"] == "k"
    )


@pytest.mark.parametrize(
    "override, key, hint",
    [
        ("training.lr=1", "training", " (did you mean 'train'?)"),  # an unknown section
        ("optim.lrr=1", "optim.lrr", " (did you mean 'optim.lr'?)"),
        ("data.batch_size=8", "data.batch_size", " (did you mean 'train.batch_size'?)"),  # of another section
        ("train.lr=1", "train.lr", " (did you mean 'optim.lr'?)"),
        ("optim.bogus=1", "optim.bogus", ""),  # nothing close: no guess
    ],
)
def test_an_unknown_key_says_the_key_meant(override, key, hint):
    """`--set data.batch_size=8` or `--set optim.lrr=1` listed the section's keys alone: the key meant, in another
    section or one letter away, was left to the reader to find."""
    with pytest.raises(ConfigError) as err:
        load_config(None, ["model.init=random", override])
    assert str(err.value).startswith(f"unknown config key {key}{hint}; known: ")


def nested_aliases(levels: int) -> str:
    """A flow list of anchored lists, each naming the one before ten times: 10**(levels+1) values written out."""
    items = ["&a0 [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"]
    items += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "[" + ", ".join(items) + "]"


def test_aliases_that_repeat_more_than_the_bound_are_refused_naming_the_file(tmp_path):
    """Nested aliases ("billion laughs") were read as shared lists, then written out by the config's checks
    (repr) and by dataclasses.asdict: 10**8 values took 1.8 GB and a minute, then a MemoryError traceback."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(f"model:\n  init: random\n  se_stages: {nested_aliases(5)}\n")  # 10**6 values written out
    with pytest.raises(ConfigError, match=r"bomb.yaml: invalid YAML \(its aliases repeat [\d,]+ values, more than"):
        load_config(bomb)
    with pytest.raises(ConfigError, match=r"--set model.se_stages=.*its aliases repeat"):
        load_config(None, ["model.init=random", f"model.se_stages={nested_aliases(5)}"])
    # the bound: a list of 999 values (1000 nodes with the list) named n times repeats 1000 * n values
    for n, refused in ((100, False), (101, True)):
        text = f"a: &a [{', '.join(['1'] * 999)}]\nb: [{', '.join(['*a'] * n)}]\n"
        (tmp_path / "n.yaml").write_text(text)
        if refused:
            with pytest.raises(ConfigError, match="its aliases repeat 101,000 values, more than the 100,000"):
                read_values(tmp_path / "n.yaml")
        else:
            assert plain(read_values(tmp_path / "n.yaml")["b"]) == [[1] * 999] * 100


def test_anchors_for_scalars_and_small_maps_read_as_if_written_out(tmp_path):
    shared = tmp_path / "shared.yaml"
    shared.write_text(
        "common: &kadid {name: kadid10k, root: /data/kadid}\nlr: &lr 0.01\n"
        "validation:\n  datasets: [*kadid, {<<: *kadid, splits: 3}]\noptim: {lr: *lr, eta_min: 0.0001}\n"
    )
    written = tmp_path / "written.yaml"
    written.write_text(
        "common: {name: kadid10k, root: /data/kadid}\nlr: 0.01\nvalidation:\n  datasets: [{name: kadid10k, "
        "root: /data/kadid}, {name: kadid10k, root: /data/kadid, splits: 3}]\noptim: {lr: 0.01, eta_min: 0.0001}\n"
    )
    assert read_values(shared) == read_values(written)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("model:\n  init: random\n  se_stages: &a [1, *a]\n", "the collection at line 3 holds itself through an alias"),
        ("model: &m\n  init: random\n  extra: *m\n", "the collection at line 1 holds itself through an alias"),
        ("train:\n  snapshot_steps: " + "[" * 99 + "]" * 99 + "\n", "nested more than 100 levels deep"),
        ("train:\n  snapshot_steps: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested more than 100 levels deep"),
    ],
    ids=["a list in itself", "a section in itself", "101 levels", "100000 levels"],
)
def test_a_config_that_holds_itself_or_nests_too_deeply_is_one_line_naming_it(tmp_path, text, problem):
    """A list holding itself was accepted (then a RecursionError when the run wrote its config.yaml); 100,000
    levels of nesting were PyYAML's RecursionError traceback."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: invalid YAML ({problem}")):
        load_config(path)
    ok = tmp_path / "ok.yaml"
    ok.write_text("train:\n  snapshot_steps: " + "[" * 98 + "1" + "]" * 98 + "\n")  # 100 levels with the two maps
    nested = 1
    for _ in range(98):
        nested = [nested]
    assert plain(read_values(ok)["train"]["snapshot_steps"]) == nested


@pytest.mark.parametrize(
    "text, problem",
    [
        (
            "train:\n  batch_size: " + "9" * 5000 + "\n",
            "line 2, column 15: a value of 5,000 characters cannot be read as an int",
        ),
        (
            "output: 2001-13-45\n",
            "line 1, column 9: 2001-13-45 cannot be read as a timestamp (month must be in 1..12)",
        ),
    ],
    ids=["an int of 5000 digits", "a 13th month"],
)
def test_a_scalar_its_tag_cannot_hold_is_invalid_yaml_naming_the_file_and_line(tmp_path, text, problem):
    """PyYAML's ValueError from an int past Python's 4300 digits or a date that is none came out as
    `error: month must be in 1..12`: no file, no line, nothing to do."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: invalid YAML ({problem}")):
        load_config(path)
    with pytest.raises(ConfigError, match=re.escape("--set output=2001-13-45: its value is not valid YAML (")):
        load_config(None, ["output=2001-13-45"])


@pytest.mark.parametrize("text, key", [("~: 1\n", "None"), ("train:\n  1: 2\n  0x10: 3\n", "train.1, train.16")])
def test_a_key_that_is_no_name_is_an_unknown_key(tmp_path, text, key):
    """A null or numeric key in a config file was a TypeError traceback (exit 1) from the unknown-key message."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(
        ConfigError, match=re.escape(f"unknown config keys {key}" if "," in key else f"unknown config key {key};")
    ):
        load_config(path)


def test_a_missing_imagenet_file_names_model_weights_and_where_it_comes_from(image_folder, tmp_path, monkeypatch):
    """Said `error: weights/resnet50_imagenet1k_v1.pth: no such weight file`: neither the config key nor what to do.
    Now one line naming model.weights and the remedy, before the run folder is made (a resumed run, which takes its
    weights from its state, needs no file: test_train_resume.py)."""
    from typer.testing import CliRunner

    from arniqa.cli import _register, app

    _register()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    sets = [f"data.root={image_folder}", "output=run", "train.device=cpu", "train.batch_size=2", "model.init=imagenet"]
    for weights, problem in (("missing.pth", "no such file"), (".", "a folder, not a weight file")):
        args = [
            "train",
            str(CONFIGS / "arniqa_resnet50.yaml"),
            *(f"--set={s}" for s in [*sets, f"model.weights={weights}"]),
        ]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        line = f"error: model.weights={weights}: {problem}; set it to a local ResNet50 ImageNet file (torchvision's "
        assert result.output.startswith(line) and result.output.endswith("or set model.init=random\n"), result.output
        assert "resnet50-0676ba61.pth" in result.output and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "text, where",
    [("train:\n\tepochs: 2\n", "line 2, column 1"), ("train:\n  epochs: 2\n\tseed: 1\n", "line 3, column 1")],
)
def test_a_tab_in_a_config_is_named_as_a_tab(tmp_path, text, where):
    """A config indented with a tab (an editor's setting) was "found character '\\t' that cannot start any token",
    PyYAML's words, which do not say that the tab is the problem nor what to write instead."""
    path = tmp_path / "tab.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: invalid YAML ({where}: a tab, which YAML does not take here: indent with spaces); fix the file"
    )


def test_a_config_larger_than_the_bound_is_refused_unread(tmp_path):
    """A 50 MB YAML file (a scalar of 50 million characters) took PyYAML past a minute to read; /dev/zero given as
    the config was read until memory ran out. A config holds a few kB: a bigger file is one line, read no further."""
    head = "model:\n  init: random\n#"
    path = tmp_path / "c.yaml"
    path.write_text(head + "x" * (MAX_CONFIG_BYTES - len(head) - 1) + "\n")  # the bound: read
    assert path.stat().st_size == MAX_CONFIG_BYTES and read_values(path) == {"model": {"init": "random"}}
    path.write_text(head + "x" * (MAX_CONFIG_BYTES - len(head)) + "\n")  # one byte more: refused
    with pytest.raises(ConfigError, match=re.escape(f"{path}: larger than 1,048,576 bytes, which no config is")):
        load_config(path)


@pytest.mark.parametrize(
    "text, kind",
    [
        ("- model\n- train\n", "a list"),
        ("model\n", "text"),
        ("42\n", "a whole number"),
        ("4.2\n", "a number"),
        ("2024-01-01\n", "a date"),
    ],
)
def test_a_config_that_is_no_mapping_says_how_a_config_is_written(tmp_path, text, kind):
    """A config written as a list ('- train') was 'expected a mapping at the top level, got list': nothing on how
    a config is written, and the kind named as Python names it (list, str, int), not as YAML does."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: expected a mapping at the top level, got {kind}; write its sections as `name:` lines, each with "
        "`key: value` lines under it (the files in configs/ are examples)"
    )


def test_a_bad_key_names_the_file_or_the_set_it_came_from(tmp_path):
    """A typo in a long YAML file and one in `--set` gave the same message, naming the key alone: the reader could not
    tell where to look. The message now starts with the file, `--set`, or both when the two together make it."""
    path = tmp_path / "c.yaml"
    path.write_text("output: runs/x\nmodel:\n  init: random\noptim:\n  lrr: 0.01\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: unknown config key optim.lrr (did you mean 'optim.lr'?); known: ")
    with pytest.raises(ConfigError) as err:
        load_config(path, ["optim.lrr=null", "train.batch_size=eight"])  # the file's typo kept, a bad value added
    assert str(err.value).startswith(f"{path}: unknown config key optim.lrr ")
    path.write_text("output: runs/x\nmodel:\n  init: random\noptim:\n  lr: 0.01\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, ["train.batch_size=eight"])
    assert str(err.value) == "--set: config key train.batch_size: expected a whole number, got eight"
    path.write_text("output: runs/x\nmodel:\n  init: random\noptim:\n  lr: 0.0001\n")
    with pytest.raises(ConfigError) as err:  # lr from the file, eta_min from --set: neither alone is wrong
        load_config(path, ["optim.eta_min=0.0005"])  # below the default lr, 0.001
    assert str(err.value) == (
        f"{path} with --set: invalid config: optim.eta_min (0.0005) must be below optim.lr (0.0001)"
    )


def test_a_bad_set_on_a_right_file_names_the_set(tmp_path):
    """With a file that sets model.init=random, as the shipped ones do, every bad `--set` was named `FILE with --set`:
    on the defaults (init=imagenet without weights) the same --set gave a longer message, taken for another problem.
    Also a message that names a value of the file (its lr) named the file for a `--set` wrong whatever the file."""
    path = tmp_path / "c.yaml"
    path.write_text("output: runs/x\nmodel:\n  init: random\noptim:\n  lr: 0.01\n")
    for sets, problem in [
        (["model.backbone=nope"], "model.backbone must be resnet50 or se_resnet50, got nope"),
        (["model.temperature=.nan"], "model.temperature must be > 0 and finite, got .nan"),
        (
            ["model.init=imagenet"],
            "model.init=imagenet needs model.weights (a local ResNet50 ImageNet file); or model.init=random",
        ),
        (["optim.eta_min=0.1"], "optim.eta_min (0.1) must be below optim.lr (0.01)"),  # and below no lr of 0.001
    ]:
        with pytest.raises(ConfigError) as err:
            load_config(path, sets)
        assert str(err.value) == f"--set: invalid config: {problem}"


@pytest.mark.parametrize(
    "override, shown",
    [
        ("model.backbone=nope", "model.backbone must be resnet50 or se_resnet50, got nope"),
        ("train.batch_size=abc", "config key train.batch_size: expected a whole number, got abc"),
        ("model.weights=yes", "config key model.weights: expected text, got yes"),
        # named as Python names types before: expected float, expected bool
        ("optim.lr=fast", "config key optim.lr: expected a number, got fast"),
        ("train.channels_last=2", "config key train.channels_last: expected true or false, got 2"),
        ("optim.lr=.inf", "optim.lr must be > 0, got .inf"),
        ("train.max_steps=0", "train.max_steps must be a positive integer or null, got 0"),
        ("train.snapshot_steps=[0, 2]", "train.snapshot_steps must be a list of positive integers, got [0, 2]"),
        ("model.se_stages=[1, 1]", "each at most once, got [1, 1]"),
        ("validation.datasets=[{root: /x, label: y}]", "entries need name and root, got {root: /x, label: y}"),
        ("data=[1]", "data: expected a mapping, got [1]"),
    ],
)
def test_a_bad_value_is_shown_as_a_config_writes_it(override, shown):
    """The problems showed Python's reprs ('abc', True, inf, {'name': 'live'}), not the values as written."""
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert shown in str(err.value) and "'" not in str(err.value)


@pytest.mark.parametrize(
    "text, override, said",
    [
        (
            "model:\n  weights: on\n",
            None,
            "config key model.weights: expected text, got on (YAML reads yes, no, on and off as true or false); "
            'quote it to give it as text: "on"',
        ),
        (
            None,
            "model.weights=no",
            "config key model.weights: expected text, got no (YAML reads yes, no, on and off as true or false); "
            'quote it to give it as text: "no"',
        ),
        # before: "got true ...; quote the word to give it as text: "yes" or "on"", of True
        (
            None,
            "model.weights=True",
            'got True (YAML reads yes, no, on and off as true or false); quote it to give it as text: "True"',
        ),
        (
            "output: 2024-01-05\n",
            None,
            "config key output: expected text, got 2024-01-05 (YAML reads it as a date); quote it to give it as text: "
            '"2024-01-05"',
        ),
        # before: "got 2024-01-05 10:00:00+00:00 ...; quote it to give it as text", with no text to quote
        (
            None,
            "output=2024-01-05T10:00:00Z",
            'got 2024-01-05T10:00:00Z (YAML reads it as a date); quote it to give it as text: "2024-01-05T10:00:00Z"',
        ),
        # before: the text "0.1" (data.root=0.10 named the folder 0.1, output=010 the run folder 8); then the
        # value as YAML reads it: "got 0.1", "got 8", "got 750", "got 0.001"
        (
            None,
            "data.root=0.10",
            "config key data.root: expected text, got 0.10 (YAML reads it as a number); quote it to give it as text: "
            '"0.10"',
        ),
        (
            "output: 010\n",
            None,
            'config key output: expected text, got 010 (YAML reads it as a number); quote it to give it as text: "010"',
        ),
        (
            None,
            "model.weights=12:30",
            'expected text, got 12:30 (YAML reads it as a number); quote it to give it as text: "12:30"',
        ),
        (
            "model: {weights: 1.0e-3}\n",
            None,
            'expected text, got 1.0e-3 (YAML reads it as a number); quote it to give it as text: "1.0e-3"',
        ),
        # a choice key lists its choices, without advice to quote a word that is none of them; before: "expected
        # text, got true ...; quote the word" (no choices), and for 12 "must be workers, device or auto, got '12'";
        # then "got true" of on
        (
            "data:\n  degrade_on: on\n",
            None,
            "config key data.degrade_on: expected workers, device or auto, got on "
            "(YAML reads yes, no, on and off as true or false)",
        ),
        (
            None,
            "data.degrade_on=ON",
            "config key data.degrade_on: expected workers, device or auto, got ON "
            "(YAML reads yes, no, on and off as true or false)",
        ),
        (
            None,
            "data.degrade_on=12",
            "config key data.degrade_on: expected workers, device or auto, got 12 (YAML reads it as a number)",
        ),
        (None, "optim.name=null", "config key optim.name: no value (null); expected sgd, adamw or lars"),
    ],
)
def test_a_text_key_takes_text_alone_and_a_choice_key_lists_its_choices(tmp_path, text, override, said):
    # before: "expected text, got true" of backbone: on, with nothing of why, nor what to do; a number was taken as
    # its text as YAML reads it
    path = None
    if text is not None:
        path = tmp_path / "c.yaml"
        path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, [override] if override else [])
    assert said in str(err.value), str(err.value)


@pytest.mark.parametrize("override", ["train.max_steps=yes", "data.max_images=on", "optim.t0_steps=no"])
def test_a_key_whose_default_is_null_refuses_a_value_of_another_kind(override):
    key = override.partition("=")[0]
    with pytest.raises(ConfigError) as err:
        load_config(None, [override, "model.init=random"])
    assert str(err.value).startswith(f"config key {key}: expected a whole number or null, got ")


def test_text_given_quoted_is_kept_as_written():
    config = load_config(None, ['data.root="0.10"', "output='010'", 'data.degrade_on="device"', "model.init=random"])
    assert (config.data.root, config.output, config.data.degrade_on) == ("0.10", "010", "device")


@pytest.mark.parametrize(
    "override, shown",
    [
        ("train.device=gpu", "gpu"),
        ('train.device="on"', "on"),
        ("train.device=", '""'),
        ('train.device=" cpu"', "' cpu'"),
    ],
)
def test_a_device_that_is_no_device_is_shown_as_given(override, shown):
    # before: "train.device=gpu: device 'gpu' is not a device", the name twice, once as Python quotes it
    with pytest.raises(ConfigError) as err:
        load_config(None, [override, "model.init=random"])
    assert str(err.value) == (
        f"invalid config: train.device: device {shown} is not a device: choose auto, cpu, cuda, cuda:N or mps"
    )


def test_values_read_as_written_are_built_as_yaml_reads_them(tmp_path):
    """The texts the error lines show stay in the loader's values: the config holds plain values, which the run
    writes to its config.yaml."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "model: {init: random}\noptim: {lr: 1.0e-3}\ntrain: {channels_last: yes, snapshot_steps: [010]}\n"
        "validation:\n  datasets: [{name: a, root: /a, splits: 3}]\n"
    )
    config = load_config(path, ["train.deterministic=on"])
    assert (config.optim.lr, config.train.channels_last, config.train.deterministic) == (0.001, True, True)
    assert type(config.optim.lr) is float and config.train.snapshot_steps == [8]
    assert type(config.validation.datasets[0]["splits"]) is int
    assert yaml.safe_load(yaml.safe_dump(config.to_dict())) == config.to_dict()


def test_a_text_key_quoted_is_the_text_it_looks_like(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text('model:\n  backbone: "on"\n  init: random\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, ['output="2024-01-05"'])
    # before: got 'on', quoted as the user did not write it
    assert str(err.value).endswith('invalid config: model.backbone must be resnet50 or se_resnet50, got "on"')
    assert load_config(None, ['output="2024-01-05"', "model.init=random"]).output == "2024-01-05"


@pytest.mark.parametrize(
    "file_text, item, said, fixed",
    [
        (
            "train:\n  epochs: 3\n",
            "train.epochs.x=1",
            "--set train.epochs.x=1: train.epochs is a value (3), not a section with keys; set it whole with "
            "--set train.epochs=VALUE",
            "train.epochs=1",
        ),
        (
            None,
            "optim.lr",
            "--set optim.lr: expected KEY=VALUE; write it as e.g. --set train.batch_size=8",
            "optim.lr=1",
        ),
        (
            None,
            "output=2001-13-45",
            "--set output=2001-13-45: its value is not valid YAML (line 1, column 1: 2001-13-45 cannot be read as a "
            "timestamp (month must be in 1..12)); write it as YAML (8, 0.01, true, null, [1, 2]), text in YAML "
            "quotes: --set 'output=\"TEXT\"'",
            'output="2001-13-45"',
        ),
    ],
    ids=["a value taken for a section", "no value", "a value that is not YAML"],
)
def test_a_set_that_cannot_be_read_names_the_set_and_what_to_write(tmp_path, file_text, item, said, fixed):
    """`--set train.epochs.x=1` said `override 'train.epochs.x=1': 'epochs' is not a section`: Python's quotes,
    no `--set`, nothing to do. Each says `--set ITEM: problem; what to write`, and what it says to write is read."""
    path = None
    if file_text is not None:
        path = tmp_path / "c.yaml"
        path.write_text(file_text)
    with pytest.raises(ConfigError) as err:
        read_values(path, [item])
    assert str(err.value) == said
    read_values(path, [fixed])  # the advice taken


def test_a_config_the_system_will_not_read_says_to_check_its_permissions_not_its_path(tmp_path, monkeypatch):
    """An unreadable config said 'check the path of the YAML file', though the path was right. (Denied through
    open, as root reads any file.)"""
    import builtins
    import errno
    import os

    path = tmp_path / "c.yaml"
    path.write_text("model:\n  init: random\n")
    real_open = builtins.open

    def denied(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(ConfigError) as said:
        read_values(path)
    assert str(said.value) == f"{path}: cannot read file (Permission denied); check its permissions"
    for missing in (tmp_path / "missing.yaml", tmp_path):  # a wrong path is still told to check it
        with pytest.raises(ConfigError, match=r"; check the path of the YAML file$"):
            read_values(missing)
