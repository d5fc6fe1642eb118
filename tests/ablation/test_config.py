"""The ablation config: bad values refused with a message naming the key, the shipped study configs."""

from pathlib import Path

import pytest

from arniqa.ablation import AblationError, load_ablation_config

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ablation_tiny.yaml"


def test_bad_configs_are_refused():
    with pytest.raises(AblationError, match="baseline"):
        load_ablation_config(CONFIG, ["baseline=vgg"])
    with pytest.raises(AblationError, match="unknown config key"):
        load_ablation_config(CONFIG, ["evaluation.crops=3"])
    with pytest.raises(AblationError, match="se_resnet50_stages123.*backbone"):
        load_ablation_config(CONFIG, ["variants.se_resnet50_stages123.backbone=vgg16"])
    with pytest.raises(AblationError, match="probe_steps"):
        load_ablation_config(CONFIG, ["evaluation.probe_steps=[-1]"])
    with pytest.raises(AblationError, match="snapshot_steps"):
        load_ablation_config(CONFIG, ["recipe.train.snapshot_steps=[1]"])
    with pytest.raises(AblationError, match="num_workers at least 0"):
        load_ablation_config(CONFIG, ["evaluation.num_workers=-1"])
    with pytest.raises(AblationError, match="evaluation.num_workers=100000 is more than"):  # a process each
        load_ablation_config(CONFIG, ["evaluation.num_workers=100000"])


@pytest.mark.parametrize(
    "override, key",
    [
        ("seeds=3", "seeds"),
        ("seeds=[a]", "seeds"),
        ("variants=3", "variants"),
        ("variants={}", "variants"),
        ("recipe=3", "recipe"),
        ("recipe=null", "recipe"),
        ("data=3", "data"),
        ("evaluation.crop_size=abc", "evaluation.crop_size"),
        ("evaluation.untrained=1", "evaluation.untrained"),
        ("evaluation.probe_steps=3", "evaluation.probe_steps"),
        ("data.holdout_fraction=abc", "data.holdout_fraction"),
        ("synthetic.size=9", "synthetic.size"),
        ("threads=0", "threads"),
        # these were TypeError tracebacks (null reached a comparison, or a recipe section was written into)
        ("evaluation.crop_size=null", "evaluation.crop_size"),
        ("data.holdout_fraction=null", "data.holdout_fraction"),
        ("data.pristine=null", "data.pristine"),
        ("recipe.data=null", "recipe.data"),
        ("recipe.train=5", "recipe.train"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_in_one_line_naming_its_key(override, key):
    with pytest.raises(AblationError) as err:
        load_ablation_config(CONFIG, [override])
    message = str(err.value)
    assert "\n" not in message and (f"{key}:" in message or f"{key} " in message), message


@pytest.mark.parametrize("name, points, variants", [("curve-cpu.yaml", 7, 2), ("ablation-cpu.yaml", 4, 3)])
def test_shipped_study_configs(name, points, variants):
    config = load_ablation_config(CONFIG.parent / name)
    assert len(config.stages()) == points and len(config.variants) == variants
    train = config.train_config("se_resnet50", 0, "unused", "unused")
    assert train.model.init == "random_resnet50" and train.model.se_init == "identity"
    assert train.data.crop_size == config.evaluation.crop_size == 96 and train.train.batch_size == 8
    assert max(config.evaluation.probe_steps) < train.train.max_steps <= 73 * train.train.epochs  # 589 images / 8


def test_a_bad_recipe_key_names_the_file_or_the_set_it_came_from(tmp_path):
    """`recipe: {optim: {lrr: 1}}` in the file and `--set recipe.optim.lrr=1` both gave `variant 'resnet50':
    unknown config key optim.lrr`, naming neither the file nor --set (nor the recipe: the first variant instead)."""
    path = tmp_path / "study.yaml"
    path.write_text(CONFIG.read_text().replace("\nrecipe:\n", "\nrecipe:\n  optim: {lrr: 1}\n"))
    with pytest.raises(AblationError) as err:
        load_ablation_config(path)
    assert str(err.value).startswith(f"{path}: recipe: unknown config key optim.lrr ")
    with pytest.raises(AblationError) as err:
        load_ablation_config(CONFIG, ["recipe.optim.lrr=1"])
    assert str(err.value).startswith("--set: recipe: unknown config key optim.lrr ")


@pytest.mark.parametrize(
    "override, whose",
    [
        ("recipe.optim.lr=abc", "recipe"),
        ("recipe.model.se_stages=[9]", "recipe"),  # wrong for every variant without se_stages of its own
        ("variants.se_resnet50_stages123.se_stages=[9]", "variant se_resnet50_stages123"),
        ("variants.resnet50.init=imagenet", "variant resnet50"),  # the recipe names no weights; only it wants them
    ],
)
def test_a_bad_key_or_value_names_the_variant_only_when_it_is_that_variants_own(override, whose):
    """A typo in the shared recipe read `variant 'resnet50': ...`, as if that variant alone were wrong."""
    with pytest.raises(AblationError) as err:
        load_ablation_config(CONFIG, [override])
    message = str(err.value)
    assert f": {whose}: " in message and message.count("variant") == whose.count("variant"), message


def test_a_recipe_model_key_every_variant_sets_is_refused_naming_them(tmp_path):
    """`--set recipe.model.backbone=nope` was accepted and never used: every variant sets backbone, and a variant's
    options replace the recipe's. Refused in one line naming the variants; a key only some variants set still
    reaches the others."""
    path = tmp_path / "study.yaml"
    path.write_text(
        "baseline: a\nvariants:\n  a: {backbone: resnet50}\n  b: {backbone: se_resnet50, se_stages: [1, 2]}\n"
        "recipe:\n  model: {init: random}\n"
    )
    with pytest.raises(AblationError) as err:
        load_ablation_config(path, ["recipe.model.backbone=se_resnet50"])
    assert str(err.value) == (
        "--set: invalid ablation config: recipe.model.backbone is never used: every variant sets backbone (a, b); "
        "set it in each variant instead (--set variants.a.backbone=VALUE, and so on)"
    )
    assert "\n" not in str(err.value)
    config = load_ablation_config(path, ["recipe.model.se_stages=[3]"])  # b sets its own, a takes the recipe's
    assert config.train_config("a", 0, "o", "r").model.se_stages == [3]
    assert config.train_config("b", 0, "o", "r").model.se_stages == [1, 2]


@pytest.mark.parametrize(
    "override, shown",
    [
        ("seeds=[0, true]", "seeds: expected a list of integers, got [0, true]"),
        ("seeds=[1, 1]", "seeds: repeated values in [1, 1]"),
        ("baseline=vgg", "baseline vgg is not a variant; name one of resnet50, se_resnet50_stages123"),
        ("variants.resnet50={backbone: resnet50, lr: 1}", "got {backbone: resnet50, lr: 1}"),
        ("variants.a b={}", "variant name a b: use letters"),
        ("data.holdout_images=0", "data.holdout_images must be a positive integer or null, got 0"),
        ("data.holdout_images=null;data.holdout_fraction=1.5", "data.holdout_fraction must be in (0, 1), got 1.5"),
        ("data.train_images=0", "data.train_images must be a positive integer or null, got 0"),
        ("evaluation.probe_steps=[-1]", "got [-1]"),
        ("datasets=[{name: live}]", "datasets entries need exactly name and root, got {name: live}"),
        ("threads=0", "threads must be a positive integer or null, got 0"),
        ("synthetic.types=[blurr]", "synthetic.types: unknown or empty [blurr]"),
        ("recipe.model=[1]", "recipe.model: expected a mapping, got [1]"),
        # found by arniqa ablate only after the synthetic benchmark was built (minutes)
        ("datasets=[{name: live, root: /a}, {name: live, root: /b}]", "datasets: live is given twice; rename it"),
        (
            "datasets=[{name: synthetic, root: /a}]",
            "datasets: synthetic is the name of the synthetic benchmark; rename",
        ),
    ],
)
def test_a_bad_value_is_shown_as_a_config_writes_it(override, shown):
    """The ablation's problems showed Python's reprs ('vgg', True, ['resnet50', ...], {'name': 'live'}), as the
    training config's problems no longer do."""
    with pytest.raises(AblationError) as err:
        load_ablation_config(CONFIG, override.split(";"))
    assert shown in str(err.value) and "'" not in str(err.value), str(err.value)


@pytest.mark.parametrize(
    "text, override, said",
    [
        # before: "synthetic.types: unknown or empty [true]", YAML's reading, with nothing of why nor to quote it
        (
            None,
            "synthetic.types=[jpeg, yes]",
            "--set: config key synthetic.types[1]: expected text, got yes (YAML reads yes, no, on and off as true or "
            'false); quote it to give it as text: "yes"',
        ),
        (
            "synthetic:\n  types:\n    - jpeg\n    - 010\n",
            None,
            "config key synthetic.types[1]: expected text, got 010 (YAML reads it as a number); quote it to give it as "
            'text: "010"',
        ),
        ('synthetic:\n  types: ["yes"]\n', None, 'synthetic.types: unknown or empty ["yes"]; known: gaublur, '),
    ],
)
def test_an_item_of_a_list_of_text_takes_text_alone_shown_as_written(tmp_path, text, override, said):
    path = CONFIG
    if text is not None:
        path = tmp_path / "c.yaml"
        path.write_text(text)
    with pytest.raises(AblationError) as err:
        load_ablation_config(path, [override] if override else [])
    assert said in str(err.value), str(err.value)


@pytest.mark.parametrize(
    "override, kind",
    [
        # before: taken, as 1 held-out image, 1 training image, 1 thread
        ("data.holdout_images=yes", "a whole number or null"),
        ("data.train_images=true", "a whole number or null"),
        ("threads=on", "a whole number or null"),
        # before: a TypeError traceback ('bool' object is not iterable); blur was the types b, l, r, u
        ("synthetic.types=yes", "a list or null"),
        ("synthetic.types=blur", "a list or null"),
    ],
)
def test_a_key_whose_default_is_null_refuses_a_value_of_another_kind(override, kind):
    key, _, value = override.partition("=")
    with pytest.raises(AblationError) as err:
        load_ablation_config(CONFIG, [override])
    # before: "got true" of yes and on
    assert str(err.value) == f"--set: config key {key}: expected {kind}, got {value}"
