"""The ablation's numbers: the finished results and training logs of a study folder, and their summary over
seeds (means, standard deviations, two-sided 95 % t intervals with df n - 1, and paired differences of each
variant against the baseline)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ..degradations.registry import GROUPS
from .config import SYNTHETIC, AblationConfig
from .layout import RESULT_SCHEMA, read_json, result_path, run_folder, stage_step

METRICS = ("srcc", "plcc", "mono", "mono_tau")
LEVEL = 0.95  # of the t intervals
LABELS = {"srcc": "SRCC", "plcc": "PLCC", "mono": "monotone share", "mono_tau": "level tau"}


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
    out: dict[str, Any] = {
        "n": n,
        "mean": float(d.mean()) if n else float("nan"),
        "std": float(d.std(ddof=1)) if n > 1 else float("nan"),
        "positive": int((d > 0).sum()),
        "negative": int((d < 0).sum()),
        "t": float("nan"),
        "p_t": float("nan"),
        "p_sign": float("nan"),
    }
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
                    found[(variant, seed, stage)] = read_json(
                        path, RESULT_SCHEMA, "delete it, and the study evaluates that run again"
                    )
    return found


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
                    logs[(variant, seed)] = {
                        "step": np.array([int(r["global_step"]) for r in rows]),
                        "loss": np.array([float(r["loss"]) for r in rows]),
                        "samples_per_s": np.array([float(r["samples_per_s"]) for r in rows]),
                    }
    return logs


def summarise(config: AblationConfig, results: dict) -> dict[str, Any]:
    """Per benchmark: every run's numbers, mean, std and t interval over seeds per variant and
    stage, the per-seed paired differences of each variant minus the baseline (same seed, same
    stage), and the same differences of the SRCC within each distortion group (``groups``)."""
    benchmarks = sorted({b for r in results.values() for b in r["benchmarks"]}, key=lambda b: (b != SYNTHETIC, b))
    summary: dict[str, Any] = {"baseline": config.baseline, "benchmarks": {}}
    for bench in benchmarks:
        runs = [
            {"variant": v, "seed": s, "stage": st, "step": run_step(st, r), **{m: metric(r, bench, m) for m in METRICS}}
            for (v, s, st), r in sorted(results.items(), key=lambda kv: result_order(config, kv[0]))
        ]
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
        summary["benchmarks"][bench] = {
            "runs": runs,
            "by_variant": by_variant,
            "differences": _differences(config, results, measures),
            "groups": _differences(config, results, groups),
        }
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


def result_order(config: AblationConfig, key) -> tuple:
    """Sort key of a ``(variant, seed, stage)``: the config's variant order, seed, training order of stages."""
    variant, seed, stage = key
    return list(config.variants).index(variant), seed, config.stages().index(stage)


def _spread(values) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    low, high = t_interval(finite)
    return {
        "mean": float(finite.mean()) if len(finite) else float("nan"),
        "std": float(finite.std(ddof=1)) if len(finite) > 1 else float("nan"),
        "low": low,
        "high": high,
        "values": v.tolist(),
    }
