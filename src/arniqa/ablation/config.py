"""The ablation study's configuration: variants, seeds, data split, benchmarks, one training recipe.

A YAML file with the sections below; ``key.sub=value`` overrides (values parsed as YAML scalars)
are applied after it, as for training. ``recipe`` holds the training configuration of
:mod:`arniqa.train.config` (every key but ``output`` and ``data.root``, which the runner sets); a
variant is a set of ``model`` options merged into it, e.g. ``{backbone: se_resnet50, se_stages: [1, 2, 3]}``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..constants import CROP_SIZE
from ..data.synthetic import KADID_TYPES, parse_size
from ..train.config import Config, ConfigError, build_dataclass, build_values, check, from_dict, yaml_value
from ..utils.runtime import check_device, check_workers
from .layout import AblationError, stages

# how a stopped or failed study goes on: its runner skips what is done and resumes an interrupted training run
GO_ON = "rerun the same arniqa ablate command to go on"
VARIANT_KEYS = ("backbone", "se_stages", "se_bias", "init", "weights", "se_init")
SYNTHETIC = "synthetic"  # the synthetic benchmark's name, beside the names of the labelled datasets


@dataclass
class DataSplit:
    pristine: str = ""  # folder of pristine images, split by file into training and held-out parts
    holdout_images: int | None = None  # held-out images (benchmark references); overrides holdout_fraction
    holdout_fraction: float = 0.2
    train_images: int | None = None  # keep at most this many training images (None: all the rest)
    seed: int = 0  # seed of the file permutation


@dataclass
class Synthetic:
    size: str = "512x384"  # WIDTHxHEIGHT of the benchmark images (KADID-10k: 512x384)
    types: list[str] | None = None  # distortion types (model keys); None: the 23 shared with KADID-10k
    seed: int = 0


@dataclass
class Evaluation:
    crop_size: int = CROP_SIZE  # feature crops (5 per scale)
    splits: int = 10  # random 70/10/20 splits, reference-disjoint on synthetic sets
    seed: int = 0  # seed of the splits
    batch_size: int = 8  # images per feature batch
    device: str = "cpu"
    num_workers: int = 0
    untrained: bool = True  # also evaluate each variant and seed before training
    probe_steps: list[int] = field(
        default_factory=list
    )  # also evaluate snapshots after these global steps (0: untrained)
    keep_features: bool = False  # keep the per-run feature caches after the result is written
    keep_state: bool = False  # keep each finished training run's state.pt (model.safetensors is always kept)


@dataclass
class AblationConfig:
    output: str = "runs/ablation"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    baseline: str = "resnet50"  # paired differences are variant minus baseline
    variants: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "resnet50": {"backbone": "resnet50"},
            "se_resnet50": {"backbone": "se_resnet50", "se_stages": [1, 2, 3, 4]},
            "se_resnet50_stages123": {"backbone": "se_resnet50", "se_stages": [1, 2, 3]},
        }
    )
    data: DataSplit = field(default_factory=DataSplit)
    synthetic: Synthetic = field(default_factory=Synthetic)
    datasets: list[dict[str, str]] = field(default_factory=list)  # labelled sets: [{name: live, root: DIR}]
    recipe: dict[str, Any] = field(default_factory=dict)
    evaluation: Evaluation = field(default_factory=Evaluation)
    threads: int | None = None  # torch.set_num_threads; None: leave as is

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def size(self) -> tuple[int, int]:
        return parse_size(self.synthetic.size)

    def stages(self) -> tuple[str, ...]:
        """The stages every run is evaluated at, in training order."""
        return stages(self.evaluation.probe_steps, self.evaluation.untrained)

    def recipe_config(self) -> Config:
        """The recipe alone as a training :class:`Config`, the training defaults filled in."""
        return from_dict(copy.deepcopy(self.recipe))

    def train_config(self, variant: str, seed: int, output: str | Path, root: str | Path) -> Config:
        """The training :class:`Config` of ``variant`` and ``seed``, writing to ``output``, reading ``root``. A bad
        key or value is the recipe's when the recipe alone gives it (every variant's then), else the variant's."""
        try:
            return self._train_config(self.variants[variant], seed, output, root)
        except ConfigError as err:
            try:
                self._train_config({}, seed, output, root)
            except ConfigError as shared:
                if str(shared) == str(err):
                    raise AblationError(f"recipe: {err}") from None
            raise AblationError(f"variant {yaml_value(variant)}: {err}") from None

    def _train_config(self, options: dict[str, Any], seed: int, output: str | Path, root: str | Path) -> Config:
        """The recipe with the model ``options`` of a variant; ConfigError for a bad key or value."""
        values = copy.deepcopy(self.recipe)
        for section in ("data", "model", "train"):
            if not isinstance(values.setdefault(section, {}), dict):
                raise AblationError(f"recipe.{section}: expected a mapping, got {yaml_value(values[section])}")
        values["output"] = str(output)
        values["data"]["root"] = str(root)
        values["data"]["max_images"] = None
        values["model"].update(copy.deepcopy(options))
        values["train"]["seed"] = int(seed)
        values["train"]["snapshot_steps"] = sorted({k for k in self.evaluation.probe_steps if k > 0})
        config = from_dict(values)
        check(config)
        return config


def load_ablation_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> AblationConfig:
    """Read a YAML ablation config (defaults when ``path`` is None) and apply ``key=value`` overrides."""
    return build_values(path, overrides, _validated, AblationError)


def _validated(values: dict[str, Any]) -> AblationConfig:
    config = build_dataclass(AblationConfig, values)  # ConfigError: a value of the wrong type, an unknown key
    validate(config)
    return config


def validate(config: AblationConfig) -> None:
    """Raise AblationError for values that cannot work (the recipe of every variant is checked too). The
    types of the values were checked when the config was built (null only where the default is null)."""
    problems = []
    if not config.variants:
        raise AblationError("variants: expected a mapping of at least one name to model options")
    if not config.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in config.seeds):
        problems.append(f"seeds: expected a list of integers, got {yaml_value(config.seeds)}")
    elif len(set(config.seeds)) != len(config.seeds):
        problems.append(f"seeds: repeated values in {yaml_value(config.seeds)}")
    if config.baseline not in config.variants:
        problems.append(
            f"baseline {yaml_value(config.baseline)} is not a variant; "
            f"name one of {', '.join(map(str, config.variants))}"
        )
    for name, options in config.variants.items():
        if not str(name).replace("_", "").replace("-", "").isalnum():
            problems.append(f"variant name {yaml_value(name)}: use letters, digits, _ and - only (it names folders)")
        if not isinstance(options, dict) or set(options) - set(VARIANT_KEYS):
            problems.append(
                f"variant {yaml_value(name)}: expected a mapping with keys among {', '.join(VARIANT_KEYS)}, "
                f"got {yaml_value(options)}"
            )
    # a section that is not a mapping is named when the variants' configs are built, below
    data, train, model = (v if isinstance(v := config.recipe.get(k), dict) else {} for k in ("data", "train", "model"))
    options = [o for o in config.variants.values() if isinstance(o, dict)]
    for key in [k for k in model if options and all(k in o for o in options)]:  # the recipe's value is never used
        problems.append(
            f"recipe.model.{key} is never used: every variant sets {key} ({', '.join(config.variants)}); set it in "
            f"each variant instead (--set variants.{next(iter(config.variants))}.{key}=VALUE, and so on)"
        )
    if "output" in config.recipe:
        problems.append("recipe.output is set by the runner; remove it")
    if "root" in data or "max_images" in data:
        problems.append(
            "recipe.data.root and recipe.data.max_images are set by the runner; use data.pristine and data.train_images"
        )
    if "seed" in train:
        problems.append("recipe.train.seed is set by the runner from seeds; remove it")
    if "snapshot_steps" in train:
        problems.append("recipe.train.snapshot_steps is set by the runner from evaluation.probe_steps; remove it")
    d = config.data
    if d.holdout_images is not None and d.holdout_images < 1:
        problems.append(f"data.holdout_images must be a positive integer or null, got {yaml_value(d.holdout_images)}")
    if d.holdout_images is None and not 0 < d.holdout_fraction < 1:
        problems.append(f"data.holdout_fraction must be in (0, 1), got {yaml_value(d.holdout_fraction)}")
    if d.train_images is not None and d.train_images < 1:
        problems.append(f"data.train_images must be a positive integer or null, got {yaml_value(d.train_images)}")
    ev = config.evaluation
    if ev.crop_size < 16 or ev.splits < 1 or ev.batch_size < 1 or ev.num_workers < 0:
        problems.append(
            "evaluation.crop_size must be at least 16, evaluation.splits and batch_size at least 1, "
            "evaluation.num_workers at least 0"
        )
    try:
        check_workers(ev.num_workers, "evaluation.num_workers")
    except ValueError as e:
        problems.append(str(e))
    try:  # the name; whether the device is there is the runner's to say (check_devices)
        check_device(ev.device)
    except ValueError as e:
        problems.append(f"evaluation.device: {e}")
    probes = ev.probe_steps
    if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in probes):
        problems.append(
            f"evaluation.probe_steps must be a list of global steps (integers >= 0), got {yaml_value(probes)}"
        )
    names = [SYNTHETIC]  # each names a benchmark's results
    for entry in config.datasets:
        if not isinstance(entry, dict) or set(entry) != {"name", "root"}:
            problems.append(f"datasets entries need exactly name and root, got {yaml_value(entry)}")
        elif (name := str(entry["name"])) in names:
            problems.append(
                f"datasets: {yaml_value(name)} is "
                + ("the name of the synthetic benchmark" if name == SYNTHETIC else "given twice")
                + "; rename it"
            )
        else:
            names.append(name)
    if config.threads is not None and config.threads < 1:
        problems.append(f"threads must be a positive integer or null, got {yaml_value(config.threads)}")
    if problems:
        raise AblationError("invalid ablation config: " + "; ".join(problems))
    try:
        parse_size(config.synthetic.size)
    except ValueError as err:
        raise AblationError(f"synthetic.size: {err}") from None
    if config.synthetic.types is not None:
        unknown = sorted(set(config.synthetic.types) - set(KADID_TYPES))
        if unknown or not config.synthetic.types:
            raise AblationError(
                f"synthetic.types: unknown or empty {yaml_value(unknown or config.synthetic.types)}; "
                f"known: {', '.join(KADID_TYPES)}"
            )
    for name in config.variants:  # every variant must give a valid training config
        config.train_config(name, config.seeds[0], "unused", "unused")
