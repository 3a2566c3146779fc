"""Aggregate stage: summarise per-episode evaluation metrics over training seeds.

Input: the ``metrics.csv`` files of the evaluate stage, one row per evaluation episode
(``results/eval/{policy}/{profile}/{scenario}/seed{seed}/metrics.csv``; columns in :mod:`bmsrl.results`).
Statistics are two-level:

1. per policy x profile x scenario x seed, the mean over that seed's evaluation episodes (the episodes of one
   trained agent are not independent replicates of training, so they are averaged first);
2. per policy x profile x scenario, the mean over seeds and a percentile-bootstrap confidence interval that
   resamples the per-seed means with replacement.

``time_to_balance_s`` is defined only for episodes in which the pack balanced (SoC standard
deviation below 0.5 %); its per-seed value is the mean over those episodes, and the fraction of
episodes that balanced is reported as the extra metric ``balanced_fraction``. Seeds whose episodes
never balanced do not enter the time-to-balance mean over seeds (``n_seeds`` counts those that do).

Paired comparisons: every policy runs on the same packs as every baseline (same evaluation seeds per
training seed and episode), so each headline metric is compared per episode, ``policy - baseline``.
``paired.csv`` holds, per policy x baseline x profile x scenario x metric, the mean difference with a
95 % two-stage (hierarchical) bootstrap interval that resamples training seeds and then episodes
within each (:func:`bmsrl.stats.hierarchical_bootstrap`), the same as a percentage of the baseline's
mean (interval from the same replicates), the probability of improvement (share of episodes in which
the policy is better, ties counting one half, with its interval) and the interquartile mean over seeds
of the per-seed mean differences (interval: ``scipy.stats.bootstrap`` over seeds).

Outputs: a long-format ``summary.csv`` (one row per policy x profile x scenario x metric), ``paired.csv``,
``robustness.csv`` (the summary rows of :data:`bmsrl.results.ROBUSTNESS_METRICS`, every scenario) and a
Markdown report ``summary.md``; no change is stated there without its interval.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bmsrl.baselines import BASELINES
from bmsrl.errors import UserError
from bmsrl.io import atomic_outputs, check_distinct, check_output
from bmsrl.policies import policy_order
from bmsrl.results import (
    DEFAULT_SCENARIO,
    HEADLINE,
    METRIC,
    METRICS,
    PAIRED_COLUMNS,
    ROBUSTNESS_METRICS,
    SUMMARY_COLUMNS,  # fmt: skip
    read_metrics,
)
from bmsrl.stats import (
    bootstrap_ci,
    hierarchical_bootstrap,
    iqm_ci,
    percentile_interval,
)

#: Columns that identify one evaluation episode.
KEYS: tuple[str, ...] = ("policy", "profile", "scenario", "seed", "episode")
#: Columns of one summary group.
GROUP: tuple[str, ...] = ("policy", "profile", "scenario")

#: The study's headline improvements (abstract of "Reinforcement learning for battery energy
#: management: a new balancing approach for Li-ion battery packs", Results in Engineering 2024), [%].
PAPER_HEADLINE_PCT: dict[str, float] = {
    "usable_capacity_mah": +16.8,
    "mean_soc_var": -69.4,
    "switch_changes": -40.4,
}

# --------------------------------------------------------------------------------------------
# Reading


def read_all_metrics(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Read every metrics file and concatenate; refuse an episode that appears twice."""
    if not paths:
        raise UserError("no metrics files given")
    frame = pd.concat([read_metrics(p) for p in paths], ignore_index=True)
    dup = frame.duplicated(list(KEYS), keep=False)
    if dup.any():
        rows = frame[dup].sort_values(list(KEYS))
        a, b = rows.iloc[0], rows.iloc[1]
        where = f"{a['source']}" if a["source"] == b["source"] else f"{a['source']} and {b['source']}"
        raise UserError(
            f"metrics file {where}: episode {a['episode']} of policy {a['policy']!r}, profile {a['profile']!r}, "
            f"scenario {a['scenario']!r}, seed {a['seed']} appears twice (a metrics file listed twice?)"
        )
    return frame


# --------------------------------------------------------------------------------------------
# Statistics


def per_seed_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean over evaluation episodes per policy x profile x scenario x seed.

    Returns one row per group with every metric of :data:`bmsrl.results.METRICS` and ``n_episodes``.
    ``time_to_balance_s`` averages only the episodes that balanced (NaN if none did);
    ``balanced_fraction`` is the fraction that did; ``terminated_fraction`` the fraction
    terminated early by a safety violation.
    """
    work = frame.copy()
    work["balanced_fraction"] = work["time_to_balance_s"].notna().astype(np.float64)
    work["settled_fraction"] = work["time_to_spread_1pct_s"].notna().astype(np.float64)
    work["terminated_fraction"] = work["terminated"].astype(np.float64)
    grouped = work.groupby([*GROUP, "seed"], sort=True)
    means = grouped[[m.name for m in METRICS]].mean()  # pandas skips NaN: time to balance of balanced episodes
    means["n_episodes"] = grouped.size()
    return means.reset_index()


def summarise(frame: pd.DataFrame, confidence: float = 0.95, n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Long-format summary over seeds of concatenated per-episode metrics.

    Parameters
    ----------
    frame:
        Rows as in ``metrics.csv`` (columns :data:`KEYS`, the metrics, ``time_to_balance_s`` with
        NaN where the pack never balanced, ``terminated`` as 0/1 or bool).
    confidence, n_boot, seed:
        Bootstrap settings, see :func:`bootstrap_ci`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`bmsrl.results.SUMMARY_COLUMNS`, one row per policy x profile x scenario x
        metric (policies in :func:`bmsrl.policies.policy_order`; metrics in
        :data:`bmsrl.results.METRICS` order).
        ``mean`` is the mean over seeds of per-seed means; ``n_seeds`` the seeds contributing to
        it; ``n_episodes`` all episodes of the policy x profile. Comparisons against the baselines
        are in :func:`paired_statistics`.
    """
    seeds = per_seed_means(frame)
    rows = []
    for (policy, profile, scenario), group in seeds.groupby(list(GROUP), sort=False):
        for metric in METRICS:
            values = group[metric.name].to_numpy(dtype=np.float64)
            finite = values[~np.isnan(values)]
            low, high = bootstrap_ci(finite, confidence, n_boot, seed)
            rows.append({
                "policy": policy, "profile": profile, "scenario": scenario, "metric": metric.name,
                "unit": metric.unit,
                "mean": float(finite.mean()) if finite.size else math.nan,
                "ci_low": low, "ci_high": high,
                "n_seeds": int(finite.size), "n_episodes": int(group["n_episodes"].sum()),
            })
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    order = {name: i for i, name in enumerate(policy_order(summary["policy"].unique()))}
    metric_order = {m.name: i for i, m in enumerate(METRICS)}
    summary = summary.sort_values(
        ["profile", "scenario", "policy", "metric"],
        key=lambda col: col.map(order) if col.name == "policy"
        else col.map(metric_order) if col.name == "metric"
        else col.map(lambda s: (s != DEFAULT_SCENARIO, s)) if col.name == "scenario" else col,
        kind="stable",
    )
    return summary.reset_index(drop=True)[list(SUMMARY_COLUMNS)]


def _paired_arrays(policy: pd.DataFrame, base: pd.DataFrame,
                   metrics: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """(seeds, episodes, metrics) arrays of the policy's and the baseline's values on the same packs,
    over the training seeds both have (``None`` if they share none)."""
    common = set(policy["seed"]) & set(base["seed"])
    if not common:
        return None
    policy, base = policy[policy["seed"].isin(common)], base[base["seed"].isin(common)]
    merged = policy.merge(base, on=["seed", "episode"], suffixes=("", "_base"), validate="one_to_one")
    wrong = merged[merged["eval_seed"] != merged["eval_seed_base"]]
    if not wrong.empty:
        r = wrong.iloc[0]
        raise UserError(f"{r['source']} and {r['source_base']}: episode {r['episode']} of seed {r['seed']} ran on "
                        f"evaluation seeds {r['eval_seed']} and {r['eval_seed_base']}; paired comparison needs the same packs")
    if len(merged) != len(policy) or len(merged) != len(base):
        r = policy.iloc[0]
        raise UserError(f"policy {r['policy']!r} and baseline {base['policy'].iloc[0]!r} on {r['profile']!r}, "
                        f"scenario {r['scenario']!r}: their episodes differ ({len(policy)} and {len(base)}, "
                        f"{len(merged)} in common); paired comparison needs the same packs")
    counts = merged.groupby("seed").size()
    if counts.nunique() != 1:
        raise UserError(f"policy {policy['policy'].iloc[0]!r}: seeds have different numbers of episodes "
                        f"({dict(counts)}); the paired bootstrap needs as many episodes per seed")
    merged = merged.sort_values(["seed", "episode"])
    shape = (counts.size, int(counts.iloc[0]), len(metrics))
    mine = merged[list(metrics)].to_numpy(dtype=np.float64).reshape(shape)
    theirs = merged[[f"{m}_base" for m in metrics]].to_numpy(dtype=np.float64).reshape(shape)
    return mine, theirs


def paired_statistics(frame: pd.DataFrame, confidence: float = 0.95, n_boot: int = 10_000,
                      seed: int = 0) -> pd.DataFrame:
    """Per policy x baseline x profile x scenario x headline metric, statistics of the per-episode
    differences ``policy - baseline`` on the same packs (columns :data:`bmsrl.results.PAIRED_COLUMNS`).

    A pair uses the training seeds both have (``n_seeds``); within them the episodes must match.
    Every pair is resampled with the same generator seed, so a row does not depend on which other
    policies were evaluated. Intervals are percentile intervals of :func:`hierarchical_bootstrap`
    replicates (seeds, then episodes within seeds); ``pct_*`` divide a replicate's mean difference by
    the same replicate's baseline mean (NaN when the baseline's mean is zero, e.g. the switch changes
    of ``no_balancing``); ``prob_improvement`` counts an episode 1 if the policy is better
    (``Metric.better``), 1/2 if tied; ``iqm_*``: IQM over seeds of the per-seed mean differences.
    """
    metrics = [m.name for m in HEADLINE]
    higher = np.array([METRIC[m].better == "higher" for m in metrics])
    present = set(frame["policy"])
    rows = []
    for baseline in [b for b in BASELINES if b in present]:
        base_groups = dict(tuple(frame[frame["policy"] == baseline].groupby(["profile", "scenario"])))
        for policy in policy_order(present):
            if policy == baseline:
                continue
            for (profile, scenario), mine in frame[frame["policy"] == policy].groupby(["profile", "scenario"]):
                if (profile, scenario) not in base_groups:
                    continue
                arrays = _paired_arrays(mine, base_groups[(profile, scenario)], metrics)
                if arrays is None:
                    continue
                x, b = arrays
                diff = x - b
                better = np.where(higher, diff > 0, diff < 0) + 0.5 * (diff == 0)
                reps = hierarchical_bootstrap(np.concatenate([diff, b, better], axis=-1), n_boot, seed)
                n = len(metrics)
                d_reps, b_reps, p_reps = reps[:, :n], reps[:, n:2 * n], reps[:, 2 * n:]
                with np.errstate(divide="ignore", invalid="ignore"):
                    pct_reps = 100.0 * d_reps / np.abs(b_reps)
                d_lo, d_hi = percentile_interval(d_reps, confidence)
                p_lo, p_hi = percentile_interval(p_reps, confidence)
                for j, metric in enumerate(metrics):
                    mean_diff, base_mean = float(diff[..., j].mean()), float(b[..., j].mean())
                    if base_mean != 0.0 and np.isfinite(pct_reps[:, j]).all():
                        pct = 100.0 * mean_diff / abs(base_mean)
                        pct_lo, pct_hi = (float(v) for v in percentile_interval(pct_reps[:, j], confidence))
                    else:
                        pct = pct_lo = pct_hi = math.nan
                    i_mid, i_lo, i_hi = iqm_ci(diff[..., j].mean(axis=1), confidence, n_boot, seed)
                    rows.append({
                        "policy": policy, "baseline": baseline, "profile": profile, "scenario": scenario,
                        "metric": metric, "unit": METRIC[metric].unit, "better": METRIC[metric].better,
                        "mean_diff": mean_diff, "ci_low": float(d_lo[j]), "ci_high": float(d_hi[j]),
                        "baseline_mean": base_mean, "pct_diff": pct, "pct_ci_low": pct_lo, "pct_ci_high": pct_hi,
                        "prob_improvement": float(better[..., j].mean()), "prob_ci_low": float(p_lo[j]),
                        "prob_ci_high": float(p_hi[j]), "iqm_diff": i_mid, "iqm_ci_low": i_lo, "iqm_ci_high": i_hi,
                        "n_seeds": int(diff.shape[0]), "n_episodes": int(diff.shape[0] * diff.shape[1]),
                    })  # fmt: skip
    return pd.DataFrame(rows, columns=list(PAIRED_COLUMNS))


def robustness_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary rows of :data:`bmsrl.results.ROBUSTNESS_METRICS`, every scenario (robustness.csv)."""
    return summary[summary["metric"].isin(ROBUSTNESS_METRICS)].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Markdown report


def _fmt(value: float, spec: str) -> str:
    return "n/a" if not np.isfinite(value) else format(value, spec)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _interval(mean: float, low: float, high: float, spec: str) -> str:
    return "n/a" if not np.isfinite(mean) else f"{_fmt(mean, spec)} [{_fmt(low, spec)}, {_fmt(high, spec)}]"


def _signed_interval(mean: float, low: float, high: float, spec: str) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{format(mean, '+' + spec)} [{format(low, '+' + spec)}, {format(high, '+' + spec)}]"


def render_markdown(summary: pd.DataFrame, *, confidence: float, n_boot: int, seed: int,
                    sources: int, paired: pd.DataFrame | None = None) -> str:
    """The ``summary.md`` report of a :func:`summarise` result (and :func:`paired_statistics`)."""
    level = f"{100 * confidence:g} %"
    lines = ["# Evaluation summary", ""]
    lines.append(
        f"Each cell: mean over training seeds of the per-seed mean over evaluation episodes, "
        f"[{level} CI]. Read from {sources} metrics file{'s' if sources != 1 else ''}."
    )
    lines.append("")
    indexed = summary.set_index([*GROUP, "metric"])
    columns = [m for m in METRICS if m.in_table]
    scenarios = list(dict.fromkeys(summary["scenario"]))
    for (profile, scenario), part in summary.groupby(["profile", "scenario"], sort=False):
        if scenario != DEFAULT_SCENARIO and DEFAULT_SCENARIO in scenarios:
            continue  # shifted scenarios: the robustness section below
        policies = policy_order(part["policy"].unique())
        where = "" if scenario == DEFAULT_SCENARIO else f", scenario `{scenario}`"
        lines += [f"## Profile `{profile}`{where}", ""]
        header = ["Policy", "Seeds", "Episodes"] + [m.header for m in columns]
        rows = []
        for policy in policies:
            first = indexed.loc[(policy, profile, scenario, "usable_capacity_mah")]
            row = [policy, str(int(first["n_seeds"])), str(int(first["n_episodes"]))]
            for metric in columns:
                r = indexed.loc[(policy, profile, scenario, metric.name)]
                if not np.isfinite(r["mean"]):
                    row.append({"time_to_balance_s": "never balanced",
                                "time_to_spread_1pct_s": "never settled"}.get(metric.name, "n/a"))
                else:
                    row.append(_interval(r["mean"], r["ci_low"], r["ci_high"], metric.fmt))
            rows.append(row)
        lines += _md_table(header, rows) + [""]

    if paired is not None and not paired.empty:
        lines += ["## Paired comparisons against the baselines", ""]
        lines.append(
            f"Every policy ran on the same packs as each baseline. Each cell: mean per-episode difference "
            f"policy − baseline [{level} CI, two-stage bootstrap over training seeds, then episodes], the "
            f"same as % of the baseline's mean [{level} CI], and P = probability that the policy is better "
            f"in an episode (ties count ½). Capacity: higher is better; SoC variance, spread, switching and "
            f"shunt energy: lower is better. An interval that contains 0 does not tell the two apart. "
            f"Every scenario, and the IQM over seeds, is in `paired.csv`."
        )
        lines.append("")
        shown = paired[paired["scenario"] == DEFAULT_SCENARIO] if DEFAULT_SCENARIO in scenarios else paired
        table = shown.set_index(["policy", "baseline", "profile", "scenario", "metric"])
        for baseline in [b for b in BASELINES if b in set(shown["baseline"])]:
            part = shown[shown["baseline"] == baseline]
            lines += [f"### Against `{baseline}`", ""]
            header = ["Policy", "Profile"] + [f"Δ {m.header}" for m in HEADLINE]
            rows = []
            for (profile, scenario), group in part.groupby(["profile", "scenario"], sort=False):
                for policy in policy_order(group["policy"].unique()):
                    row = [policy, profile if scenario == DEFAULT_SCENARIO else f"{profile}, {scenario}"]
                    for metric in HEADLINE:
                        key = (policy, baseline, profile, scenario, metric.name)
                        if key not in table.index:
                            row.append("n/a")
                            continue
                        r = table.loc[key]
                        text = _signed_interval(r["mean_diff"], r["ci_low"], r["ci_high"], metric.fmt)
                        if np.isfinite(r["pct_diff"]):
                            text += f" ({_signed_interval(r['pct_diff'], r['pct_ci_low'], r['pct_ci_high'], '.1f')} %)"
                        row.append(f"{text}; P = {r['prob_improvement']:.2f}")
                    rows.append(row)
            lines += _md_table(header, rows) + [""]
        lines.append(
            "For orientation only: the study (*Reinforcement learning for battery energy management: a new "
            "balancing approach for Li-ion battery packs*, Results in Engineering, 2024) reports up to "
            "+16.8 % usable capacity, −69.4 % SoC variance and −40.4 % switching operations for its learned "
            "policies as best cases, without intervals; compare their size and sign with the intervals above."
        )
        lines.append("")

    shifted = [s for s in scenarios if s != DEFAULT_SCENARIO]
    if shifted:
        lines += ["## Shifted scenarios (robustness)", ""]
        lines.append(
            f"`{DEFAULT_SCENARIO}` is the training distribution; the shifted scenarios "
            + ", ".join(f"`{s}`" for s in shifted) + " (`evaluation.scenarios`) were seen by no agent in "
            f"training, nor by the baselines' tuning. Each cell: mean [{level} CI] as above; "
            "`robustness.csv` holds these rows, `plots/robustness.pdf` draws them."
        )
        lines.append("")
        metrics = [METRIC[m] for m in ROBUSTNESS_METRICS]
        for profile in dict.fromkeys(summary["profile"]):
            lines += [f"### Profile `{profile}`", ""]
            header = ["Policy", "Scenario"] + [m.header for m in metrics]
            rows = []
            for policy in policy_order(summary["policy"].unique()):
                for scenario in scenarios:
                    if (policy, profile, scenario, metrics[0].name) not in indexed.index:
                        continue
                    row = [policy, scenario]
                    for metric in metrics:
                        r = indexed.loc[(policy, profile, scenario, metric.name)]
                        row.append(_interval(r["mean"], r["ci_low"], r["ci_high"], metric.fmt))
                    rows.append(row)
            lines += _md_table(header, rows) + [""]

    first = summary[summary["metric"] == "usable_capacity_mah"]
    per_policy = first.groupby("policy", sort=False)["n_seeds"].agg(lambda n: "/".join(map(str, sorted(set(n)))))
    seeds_text = ", ".join(f"{p} {per_policy[p]}" for p in policy_order(per_policy.index))
    per_seed = sorted({f"{e / s:g}" for e, s in zip(first["n_episodes"], first["n_seeds"]) if s > 0})
    method = (
        f"Statistics: training seeds per policy and profile: {seeds_text}; evaluation episodes per seed: "
        f"{', '.join(per_seed)}. {level} CI = percentile bootstrap over seeds ({n_boot} resamples of "
        f"the per-seed means, numpy generator seed {seed})."
    )
    if (first["n_seeds"] == 1).any():
        method += (" Where there is a single seed the spread over seeds cannot be estimated: the "
                   "interval then equals the mean and is not a measure of uncertainty, and the paired "
                   "intervals reflect the evaluation episodes of that one trained agent only.")
    lines += [method, ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Stage


def aggregate(metrics_paths: Sequence[str | os.PathLike], out_csv: str | os.PathLike,
              out_md: str | os.PathLike, confidence: float = 0.95, n_boot: int = 10_000,
              boot_seed: int = 0, out_paired: str | os.PathLike | None = None,
              out_robustness: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read the metrics files, summarise them, write ``summary.csv`` and ``summary.md`` (and, if
    given, ``paired.csv`` and ``robustness.csv``) atomically."""
    if not 0.0 < confidence < 1.0:
        raise UserError(f"--confidence must lie in (0, 1), got {confidence:g}")
    if n_boot < 1:
        raise UserError(f"--n-boot must be >= 1, got {n_boot}")
    outputs = {"--out-csv": out_csv, "--out-md": out_md, "--out-paired": out_paired, "--out-robustness": out_robustness}
    outputs = {option: path for option, path in outputs.items() if path is not None}
    check_distinct({"input": list(metrics_paths)}, outputs)
    for option, path in outputs.items():
        check_output(path, option)
    frame = read_all_metrics(metrics_paths)
    summary = summarise(frame, confidence, n_boot, boot_seed)
    paired = paired_statistics(frame, confidence, n_boot, boot_seed)
    report = render_markdown(summary, confidence=confidence, n_boot=n_boot, seed=boot_seed,
                             sources=len(metrics_paths), paired=paired)
    robustness = robustness_table(summary)
    with atomic_outputs(out_csv, out_md, out_paired, out_robustness) as (tmp_csv, tmp_md, tmp_paired, tmp_robust):
        summary.to_csv(tmp_csv, index=False, lineterminator="\n", float_format="%.10g")
        for table, tmp in ((paired, tmp_paired), (robustness, tmp_robust)):
            if tmp is not None:
                table.to_csv(tmp, index=False, lineterminator="\n", float_format="%.10g")
        tmp_md.write_text(report, encoding="utf-8")
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``bmsrl aggregate METRICS.csv ... --out-csv CSV --out-md MD``."""
    parser.add_argument("metrics", nargs="+", type=Path, metavar="METRICS.csv",
                        help="per-episode metrics files of the evaluate stage")
    parser.add_argument("--out-csv", type=Path, required=True, metavar="CSV",
                        help="long-format summary table to write")
    parser.add_argument("--out-md", type=Path, required=True, metavar="MD",
                        help="Markdown report to write")
    parser.add_argument("--out-paired", type=Path, metavar="CSV",
                        help="paired comparisons against the baselines to write (paired.csv)")
    parser.add_argument("--out-robustness", type=Path, metavar="CSV",
                        help="the summary rows of the robustness metrics, every scenario, to write")
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="confidence level of the bootstrap interval (default %(default)s)")
    parser.add_argument("--n-boot", type=int, default=10_000, metavar="N",
                        help="bootstrap resamples (default %(default)s)")
    parser.add_argument("--boot-seed", type=int, default=0, metavar="SEED",
                        help="seed of the bootstrap generator (default %(default)s)")


def main(args: argparse.Namespace) -> int:
    """Run the stage from parsed arguments; print a one-line summary; return 0."""
    summary = aggregate(args.metrics, args.out_csv, args.out_md, args.confidence, args.n_boot, args.boot_seed,
                        args.out_paired, args.out_robustness)
    groups = summary[["policy", "profile"]].drop_duplicates()
    print(f"aggregate: {len(args.metrics)} metrics file(s) -> {args.out_csv} and {args.out_md}: "
          f"{len(groups)} policy x profile group(s)")
    return 0
