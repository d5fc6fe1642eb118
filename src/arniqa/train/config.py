"""Training configuration: nested dataclasses, read from YAML and overridden with ``key=value`` pairs.

Defaults are the reference recipe (ARNIQA ``config.yaml`` / ``main.py``). A YAML file gives any
subset of the sections below; ``--set optim.lr=0.01`` style overrides are applied after it, with
values parsed as YAML scalars (``true``, ``1e-3``, ``[1, 2]``, ``null``). Unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..constants import BACKBONES, CROP_SIZE, MAX_SEED, SE_INITS, SE_STAGES
from ..data.folders import training_root
from ..degradations.registry import MAX_DISTORTIONS
from ..utils.files import PATH_ERRORS, unreadable
from ..utils.jsonfile import MAX_NESTING
from ..utils.messages import file_line, words
from ..utils.names import agree, did_you_mean, meant
from ..utils.runtime import AUTOCAST_PRECISIONS, check_device
from ..utils.yamltext import Written, plain, yaml_value

INITS = ("imagenet", "random", "random_resnet50")  # model.init
PRECISIONS = ("auto", *AUTOCAST_PRECISIONS)  # train.precision (auto: arniqa.train.factory.autocast_settings)
DEGRADE_ON = ("workers", "device", "auto")  # data.degrade_on (arniqa.train.batches)
OPTIMIZERS = ("sgd", "adamw", "lars")  # optim.name (arniqa.train.factory.make_optimizer)
VALIDATION_KEYS = ("name", "root", "splits", "label")  # of a validation.datasets entry (arniqa.train.validation)
CHOICES = {  # keys that take one of a few names
    "model.backbone": BACKBONES,
    "model.init": INITS,
    "model.se_init": SE_INITS,
    "train.precision": PRECISIONS,
    "data.degrade_on": DEGRADE_ON,
    "optim.name": OPTIMIZERS,
}


class ConfigError(ValueError):
    """A configuration file, key or value that cannot be used."""


@dataclass
class DataConfig:
    root: str = ""  # a folder tree of pristine images, or a KADIS-700k folder (with ref_imgs/)
    crop_size: int = CROP_SIZE  # side of the four square crops
    max_distortions: int = 4  # k ~ U{1..max_distortions} distortions per chain
    pristine_prob: float = 0.05  # probability that a sample stays undistorted
    num_workers: int = 4  # DataLoader worker processes (decoding, cropping, half scale; chains with degrade_on=workers)
    degrade_on: str = "auto"  # workers | device | auto: where the chains run (arniqa.train.batches)
    max_images: int | None = None  # use only the first N images (sorted); None = all


@dataclass
class ModelConfig:
    backbone: str = "resnet50"  # resnet50 | se_resnet50
    se_stages: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    se_bias: bool = True
    # imagenet (from `weights`) | random (timm's init of this backbone) | random_resnet50 (the random
    # ResNet50 of the same seed, the SE blocks set by se_init: with identity it starts as that ResNet50)
    init: str = "imagenet"
    weights: str = ""  # local ResNet50 ImageNet file (torchvision or timm keys) for init=imagenet
    se_init: str = (
        "identity"  # SE blocks with init=imagenet or random_resnet50: identity (pass-through) | random (timm's)
    )
    temperature: float = 0.1  # NT-Xent temperature


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd (the reference) | adamw | lars (timm's; trust ratio on weights, not on 1-d params)
    lr: float = 1e-3
    momentum: float = 0.9  # sgd and lars; adamw uses betas (momentum, 0.999)
    weight_decay: float = 1e-4  # adamw and lars: not on 1-d parameters (biases, norm layers); sgd: on all
    trust_coefficient: float = 0.001  # lars only
    t0_epochs: int = 1  # CosineAnnealingWarmRestarts T_0, in epochs (stepped every iteration)
    t0_steps: int | None = None  # the restart period in steps instead (overrides t0_epochs)
    warmup_steps: int = 0  # linear warm-up from lr / warmup_steps to lr, then the cosine cycles
    t_mult: int = 2
    eta_min: float = 1e-6


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 16  # samples per step over all processes (4 crops each)
    seed: int = 27
    device: str = "auto"  # auto | cpu | cuda | cuda:N (under torchrun: the local rank's GPU)
    precision: str = "auto"  # auto (bf16 on CUDA if supported, else fp16; fp32 on CPU) | fp32 | bf16 | fp16
    channels_last: bool = True
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on CUDA)
    sync_batchnorm: bool = False  # SyncBatchNorm across processes under DDP (CUDA only)
    checkpoint_every: int = 500  # steps between resumable checkpoints (and at every epoch end)
    max_steps: int | None = None  # stop after this many steps in all (demo, smoke tests); None = all
    snapshot_steps: list[int] = field(
        default_factory=list
    )  # global steps after which to write snapshots/step<k>.safetensors


@dataclass
class ValidationConfig:
    datasets: list[dict[str, Any]] = field(default_factory=list)  # [{name: kadid10k, root: /data/KADID10K}, ...]
    alpha: float = 0.1  # ridge regularisation (fixed, as the reference)
    num_splits: int = 10  # random splits for a dataset without split files (else its official ones)
    every: int = 1  # validate every N epochs


@dataclass
class LogConfig:
    every: int = 10  # steps between TensorBoard/CSV rows
    tensorboard: bool = True
    progress: bool = True  # rich progress bar


@dataclass
class Config:
    output: str = "runs/arniqa"  # run folder: checkpoints, log.csv, tensorboard/, final model
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def from_dict(values: dict[str, Any]) -> Config:
    """A :class:`Config` from nested ``values`` (missing keys take defaults); ConfigError on unknown keys."""
    return build_dataclass(Config, values)


MAX_CONFIG_BYTES = 1 << 20  # a config holds a few kB; PyYAML reads about a MB a second: a bigger file is not one
MAX_REPEATED = 100_000  # values a config's aliases may add to what is written: a shared block, not a bomb


class ConfigLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader (no tags that build Python objects) that also refuses a key given twice in one
    mapping, which PyYAML would settle silently by keeping the last one, and a document that aliases would
    expand past what a config holds (nested aliases: "billion laughs"), nest in itself or nest too deeply.
    Read with :func:`parse_yaml`, which every config file and ``--set`` value goes through."""

    def construct_document(self, node):
        if problem := expansion_problem(node):
            raise yaml.constructor.ConstructorError(None, None, problem)
        return super().construct_document(node)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # a merge key (<<) may be overridden; other keys are plain scalars in a config
            key = self.construct_object(key_node)
            if plain(key) in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key {yaml_value(key)} is given twice in one section; keep one",
                    key_node.start_mark,
                )
            seen.add(plain(key))
        return {plain(k): v for k, v in super().construct_mapping(node, deep).items()}  # keys as YAML reads them

    def construct_object(self, node, deep=False):
        try:
            value = super().construct_object(node, deep)
        except ValueError as e:  # a scalar its tag cannot hold: an int of 5,000 digits, a 13th month
            value = str(node.value)
            shown = value if len(value) <= 40 else f"a value of {len(value):,} characters"
            kind = node.tag.rpartition(":")[2]
            article = "an" if kind[:1] in "aeiou" else "a"
            problem = f"{shown} cannot be read as {article} {kind} ({str(e).partition(';')[0]})"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None
        if isinstance(node, yaml.ScalarNode) and value is not None and not isinstance(value, str):
            return Written(value, node.value)
        return value


def yaml_kind(value: Any) -> str:
    """What ``value`` is, in a config's words: "a mapping", "a list", "text", "a whole number", "a number", "true or
    false"."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "null" if value is None else f"a {type(value).__name__}"  # a date: yaml reads 2024-01-01 as one


def parse_yaml(text: str) -> Any:
    """The value of the YAML document ``text``, read with :class:`ConfigLoader` (true or false, a number or a date as
    :class:`Written`); a ``yaml.YAMLError`` for what cannot be used (PyYAML's own RecursionError on deep nesting
    too)."""
    try:
        return yaml.load(text, Loader=ConfigLoader)
    except RecursionError:
        raise yaml.YAMLError(f"nested more than {MAX_NESTING} levels deep") from None


def expansion_problem(root: yaml.Node) -> str | None:
    """Why the node graph ``root`` (an alias is the anchored node itself, shared) cannot be a config, or None.
    Counts the values it holds once every alias is written out, walking each node once, without recursion."""

    def children(node):
        if isinstance(node, yaml.MappingNode):
            return [n for pair in node.value for n in pair]
        return node.value if isinstance(node, yaml.SequenceNode) else []

    sizes: dict[int, int] = {}  # id of a node walked -> the values it holds, expanded
    path, on_path = [(root, iter(children(root)))], {id(root)}
    while path:
        node, todo = path[-1]
        child = next(todo, None)
        if child is None:
            path.pop()
            on_path.discard(id(node))
            sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in children(node)), 2**63)
        elif id(child) in on_path:
            return f"the collection at line {child.start_mark.line + 1} holds itself through an alias (a loop)"
        elif isinstance(child, yaml.ScalarNode):
            sizes[id(child)] = 1
        elif id(child) not in sizes:
            if len(path) >= MAX_NESTING:
                return f"nested more than {MAX_NESTING} levels deep"
            path.append((child, iter(children(child))))
            on_path.add(id(child))
    repeated = sizes[id(root)] - len(sizes)
    if repeated > MAX_REPEATED:
        return (
            f"its aliases repeat {repeated:,} values, more than the {MAX_REPEATED:,} a config may repeat "
            "(nested aliases); write the values out"
        )
    return None


def read_values(path: str | Path | None, overrides=(), error: type[ValueError] = ConfigError) -> dict[str, Any]:
    """The nested mapping of a YAML file (empty when ``path`` is None) with ``section.key=value``
    overrides applied (values parsed as YAML); ``error`` is raised for unreadable input."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_CONFIG_BYTES + 1)  # no more: /dev/zero or a 50 MB file is not read whole
            if len(data) > MAX_CONFIG_BYTES:
                raise error(
                    file_line(
                        path,
                        f"larger than {MAX_CONFIG_BYTES:,} bytes, which no config is (one holds a few kB)",
                        "check the path of the YAML file",
                    )
                )
            loaded = parse_yaml(data.decode("utf-8"))
        except OSError as err:
            if err.errno in PATH_ERRORS:
                raise error(
                    file_line(path, f"cannot read config ({err.strerror or err})", "check the path of the YAML file")
                ) from err
            raise error(unreadable(path, err)) from err
        except UnicodeDecodeError as err:
            raise error(
                file_line(
                    path, f"not a YAML config: not UTF-8 text ({err.reason} at byte {err.start})", "save it as UTF-8"
                )
            ) from err
        except yaml.YAMLError as err:
            raise error(file_line(path, f"invalid YAML ({_yaml_problem(err)})", "fix the file")) from err
        if loaded is not None and not isinstance(loaded, dict):
            raise error(
                file_line(
                    path,
                    f"expected a mapping at the top level, got {yaml_kind(plain(loaded))}",
                    "write its sections as `name:` lines, each with `key: value` lines under it (the files in configs/ "
                    "are examples)",
                )
            )
        values = loaded or {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise error(f"--set {item}: expected KEY=VALUE; write it as e.g. --set train.batch_size=8")
        *parents, leaf = key.strip().split(".")
        node = values
        for depth, name in enumerate(parents, 1):
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                section = ".".join(parents[:depth])
                raise error(
                    f"--set {item}: {section} is a value ({yaml_value(node)}), not a section with keys; "
                    f"set it whole with --set {section}=VALUE"
                )
        try:
            node[leaf] = parse_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise error(
                f"--set {item}: its value is not valid YAML ({_yaml_problem(err)}); write it as YAML "
                f"(8, 0.01, true, null, [1, 2]), text in YAML quotes: --set '{key.strip()}=\"TEXT\"'"
            ) from err
    return values


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's error in one line: where (line, column) and what."""
    mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None) or str(err)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if "character '\\t'" in problem:  # PyYAML's "found character '\t' that cannot start any token"
        return where + "a tab, which YAML does not take here: indent with spaces"
    return where + words(problem)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or start from the defaults when ``path`` is None) and apply ``overrides``.

    Each override is ``section.key=value`` (e.g. ``train.batch_size=8``, ``output=runs/x``).
    """
    return build_values(path, overrides, _checked)


def _checked(values: dict[str, Any]) -> Config:
    config = from_dict(values)
    check(config)
    return config


def build_values(path: str | Path | None, overrides, build, error: type[ValueError] = ConfigError):
    """``build`` of the values of the config file ``path`` with ``overrides`` (:func:`read_values`). A ValueError
    from ``build`` (a bad key or value) is ``error`` naming where the value came from: ``path`` when the file alone
    gives that error, ``--set`` when the overrides give it on the defaults (and the defaults alone do not, unless
    the file alone is right), or when the file alone is right and the overrides are wrong on the defaults too, else
    ``path with --set`` (the two together)."""
    values = read_values(path, overrides, error)
    try:
        return build(values)
    except ValueError as err:
        if path is None:  # the overrides hold every value, and the message names the key
            raise error(str(err)) from None
        raise error(f"{_source(path, overrides, build, str(err))}: {err}") from None


def _source(path: str | Path, overrides, build, problem: str) -> str:
    def error_of(source: str | Path | None, sets) -> str | None:
        try:
            build(read_values(source, sets))
        except ValueError as err:
            return str(err)
        return None

    file_alone = error_of(path, ())
    if not overrides or file_alone == problem:
        return str(path)
    defaults, sets = error_of(None, ()), error_of(None, overrides)
    if file_alone is None:  # the sets broke it, alone when they break the defaults too (the message may differ:
        # it can name the file's values, its lr or its variants); else the two together
        from_sets = sets == problem or sets not in (None, defaults)
    else:  # the file's own problem aside
        from_sets = sets == problem != defaults
    return "--set" if from_sets else f"{path} with --set"


def check(config: Config) -> None:
    """Raise ConfigError for values that cannot work."""
    problems = []
    if not config.output.strip():  # `--set output=$RUN` with RUN unset: the run wrote into the working folder
        problems.append("output is empty; name the run folder (e.g. --set output=runs/x)")
    problems += not_one_of("model.backbone", config.model.backbone)
    problems += not_one_of("model.init", config.model.init)
    if config.model.init == "imagenet" and not config.model.weights:
        problems.append(
            "model.init=imagenet needs model.weights (a local ResNet50 ImageNet file); or model.init=random"
        )
    problems += not_one_of("model.se_init", config.model.se_init)
    stages = config.model.se_stages  # refused by the model build, naming no key; [true] was stage 1
    if not all(type(k) is int and k in SE_STAGES for k in stages) or len(set(stages)) < len(stages):
        allowed = ", ".join(map(str, SE_STAGES))
        problems.append(f"model.se_stages must list stages from {allowed}, each at most once, got {yaml_value(stages)}")
    if not 0 < config.model.temperature < math.inf:  # NaN and inf too: a NaN loss, or no gradient at all
        problems.append(f"model.temperature must be > 0 and finite, got {yaml_value(config.model.temperature)}")
    if not 0 <= config.data.max_distortions <= MAX_DISTORTIONS:
        problems.append(
            f"data.max_distortions must be from 0 to {MAX_DISTORTIONS}, got {yaml_value(config.data.max_distortions)}"
        )
    if not 0 <= config.data.pristine_prob <= 1:
        problems.append(f"data.pristine_prob must be from 0 to 1, got {yaml_value(config.data.pristine_prob)}")
    if not 0 <= config.train.seed <= MAX_SEED:
        problems.append(f"train.seed must be from 0 to 2**32 - 1, got {yaml_value(config.train.seed)}")
    if config.data.crop_size < 16:
        problems.append(f"data.crop_size must be at least 16, got {yaml_value(config.data.crop_size)}")
    at_least_one = {
        "train.batch_size": config.train.batch_size,
        "train.epochs": config.train.epochs,
        "train.checkpoint_every": config.train.checkpoint_every,
        "log.every": config.log.every,
        "validation.every": config.validation.every,
        "optim.t0_epochs": config.optim.t0_epochs,
        "optim.t_mult": config.optim.t_mult,
    }
    problems += [
        f"{key} must be at least 1, got {yaml_value(value)}" for key, value in at_least_one.items() if value < 1
    ]
    for key, value in (("train.max_steps", config.train.max_steps), ("data.max_images", config.data.max_images)):
        if value is not None and value < 1:  # a whole number or null, as read
            problems.append(f"{key} must be a positive integer or null, got {yaml_value(value)}")
    problems += not_one_of("train.precision", config.train.precision)
    try:  # the name; whether the device is there is the run's to say (a config may be written for another machine)
        check_device(config.train.device)
    except ValueError as e:
        problems.append(f"train.device: {e}")  # as distributed.pick_device says it
    problems += not_one_of("data.degrade_on", config.data.degrade_on)
    if config.data.num_workers < 0:
        problems.append(f"data.num_workers must be at least 0, got {yaml_value(config.data.num_workers)}")
    problems += not_one_of("optim.name", config.optim.name)
    opt = config.optim
    if not 0 < opt.lr < math.inf:
        problems.append(f"optim.lr must be > 0, got {yaml_value(opt.lr)}")
    if not 0 <= opt.momentum < 1:
        problems.append(f"optim.momentum must be >= 0 and < 1, got {yaml_value(opt.momentum)}")
    if not 0 <= opt.weight_decay < math.inf:
        problems.append(f"optim.weight_decay must be >= 0, got {yaml_value(opt.weight_decay)}")
    if not 0 < opt.trust_coefficient < math.inf:
        problems.append(f"optim.trust_coefficient must be > 0, got {yaml_value(opt.trust_coefficient)}")
    if not 0 <= opt.eta_min < math.inf:
        problems.append(f"optim.eta_min must be >= 0, got {yaml_value(opt.eta_min)}")
    elif opt.eta_min >= opt.lr:  # the cosine would climb from lr to eta_min
        problems.append(f"optim.eta_min ({yaml_value(opt.eta_min)}) must be below optim.lr ({yaml_value(opt.lr)})")
    t0_steps = config.optim.t0_steps
    if t0_steps is not None and t0_steps < 1:
        problems.append(f"optim.t0_steps must be a positive integer or null, got {yaml_value(t0_steps)}")
    if config.optim.warmup_steps < 0:
        problems.append(f"optim.warmup_steps must be at least 0, got {yaml_value(config.optim.warmup_steps)}")
    snaps = config.train.snapshot_steps
    if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in snaps):
        problems.append(f"train.snapshot_steps must be a list of positive integers, got {yaml_value(snaps)}")
    if not 0 < config.validation.alpha < math.inf:
        problems.append(f"validation.alpha must be > 0 and finite, got {yaml_value(config.validation.alpha)}")
    if config.validation.num_splits < 1:
        problems.append(f"validation.num_splits must be at least 1, got {yaml_value(config.validation.num_splits)}")
    for dataset in config.validation.datasets:
        if not isinstance(dataset, dict) or "name" not in dataset or "root" not in dataset:
            problems.append(f"validation.datasets entries need name and root, got {yaml_value(dataset)}")
        # a misspelt key (`split:`) was passed over: the run validated on random splits
        elif unknown := sorted(str(k) for k in set(dataset) - set(VALIDATION_KEYS)):
            problems.append(
                f"validation.datasets entry {yaml_value(dataset)}: unknown {agree(len(unknown), 'key')} "
                f"{', '.join(unknown)}"
                f"{did_you_mean(unknown[0], VALIDATION_KEYS) if len(unknown) == 1 else ''}; "
                f"known: {', '.join(VALIDATION_KEYS)}"
            )
    if problems:
        raise ConfigError("invalid config: " + "; ".join(problems))


def check_data(config: Config) -> None:
    """ConfigError or ValueError unless ``data.root`` names a folder: the Trainer checks it first, and so does
    ``arniqa train``, before torch is imported (the images in it are listed by the Trainer)."""
    if not config.data.root:  # "" is the working directory to pathlib: a run on whatever images it holds
        raise ConfigError("data.root is not set; give the training images with --set data.root=FOLDER")
    training_root(config.data.root)


def not_one_of(key: str, value: Any) -> list[str]:
    """``[]`` when ``value`` is one of the names the key takes (:data:`CHOICES`), else the problem, e.g. "k must be
    a, b or c, got d"."""
    if value in (names := CHOICES[key]):
        return []
    return [f"{key} must be {', '.join(names[:-1])} or {names[-1]}, got {yaml_value(value)}"]


def build_dataclass(cls, values: Any, where: str = "", root=None):
    """A ``cls`` dataclass from nested ``values``: defaults for missing keys, nested dataclasses built the
    same way, every other value checked against its default's type; ConfigError names the key (``where``
    prefixes the names: the section being built, of the dataclass ``root``, by default ``cls``)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'}: expected a mapping, got {yaml_value(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields), key=str)  # keys a file gives as numbers or null too
    if unknown:
        keys = ", ".join(where + str(k) for k in unknown)
        hint = (
            _misplaced(unknown[0], root or cls) or did_you_mean(unknown[0], fields, where) if len(unknown) == 1 else ""
        )
        raise ConfigError(f"unknown config {agree(len(unknown), 'key')} {keys}{hint}; known: {', '.join(fields)}")
    kwargs, kinds = {}, typing.get_type_hints(cls)
    for name, value in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = build_dataclass(type(default), value, f"{where}{name}.", root or cls)
        else:
            choices = CHOICES.get(where + name, ()) if (root or cls) is Config else ()
            kwargs[name] = _coerce(value, kinds[name], where + name, choices)
    return cls(**kwargs)


def _misplaced(key: str, root) -> str:
    """``" (did you mean 'train.batch_size'?)"`` for a key of another section of the dataclass ``root`` (with
    ``data.batch_size``), else ``""``."""
    sections = [f.name for f in dataclasses.fields(root) if dataclasses.is_dataclass(getattr(root(), f.name))]
    found = [f"{s}.{key}" for s in sections if key in {f.name for f in dataclasses.fields(getattr(root(), s))}]
    return meant(found)


def _coerce(value: Any, kind: Any, key: str, choices: tuple[str, ...] = ()) -> Any:
    """Check ``value`` against the field's type ``kind`` (``int``, ``str``, ``list[int]``, ``int | None``, ...: the
    one list of a config's key kinds is its dataclasses' annotations); ints are accepted for floats. Null (``key:``
    with no value, ``--set key=null``) is a value only of a ``... | None`` key. A text key takes text alone: YAML
    reads some plain words as true or false, a date or a number, which it would not give back as written (0.10,
    010, 12:30), so they are refused saying to quote them; ``choices`` (of a key that takes one of a few names)
    are listed instead."""
    written, value = value, plain(value)
    nullable = isinstance(kind, types.UnionType) and type(None) in typing.get_args(kind)
    if nullable:  # `X | None`: X
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    base = typing.get_origin(kind) or kind  # list of list[int]
    expected = ", ".join(choices[:-1]) + f" or {choices[-1]}" if choices else yaml_kind(base())
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"config key {key}: no value (null); expected {expected}")
    if base is bool:
        ok = isinstance(value, bool)
    elif base is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, base)
    if ok and typing.get_args(kind) == (str,):  # an item of a list of text takes text alone, as a text key
        for i, item in enumerate(written):
            _coerce(item, str, f"{key}[{i}]")
    if not ok:
        shown = yaml_value(written)
        read_as = _read_as(value, shown, bool(choices)) if base is str else ""
        raise ConfigError(
            f"config key {key}: expected {expected}{' or null' if nullable else ''}, got {shown}{read_as}"
        )
    return value


def _read_as(value: Any, shown: str, choice: bool = False) -> str:
    """What follows the problem of a text key given ``value``, written ``shown``, where YAML 1.1 read a plain word
    as something else: ``yes``/``no``/``on``/``off`` as true or false, ``2024-01-05`` as a date, ``0.10`` as a
    number; "" for other values. The advice to quote it is left out for a key that takes one of a few names
    (``choice``)."""
    if isinstance(value, bool):
        why = "YAML reads yes, no, on and off as true or false"
    elif isinstance(value, datetime.date):  # a time too (2024-01-05T10:00:00Z)
        why = "YAML reads it as a date"
    elif isinstance(value, (int, float)):
        why = "YAML reads it as a number"
    else:
        return ""
    return f" ({why})" if choice else f' ({why}); quote it to give it as text: "{shown}"'
