"""Evaluation outputs: results.json, a markdown table, and plots (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from ..utils.files import Writer, buffer_writer, text_writer
from ..utils.jsonfile import json_writer, jsonable
from ..utils.names import count

# The report's files in the output folder, by kind (report_files writes those that apply).
FILES = {
    "json": "results.json",
    "markdown": "results.md",
    "scatter": "scatter.png",
    "alpha": "alpha_search.png",
    "per_type": "per_type_srcc.png",
    "cross": "cross_scatter.png",
}

COLUMNS = (("srcc", "SRCC"), ("plcc", "PLCC"), ("krcc", "KRCC"), ("plcc_logistic", "PLCC (logistic)"))


def _number(value) -> str:
    """A metric to 4 decimals; "n/a" when it is undefined (None or NaN: constant scores, too few test images)."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


def _cell(stats: dict) -> str:
    if stats["median"] is None or math.isnan(stats["median"]):
        return "n/a"
    return f"{_number(stats['median'])} ({_number(stats['mean'])} ± {_number(stats['std'])})"


def _text(name: str) -> str:
    """``name`` (a distortion type from a label file) as one table cell: a character that is not printable (a line
    break, a terminal's escape) as its escape sequence, ``|`` escaped; the table goes to stdout as well."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)
    return shown.replace("|", "\\|")


def markdown(result: dict) -> str:
    """The splits and the model evaluated, then tables: median (mean ± std) over splits; per distortion type;
    cross-dataset."""
    result = jsonable(result)
    lines = [
        f"# {result['dataset']}: {count(result['images'], 'image')}, {count(result['splits'], 'split')}, "
        f"alpha {result['alpha']:.4g}",
    ]
    said = [
        f"{name}: {_text(result[key])}"
        for key, name in (("split_source", "Splits"), ("model", "Model"))
        if key in result
    ]
    if said:  # a run's results say both; two spaces end a markdown line
        lines += ["", "  \n".join(said)]
    lines += [
        "",
        "Median over splits (mean ± std).",
        "",
        "| dataset | " + " | ".join(name for _, name in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
        f"| {result['dataset']} | " + " | ".join(_cell(result["summary"][k]) for k, _ in COLUMNS) + " |",
    ]
    if result.get("per_type"):
        lines += [
            "",
            "## Per distortion type (test images, median over splits)",
            "",
            "| type | SRCC | PLCC |",
            "|---|---|---|",
        ]
        lines += [
            f"| {_text(t)} | {_number(v['srcc'])} | {_number(v['plcc'])} |" for t, v in result["per_type"].items()
        ]
        if result.get("images_without_type"):
            n = result["images_without_type"]
            lines += [
                "",
                f"{count(n, 'image')} without a distortion type: in the results above, in no row of this table.",
            ]
    if result.get("cross"):
        c = result["cross"]
        lines += [
            "",
            "## Cross-dataset (fit on all of the source, test on all of the target)",
            "",
            "| source → target | SRCC | PLCC | KRCC | PLCC (logistic) |",
            "|---|---|---|---|---|",
            f"| {c['source']} → {c['target']} | " + " | ".join(_number(c[k]) for k, _ in COLUMNS) + " |",
        ]
        if c.get("direction_flipped"):
            lines.append("\nOne dataset is MOS and the other DMOS: predictions were negated before correlating.")
    return "\n".join(lines) + "\n"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def literal(text: str) -> str:
    """``text`` (a distortion type from a label file) drawn as it is: matplotlib reads ``$...$`` as math, and a
    type such as ``$\\frac{$`` stopped the evaluation at its plots, after all the work."""
    return text.replace("$", r"\$")


def png_writer(fig) -> Writer:
    """What writes the matplotlib figure ``fig`` as a PNG file (for :func:`~arniqa.utils.files.atomic_writes`):
    drawn now, in memory, and closed."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png")
    finally:
        _plt().close(fig)
    return buffer_writer(buffer)


def scatter_plot(pred, target, title: str, xlabel: str = "predicted score", ylabel: str = "subjective score") -> Writer:
    fig, ax = _plt().subplots(figsize=(5, 5), dpi=120)
    ax.scatter(pred, target, s=6, alpha=0.5)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.tight_layout()
    return png_writer(fig)


def per_type_plot(per_type: dict, title: str) -> Writer:
    names = [literal(n) for n in per_type]
    fig, ax = _plt().subplots(figsize=(max(5, 0.35 * len(names) + 2), 4), dpi=120)
    srcc = [v["srcc"] for v in per_type.values()]
    ax.bar(names, srcc)
    ax.set(ylabel="SRCC", title=title, ylim=(min(0, *srcc), 1))
    ax.tick_params(axis="x", rotation=70)
    fig.tight_layout()
    return png_writer(fig)


def alpha_plot(alphas, median_srcc, chosen: float) -> Writer:
    fig, ax = _plt().subplots(figsize=(5, 3.5), dpi=120)
    ax.semilogx(alphas, median_srcc)
    ax.axvline(chosen, color="k", linestyle=":")
    ax.set(xlabel="ridge alpha", ylabel="median validation SRCC", title=f"alpha search (chosen {chosen:.4g})")
    fig.tight_layout()
    return png_writer(fig)


def report_files(
    outdir: Path, result: dict, evaluation, scores: np.ndarray, cross=None
) -> dict[str, tuple[Path, Writer]]:
    """results.json, results.md and the plots in ``outdir``, by kind: each file and what writes it (for
    :func:`~arniqa.utils.files.atomic_writes`, with the other files of the evaluation).

    ``cross``: ``(predictions, target scores)`` of a cross-dataset test, for its scatter plot.
    """
    text = markdown(result)
    files = {
        "json": (outdir / FILES["json"], json_writer(result)),
        "markdown": (outdir / FILES["markdown"], text_writer(text)),
    }
    i = evaluation.median_split
    split = evaluation.splits[i]
    files["scatter"] = (
        outdir / FILES["scatter"],
        scatter_plot(
            evaluation.test_predictions[i],
            scores[split.test],
            f"{result['dataset']}: test images of split {i} (median SRCC)",
        ),
    )
    if len(evaluation.alphas) > 1:
        median = np.median(evaluation.val_srcc, axis=0)
        files["alpha"] = (outdir / FILES["alpha"], alpha_plot(evaluation.alphas, median, evaluation.alpha))
    if result.get("per_type"):
        title = f"{result['dataset']}: SRCC per distortion type"
        files["per_type"] = (outdir / FILES["per_type"], per_type_plot(result["per_type"], title))
    if cross is not None and result.get("cross"):
        c = result["cross"]
        files["cross"] = (
            outdir / FILES["cross"],
            scatter_plot(cross[0], cross[1], f"{c['source']} → {c['target']}"),
        )
    return files
