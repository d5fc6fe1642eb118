"""The ``arniqa`` typer app that every verb module registers on (:class:`Verbs`: its --help), the exit codes,
:func:`fail`, the output checks (:func:`output_place`, :func:`file_output`, :func:`output_folders`, :func:`writing`,
:func:`one_writer`), the quiet end when the reader has gone (:func:`reader_gone`, :func:`quiet_bar`) and
:func:`connect_ray`; the ``version`` verb.

Exit codes, the same for every verb (docs/usage.md): :data:`EXIT_OK` (0) everything done,
:data:`EXIT_FAILED` (1) the run went through but some items failed (images, ablation runs),
:data:`EXIT_USAGE` (2) a usage or setup error stopped it (bad option, missing file, bad config).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import NoReturn, get_args

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

from ..constants import (
    DEFAULT_REGRESSOR,
    EXIT_INTERRUPTED,  # noqa: F401  (Ctrl-C; re-exported with the others)
)
from ..utils.messages import file_line

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2  # also what typer gives a bad option
VALUE_WORDS = {int: "INTEGER", float: "FLOAT"}  # an option's value in --help (a path: PATH; else TEXT)
CLICK_TYPES = {"IntParamType": int, "FloatParamType": float}  # click's types of them (typer < 0.29)
NO_BREAK_HYPHEN = "\u2011"  # a hyphen that text wrapping does not break a line at
IMAGE_INPUTS = "image files, or folders or tar shards holding them"  # what score and map take, in a message
OLD_NAMES = {"--out"}  # names scripts still use (ablate, distort, gallery, benchmark synthetic): taken, not shown


def _value_word(param) -> str:
    """The word for an option's value in --help (:data:`VALUE_WORDS`), from its Python type (typer 0.29) or its
    click type (before: typer 0.26 to 0.28 carry their own copy of click, so match by class name)."""
    kind = getattr(param, "type_descriptor", None)
    if kind is not None:
        item = get_args(kind.annotation)[0] if kind.is_list else kind.annotation  # PATHS: list[Path]
        return "PATH" if kind.is_path or item is Path else VALUE_WORDS.get(item, "TEXT")
    classes = [cls.__name__ for cls in type(param.type).__mro__]
    if any(name.endswith("Path") for name in classes):  # click.Path; typer 0.28: TyperPath(ParamType)
        return "PATH"
    return VALUE_WORDS.get(next((CLICK_TYPES[c] for c in classes if c in CLICK_TYPES), str), "TEXT")


def _no_empty_path(param, ctx, value) -> None:
    """Refuses a path given as ``''`` (``arniqa score "$UNSET"``), which typer reads as ``Path('')``, the current
    folder: every image under it was scored."""
    if param.takes_path and "" in (value if isinstance(value, (list, tuple)) else [value]):
        raise typer.BadParameter("an empty path ('') names no file; give a path (an unset variable?)", ctx, param)


class _Operand(TyperArgument):
    """An argument as --help shows it: its upper-case name, ``IMAGE``, ``[IMAGE]`` or ``[PATHS]...`` in the usage
    line (typer 0.29 writes ``{image}``, ``[paths]...``) and with no Python type beside it (``<list[Path]>``);
    an empty path refused."""

    takes_path: bool

    def process_value(self, ctx, value):
        _no_empty_path(self, ctx, value)
        return super().process_value(ctx, value)

    def display_type_rich(self, ctx) -> None:
        return None

    def make_metavar(self, *args, **kwargs) -> str:  # typer 0.26 writes an optional one [IMAGE] in its entry too
        return self.metavar

    def get_usage_pieces(self, ctx) -> list[str]:
        name = self.metavar if self.required else f"[{self.metavar}]"
        return [name + ("..." if self.nargs != 1 else "")]


class _Option(TyperOption):
    """An option that refuses an empty path."""

    takes_path: bool

    def process_value(self, ctx, value):
        _no_empty_path(self, ctx, value)
        return super().process_value(ctx, value)


class _Renamed(_Option):
    """An option that also takes its old names (:data:`OLD_NAMES`), which --help and its errors do not show."""

    old_names: list[str]

    def add_to_parser(self, parser, ctx) -> None:
        super().add_to_parser(parser, ctx)
        parser.add_option(obj=self, opts=self.old_names, dest=self.name, nargs=self.nargs)


class _Help(TyperGroup.context_class.formatter_class):
    """Help wrapped at spaces only: ``arniqa-DATASET``, ``[default: arniqa-demo]`` are never split at a hyphen."""

    def write_text(self, text: str) -> None:
        super().write_text(text.replace("-", NO_BREAK_HYPHEN))

    def write_dl(self, rows, *args, **kwargs) -> None:
        super().write_dl([(term, text.replace("-", NO_BREAK_HYPHEN)) for term, text in rows], *args, **kwargs)

    def getvalue(self) -> str:
        return super().getvalue().replace(NO_BREAK_HYPHEN, "-")


class _Context(TyperGroup.context_class):
    formatter_class = _Help


class Verbs(TyperGroup):
    """A group of verbs (``arniqa``, ``arniqa explain``) whose --help reads as a Unix tool's: each value named as
    ``--output PATH``, ``--batch-size INTEGER``, a flag alone (typer writes ``<path>``, ``<int range>``,
    ``--resume <bool>`` or ``INTEGER RANGE``, by version; an option's own metavar, ``--files-from LIST``, stays),
    and each verb's first sentence whole in the list of verbs (click cuts it at one line: ``Train and evaluate
    every...``)."""

    context_class = _Context

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            command.context_class = _Context
            for param in command.params:
                word = _value_word(param)
                if isinstance(param, TyperArgument):
                    param.__class__ = _Operand
                    param.metavar = param.metavar or param.name.upper()
                else:
                    old = [name for name in param.opts if name in OLD_NAMES]
                    param.__class__ = _Renamed if old else _Option
                    if old:
                        param.old_names = old
                        param.opts = [name for name in param.opts if name not in old]
                    if not param.is_flag:
                        param.metavar = param.metavar or word
                param.takes_path = word == "PATH"

    def format_commands(self, ctx, formatter) -> None:
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl([(name, c.get_short_help_str(limit=1000)) for name, c in commands if not c.hidden])


# help as click writes it, wrapped to the terminal: rich's tables cut words at 80 columns ("regressor_<datas…")
app = typer.Typer(
    cls=Verbs, no_args_is_help=True, add_completion=False, rich_markup_mode=None, help="ARNIQA image quality toolkit."
)


# the options that mean the same in each verb that takes them: one definition, one help text
def device_option(default: str = "auto", why: str = ""):
    """--device; ``why``: why the verb's ``default`` is not auto."""
    return typer.Option(
        default, "--device", help=f"auto | cpu | cuda | cuda:N | mps (auto: CUDA, then MPS, then CPU).{why}"
    )


def checkpoint_option(onnx: bool):
    """--checkpoint; ``onnx``: the verb scores an ONNX file of arniqa export too."""
    also = "; or an ONNX file of `arniqa export`" if onnx else ""
    return typer.Option(
        None,
        "--checkpoint",
        help=f"A checkpoint of this project: a .safetensors file, any of its parts, or a folder holding it{also}. "
        "Default: the published model.",
        readable=False,
    )


def weights_dir_option(regressor: bool):
    """--weights-dir; ``regressor``: the verb loads the published regressor too."""
    files = "ARNIQA.pth and regressor_<dataset>.pth" if regressor else "ARNIQA.pth"
    return typer.Option(
        None, "--weights-dir", help=f"Folder holding the published {files} (no download).", readable=False
    )


def regressor_option():
    from ..models.registry import REGRESSOR_NAMES

    return typer.Option(
        None,
        "--regressor",
        help=f"The published model's regressor, by {REGRESSOR_NAMES}, or a regressor file. "
        f"Default: {DEFAULT_REGRESSOR}.",
    )


def engine_option():
    return typer.Option(
        "auto",
        "--engine",
        help="auto | torch | onnxruntime (auto: onnxruntime on CPU, torch on GPUs; see docs/usage.md).",
    )


def explainer_option():
    return typer.Option(
        None, "--explainer", help="The explanation head file (default: the checkpoint's).", readable=False
    )


def files_from_option(verb: str):
    """--files-from LIST, of a ``verb`` that takes PATHS (score, map): :func:`list_inputs` reads it."""
    return typer.Option(
        None, "--files-from", metavar="LIST", help=f"Also {verb} the paths in LIST, one per line (-: standard input)."
    )


def null_option():
    return typer.Option(
        False, "-0", "--null", help="--files-from: the paths in LIST end with a NUL byte, as find -print0 writes."
    )


def check_inputs(paths, files_from: str | None, null: bool) -> None:
    """Refuse a run given no input, and -0 without a list (one line, exit 2)."""
    if not paths and files_from is None:
        raise typer.BadParameter("give PATHS, or --files-from LIST")
    if null and files_from is None:
        raise typer.BadParameter("-0 (--null) goes with --files-from")


def list_inputs(paths, files_from: str | None, null: bool) -> Iterator:
    """The arguments ``paths``, then the paths of the ``files_from`` list (read as taken:
    :func:`~arniqa.inference.listing.read_list`, whose ListError is raised here for a list that is no list)."""
    from itertools import chain

    from ..inference.listing import read_list

    return chain(paths or (), () if files_from is None else read_list(files_from, null))


def given_inputs(paths, files_from: str | None) -> list[str]:
    """The inputs as a message names them: each argument, and the list."""
    given = [str(p) for p in paths or ()]
    if files_from is not None:
        given.append("standard input" if files_from == "-" else f"the paths in {files_from}")
    return given


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` on stderr (red on a terminal) as one line and exit with ``code``. Control
    characters (a newline, a terminal escape in a file name read from a label file) are written escaped (``\\x1b``),
    bytes that are not UTF-8 as ``\\xNN``."""
    print_error(message)
    raise typer.Exit(code)


def check_head(explain: bool, explainer, checkpoint, scorer=None) -> None:
    """``--explain`` needs an explanation head: ``--explainer``'s (``load`` refuses a file without one) or the
    checkpoint's. The published model has none: that fails before it loads (or downloads); a loaded ``scorer``
    without one fails too."""
    if explain and explainer is None and (checkpoint is None or getattr(scorer, "explainer", True) is None):
        from ..inference.scorer import explainer_missing  # the API's line, with the option that gives a head

        fail(explainer_missing(getattr(scorer, "engine", None), "pass --explainer FILE"))


def check_model_files(model, weights_dir, regressor, explainer) -> None:
    """Exit 2 with one line when a model file or name given is not there (a mistyped path, most often): before
    torch is imported and anything downloads (:func:`~arniqa.inference.loading.check_files`)."""
    from ..inference.loading import check_files

    try:
        check_files(model, weights_dir, regressor, explainer)
    except ValueError as e:
        fail(str(e))


@contextmanager
def loading(model, advice: Callable[[BaseException], str], doing: str = "loading") -> Iterator[None]:
    """Around loading (``doing``: or exporting) ``model``: memory running out there (building it, exporting it to
    ONNX, quantizing it, ONNX Runtime loading it; :func:`~arniqa.utils.runtime.out_of_memory`) is one line naming
    it, saying so and ``advice(error)``, exit 2; other errors pass through."""
    from ..utils.runtime import out_of_memory

    try:
        yield
    except Exception as e:
        if not out_of_memory(e):
            raise
        kind = "MemoryError" if isinstance(e, MemoryError) else type(e).__name__  # ours are MemoryErrors to a user
        fail(f"{model}: out of memory {doing} the model ({kind}); {advice(e)}")


def load_advice(
    model,
    engine: str,
    device: str,
    precision: str = "fp32",
    channels_last: bool | None = None,
    error: BaseException | None = None,
) -> str:
    """What to try when ``model`` ran out of memory (``error``) loading with these options of score or map: the
    CPU or a freer GPU where the GPU's memory ran out; else without int8 (quantizing takes more memory than
    scoring), the torch engine where it was exported to ONNX for ONNX Runtime (loading it for torch takes less),
    and always more memory. Neither where ONNX Runtime ran out loading the file they would have made: it is made
    (cached), and scoring without it takes more."""
    from ..inference.onnx_engine import LoadingOutOfMemory
    from ..inference.scorer import resolve_engine
    from ..models.paths import is_onnx
    from ..utils.runtime import device_out_of_memory, resolve_device

    if device_out_of_memory(error):
        return "try --device cpu, or end other jobs on the GPU (nvidia-smi lists them), or use a GPU with more memory"
    tries = ["free memory or use a machine with more"]
    if isinstance(error, LoadingOutOfMemory):
        return tries[0]
    if precision == "int8":
        tries.insert(0, "leave out --precision int8 (quantizing takes more memory than scoring)")
    elif not is_onnx(model):  # an ONNX file runs on ONNX Runtime only
        with suppress(ValueError):  # a device not there: no advice on the engine
            if resolve_engine(resolve_device(device), engine, precision, channels_last) == "onnxruntime":
                tries.insert(0, "try --engine torch (it loads the model without exporting it to ONNX)")
    return ", or ".join(tries)


def check_settings(
    model, engine: str, precision: str = "fp32", channels_last=None, calibrate=None, protocol=None, max_side=None
) -> None:
    """Stop before any model loads on settings that are none of the names or do not go together (load()'s
    checks, :func:`~arniqa.inference.scorer.check_engine`, ``check_max_side``), named as the options to type."""
    from ..inference.scorer import check_choices, check_engine, check_max_side
    from ..utils.names import option

    try:
        check_choices(None, precision, engine, option)
        check_engine(engine, precision, channels_last, calibrate, model, option)
        check_max_side(max_side, protocol, model, option)
    except ValueError as e:
        fail(str(e))
    check_calibration(calibrate)


def check_calibration(calibrate, int8: bool = True) -> None:
    """Stop before any model loads when --calibrate names no folder, or comes without export's --int8."""
    from ..inference.loading import check_calibrate
    from ..utils.names import option

    try:
        check_calibrate(calibrate, option, int8)
    except ValueError as e:
        fail(str(e))


def check_regressor(checkpoint, scorer) -> None:
    """Scores need a regressor; a training run's ``model.safetensors`` holds the encoder alone."""
    if scorer.regressor is None:
        fail(
            f"{checkpoint}: the checkpoint has no regressor (a training run's model is the encoder alone); pass "
            f"--regressor FILE, or use the checkpoint_<dataset>.safetensors that `arniqa evaluate --checkpoint "
            f"{checkpoint}` writes"
        )


def fail_missing(paths: list[str], verb: str = "score") -> NoReturn:
    """Stop before any model loads: none of the input ``paths`` is there (a mistyped path, most often, or a symbolic
    link to nothing or in a loop: ``data/images.not_there`` says which), so there is nothing to ``verb``."""
    from ..data.images import not_there

    def problem(path: str) -> tuple[str, str]:
        try:
            os.stat(path)
        except OSError as e:
            return not_there(path, e, "file or folder")
        return "no such file or folder", "check the path"  # there since it was looked for: said as before

    more = f" (and {len(paths) - 3} more)" if len(paths) > 3 else ""
    said = [problem(p) for p in paths[:3]]
    if len(set(said)) == 1:
        fail(f"{', '.join(paths[:3])}{more}: {said[0][0]}; {said[0][1]} (nothing to {verb})")
    each = ", ".join(f"{p}: {why}" for p, (why, _) in zip(paths, said))
    fail(f"{each}{more}; check each path (nothing to {verb})")


def fail_no_images(paths: list[str], summary: str = "", give: str = IMAGE_INPUTS) -> NoReturn:
    """Stop before any model loads: the inputs ``paths`` hold no image file (:func:`~arniqa.data.folders.no_images`);
    ``summary``: what was skipped (:func:`~arniqa.data.folders.skipped_summary`); ``give``: what the command takes."""
    from ..data.folders import no_images

    fail(no_images(paths, summary, give))


def empty_inputs(named: list[str], total: int) -> str:
    """The warning line, at the end of a run, for the ``total`` folders and shards named that held no image
    (``named``: the first few), as a missing path has its error row."""
    from ..data.folders import no_images
    from ..utils.messages import warning_line

    return warning_line(no_images(named, give=IMAGE_INPUTS, total=total))


def reader_gone(err: BaseException | None) -> bool:
    """True when ``err`` is, or was raised while handling, a write into a pipe that no one reads any more (EPIPE:
    standard output or an output named by -o; typer turns it into exit 1)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno == errno.EPIPE:
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


@contextmanager
def quiet_bar(bar) -> Iterator:
    """``with quiet_bar(progress_bar(...)) as bar``: a rich progress bar that prints nothing more on stderr when the run
    ends because its reader has gone (`arniqa score | head -1`: the end is quiet, as :func:`reader_gone` says)."""
    bar.start()
    gone = False
    try:
        yield bar
    except BaseException as e:
        gone = reader_gone(e)
        raise
    finally:
        if gone:
            bar.live.transient = True  # no last frame of the bar,
            bar.live.stop()  # nor the blank line that Progress.stop adds off a terminal
        else:
            bar.stop()


def print_error(message: str) -> None:
    """``error: message`` on stderr as one line (see :func:`fail`), after the lines summing up the warnings about
    single files (:func:`~arniqa.utils.messages.held_warnings`): the error line is the last."""
    from ..utils.console import end_progress_bars
    from ..utils.messages import error_line, held_warnings, say

    end_progress_bars()  # drawn on the same terminal, a bar's line would run into this one
    for line in held_warnings():
        say(line)
    typer.secho(error_line(message), err=True, fg="red")


def wrote(line: str, output: Path) -> None:
    """The line saying a verb wrote the file ``output``: on stderr when ``output`` names standard output
    (``-o /dev/stdout``), where it would follow the file's bytes, else on stdout."""
    from ..utils.streams import descriptor

    typer.echo(line, err=descriptor(output) == 1)


_advice: list[str] = []  # the running verb's (go_on)


def go_on(advice: str) -> str:
    """``advice``, how the running verb goes on from what it wrote, ends the line it gets when Ctrl-C or a signal
    stops it (``interrupted; advice``: :func:`stopped_line`); a verb that sets none, having nothing to go on from,
    gets ``interrupted`` alone. Returns ``advice``."""
    _advice[:] = [advice]
    return advice


def stopped_line() -> tuple[int, str]:
    """The exit status and the line of the verb stopped by Ctrl-C or a signal, with its :func:`go_on` advice."""
    from ..utils.runtime import interrupted

    return interrupted(*_advice)


def stop(err, advice: str | None = None) -> NoReturn:
    """A run stopped by a signal with its state saved (``train.stopping.Stopped``): one line, with ``advice``
    in place of ``--resume`` for verbs that resume by themselves, and 128 + the signal's number (SystemExit, not
    typer.Exit: main would add its Ctrl-C line)."""
    print_error(str(err) if advice is None else f"{err.reason}; {advice}")
    raise SystemExit(err.code)


def html_output(path: Path) -> None:
    """An HTML report's output that would replace a file that is no HTML file, or is a folder: one line, exit 2
    (no torch)."""
    from ..reports.html import check_output

    file_output(path)
    try:
        check_output(path)
    except ValueError as e:
        fail(str(e))


def output_place(
    path: Path, folder: bool = False, inputs: tuple[Path | None, ...] = (), elsewhere: str | None = None
) -> None:
    """Create the folder ``path`` (``folder``), or the folder that will hold the file ``path``, before the work
    starts; one line naming ``path`` and exit 2 when it cannot be made (a file in the way, no permission) or
    when it is one of the command's ``inputs`` (writing would destroy it). ``elsewhere``: as for
    :func:`~arniqa.cli.result_files.output_error`."""
    from .result_files import output_error

    for source in inputs:
        if source is not None and same_file(path, source):
            fail(
                file_line(path, "it is also an input of this command and would be overwritten", "choose another output")
            )
    try:
        (path if folder else path.parent).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(str(output_error(str(path), e, elsewhere=elsewhere)))


def file_output(path: Path) -> None:
    """An output file that is a folder: one line naming it, exit 2, before the work (its write fails at the end)."""
    from ..utils.files import folder_in_the_way
    from .result_files import output_error

    try:
        folder_in_the_way([path])
    except IsADirectoryError as e:
        fail(str(output_error(str(path), e)))


def same_file(a: Path, b: Path) -> bool:
    """One file by inode, or, while one is not there yet (`score -o new.csv --html new.csv`, the rows written
    after this check), by the same path once links and `..` are resolved."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


@contextmanager
def output_folders(
    *paths: Path | None, files: tuple[Path | None, ...] = (), cache: tuple[Path, str] | None = None
) -> Iterator[None]:
    """:func:`output_place` of the folders ``paths``, of the output ``files`` (None: none) and of the ``cache``
    folder (with how to choose another: :func:`~arniqa.cli.result_files.output_error`'s ``elsewhere``) around a
    command's work; when the work stops (an error line, Ctrl-C, SIGTERM, any exception), the folders made here are
    removed again while empty, and so are the empty folders the work made inside them (a ``run/`` or ``images/`` it
    had not written into yet), so a stopped run leaves no empty output folder behind."""
    cached = None if cache is None else cache[0]
    folders = [p for p in (*paths, cached, *(f.parent for f in files if f is not None)) if p is not None]
    made = sorted({p for path in folders for p in (path, *path.parents) if not p.exists()}, key=lambda p: -len(p.parts))
    try:
        for path in paths:
            if path is not None:
                output_place(path, folder=True)
        if cache is not None:
            output_place(cache[0], folder=True, elsewhere=cache[1])
        for file in files:
            if file is not None:
                output_place(file)
        yield
    except BaseException as e:
        code = e.exit_code if isinstance(e, typer.Exit) else e.code if isinstance(e, SystemExit) else None
        for folder in made:  # deepest first; one holding anything stays
            if code not in (EXIT_OK, EXIT_FAILED) and folder in folders:  # a stop: all inside was made here
                for inner, _, _ in os.walk(folder, topdown=False):  # a folder after the ones it holds
                    with suppress(OSError):
                        os.rmdir(inner)
            with suppress(OSError):
                folder.rmdir()
        raise


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Around a command's writes into ``path`` (a file or a folder): an OSError (disk full, no permission) is
    one line naming the file (the error's, else ``path``) and exit 2."""
    from ..utils.locks import OutputBusy
    from .result_files import output_error

    try:
        yield
    except OutputBusy as e:  # its own message: who holds the output
        fail(str(e))
    except BrokenPipeError:  # a pipe named as the output, its reader gone: the command ends quietly (cli.main)
        raise
    except OSError as e:
        fail(str(output_error(str(e.filename or path), e)))


@contextmanager
def one_writer(path: Path) -> Iterator[None]:
    """Hold :func:`~arniqa.utils.locks.output_lock` on the output file ``path`` while inside: on the file itself,
    so the same file named through a link or a linked folder is the same output. Another arniqa process writing
    it is one line naming that process, a lock that cannot be made one line naming ``path``; exit 2."""
    from ..utils.locks import OutputBusy, output_lock
    from .result_files import output_error

    with ExitStack() as stack:
        try:
            stack.enter_context(output_lock(path.resolve()))
        except OutputBusy as e:
            fail(str(e))
        except OSError as e:
            fail(str(output_error(str(path), e)))
        yield


def fail_io(e: OSError, *outputs: Path, cache: tuple[Path, str] | None = None) -> NoReturn:
    """Exit 2 with one line for ``e``: as :func:`writing` says it when ``e`` names a file in ``outputs`` (files or
    folders the command writes: a full disk, no permission) or in the ``cache`` folder (with how to choose another,
    as :func:`output_folders` takes it), else as a file read: ``FILE: problem; what to do`` (a file that is not there
    as an image's, :func:`~arniqa.data.images.not_there`; others :func:`~arniqa.utils.files.cannot_open`), or its
    own message where it names no file."""
    from ..utils.files import cannot_open, inside
    from .result_files import output_error

    if isinstance(e, BrokenPipeError):  # a pipe written into, its reader gone: the command ends quietly (cli.main)
        raise e
    name = None if e.filename is None else os.fsdecode(e.filename)
    if name is not None and cache is not None and inside(name, cache[0]):
        fail(str(output_error(name, e, elsewhere=cache[1])))
    if name is not None and any(inside(name, out) for out in outputs):
        fail(str(output_error(name, e)))
    if name is None:
        fail(str(e))
    if e.errno in (errno.ENOENT, errno.ELOOP):  # gone, or a link loop: said as a photo's
        from ..data.images import not_there
        from ..utils.messages import file_line

        fail(file_line(name, *not_there(name, e)))
    fail(cannot_open(e, name))


def one_model_source(checkpoint, weights_dir) -> None:
    """--checkpoint names this project's model file, --weights-dir the published model's folder: never both."""
    if checkpoint is not None and weights_dir is not None:
        raise typer.BadParameter("--weights-dir is for the published model; do not combine it with --checkpoint")


def connect_ray(stack, address: str):
    """``arniqa.integrations.ray``, connected to the cluster at ``address`` within ``stack``; a missing
    extra or an unreachable cluster is a usage error (exit 2)."""
    try:
        from ..integrations import ray

        stack.enter_context(ray.connected(address))
    except ImportError as e:
        fail(str(e))
    except (ConnectionError, RuntimeError, ValueError) as e:
        fail(f"cannot connect to Ray at {address!r}: {e}")
    return ray


@app.callback()
def _root() -> None:
    """ARNIQA: no-reference image quality assessment (degrade, train, evaluate, score)."""
    _advice.clear()  # each verb says its own (go_on)


@app.command()
def version() -> None:
    """Print the package version."""
    from arniqa import __version__

    typer.echo(__version__)
