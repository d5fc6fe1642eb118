"""Report writing (JSON cleaning, markdown) and the t-SNE embedding."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from arniqa.evaluate.report import markdown, per_type_plot, png_writer
from arniqa.evaluate.tsne import embed, tsne_plot
from arniqa.utils.jsonfile import write_json


def _result():
    stat = {"median": 0.91234, "mean": 0.9, "std": 0.01}
    return {
        "dataset": "kadid10k",
        "images": 100,
        "splits": 10,
        "alpha": np.float64(0.5),
        "summary": {
            "srcc": stat,
            "plcc": stat,
            "krcc": stat,
            "plcc_logistic": {"median": float("nan"), "mean": 0, "std": 0},
        },
        "per_type": {"jpeg": {"srcc": 0.8, "plcc": 0.7, "splits": 10}},
        "cross": {
            "source": "kadid10k",
            "target": "csiq",
            "srcc": 0.5,
            "plcc": 0.4,
            "krcc": 0.3,
            "plcc_logistic": float("nan"),
            "direction_flipped": True,
        },
    }


def test_json_is_strict_and_markdown_has_tables(tmp_path):
    path = write_json(tmp_path / "r.json", _result() | {"arr": np.arange(3)})
    loaded = json.loads(path.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert loaded["summary"]["plcc_logistic"]["median"] is None and loaded["arr"] == [0, 1, 2]
    md = markdown(_result())
    assert "| kadid10k | 0.9123 (0.9000 ± 0.0100) |" in md
    assert "| jpeg | 0.8000 | 0.7000 |" in md
    assert "| kadid10k → csiq | 0.5000 | 0.4000 | 0.3000 | n/a |" in md and "negated" in md


def test_markdown_says_which_splits_and_model_were_evaluated():
    """results.md (and the table on stdout) named neither the splits nor the model: random splits read as the
    official ones, and split files whose parts share references, which docs/evaluation.md says results.md marks NOT
    reference-disjoint, were said so in results.json only."""
    splits = "files in /data/tid/splits (10 splits); NOT reference-disjoint (split 0: train and test share 1 item)"
    md = markdown(_result() | {"split_source": splits, "model": "checkpoint runs/a|b.safetensors"})
    head = md.split("Median over splits")[0]
    assert head.splitlines()[2:4] == [f"Splits: {splits}  ", "Model: checkpoint runs/a\\|b.safetensors"]


def test_tsne_keeps_clusters_apart(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 64)) * 10
    labels = np.repeat(["a", "b", "c"], 20)
    feats = centres[np.repeat(np.arange(3), 20)] + rng.normal(size=(60, 64))
    points, index = embed(feats[:, None, :].repeat(2, axis=1), perplexity=10)
    assert points.shape == (60, 2) and np.array_equal(index, np.arange(60))
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert np.all(labels[d.argmin(axis=1)] == labels)  # every nearest neighbour has the same label
    tsne_plot(feats, labels=labels, perplexity=10, max_images=30)(tmp_path / "t.png")
    assert Image.open(tmp_path / "t.png").format == "PNG"


def test_a_plot_is_the_png_that_matplotlib_writes_to_a_file(tmp_path):
    """Plots are drawn in memory and written with the other outputs of an evaluation: the same bytes as savefig's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=50)
    ax.plot([0, 1, 4])
    fig.savefig(tmp_path / "direct.png")
    png_writer(fig)(tmp_path / "written.png")
    assert (tmp_path / "written.png").read_bytes() == (tmp_path / "direct.png").read_bytes()
    assert not plt.fignum_exists(fig.number)  # closed


def test_images_without_a_type_are_no_type_in_the_tsne_and_in_no_markdown_row(monkeypatch):
    """Their legend entry was 'None', as if a type had that name; the markdown report leaves them out of the
    per-type table and says how many there are."""
    import arniqa.evaluate.tsne as tsne

    monkeypatch.setattr(tsne, "png_writer", lambda fig: fig)  # the figure itself, not its PNG
    rng = np.random.default_rng(0)
    fig = tsne_plot(rng.normal(size=(12, 8)), labels=["jpeg", None, "blur"] * 4, perplexity=3)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["(no type)", "blur", "jpeg"]
    md = markdown(_result() | {"images_without_type": 4})
    assert "| None |" not in md and "4 images without a distortion type: in the results above" in md


def test_types_holding_dollar_signs_are_drawn_as_text(tmp_path):
    """A CSV's distortion type '$\\frac{$' stopped `arniqa evaluate` at its plots, after all the work, with
    matplotlib's math parser's error ('Expected \\frac{num}{den}'); types are text, drawn as they are written."""
    types = ["$\\frac{$", "$x$", "plain"]
    per_type = {t: {"srcc": 0.1 * k, "plcc": 0.2, "splits": 3} for k, t in enumerate(types)}
    per_type_plot(per_type, "csv: SRCC per distortion type")(tmp_path / "p.png")
    feats = np.random.default_rng(0).normal(size=(12, 8))
    tsne_plot(feats, labels=types * 4, perplexity=3)(tmp_path / "t.png")
    assert Image.open(tmp_path / "p.png").format == Image.open(tmp_path / "t.png").format == "PNG"


def test_a_type_is_one_table_cell_whatever_its_characters():
    """Types from a CSV went into the table as written: 'a|b' made a row of four cells, a line break split the row
    in two, and a terminal escape ('\\x1b[31m') went to stdout as it is, colouring the terminal."""
    per_type = {t: {"srcc": 0.5, "plcc": 0.25, "splits": 3} for t in ("a|b", "x\ny", "\x1b[31mred", "café")}
    md = markdown(_result() | {"per_type": per_type})
    rows = md.split("## Per distortion type")[1].split("\n\n")[1].splitlines()[2:]
    assert rows == [
        "| a\\|b | 0.5000 | 0.2500 |",
        "| x\\ny | 0.5000 | 0.2500 |",
        "| \\x1b[31mred | 0.5000 | 0.2500 |",
        "| café | 0.5000 | 0.2500 |",
    ]
    assert all(c.isprintable() or c == "\n" for c in md)


# results.md and results.json of an evaluation with a cross-dataset row, in a process whose locale is not UTF-8
IN_ASCII_LOCALE = """
import json, sys
from pathlib import Path
import numpy as np
from arniqa.evaluate.probe import evaluate
from arniqa.evaluate.report import report_files
from arniqa.evaluate.splits import random_splits
from arniqa.utils.files import atomic_writes

rng = np.random.default_rng(0)
features, scores = rng.random((30, 2, 4)), rng.random(30)
evaluation = evaluate(features, scores, random_splits(30, n_splits=2), alphas=[0.1])
atomic_writes(list(report_files(Path(sys.argv[1]), json.loads(sys.argv[2]), evaluation, scores).values()))
"""


def test_results_md_is_utf8_in_any_locale(tmp_path):
    """results.md was written in the locale's encoding: in one without its "→" and "±" (Windows' cp1252, an ASCII
    one) `arniqa evaluate` stopped with a UnicodeEncodeError once every feature and fit was done."""
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    result = json.dumps(_result() | {"alpha": 0.5})
    done = subprocess.run([sys.executable, "-c", IN_ASCII_LOCALE, str(tmp_path), result], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-500:]
    text = (tmp_path / "results.md").read_bytes().decode("utf-8")
    assert "| kadid10k → csiq | 0.5000 |" in text and "0.9123 (0.9000 ± 0.0100)" in text
