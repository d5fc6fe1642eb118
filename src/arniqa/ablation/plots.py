"""The ablation's plots: training loss, learning curves (probe SRCC against step) and per-benchmark bars, each
drawn in memory as its file and what writes it (written with the report's other files by
:func:`~arniqa.utils.files.atomic_writes`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..evaluate.report import png_writer
from ..utils.files import Writer
from ..utils.names import count
from .config import SYNTHETIC, AblationConfig
from .stats import LABELS, METRICS, read_logs


def curve_points(summary: dict, bench: str) -> dict[str, dict[int, dict[int, float]]]:
    """``{variant: {seed: {step: median SRCC}}}`` of every evaluated stage of ``bench``."""
    points: dict[str, dict[int, dict[int, float]]] = {}
    for r in summary["benchmarks"][bench]["runs"]:
        if r["step"] is not None:
            points.setdefault(r["variant"], {}).setdefault(r["seed"], {})[r["step"]] = r["srcc"]
    return points


def plot_curves(config: AblationConfig, summary: dict, out: Path, bench: str = SYNTHETIC) -> tuple[Path, Writer] | None:
    """Learning curves: probe median SRCC on ``bench`` against step (thin: seeds, thick: mean over
    seeds, at the steps every seed has) beside the training loss (running mean over 20 log rows)."""
    from matplotlib.figure import Figure

    if bench not in summary["benchmarks"]:
        return None
    points = curve_points(summary, bench)
    if not any(len(steps) > 1 for seeds in points.values() for steps in seeds.values()):
        return None
    logs = read_logs(config, out)
    fig = Figure(figsize=(9.0, 3.2), dpi=90, layout="constrained")
    probe, loss = fig.subplots(1, 2)
    for i, variant in enumerate(v for v in config.variants if v in points):
        colour = f"C{i}"
        seeds = points[variant]
        for seed, by_step in seeds.items():
            steps = sorted(by_step)
            probe.plot(steps, [by_step[k] for k in steps], color=colour, lw=0.7, alpha=0.5, marker=".")
        common = sorted(set.intersection(*(set(b) for b in seeds.values())))
        probe.plot(
            common,
            [np.nanmean([seeds[s][k] for s in seeds]) for k in common],
            color=colour,
            lw=2,
            label=f"{variant} ({count(len(seeds), 'seed')})",
        )
        for (v, seed), log in logs.items():
            if v == variant:
                window = min(20, len(log["loss"]))
                smooth = np.convolve(log["loss"], np.ones(window) / window, mode="valid")
                loss.plot(log["step"][window - 1 :], smooth, color=colour, lw=1, label=f"{variant} seed {seed}")
    probe.set(xlabel="step", ylabel=f"{bench}: median SRCC (probe)", title="frozen features, ridge probe")
    loss.set(xlabel="step", ylabel="NT-Xent loss (running mean)", title="training loss")
    for ax in (probe, loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return out / "learning_curves.png", png_writer(fig)


def plot_losses(config: AblationConfig, out: Path) -> tuple[Path, Writer] | None:
    """Training loss against step, one panel per variant, one line per seed."""
    from matplotlib.figure import Figure

    curves = {(v, s): (log["step"], log["loss"]) for (v, s), log in read_logs(config, out).items()}
    if not curves:
        return None
    variants = [v for v in config.variants if any(k[0] == v for k in curves)]
    fig = Figure(figsize=(3.2 * len(variants), 2.8), dpi=90, layout="constrained")
    axes = fig.subplots(1, len(variants), sharey=True, squeeze=False)[0]
    for ax, variant in zip(axes, variants):
        for (v, seed), (step, loss) in curves.items():
            if v == variant:
                ax.plot(step, loss, lw=1, marker="o" if len(step) == 1 else None, label=f"seed {seed}")
        ax.set_title(variant, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("NT-Xent loss")
    axes[0].legend(fontsize=7)
    return out / "loss_curves.png", png_writer(fig)


def plot_bars(config: AblationConfig, summary: dict, bench: str, out: Path) -> tuple[Path, Writer]:
    """Mean over seeds (error bars: standard deviation; dots: single seeds) per variant and stage."""
    from matplotlib.figure import Figure

    data = summary["benchmarks"][bench]["by_variant"]
    shown = [m for m in METRICS if any(np.isfinite(data[v][st][m]["mean"]) for v in data for st in data[v])]
    fig = Figure(figsize=(3.4 * len(shown), 3.0), dpi=90, layout="constrained")
    axes = fig.subplots(1, len(shown), squeeze=False)[0]
    variants = list(config.variants)
    x = np.arange(len(variants))
    width = 0.38
    for ax, m in zip(axes, shown):
        for j, (stage, colour) in enumerate((("untrained", "#b0b0b0"), ("trained", "#3070b0"))):
            means = [data[v][stage][m]["mean"] if stage in data[v] else np.nan for v in variants]
            stds = [data[v][stage][m]["std"] if stage in data[v] else np.nan for v in variants]
            pos = x + (j - 0.5) * width
            ax.bar(pos, means, width, yerr=np.nan_to_num(stds), color=colour, label=stage, capsize=3)
            for p, v in zip(pos, variants):
                if stage in data[v]:
                    values = data[v][stage][m]["values"]
                    ax.plot([p] * len(values), values, "o", color="#e07020", ms=3, zorder=3)
        ax.set_xticks(x, variants, fontsize=7, rotation=15, ha="right")
        ax.set_title(f"{bench}: {LABELS[m]}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    return out / f"{bench}_bars.png", png_writer(fig)
