"""The help texts of every verb, found from the app (a new verb is covered): values named as a Unix tool names
them (``--output PATH``, ``IMAGE``; typer 0.29 wrote ``{image}``, ``<list[Path]>``, ``--resume <bool>``), lines
within 80 columns, every option explained, each verb's first sentence whole in ``arniqa --help``, and no bracketed
part of a help text lost (rich's markup once ate ``[default: ...]`` and ``arniqa[ray]``)."""

import re
from types import SimpleNamespace

import click
import pytest
import typer
from typer.testing import CliRunner

from arniqa.cli import _register, app
from arniqa.cli.command import _value_word
from arniqa.cli.result_files import output_format
from arniqa.models.registry import regressor_dataset
from arniqa.utils.runtime import check_device

_register()
runner = CliRunner()
WIDE = {"COLUMNS": "400"}
NARROW = {"COLUMNS": "80"}


def commands(command, path: tuple[str, ...] = ()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


EVERY = list(commands(typer.main.get_command(app)))


def flat(text: str) -> str:
    """The help screen as one line of words, box borders and wrapping removed."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("path, command", EVERY, ids=[" ".join(p) or "arniqa" for p, _ in EVERY])
def test_every_bracketed_part_of_a_help_text_is_shown(path, command):
    shown = flat(runner.invoke(app, [*path, "--help"], env=WIDE).output)
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    written = [" ".join(m.split()).replace("\\[", "[") for t in texts for m in re.findall(r"\\?\[[^\]]*\]", t)]
    assert [w for w in written if w not in shown] == []


def entries(screen: str, section: str) -> list[str]:
    """The left column of a section of a help screen (``-o, --output PATH``, ``IMAGE``): each line that starts an
    entry, up to the gap before its help."""
    lines = screen.split(f"\n{section}:\n", 1)[1].split("\n\n")[0].splitlines()
    return [re.split(r"\s{2,}", line.strip())[0] for line in lines if re.match(r"  \S", line)]


@pytest.mark.parametrize("path, group", [(p, c) for p, c in EVERY if hasattr(c, "commands")])
def test_the_verb_list_holds_each_verbs_first_sentence_whole(path, group):
    screen = runner.invoke(app, [*path, "--help"], env=NARROW).output
    assert entries(screen, "Commands") == list(group.commands)
    listed = flat(screen.split("\nCommands:\n")[1])
    for name, verb in group.commands.items():
        first = re.match(r".*?[.!?](?=\s|$)", flat(verb.help), re.S).group(0)
        assert f"{name} {first}" in listed


@pytest.mark.parametrize("path, command", EVERY, ids=[" ".join(p) or "arniqa" for p, _ in EVERY])
def test_help_names_each_value_as_a_unix_tool_does(path, command):
    result = runner.invoke(app, [*path, "--help"], env=NARROW, prog_name="arniqa")
    assert result.exit_code == 0
    screen = result.output
    usage = screen.splitlines()[0].split()
    assert usage[: len(path) + 3] == ["Usage:", "arniqa", *path, "[OPTIONS]"]
    # arguments by their upper-case names, optional ones in brackets; a group's COMMAND [ARGS]...
    assert all(re.fullmatch(r"\[?[A-Z]+\]?(\.\.\.)?", piece) for piece in usage[len(path) + 3 :]), usage
    value = r"[A-Z][A-Za-z=|]*"  # PATH, INTEGER, KEY=VALUE, ADDRESS|local: no <path>, <int range>, {image}
    flags = {o for p in command.params if getattr(p, "is_flag", False) for o in p.opts}
    for entry in entries(screen, "Options"):
        option = re.fullmatch(rf"(-\w, )?(--?[\w-]+)( / --[\w-]+)?( {value})?", entry)
        assert option, entry
        assert (option.group(4) is None) == (option.group(2) in flags | {"--help"}), entry  # a flag takes no value
    if any(p.param_type_name == "argument" for p in command.params):
        assert all(re.fullmatch("[A-Z]+", e) for e in entries(screen, "Arguments"))
    assert "PosixPath(" not in screen and "[default: None]" not in screen


@pytest.mark.parametrize("path, command", EVERY, ids=[" ".join(p) or "arniqa" for p, _ in EVERY])
def test_every_option_is_explained_within_80_columns(path, command):
    screen = runner.invoke(app, [*path, "--help"], env=NARROW).output
    cut = [line for line in screen.splitlines() if "…" in line or re.search(r"\w-$", line)]  # arniqa-|DATASET
    assert [line for line in screen.splitlines() if len(line) > 80] == cut == []
    assert [p.name for p in command.params if not (p.help or "").strip()] == []


OUTPUT = [(path, c) for path, c in EVERY if any("-o" in getattr(p, "opts", ()) for p in c.params)]


@pytest.mark.parametrize("path, command", OUTPUT, ids=[" ".join(p) for p, _ in OUTPUT])
def test_every_verb_with_o_takes_output(path, command):
    # ablate, distort, gallery and benchmark synthetic named -o --out: --output there was "No such option", exit 2
    screen = runner.invoke(app, [*path, "--help"], env=NARROW).output
    assert "-o, --output PATH" in entries(screen, "Options")
    assert runner.invoke(app, [*path, "--output", "x", "--help"]).exit_code == 0


@pytest.mark.parametrize("path", [("ablate",), ("distort",), ("gallery",), ("benchmark", "synthetic")])
def test_the_old_name_out_is_still_taken_where_scripts_use_it(path):
    assert runner.invoke(app, [*path, "--out", "x", "--help"]).exit_code == 0
    assert "--out " not in runner.invoke(app, [*path, "--help"], env=NARROW).output


def option_help(name: str) -> list[tuple[str, str]]:
    """(verb, its entry in the help as one line) for each verb that takes the option ``name``."""
    found = []
    for path, command in EVERY:
        if any(name in getattr(p, "opts", ()) for p in command.params):
            lines = runner.invoke(app, [*path, "--help"], env=NARROW).output.split("\nOptions:\n")[1].splitlines()
            start = next(i for i, line in enumerate(lines) if re.match(rf"  (-\w, )?{name} ", line))
            end = next(i for i in range(start + 1, len(lines)) if re.match(r"  \S", lines[i]))
            found.append((" ".join(path), flat("\n".join(lines[start:end]))))
    return found


REGRESSOR = option_help("--regressor")
DEVICE = option_help("--device")


@pytest.mark.parametrize("verb, text", REGRESSOR, ids=[verb for verb, _ in REGRESSOR])
def test_the_help_of_regressor_lists_the_names_it_takes(verb, text):
    # score's said "live, ..., koniq10k; pyiqa names such as 'arniqa' or 'kadid' work"; map's and export's "as for
    # `arniqa score`", map's without its default
    datasets = text[text.index("dataset (") + 9 : text.index(")")].replace("; also", ",").split(", ")
    assert {"kadid10k", "koniq10k", "koniq", "livec", "paq2piq"} <= set(datasets)
    for name in [*datasets, *(f"arniqa-{d}" for d in datasets), "arniqa"]:  # each one listed is taken
        assert regressor_dataset(name)
    assert "a model (arniqa, arniqa-DATASET)" in text and "a regressor file" in text and "Default: kadid10k" in text


@pytest.mark.parametrize("verb, text", DEVICE, ids=[verb for verb, _ in DEVICE])
def test_the_help_of_device_lists_the_devices_it_takes(verb, text):
    # evaluate, map, explain fit said "auto | cpu | cuda | mps.", without cuda:N or what auto picks; demo "cpu | cuda."
    listed = text.split("--device TEXT ")[1].split(" (")[0].split(" | ")
    for name in listed:
        check_device(name.replace(":N", ":1"))
    assert {"auto", "cpu", "cuda", "cuda:N", "mps"} <= set(listed)
    assert "auto: CUDA, then MPS, then CPU" in text


def test_the_help_of_score_format_says_what_each_name_gives():
    # said "(.json: json; .jsonl, .ndjson: jsonl), else csv." while a .parquet, .xlsx or .csv.gz name without
    # --format is refused, exit 2, before anything is written
    (text,) = [text for verb, text in option_help("--format") if verb == "score"]
    named = re.search(r"Default: by the -o file's name: (.*); else csv\.", text).group(1)
    gives = {}
    for part in named.split("; "):
        head, outcome = part.rsplit(": ", 1)
        gives |= {suffix: outcome for suffix in re.findall(r"\.\w+(?:\.\w+)?", head)}
    assert set(gives.values()) == {"json", "jsonl", "refused"} and len(gives) == 7
    for suffix, outcome in gives.items():
        if outcome == "refused":
            with pytest.raises(ValueError, match="arniqa score writes CSV, JSON or JSON Lines"):
                output_format(f"scores{suffix}", None)
        else:
            assert output_format(f"scores{suffix}", None) == outcome
    for name in ("scores.csv", "scores.txt", "scores", None):  # else csv
        assert output_format(name, None) == "csv"


SEED = [(verb, text) for verb, text in option_help("--seed") if verb != "evaluate"]  # that one seeds the splits


@pytest.mark.parametrize("verb, text", SEED, ids=[verb for verb, _ in SEED])
def test_the_help_of_a_distortion_seed_gives_the_range_it_takes(verb, text):
    # benchmark synthetic's said "(0 to 2**32 -" and "1)" on the next line, not the range the others show
    assert f"0<=x<={2**32 - 1}]" in text  # numpy's legacy seeds: 0 to 2**32 - 1


class TyperPath(click.ParamType):  # typer 0.26 to 0.28: their own copy of click's types, not click.Path
    name = "path"


@pytest.mark.parametrize(
    "kind, word",
    [
        (click.IntRange(min=1), "INTEGER"),
        (click.FloatRange(0, 1), "FLOAT"),
        (click.INT, "INTEGER"),
        (click.FLOAT, "FLOAT"),
        (click.Path(), "PATH"),
        (TyperPath(), "PATH"),
        (click.STRING, "TEXT"),
    ],
)
def test_values_are_named_the_same_under_typer_before_0_29(kind, word):
    """typer before 0.29 gives options click's types (0.26 to 0.28 their own copy of them), not Python types:
    --help read ``--output TEXT``, ``--steps <int range>`` or ``--seed INTEGER RANGE`` there, and the suite failed
    on the typer pyproject.toml named as the floor. The words come from the click types now."""
    assert _value_word(SimpleNamespace(type=kind)) == word


def test_the_help_of_cross_to_says_which_dataset_is_tested():
    # said "Also fit on all of this dataset and test on all of that one.": the --cross-to dataset read as the one
    # fitted, while the ridge is fitted on --dataset and tested on --cross-to (results.json's cross source, target)
    (text,) = [text for verb, text in option_help("--cross-to") if verb == "evaluate"]
    assert "fit on all of --dataset and test on all of this one" in text


@pytest.mark.parametrize("path", [p for p, c in EVERY if any("--set" in getattr(o, "opts", ()) for o in c.params)])
def test_a_config_override_is_named_key_value(path):
    """`arniqa train --help` showed `--set TEXT` (`ablate`'s, `--set KEY=VALUE`), and no word of where the run
    folder is set: train has no -o, the folder is the config's `output`."""
    screen = runner.invoke(app, [*path, "--help"], env=NARROW).output
    assert "--set KEY=VALUE" in entries(screen, "Options")
    if path == ("train",):
        assert "--set output=runs/x, the run folder" in flat(screen)


PATHS = [(path, param.name) for path, command in EVERY for param in getattr(command, "params", []) if param.takes_path]


def readable_check(param) -> bool:
    """Whether click checks ``param``'s path readable (typer 0.29 keeps it in its own type descriptor)."""
    info = getattr(getattr(param, "type_descriptor", None), "parameter_info", None)
    return info.readable if info is not None else param.type.readable


@pytest.mark.parametrize("path, name", PATHS, ids=[f"{' '.join(p)} {n}" for p, n in PATHS])
def test_no_path_is_refused_by_clicks_readable_check(path, name):
    """Typer's Path parameters ask click to check them readable (os.access) before the verb runs: an unreadable
    --checkpoint, config or photo was click's 'Invalid value for ...: File ... is not readable', no advice, and as
    root (who reads any file) os.access may still say no. The verb reads the file and says it in its own line."""
    [param] = [p for p in dict(EVERY)[path].params if p.name == name]
    assert readable_check(param) is False
