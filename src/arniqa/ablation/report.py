"""The ablation report: tables, paired differences against the baseline, plots, provenance.

Reads every ``result.json`` of the configured variants, seeds and stages and writes ``summary.json``,
``report.md``, ``loss_curves.png``, ``learning_curves.png`` (probe SRCC and loss against step) and
one ``<benchmark>_bars.png`` per benchmark into the output folder (small files, ready to be copied
into ``docs/results/``). The numbers come from :mod:`.stats`, the figures from :mod:`.plots`; this
module writes the markdown.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data.synthetic import KADID_TYPES
from ..degradations.registry import NUM_LEVELS
from ..utils.files import atomic_writes, text_writer
from ..utils.jsonfile import json_writer
from ..utils.names import agree, count
from ..utils.runtime import describe, git_commit
from .config import AblationConfig, AblationError
from .layout import SUMMARY, read_json, read_runs, read_split, split_path
from .plots import plot_bars, plot_curves, plot_losses
from .stats import LABELS, LEVEL, METRICS, collect, read_logs, result_order, summarise

# The reference recipe (ARNIQA paper and code): KADIS-700k pristine images, 10 epochs of 8,750
# steps with batch 16 at 224 px crops, ImageNet-initialised ResNet50.
REFERENCE = {"images": 140_000, "epochs": 10, "steps": 87_500, "batch": 16, "crop": 224}


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
    md = [
        "",
        f"### Per distortion group (trained): SRCC within the group, variant minus `{config.baseline}`",
        "",
        f"| variant | group | per seed | mean [{LEVEL:.0%} t interval] | reading |",
        "|---|---|---|---:|---|",
    ]
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
    recipe = config.recipe_config()
    batch, crop, init = recipe.train.batch_size, recipe.data.crop_size, recipe.model.init
    step = int(np.median(steps)) if steps else recipe.train.max_steps
    ref = REFERENCE
    ref_samples = ref["steps"] * ref["batch"]
    lines = [
        f"**Scale.** Each run trained on {count(len(split['train']), 'pristine image')} for "
        f"{count(step, 'step') if step is not None else '? steps'} of batch {batch} at {crop}x{crop} px crops, "
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


def provenance(out: Path, made_here: bool) -> dict:
    """The machine and commit the report names: this process's when it made results, else (``--report-only``, a
    rerun that skipped every stage) those the earlier ``summary.json`` records, which made them."""
    here = {"machine": describe(), "commit": git_commit()}
    path = out / "summary.json"
    if made_here or not path.exists():
        return here
    recorded = read_json(path, SUMMARY, "delete it: the report writes it again")
    return here | {k: recorded[k] for k in here if k in recorded}


def write_report(config: AblationConfig, out: Path, made_here: bool = True) -> Path:
    """Write ``summary.json``, ``report.md`` and the plots for the finished results in ``out``, replaced together
    (:func:`~arniqa.utils.files.atomic_writes`); returns the report's path. ``made_here``: whether this process
    made any of the results (see :func:`provenance`)."""
    out = Path(out)
    if not split_path(out).is_file():
        raise AblationError(f"{out}: no ablation output here (data/split.json is missing); run the study first")
    results = collect(config, out)
    summary = summarise(config, results)
    split, runs = read_split(out), read_runs(out)
    summary.update(
        **provenance(out, made_here),
        commands=[r["command"] for r in runs],
        split={k: v for k, v in split.items() if k not in ("train", "holdout")},
        config=config.to_dict(),
    )
    losses = plot_losses(config, out)
    curves = plot_curves(config, summary, out)
    bars = {b: plot_bars(config, summary, b, out) for b in summary["benchmarks"] if summary["benchmarks"][b]["runs"]}

    expected = len(config.variants) * len(config.seeds) * len(config.stages())
    md = ["# Ablation: SE-ResNet50 against ResNet50 encoders for ARNIQA", ""]
    md += [scale_text(config, split, results), ""]
    md += [f"Finished runs: {len(results)} of {expected} (variants x seeds x stages).", ""]
    if runs and runs[-1]["failed"]:
        failed = [f"* {v} seed {s} {st}: {msg}" for v, s, st, msg in runs[-1]["failed"]]
        md += ["Failed in the last invocation:", "", *failed, ""]
    md += _setup_section(config, summary, split, runs)
    for bench, data in summary["benchmarks"].items():
        md += _bench_section(config, bench, data, bars[bench][0] if bench in bars else None)
    if curves:
        md += [
            "## Learning curves",
            "",
            "Probe: the frozen encoder of each stage (untrained, the snapshots of "
            "`evaluation.probe_steps`, the final model) through the protocol below; loss: the training log.",
            "",
            f"![learning curves]({curves[0].name})",
            "",
        ]
    if losses:
        md += ["## Training loss", "", f"![training loss]({losses[0].name})", ""]
    md += _cost_section(config, results, read_logs(config, out))
    md += _timing_section(config, results, runs)
    md += [
        "## Caveats",
        "",
        f"* n = {count(len(config.seeds), 'seed')} per variant. With so few pairs the sign test cannot reach "
        f"p < 0.05 (its smallest two-sided p is {2 * 0.5 ** len(config.seeds):.3g}), and the t test has "
        f"{max(len(config.seeds) - 1, 0)} degrees of freedom and assumes normal differences; read the "
        "per-seed differences and their spread, not the p values.",
        "* Seeds are paired: the same seed gives every variant the same training images, crops, "
        "distortion chains and benchmark splits; only the architecture (and its random initialisation) differs.",
        "* Synthetic labels are KADID-10k's mean MOS per (type, level), the same for every image: the "
        "benchmark measures how well features separate distortion types and levels, not image content.",
        "",
    ]
    md += _scope_section(config, split)
    text = "\n".join(md)
    # All replaced together: a full disk leaves the earlier report, summary and plots as they were, not a mix.
    plots = [p for p in (losses, curves, *bars.values()) if p is not None]
    report = (out / "report.md", text_writer(text))
    atomic_writes([(out / "summary.json", json_writer(summary)), *plots, report])
    return report[0]


def _setup_section(config: AblationConfig, summary: dict, split: dict, runs: list) -> list[str]:
    m = summary["machine"]
    ev = config.evaluation
    synth = config.synthetic
    types = (
        f"{count(len(synth.types), 'type')} ({', '.join(f'`{t}`' for t in synth.types)})"
        if synth.types
        else f"the {len(KADID_TYPES)} types shared with KADID-10k"
    )
    md = ["## Setup", ""]
    if runs:
        commands = sorted(set(r["command"] for r in runs))
        md += [f"{agree(len(commands), 'Command')}:", "", "```", *commands, "```", ""]
    md += [
        f"* Commit: `{summary['commit']}`",
        f"* Machine: {m['platform']}; CPU {m['cpu']} ({m['cpu_count']} logical cores), "
        f"torch {m['torch']} with {m['torch_threads']} threads, Python {m['python']}"
        + (f"; GPU {m['gpu']}" if "gpu" in m else ""),
        "* Variants: "
        + "; ".join(f"`{k}` {v}" for k, v in config.variants.items())
        + f"; baseline `{config.baseline}`",
        f"* Seeds: {', '.join(map(str, config.seeds))}",
        f"* Data: {split['images']} pristine images in `{split['pristine']}`, split by file with seed "
        f"{split['seed']}: {split['rule']}.",
        f"* Synthetic benchmark: the held-out images at {synth.size} px x {types} x {NUM_LEVELS} levels "
        f"(seed {synth.seed}), labelled with KADID-10k's mean MOS per type and level.",
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
    ]
    return md


def _bench_section(config: AblationConfig, bench: str, data: dict, bars: Path | None) -> list[str]:
    """One benchmark: per variant and seed, SRCC at every stage (with probes), the mean over seeds and the
    paired differences against the baseline (trained stage first), the per-group table and the bar plot."""
    index = {(r["variant"], r["seed"], r["stage"]): r for r in data["runs"]}
    stages = list(reversed(config.stages()))  # trained first
    md = [f"## Benchmark: {bench}", ""]
    md += _seed_table(config, index)
    if len(config.stages()) > 2:  # probes: SRCC at every stage
        md += _stage_table(config, index)
    md += _mean_table(data, stages)
    md += _difference_table(config, data, stages)
    md += _group_table(config, data)
    md.append("")
    if bars is not None:
        md += [f"![{bench}: mean over seeds, error bars one standard deviation]({bars.name})", ""]
    return md


def _seed_table(config: AblationConfig, index: dict) -> list[str]:
    md = [
        "### Per variant and seed",
        "",
        "| variant | seed | SRCC | PLCC | monotone | level tau | "
        "untrained SRCC | untrained PLCC | untrained monotone | untrained tau |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in config.variants:
        for seed in config.seeds:
            t, u = index.get((variant, seed, "trained")), index.get((variant, seed, "untrained"))
            if t is None and u is None:
                continue
            cells = [_f(x[m]) if x else "–" for x in (t, u) for m in METRICS]
            md.append(f"| {variant} | {seed} | " + " | ".join(cells) + " |")
    return md


def _stage_table(config: AblationConfig, index: dict) -> list[str]:
    md = [
        "",
        "### SRCC at every stage (median over splits)",
        "",
        "| variant | seed | " + " | ".join(config.stages()) + " |",
        "|---|---:|" + "---:|" * len(config.stages()),
    ]
    for variant in config.variants:
        for seed in config.seeds:
            if any((variant, seed, st) in index for st in config.stages()):
                cells = (
                    _f(index[(variant, seed, st)]["srcc"]) if (variant, seed, st) in index else "–"
                    for st in config.stages()
                )
                md.append(f"| {variant} | {seed} | " + " | ".join(cells) + " |")
    return md


def _mean_table(data: dict, stages: list[str]) -> list[str]:
    md = [
        "",
        f"### Mean over seeds [{LEVEL:.0%} t interval]",
        "",
        "| variant | stage | seeds | SRCC | PLCC | monotone | level tau |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for variant, by_stage in data["by_variant"].items():
        for stage in stages:
            if stage in by_stage:
                s = by_stage[stage]
                cells = " | ".join(_ci(s[m]) for m in METRICS)
                md.append(f"| {variant} | {stage} | {len(s['seeds'])} | {cells} |")
    return md


def _difference_table(config: AblationConfig, data: dict, stages: list[str]) -> list[str]:
    md = [
        "",
        f"### Paired differences: variant minus `{config.baseline}` (same seed)",
        "",
        f"| variant | stage | metric | per seed | mean [{LEVEL:.0%} t interval] | std | t (df) | p (t) | "
        "sign + / − | p (sign) |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, by_stage in data["differences"].items():
        for stage in stages:
            for m, d in by_stage.get(stage, {}).items():
                if not d["n"]:
                    continue
                per_seed = ", ".join(f"{s}: {x:+.4f}" for s, x in zip(d["seeds"], d["differences"]))
                md.append(
                    f"| {variant} | {stage} | {LABELS[m]} | {per_seed} | {_ci(d, signed=True)} | "
                    f"{_f(d['std'])} | {_f(d['t'], 2)} ({d['n'] - 1}) | {_f(d['p_t'], 3)} | "
                    f"{d['positive']} / {d['negative']} | {_f(d['p_sign'], 3)} |"
                )
    return md


def _cost_section(config: AblationConfig, results: dict, logs: dict) -> list[str]:
    """Parameters of each variant's encoder and its training speed: seconds per step from the
    median samples/s of its log windows (robust to resumes and to the pauses for snapshots)."""
    md = [
        "## Cost per variant",
        "",
        "| variant | encoder parameters | s / step (median over seeds) | seeds |",
        "|---|---:|---:|---:|",
    ]
    batch = config.recipe_config().train.batch_size  # a variant sets model options only
    for variant in config.variants:
        params = next((r["parameters"] for (v, _, _), r in results.items() if v == variant), None)
        per_seed = []
        for seed in config.seeds:
            log = logs.get((variant, seed))
            if log is not None and len(log["samples_per_s"]):
                per_seed.append(batch / float(np.median(log["samples_per_s"])))
        speed = f"{np.median(per_seed):.3f}" if per_seed else "–"
        md.append(f"| {variant} | {f'{params:,}' if params else '–'} | {speed} | {len(per_seed)} |")
    return md + [""]


def _scope_section(config: AblationConfig, split: dict) -> list[str]:
    """What the study can and cannot show, in plain words."""
    recipe = config.recipe_config()
    init, crop = recipe.model.init, recipe.data.crop_size
    n = len(config.seeds)
    return [
        "## What this study can and cannot show",
        "",
        f"* It can show whether, under this recipe and at this budget, the SE variants' frozen features rank "
        f"the held-out synthetic benchmark better or worse than `{config.baseline}`'s, seed by seed, and how "
        "the probe moves during training (the learning curves): a difference whose interval excludes 0 is "
        f"consistent over the {count(n, 'seed')}.",
        f"* It cannot show the full-scale result. The encoders start from {init} initialisation, not ImageNet "
        f"weights; they train on {count(len(split['train']), 'pristine image')}, not KADIS-700k's 140,000, at "
        f"{crop} px crops instead of 224, for a small fraction of the reference's samples. A ranking here need not "
        "hold at scale, in either direction.",
        f"* With {count(n, 'seed')} an interval is wide and rests on the t distribution's assumption of normal "
        "differences; an interval that spans 0 means 'cannot tell', not 'no effect'.",
        "* The benchmark's labels are per (type, level), so it measures how features separate distortion "
        "types and levels on a few held-out references, not agreement with human opinions of real photos.",
        "",
    ]


def _invocation(run: dict) -> str:
    if run["seconds"] is None:
        return f"started {run['started']}, stopped before its end"
    return f"{run['seconds'] / 60:.1f} min ({run['done']} run, {run['skipped']} skipped)"


def _timing_section(config: AblationConfig, results: dict, runs: list) -> list[str]:
    md = [
        "## Wall-clock times",
        "",
        "| variant | seed | stage | training (s) | features (s) | protocol (s) | total (s) |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    total = 0.0
    for (variant, seed, stage), r in sorted(results.items(), key=lambda kv: result_order(config, kv[0])):
        timing = r["timings"]
        feats = sum(v["features_s"] for v in timing["benchmarks"].values())
        proto = sum(v["protocol_s"] for v in timing["benchmarks"].values())
        train = r["training"]["seconds"] if r.get("training") else None
        resumed = " (resumed)" if r.get("training") and r["training"].get("resumed") else ""
        md.append(
            f"| {variant} | {seed} | {stage} | {_f(train, 1)}{resumed} | {feats:.1f} | {proto:.1f} | "
            f"{timing['stage_s']:.1f} |"
        )
        total += timing["stage_s"]
    md += [
        "",
        f"Sum over runs: {total / 60:.1f} min. Runner invocations: "
        + (", ".join(_invocation(r) for r in runs) or "none recorded"),
        "",
    ]
    return md
