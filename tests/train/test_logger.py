"""The training run's logs (arniqa.train.logger)."""

import os
import stat
import subprocess
import sys
import threading
import warnings

import pytest

from arniqa.train.config import Config
from arniqa.train.logger import RunLogger
from arniqa.utils.locks import output_lock

# A run and its resume, in a process where Python flags every text file opened without an encoding (its bytes would
# follow the locale's encoding) as an error in arniqa's modules
IN_ANY_LOCALE = """
import sys, warnings
from pathlib import Path
from arniqa.train.config import Config
from arniqa.train.logger import RunLogger

warnings.filterwarnings("error", category=EncodingWarning, module=r"arniqa\\.")
config = Config()
config.log.tensorboard = config.log.progress = False
for start in (0, 1):
    with RunLogger(Path(sys.argv[1]), 4, start, True, config) as log:
        log.log(start + 1, 1, start + 1, 0.5, 0.1, 10.0)
        log.validation(start + 1, 1, {"srcc": 0.5})
        log.note(f"resumed from {sys.argv[1]}")
"""


def test_the_logs_are_utf8_whatever_the_locale(tmp_path):
    """log.csv, validation.csv and run.log were written in the locale's encoding, not as UTF-8 as arniqa's other
    files: a run.log note naming a path with a character that encoding lacks (Windows' cp1252 has no 'Ł') stopped
    the run, and other locales wrote bytes a UTF-8 reader misreads."""
    env = {**os.environ, "PYTHONWARNDEFAULTENCODING": "1"}
    done = subprocess.run([sys.executable, "-c", IN_ANY_LOCALE, str(tmp_path)], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-800:]
    assert (tmp_path / "validation.csv").read_text().splitlines() == [
        "global_step,epoch,srcc",
        "1,1,0.500000",
        "2,1,0.500000",
    ]
    assert len((tmp_path / "run.log").read_text().splitlines()) == 2


def test_a_pipe_planted_as_a_log_file_is_replaced_never_opened(tmp_path):
    """A FIFO under the name of log.csv, validation.csv or run.log in a run folder was opened to be read and
    appended to: the run waited for someone to read it. They are the run's own files: such a pipe is replaced."""
    config = Config()
    config.log.tensorboard = config.log.progress = False
    names = ("log.csv", "validation.csv", "run.log")
    for name in names:
        os.mkfifo(tmp_path / name)

    def run() -> None:
        with output_lock(tmp_path), RunLogger(tmp_path, 10, 0, True, config) as log:
            log.validation(5, 1, {"srcc": 0.5})
            log.note("done")

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "a planted pipe was opened"
    assert all(stat.S_ISREG(os.lstat(tmp_path / name).st_mode) for name in names)
    assert (tmp_path / "validation.csv").read_text().splitlines() == ["global_step,epoch,srcc", "5,1,0.500000"]
    assert (tmp_path / "run.log").read_text().endswith(" done\n")


def test_a_note_above_the_progress_bar_is_one_line_whatever_its_length(tmp_path, capsys):
    """A run.log note (the degradation mode, a resume on another device) printed above the progress bar was
    wrapped at the console's width (80 columns off a terminal): one note, two lines. It is one line, as in run.log."""
    config = Config()
    config.log.tensorboard = False
    note = "resumed with device was cuda, now cpu; precision was bf16, now fp32: " + "x" * 120
    with output_lock(tmp_path), RunLogger(tmp_path, 10, 0, True, config) as log:
        log.note(note)
    assert note in capsys.readouterr().err.splitlines()
    assert (tmp_path / "run.log").read_text().endswith(f" {note}\n")


def test_off_a_terminal_the_run_says_its_lines_on_stderr_and_draws_no_bar(tmp_path, capsys, monkeypatch):
    """`arniqa train ... > train.log`: the bar went to stdout and drew its last frame there, and its notes with it;
    every verb's bar and messages are on stderr, and off a terminal a bar writes nothing (utils/console)."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    config = Config()
    config.log.tensorboard = False
    with output_lock(tmp_path), RunLogger(tmp_path, 10, 0, True, config) as log:
        log.note("resumed")
        log.advance(5, 2.5, 1e-3)
        log.validation(5, 1, {"srcc": 0.5})
    assert capsys.readouterr() == ("", "resumed\nepoch 1: validation srcc 0.5000\n")


def test_a_run_killed_before_its_first_log_row_leaves_a_header_and_its_rerun_writes_one(tmp_path):
    """log.csv's header stayed in the file's buffer until the first row (log.every steps): a run killed before
    left an empty log.csv, and the rerun or resume appended its rows to it without a header, for good."""
    config = Config()
    config.log.tensorboard = config.log.progress = False
    header = "global_step,epoch,step,loss,lr,samples_per_s,elapsed_s"
    with output_lock(tmp_path), RunLogger(tmp_path, 10, 0, True, config):
        assert (tmp_path / "log.csv").read_text().splitlines() == [header]  # on disk before any row
    for start in (0, 3):  # a fresh rerun, a resume
        for name in ("log.csv", "validation.csv"):
            (tmp_path / name).write_text("")  # what a SIGKILL before the first row left
        with output_lock(tmp_path), RunLogger(tmp_path, 10, start, True, config) as log:
            log.log(start + 1, 0, start, 2.5, 1e-3, 4.0)
            log.validation(start + 1, 1, {"srcc": 0.5})
        rows = (tmp_path / "log.csv").read_text().splitlines()
        assert rows[0] == header and [row.split(",")[:4] for row in rows[1:]] == [
            [str(start + 1), "0", str(start), "2.500000"]
        ]
        assert (tmp_path / "validation.csv").read_text().splitlines() == [
            "global_step,epoch,srcc",
            f"{start + 1},1,0.500000",
        ]


def test_damaged_rows_dropped_on_resume_are_said_in_one_warning_per_file(tmp_path):
    """Rows overwritten in the middle of log.csv (a disk fault, a hand edit), or its header, were dropped on resume
    without a word (a lost header took every row with it; bytes that are not UTF-8 stopped the resume): each file's
    damaged rows are now counted in one warning, also in run.log, and log.csv gets its header back."""
    config = Config()
    config.log.tensorboard = config.log.progress = False
    header = "global_step,epoch,step,loss,lr,samples_per_s,elapsed_s"
    rows = [f"{k},0,{k - 1},2.5,1e-3,4.0,{k}.0" for k in range(1, 7)]
    damaged = ["\0" * 20, rows[0], rows[1], "3,0,2,2.5\0\0\0", rows[3], "\udcff\udcfe", rows[4], rows[5][:9]]
    (tmp_path / "log.csv").write_bytes(os.fsencode("\n".join(damaged) + "\n"))  # bytes that are not UTF-8 too
    (tmp_path / "validation.csv").write_text("global_step,epoch,srcc\n2,1,0.5\n4,2,0.\0\0\0\n")
    with pytest.warns(UserWarning) as said, output_lock(tmp_path), RunLogger(tmp_path, 10, 5, True, config):
        pass
    lines = [
        f"{tmp_path / 'validation.csv'}: 1 damaged row dropped on resume",
        f"{tmp_path / 'log.csv'}: 4 damaged rows dropped on resume",
    ]
    assert [str(w.message).split(" (")[0] for w in said] == lines
    assert (tmp_path / "log.csv").read_text().splitlines() == [header, rows[0], rows[1], rows[3], rows[4]]
    assert (tmp_path / "validation.csv").read_text().splitlines() == ["global_step,epoch,srcc", "2,1,0.5"]
    assert all(line in (tmp_path / "run.log").read_text() for line in lines)
    (tmp_path / "log.csv").write_bytes(os.fsencode("\n".join(damaged) + "\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a new run drops every row: nothing to say
        with output_lock(tmp_path), RunLogger(tmp_path, 10, 0, True, config):
            pass
    assert (tmp_path / "log.csv").read_text().splitlines() == [header]


@pytest.mark.parametrize(
    "header", ["\0" * 22, "global_st", "global_step,epoch,sr", "global_step,epoch,srcc,kadid10k,spl\0\0"]
)
def test_a_damaged_validation_header_keeps_its_rows_and_is_written_again(tmp_path, header):
    """A validation.csv whose header was cut short or zeroed (a disk fault) lost every row on resume, counted as
    damaged, and a zeroed header with a zeroed row stopped the resume (IndexError); the rows are kept now, only
    the header is counted, and the next validation writes the header again from its columns."""
    config = Config()
    config.log.tensorboard = config.log.progress = False
    rows = ["2,1,0.500000,0.500000,kadid10k: official", "4,2,0.600000,0.600000,kadid10k: official"]
    (tmp_path / "validation.csv").write_text("\n".join([header, *rows, "\0" * 9]) + "\n")
    with pytest.warns(UserWarning) as said, output_lock(tmp_path), RunLogger(tmp_path, 10, 4, True, config) as log:
        log.validation(6, 3, {"srcc": 0.7, "kadid10k": 0.7}, "kadid10k: official")
    assert [str(w.message).split(" (")[0] for w in said] == [
        f"{tmp_path / 'validation.csv'}: 2 damaged rows dropped on resume"
    ]
    assert (tmp_path / "validation.csv").read_text().splitlines() == [
        "global_step,epoch,srcc,kadid10k,splits",
        *rows,
        "6,3,0.700000,0.700000,kadid10k: official",
    ]


def test_a_resume_validating_other_data_keeps_each_value_under_its_own_column(tmp_path):
    """A run resumed with other validation.datasets (allowed) appended its rows under the old header: LIVE's
    SRCC stood in the column named kadid10k, and the next resume dropped the rows of another width as damaged.
    The file now holds every column, each value under its name, a column a row lacks left empty."""
    config = Config()
    config.log.tensorboard = config.log.progress = False
    (tmp_path / "validation.csv").write_text("global_step,epoch,srcc,kadid10k,splits\n2,1,0.500000,0.500000,k\n")
    with output_lock(tmp_path), RunLogger(tmp_path, 10, 2, True, config) as log:
        log.validation(4, 2, {"srcc": 0.8, "live": 0.8}, "l")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no row is damaged
        with output_lock(tmp_path), RunLogger(tmp_path, 10, 4, True, config) as log:
            log.validation(6, 3, {"srcc": 0.9, "live": 0.9}, "l")
    assert (tmp_path / "validation.csv").read_text().splitlines() == [
        "global_step,epoch,srcc,kadid10k,splits,live",
        "2,1,0.500000,0.500000,k,",
        "4,2,0.800000,,l,0.800000",
        "6,3,0.900000,,l,0.900000",
    ]
