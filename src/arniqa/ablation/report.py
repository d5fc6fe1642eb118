"""The ablation report: tables, paired differences against the baseline, plots, provenance.

Reads every ``result.json`` of the configured variants, seeds and stages and writes ``summary.json``,
``report.md``, ``loss_curves.png``, ``learning_curves.png`` (probe SRCC and loss against step) and
one ``<benchmark>_bars.png`` per benchmark into the output folder (small files, ready to be copied
into ``docs/results/``). Intervals are two-sided 95 % t intervals over seeds (df n - 1).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ..utils.runtime import describe, git_commit
from .config import AblationConfig, AblationError
from ..utils.files import atomic_write, write_json
from ..degradations.registry import GROUPS
from .layout import result_path, run_folder, runs_path, split_path, stage_step

# The reference recipe (ARNIQA paper and code): KADIS-700k pristine images, 10 epochs of 8,750
# steps with batch 16 at 224 px crops, ImageNet-initialised ResNet50.
REFERENCE = {"images": 140_000, "epochs": 10, "steps": 87_500, "batch": 16, "crop": 224}
METRICS = ("srcc", "plcc", "mono", "mono_tau")
LEVEL = 0.95  # of the t intervals
LABELS = {"srcc": "SRCC", "plcc": "PLCC", "mono": "monotone share", "mono_tau": "level tau"}


# ---------------------------------------------------------------------------------- numbers


def metric(result: dict, benchmark: str, name: str) -> float:
    """A run's headline number: median over splits of SRCC / PLCC, of the monotone share or of
    the mean Kendall tau between level and negated prediction (``mono_tau``). NaN when missing
    (JSON null: result files store NaN as null)."""
    entry = result["benchmarks"].get(benchmark)
    if entry is None:
        return float("nan")
    if name in ("mono", "mono_tau"):
        mono = entry.get("monotonicity")
        return _number(mono["share" if name == "mono" else "kendall"]) if mono else float("nan")
    return _number(entry[name]["median"])


def group_srcc(result: dict, benchmark: str, group: str) -> float:
    """A run's median over splits of the SRCC within one distortion group (NaN when missing)."""
    entry = result["benchmarks"].get(benchmark, {}).get("per_group", {}).get(group)
    return _number(entry["srcc"]) if entry else float("nan")


def t_interval(values, level: float = LEVEL) -> tuple[float, float]:
    """The two-sided t interval of the mean of ``values`` (finite ones), NaNs below two values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def paired(diffs) -> dict[str, Any]:
    """Mean and sample standard deviation of paired differences, their 95 % t interval (``low``,
    ``high``), the paired t statistic (df n-1, two-sided p) and the sign test (two-sided exact
    binomial p over the non-zero differences)."""
    d = np.asarray(diffs, dtype=np.float64)
    d = d[np.isfinite(d)]
    n = len(d)
    out: dict[str, Any] = {"n": n, "mean": float(d.mean()) if n else float("nan"),
                           "std": float(d.std(ddof=1)) if n > 1 else float("nan"),
                           "positive": int((d > 0).sum()), "negative": int((d < 0).sum()),
                           "t": float("nan"), "p_t": float("nan"), "p_sign": float("nan")}  # fmt: skip
    out["low"], out["high"] = t_interval(d)
    if n > 1 and out["std"] > 0:
        out["t"] = out["mean"] / (out["std"] / np.sqrt(n))
        out["p_t"] = float(2 * stats.t.sf(abs(out["t"]), n - 1))
    nonzero = out["positive"] + out["negative"]
    if nonzero:
        out["p_sign"] = float(stats.binomtest(out["positive"], nonzero, 0.5).pvalue)
    return out


def collect(config: AblationConfig, out: Path) -> dict[tuple[str, int, str], dict]:
    """The finished results of the configured variants, seeds and stages."""
    found = {}
    for variant in config.variants:
        for seed in config.seeds:
            for stage in config.stages():
                path = result_path(out, variant, seed, stage)
                if path.exists():
                    found[(variant, seed, stage)] = json.loads(path.read_text())
    return found


def summarise(config: AblationConfig, results: dict) -> dict[str, Any]:
    """Per benchmark: every run's numbers, mean, std and t interval over seeds per variant and
    stage, the per-seed paired differences of each variant minus the baseline (same seed, same
    stage), and the same differences of the SRCC within each distortion group (``groups``)."""
    benchmarks = sorted({b for r in results.values() for b in r["benchmarks"]}, key=lambda b: (b != "synthetic", b))
    summary: dict[str, Any] = {"baseline": config.baseline, "benchmarks": {}}
    for bench in benchmarks:
        runs = [{"variant": v, "seed": s, "stage": st, "step": run_step(st, r), **{m: metric(r, bench, m) for m in METRICS}}
                for (v, s, st), r in sorted(results.items(), key=lambda kv: _order(config, kv[0]))]  # fmt: skip
        by_variant: dict[str, Any] = {}
        for variant in config.variants:
            by_variant[variant] = {}
            for stage in config.stages():
                rows = [r for r in runs if r["variant"] == variant and r["stage"] == stage]
                if rows:
                    by_variant[variant][stage] = {m: _spread([r[m] for r in rows]) for m in METRICS}
                    by_variant[variant][stage]["seeds"] = [r["seed"] for r in rows]
        measures = {m: (lambda r, m=m: metric(r, bench, m)) for m in METRICS}
        groups = {g: (lambda r, g=g: group_srcc(r, bench, g)) for g in GROUPS}
        summary["benchmarks"][bench] = {"runs": runs, "by_variant": by_variant,
                                        "differences": _differences(config, results, measures),
                                        "groups": _differences(config, results, groups)}  # fmt: skip
    return summary


def _differences(config: AblationConfig, results: dict, measures: dict) -> dict[str, Any]:
    """``{variant: {stage: {measure: paired differences over seeds}}}``, variant minus baseline."""
    differences: dict[str, Any] = {}
    for variant in config.variants:
        if variant == config.baseline:
            continue
        differences[variant] = {}
        for stage in config.stages():
            per_measure = {}
            for name, measure in measures.items():
                seeds, diffs = [], []
                for seed in config.seeds:
                    a, b = results.get((variant, seed, stage)), results.get((config.baseline, seed, stage))
                    if a is not None and b is not None and np.isfinite(measure(a) - measure(b)):
                        seeds.append(seed)
                        diffs.append(measure(a) - measure(b))
                if seeds:
                    per_measure[name] = {"seeds": seeds, "differences": diffs, **paired(diffs)}
            if per_measure:
                differences[variant][stage] = per_measure
    return differences


def run_step(stage: str, result: dict) -> int | None:
    """The global step a result's model had (results without a ``step`` entry predate probes)."""
    if "step" in result:
        return result["step"]
    return stage_step(stage) if stage != "trained" else (result.get("training") or {}).get("global_steps")


def _order(config: AblationConfig, key) -> tuple:
    variant, seed, stage = key
    return list(config.variants).index(variant), seed, config.stages().index(stage)


def _spread(values) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    low, high = t_interval(finite)
    return {
        "mean": float(finite.mean()) if len(finite) else float("nan"),
        "std": float(finite.std(ddof=1)) if len(finite) > 1 else float("nan"),
        "low": low, "high": high,
        "values": v.tolist(),
    }  # fmt: skip


# ---------------------------------------------------------------------------------- plots


def read_logs(config: AblationConfig, out: Path) -> dict[tuple[str, int], dict[str, np.ndarray]]:
    """Each training run's ``log.csv`` as arrays ``step``, ``loss``, ``samples_per_s``."""
    logs = {}
    for variant in config.variants:
        for seed in config.seeds:
            path = run_folder(out, variant, seed) / "train" / "log.csv"
            if path.exists():
                with open(path, newline="") as f:
                    rows = list(csv.DictReader(f))
                if rows:
                    logs[(variant, seed)] = {"step": np.array([int(r["global_step"]) for r in rows]),
                                             "loss": np.array([float(r["loss"]) for r in rows]),
                                             "samples_per_s": np.array([float(r["samples_per_s"]) for r in rows])}  # fmt: skip
    return logs


def curve_points(summary: dict, bench: str) -> dict[str, dict[int, dict[int, float]]]:
    """``{variant: {seed: {step: median SRCC}}}`` of every evaluated stage of ``bench``."""
    points: dict[str, dict[int, dict[int, float]]] = {}
    for r in summary["benchmarks"][bench]["runs"]:
        if r["step"] is not None:
            points.setdefault(r["variant"], {}).setdefault(r["seed"], {})[r["step"]] = r["srcc"]
    return points


def plot_curves(config: AblationConfig, summary: dict, out: Path, bench: str = "synthetic") -> Path | None:
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
        probe.plot(common, [np.nanmean([seeds[s][k] for s in seeds]) for k in common], color=colour, lw=2,
                   label=f"{variant} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})")  # fmt: skip
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
    path = out / "learning_curves.png"
    fig.savefig(path)
    return path


def plot_losses(config: AblationConfig, out: Path) -> Path | None:
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
    path = out / "loss_curves.png"
    fig.savefig(path)
    return path


def plot_bars(config: AblationConfig, summary: dict, bench: str, out: Path) -> Path:
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
    path = out / f"{bench}_bars.png"
    fig.savefig(path)
    return path


# ---------------------------------------------------------------------------------- markdown


def _f(value, digits: int = 4) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _ci(entry: dict, signed: bool = False) -> str:
    """``mean [low, high]`` of a spread or a paired-differences entry."""
    f = (lambda v: "–" if not np.isfinite(v) else f"{v:+.4f}") if signed else _f
    return f"{f(entry['mean'])} [{f(entry['low'])}, {f(entry['high'])}]"


def _group_table(config: AblationConfig, data: dict) -> list[str]:
    """SRCC within each distortion group of the final models: variant minus baseline, per seed and
    mean with its t interval; a group 'helps' or 'hurts' only when the interval excludes 0."""
    rows = [(v, g, d) for v, by_stage in data.get("groups", {}).items() for g, d in by_stage.get("trained", {}).items()]
    if not rows:
        return []
    md = ["", f"### Per distortion group (trained): SRCC within the group, variant minus `{config.baseline}`", "",
          f"| variant | group | per seed | mean [{LEVEL:.0%} t interval] | reading |", "|---|---|---|---:|---|"]  # fmt: skip
    for variant, group, d in rows:
        per_seed = ", ".join(f"{s}: {x:+.4f}" for s, x in zip(d["seeds"], d["differences"]))
        if not np.isfinite(d["low"]):
            reading = "too few seeds"
        else:
            reading = "helps" if d["low"] > 0 else "hurts" if d["high"] < 0 else "cannot tell (interval spans 0)"
        md.append(f"| {variant} | {group} | {per_seed} | {_ci(d, signed=True)} | {reading} |")
    return md


def scale_text(config: AblationConfig, split: dict, results: dict) -> str:
    steps = [r["training"]["global_steps"] for r in results.values() if r.get("training")]
    recipe = config.recipe
    batch = recipe.get("train", {}).get("batch_size", 16)
    crop = recipe.get("data", {}).get("crop_size", 224)
    step = int(np.median(steps)) if steps else recipe.get("train", {}).get("max_steps")
    ref = REFERENCE
    ref_samples = ref["steps"] * ref["batch"]
    init = recipe.get("model", {}).get("init", "imagenet")
    lines = [
        f"**Scale.** Each run trained on {len(split['train'])} pristine images for "
        f"{step if step is not None else '?'} step(s) of batch {batch} at {crop}x{crop} px crops, "
        f"{init} initialisation. The reference recipe trains on {ref['images']:,} KADIS-700k images for "
        f"{ref['epochs']} epochs x {ref['steps'] // ref['epochs']:,} steps of batch {ref['batch']} at "
        f"{ref['crop']} px from ImageNet weights ({ref_samples:,} samples)."
    ]
    if step:
        samples = step * batch
        pixels = samples * crop**2 / (ref_samples * ref["crop"] ** 2)
        lines.append(
            f"These runs see {samples:,} samples, {samples / ref_samples:.2e} of the reference's "
            f"({pixels:.1e} of its pixels). They test whether the pipeline learns anything and how "
            "the variants compare at this scale; they say little about the full-scale result."
        )
    return " ".join(lines)


def write_report(config: AblationConfig, out: Path) -> Path:
    """Write ``summary.json``, ``report.md`` and the plots for the finished results in ``out``."""
    out = Path(out)
    if not split_path(out).is_file():
        raise AblationError(f"{out}: no ablation output here (data/split.json is missing); run the study first")
    results = collect(config, out)
    summary = summarise(config, results)
    split = json.loads(split_path(out).read_text())
    runs = json.loads(runs_path(out).read_text()) if runs_path(out).exists() else []
    summary.update(machine=describe(), commit=git_commit(), commands=[r["command"] for r in runs],
                   split={k: v for k, v in split.items() if k not in ("train", "holdout")},
                   config=config.to_dict())  # fmt: skip
    write_json(out / "summary.json", summary)
    losses = plot_losses(config, out)
    curves = plot_curves(config, summary, out)
    bars = {b: plot_bars(config, summary, b, out) for b in summary["benchmarks"] if summary["benchmarks"][b]["runs"]}

    expected = len(config.variants) * len(config.seeds) * len(config.stages())
    md = ["# Ablation: SE-ResNet50 against ResNet50 encoders for ARNIQA", ""]
    md += [scale_text(config, split, results), ""]
    md += [f"Finished runs: {len(results)} of {expected} (variants x seeds x stages).", ""]
    if runs and runs[-1]["failed"]:
        md += ["Failed in the last invocation:", ""] + [f"* {v} seed {s} {st}: {msg}" for v, s, st, msg in runs[-1]["failed"]] + [""]
    md += _setup_section(config, summary, split, runs)
    for bench, data in summary["benchmarks"].items():
        md += _bench_section(config, bench, data, bars.get(bench))
    if curves:
        md += ["## Learning curves", "", "Probe: the frozen encoder of each stage (untrained, the snapshots of "
               "`evaluation.probe_steps`, the final model) through the protocol below; loss: the training log.", "",
               f"![learning curves]({curves.name})", ""]  # fmt: skip
    if losses:
        md += ["## Training loss", "", f"![training loss]({losses.name})", ""]
    md += _cost_section(config, results, read_logs(config, out))
    md += _timing_section(config, results, runs)
    md += [
        "## Caveats", "",
        f"* n = {len(config.seeds)} seeds per variant. With so few pairs the sign test cannot reach "
        f"p < 0.05 (its smallest two-sided p is {2 * 0.5 ** len(config.seeds):.3g}), and the t test has "
        f"{max(len(config.seeds) - 1, 0)} degrees of freedom and assumes normal differences; read the "
        "per-seed differences and their spread, not the p values.",
        "* Seeds are paired: the same seed gives every variant the same training images, crops, "
        "distortion chains and benchmark splits; only the architecture (and its random initialisation) differs.",
        "* Synthetic labels are KADID-10k's mean MOS per (type, level), the same for every image: the "
        "benchmark measures how well features separate distortion types and levels, not image content.",
        "",
    ]  # fmt: skip
    md += _scope_section(config, split)
    text = "\n".join(md)
    return atomic_write(out / "report.md", lambda tmp: tmp.write_text(text))


def _setup_section(config: AblationConfig, summary: dict, split: dict, runs: list) -> list[str]:
    m = summary["machine"]
    ev = config.evaluation
    synth = config.synthetic
    types = synth.types or "the 23 types shared with KADID-10k"
    md = ["## Setup", ""]
    if runs:
        md += ["Command(s):", "", "```"] + sorted(set(r["command"] for r in runs)) + ["```", ""]
    md += [
        f"* Commit: `{summary['commit']}`",
        f"* Machine: {m['platform']}; CPU {m['cpu']} ({m['cpu_count']} logical cores), "
        f"torch {m['torch']} with {m['torch_threads']} threads, Python {m['python']}" + (f"; GPU {m['gpu']}" if "gpu" in m else ""),
        "* Variants: " + "; ".join(f"`{k}` {v}" for k, v in config.variants.items()) + f"; baseline `{config.baseline}`",
        f"* Seeds: {config.seeds}",
        f"* Data: {split['images']} pristine images in `{split['pristine']}`, split by file with seed {split['seed']}: {split['rule']}.",
        f"* Synthetic benchmark: the held-out images at {synth.size} px x {types} x 5 levels (seed {synth.seed}), "
        "labelled with KADID-10k's mean MOS per type and level.",
        f"* Labelled datasets: {', '.join(d['name'] for d in config.datasets) or 'none'}",
        f"* Training recipe (arniqa.train keys): `{json.dumps(config.recipe, sort_keys=True)}`",
        f"* Evaluation: features of 5 crops of {ev.crop_size} px per scale (full and bicubic half), "
        f"{ev.splits} random 70/10/20 splits (reference-disjoint, seed {ev.seed}), ridge alpha chosen from "
        "100 values in [1e-3, 1e3] by the median validation SRCC, median test SRCC and PLCC over splits.",
        "* Monotone share: per split, the share of (test reference, type) groups whose predicted quality "
        "falls strictly from level 1 to 5 (ridge fitted on the split's training references; meanshift and "
        "lincontrchange excluded as their levels are not ordered by strength); the median over splits. "
        "Level tau: the same groups' mean Kendall tau between level and negated prediction (1: quality "
        "always falls with level), median over splits.",
        "* Untrained: the same evaluation of each variant's randomly initialised encoder for that seed "
        "(the exact weights its training run starts from).",
        "",
    ]  # fmt: skip
    return md


def _bench_section(config: AblationConfig, bench: str, data: dict, bars: Path | None) -> list[str]:
    md = [f"## Benchmark: {bench}", "", "### Per variant and seed", "",
          "| variant | seed | SRCC | PLCC | monotone | level tau | untrained SRCC | untrained PLCC | untrained monotone | untrained tau |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    index = {(r["variant"], r["seed"], r["stage"]): r for r in data["runs"]}
    for variant in config.variants:
        for seed in config.seeds:
            t, u = index.get((variant, seed, "trained")), index.get((variant, seed, "untrained"))
            if t is None and u is None:
                continue
            cells = [_f(x[m]) if x else "–" for x in (t, u) for m in METRICS]
            md.append(f"| {variant} | {seed} | " + " | ".join(cells) + " |")
    stages = list(reversed(config.stages()))  # trained first
    if len(config.stages()) > 2:  # probes: SRCC at every stage
        md += ["", "### SRCC at every stage (median over splits)", "", "| variant | seed | " + " | ".join(config.stages()) + " |",
               "|---|---:|" + "---:|" * len(config.stages())]  # fmt: skip
        for variant in config.variants:
            for seed in config.seeds:
                if any((variant, seed, st) in index for st in config.stages()):
                    md.append(f"| {variant} | {seed} | " + " | ".join(
                        _f(index[(variant, seed, st)]["srcc"]) if (variant, seed, st) in index else "–" for st in config.stages()) + " |")  # fmt: skip
    md += ["", f"### Mean over seeds [{LEVEL:.0%} t interval]", "",
           "| variant | stage | seeds | SRCC | PLCC | monotone | level tau |", "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for variant, by_stage in data["by_variant"].items():
        for stage in stages:
            if stage in by_stage:
                s = by_stage[stage]
                md.append(f"| {variant} | {stage} | {len(s['seeds'])} | " + " | ".join(_ci(s[m]) for m in METRICS) + " |")
    md += ["", f"### Paired differences: variant minus `{config.baseline}` (same seed)", "",
           f"| variant | stage | metric | per seed | mean [{LEVEL:.0%} t interval] | std | t (df) | p (t) | sign + / − | p (sign) |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for variant, by_stage in data["differences"].items():
        for stage in stages:
            for m, d in by_stage.get(stage, {}).items():
                if not d["n"]:
                    continue
                per_seed = ", ".join(f"{s}: {x:+.4f}" for s, x in zip(d["seeds"], d["differences"]))
                md.append(f"| {variant} | {stage} | {LABELS[m]} | {per_seed} | {_ci(d, signed=True)} | {_f(d['std'])} | "
                          f"{_f(d['t'], 2)} ({d['n'] - 1}) | {_f(d['p_t'], 3)} | {d['positive']} / {d['negative']} | {_f(d['p_sign'], 3)} |")  # fmt: skip
    md += _group_table(config, data)
    md.append("")
    if bars is not None:
        md += [f"![{bench}: mean over seeds, error bars one standard deviation]({bars.name})", ""]
    return md


def _cost_section(config: AblationConfig, results: dict, logs: dict) -> list[str]:
    """Parameters of each variant's encoder and its training speed: seconds per step from the
    median samples/s of its log windows (robust to resumes and to the pauses for snapshots)."""
    md = ["## Cost per variant", "", "| variant | encoder parameters | s / step (median over seeds) | seeds |",
          "|---|---:|---:|---:|"]  # fmt: skip
    for variant in config.variants:
        params = next((r["parameters"] for (v, _, _), r in results.items() if v == variant), None)
        per_seed = []
        for seed in config.seeds:
            log, batch = logs.get((variant, seed)), config.train_config(variant, seed, "unused", "unused").train.batch_size
            if log is not None and len(log["samples_per_s"]):
                per_seed.append(batch / float(np.median(log["samples_per_s"])))
        speed = f"{np.median(per_seed):.3f}" if per_seed else "–"
        md.append(f"| {variant} | {params:,} | {speed} | {len(per_seed)} |" if params else f"| {variant} | – | {speed} | {len(per_seed)} |")
    return md + [""]


def _scope_section(config: AblationConfig, split: dict) -> list[str]:
    """What the study can and cannot show, in plain words."""
    recipe = config.recipe
    init = recipe.get("model", {}).get("init", "imagenet")
    crop = recipe.get("data", {}).get("crop_size", 224)
    n = len(config.seeds)
    return [
        "## What this study can and cannot show", "",
        f"* It can show whether, under this recipe and at this budget, the SE variants' frozen features rank "
        f"the held-out synthetic benchmark better or worse than `{config.baseline}`'s, seed by seed, and how "
        "the probe moves during training (the learning curves): a difference whose interval excludes 0 is "
        f"consistent over these {n} seeds.",
        f"* It cannot show the full-scale result. The encoders start from {init} initialisation, not ImageNet "
        f"weights; they train on {len(split['train'])} pristine images, not KADIS-700k's 140,000, at {crop} px "
        "crops instead of 224, for a small fraction of the reference's samples. A ranking here need not hold "
        "at scale, in either direction.",
        f"* With {n} seeds an interval is wide and rests on the t distribution's assumption of normal "
        "differences; an interval that spans 0 means 'cannot tell', not 'no effect'.",
        "* The benchmark's labels are per (type, level), so it measures how features separate distortion "
        "types and levels on a few held-out references, not agreement with human opinions of real photos.",
        "",
    ]  # fmt: skip


def _invocation(run: dict) -> str:
    if run["seconds"] is None:
        return f"started {run['started']}, stopped before its end"
    return f"{run['seconds'] / 60:.1f} min ({run['done']} run, {run['skipped']} skipped)"


def _timing_section(config: AblationConfig, results: dict, runs: list) -> list[str]:
    md = ["## Wall-clock times", "", "| variant | seed | stage | training (s) | features (s) | protocol (s) | total (s) |",
          "|---|---:|---|---:|---:|---:|---:|"]  # fmt: skip
    total = 0.0
    for (variant, seed, stage), r in sorted(results.items(), key=lambda kv: _order(config, kv[0])):
        timing = r["timings"]
        feats = sum(v["features_s"] for v in timing["benchmarks"].values())
        proto = sum(v["protocol_s"] for v in timing["benchmarks"].values())
        train = r["training"]["seconds"] if r.get("training") else None
        resumed = " (resumed)" if r.get("training") and r["training"].get("resumed") else ""
        md.append(f"| {variant} | {seed} | {stage} | {_f(train, 1)}{resumed} | {feats:.1f} | {proto:.1f} | {timing['stage_s']:.1f} |")
        total += timing["stage_s"]
    md += ["", f"Sum over runs: {total / 60:.1f} min. Runner invocations: "
           + (", ".join(_invocation(r) for r in runs) or "none recorded"), ""]  # fmt: skip
    return md


__all__ = ["collect", "paired", "summarise", "write_report"]
