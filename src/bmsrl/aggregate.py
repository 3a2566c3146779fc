"""Aggregate stage: summarise per-episode evaluation metrics over training seeds.

Input: the ``metrics.csv`` files of the evaluate stage, one row per evaluation episode
(``results/eval/{policy}/{profile}/{scenario}/seed{seed}/metrics.csv``; columns in :mod:`bmsrl.results`).
Statistics are two-level (docs/model.md, "Statistics"):

1. per policy x profile x scenario x seed, the statistic of each metric over that seed's evaluation packs
   (:func:`per_seed_means`: the mean of a per-episode metric, or the ratio-of-sums share of the seed's
   packs): the packs of one trained agent are not independent replicates of training, so they are pooled
   first;
2. per policy x profile x scenario, the mean over seeds and a Student-t interval over the per-seed statistics
   (:func:`bmsrl.stats.t_interval`), which covers at a handful of seeds (tests/test_stats.py). One seed
   gives no interval. A deterministic baseline is the same controller in every seed: its seeds differ only
   in their packs, and ``interval_over`` says so.

``time_to_balance_s`` is defined only for episodes in which the pack balanced (SoC standard
deviation below 0.5 %); its per-seed value is the mean over those episodes, and the fraction of
episodes that balanced is reported as the extra metric ``balanced_fraction``. Seeds whose episodes
never balanced do not enter the time-to-balance mean over seeds (``n_seeds`` counts those that do).

Paired comparisons: every policy runs on the same packs as every baseline (same evaluation seeds per
training seed and episode). ``paired.csv`` holds, per policy x baseline x profile x scenario x headline
metric, the mean over seeds of the per-seed difference with its t interval over seeds, the same as a
percentage of the baseline's mean, and the probability of improvement (share of packs on which the policy
is better, ties counting one half, per seed, then mean and t interval over seeds).

Outputs: a long-format ``summary.csv`` (one row per policy x profile x scenario x metric), ``paired.csv``,
``robustness.csv`` (the summary rows of :data:`bmsrl.results.ROBUSTNESS_METRICS`, every scenario),
``profiles.csv`` (performance profiles, :func:`performance_profiles`) and a Markdown report ``summary.md``;
no change is stated there without its interval.
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
from bmsrl.policies import REFERENCES, policy_label, policy_order
from bmsrl.results import (
    BEST_CONTROLLER_METRIC,
    DEFAULT_SCENARIO,
    HEADLINE,
    INTERVAL_OVER,
    METRIC,
    METRICS,
    OCCURRENCE,
    PAIRED_COLUMNS,
    PROFILE_COLUMNS,
    PROFILE_TAUS,
    ROBUSTNESS_METRICS,
    RUN_KINDS,
    SUMMARY_COLUMNS,
    read_metrics,
)
from bmsrl.stats import performance_profile, t_interval

#: Columns that identify one evaluation episode.
KEYS: tuple[str, ...] = ("policy", "profile", "scenario", "seed", "episode")
#: Columns of one summary group.
GROUP: tuple[str, ...] = ("policy", "profile", "scenario")

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

#: Metrics of a seed's packs averaged per episode (all but the per-seed statistics).
_EPISODE_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if not m.per_seed)


def deterministic(policy: str) -> bool:
    """Whether ``policy`` is the same controller in every seed (a baseline of the registry or the
    model-based reference): its seeds differ only in their evaluation packs."""
    return policy in BASELINES or policy in REFERENCES


def _interval_over(n_seeds: int, *policies: str) -> str:
    """What the interval of a row over ``n_seeds`` seeds of ``policies`` replicates (results.INTERVAL_OVER)."""
    key = "one seed" if n_seeds < 2 else "pack sets" if all(deterministic(p) for p in policies) else "seeds"
    assert key in INTERVAL_OVER
    return key


def episode_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the per-episode metrics the aggregate stage derives (docs/model.md, "Statistics").

    ``balanced_fraction``/``settled_fraction``/``terminated_fraction``: 1 if the episode balanced, settled
    below 1 % spread, or was terminated, else 0. Where ``recovered_share`` is defined (the bound holds and
    at least 1 mAh was recoverable): ``optimality_gap_mah`` = C_bound - C, and the numerator
    ``_gain_mah`` = C - C_nb and denominator ``_room_mah`` = C_bound - C_nb of the ratio-of-sums share.
    """
    work = frame.copy()
    for time, (fraction, _) in OCCURRENCE.items():
        work[fraction] = work[time].notna().astype(np.float64)
    work["terminated_fraction"] = work["terminated"].astype(np.float64)
    valid = work["recovered_share"].notna()
    capacity, none, bound = (
        work[c] for c in ("usable_capacity_mah", "no_balancing_capacity_mah", "capacity_bound_mah")
    )
    work["optimality_gap_mah"] = (bound - capacity).where(valid)
    work["_gain_mah"] = (capacity - none).where(valid)
    work["_room_mah"] = (bound - none).where(valid)
    return work


def per_seed_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Per policy x profile x scenario x seed, the statistic of every metric over that seed's episodes.

    Returns one row per group with every metric of :data:`bmsrl.results.METRICS` and ``n_episodes``.
    Per-episode metrics are means over the episodes where they are defined (pandas skips NaN):
    ``time_to_balance_s`` averages only the episodes that balanced (NaN if none did), ``recovered_share``
    the episodes with a share. ``recovered_share_of_sums`` is Σ(C - C_nb) / Σ(C_bound - C_nb) over the
    seed's episodes with a share (NaN if none has one).
    """
    work = episode_metrics(frame)
    grouped = work.groupby([*GROUP, "seed"], sort=True)
    means = grouped[list(_EPISODE_METRICS)].mean()
    sums = grouped[["_gain_mah", "_room_mah"]].sum(min_count=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        means["recovered_share_of_sums"] = (sums["_gain_mah"] / sums["_room_mah"]).where(sums["_room_mah"] > 0)
    means["n_episodes"] = grouped.size()
    return means.reset_index()[[*GROUP, "seed", *(m.name for m in METRICS), "n_episodes"]]


def _sorted(table: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """``table`` in the report's order: profile, default scenario first, policy order, then ``by``."""
    order = {name: i for i, name in enumerate(policy_order(table["policy"].unique()))}
    metric_order = {m.name: i for i, m in enumerate(METRICS)}
    return table.sort_values(
        ["profile", "scenario", "policy", *by],
        key=lambda col: (
            col.map(order)
            if col.name == "policy"
            else col.map(metric_order)
            if col.name == "metric"
            else col.map(lambda s: (s != DEFAULT_SCENARIO, s))
            if col.name == "scenario"
            else col
        ),
        kind="stable",
    ).reset_index(drop=True)


def summarise(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Long-format summary over seeds of concatenated per-episode metrics.

    Parameters
    ----------
    frame:
        Rows as in ``metrics.csv`` (columns :data:`KEYS`, the metrics, ``time_to_balance_s`` with
        NaN where the pack never balanced, ``terminated`` as 0/1 or bool).
    confidence:
        Level of the Student-t interval over seeds (:func:`bmsrl.stats.t_interval`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`bmsrl.results.SUMMARY_COLUMNS`, one row per policy x profile x scenario x
        metric (policies in :func:`bmsrl.policies.policy_order`; metrics in
        :data:`bmsrl.results.METRICS` order).
        ``mean`` is the mean over seeds of the per-seed statistics (:func:`per_seed_means`), the interval
        a t interval over them (NaN with one seed); ``interval_over`` says what the seeds replicate;
        ``n_seeds`` the seeds contributing; ``n_episodes`` all episodes of the policy x profile x scenario.
        Comparisons against the baselines are in :func:`paired_statistics`.
    """
    seeds = per_seed_means(frame)
    rows = []
    for (policy, profile, scenario), group in seeds.groupby(list(GROUP), sort=False):
        for metric in METRICS:
            values = group[metric.name].to_numpy(dtype=np.float64)
            n = int(np.isfinite(values).sum())
            mean, low, high = t_interval(values, confidence)
            rows.append(
                {
                    "policy": policy,
                    "profile": profile,
                    "scenario": scenario,
                    "metric": metric.name,
                    "unit": metric.unit,
                    "mean": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "interval_over": _interval_over(n, policy),
                    "n_seeds": n,
                    "n_episodes": int(group["n_episodes"].sum()),
                }
            )
    return _sorted(pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)), ["metric"])[list(SUMMARY_COLUMNS)]


def _paired_frames(policy: pd.DataFrame, base: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The policy's and the baseline's episodes on the same packs, over the training seeds both have
    (``None`` if they share none), both sorted by seed and episode.

    Within those seeds the episodes must match, except that a reference (``best_known``, run on the
    first ``evaluation.best_known_episodes`` packs of each seed) pairs with the other policy's episodes
    on its own packs only."""
    common = set(policy["seed"]) & set(base["seed"])
    if not common:
        return None
    policy, base = policy[policy["seed"].isin(common)], base[base["seed"].isin(common)]
    merged = policy.merge(base, on=["seed", "episode"], suffixes=("", "_base"), validate="one_to_one")
    wrong = merged[merged["eval_seed"] != merged["eval_seed_base"]]
    if not wrong.empty:
        r = wrong.iloc[0]
        raise UserError(
            f"{r['source']} and {r['source_base']}: episode {r['episode']} of seed {r['seed']} ran on "
            f"evaluation seeds {r['eval_seed']} and {r['eval_seed_base']}; paired comparison needs the same packs"
        )
    subset = policy["policy"].iloc[0] in REFERENCES or base["policy"].iloc[0] in REFERENCES
    if subset:  # the reference's packs: the first ones of each seed
        keys = pd.MultiIndex.from_frame(merged[["seed", "episode"]])
        policy = policy[pd.MultiIndex.from_frame(policy[["seed", "episode"]]).isin(keys)]
        base = base[pd.MultiIndex.from_frame(base[["seed", "episode"]]).isin(keys)]
    if len(merged) != len(policy) or len(merged) != len(base):
        r = policy.iloc[0]
        raise UserError(
            f"policy {r['policy']!r} and baseline {base['policy'].iloc[0]!r} on {r['profile']!r}, "
            f"scenario {r['scenario']!r}: their episodes differ ({len(policy)} and {len(base)}, "
            f"{len(merged)} in common); paired comparison needs the same packs"
        )
    return policy.sort_values(["seed", "episode"]), base.sort_values(["seed", "episode"])


def best_controllers(frame: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Per (profile, scenario), the best controller: the baseline of the registry with the highest mean
    over seeds of its per-seed mean :data:`~bmsrl.results.BEST_CONTROLLER_METRIC` (on all of its packs;
    a tie goes to the first in registry order). The model-based reference reads the simulator, which no
    BMS can, so it is never the best controller. Chosen on the evaluation packs, so the choice favours the
    controllers: an agent that beats it beats each of them."""
    baselines = [b for b in BASELINES if b in set(frame["policy"])]
    if not baselines:
        return {}
    seeds = per_seed_means(frame[frame["policy"].isin(baselines)])
    means = seeds.groupby(["profile", "scenario", "policy"], sort=False)[BEST_CONTROLLER_METRIC].mean()
    best = {}
    for (profile, scenario), group in means.groupby(level=["profile", "scenario"], sort=True):
        ranked = {policy: value for (_, _, policy), value in group.items() if np.isfinite(value)}
        if ranked:
            top = max(ranked.values())
            best[(profile, scenario)] = next(b for b in baselines if ranked.get(b) == top)
    return best


def paired_statistics(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per policy x baseline x profile x scenario x headline metric, statistics of the differences
    ``policy - baseline`` on the same packs (columns :data:`bmsrl.results.PAIRED_COLUMNS`).

    A pair uses the training seeds both have (``n_seeds``); within them the episodes must match. Per seed,
    the difference of the two policies' per-seed statistics (:func:`per_seed_means`; for a mean it is the
    mean of the per-pack differences on that seed's packs); ``mean_diff`` is their mean over seeds with a
    t interval over seeds. ``pct_*``: the same as % of the baseline's mean over seeds (NaN when it is
    zero, e.g. the switch changes of ``no_balancing``). ``prob_improvement``: per seed, the share of packs
    on which the policy is better (``Metric.better``; ties count 1/2), mean and t interval over seeds (NaN
    for a statistic of a seed's packs together, such as the ratio-of-sums share). ``best_controller``: the
    baseline is the profile's and scenario's best controller (:func:`best_controllers`).
    """
    metrics = [m for m in HEADLINE]
    present = set(frame["policy"])
    best = best_controllers(frame)
    rows = []
    for baseline in [b for b in (*BASELINES, *REFERENCES) if b in present]:
        base_groups = dict(tuple(frame[frame["policy"] == baseline].groupby(["profile", "scenario"])))
        for policy in policy_order(present):
            if policy == baseline:
                continue
            for (profile, scenario), mine in frame[frame["policy"] == policy].groupby(["profile", "scenario"]):
                if (profile, scenario) not in base_groups:
                    continue
                pair = _paired_frames(mine, base_groups[(profile, scenario)])
                if pair is None:
                    continue
                x_ep, b_ep = (episode_metrics(f) for f in pair)
                x_seed, b_seed = (per_seed_means(f) for f in pair)
                n_seeds = len(x_seed)
                for metric in metrics:
                    diff = x_seed[metric.name].to_numpy() - b_seed[metric.name].to_numpy()
                    mean_diff, low, high = t_interval(diff, confidence)
                    base_mean = (
                        float(np.nanmean(b_seed[metric.name])) if b_seed[metric.name].notna().any() else math.nan
                    )
                    if base_mean != 0.0 and np.isfinite(base_mean):
                        pct, pct_lo, pct_hi = (100.0 * v / abs(base_mean) for v in (mean_diff, low, high))
                    else:
                        pct = pct_lo = pct_hi = math.nan
                    prob = prob_lo = prob_hi = math.nan
                    if not metric.per_seed:
                        d = x_ep[metric.name].to_numpy() - b_ep[metric.name].to_numpy()
                        better = np.where(d > 0 if metric.better == "higher" else d < 0, 1.0, 0.0) + 0.5 * (d == 0)
                        better[np.isnan(d)] = np.nan
                        per_seed = pd.Series(better).groupby(x_ep["seed"].to_numpy()).mean().to_numpy()
                        prob, prob_lo, prob_hi = t_interval(per_seed, confidence)
                    rows.append(
                        {
                            "policy": policy,
                            "baseline": baseline,
                            "profile": profile,
                            "scenario": scenario,
                            "metric": metric.name,
                            "unit": metric.unit,
                            "better": metric.better,
                            "mean_diff": mean_diff,
                            "ci_low": low,
                            "ci_high": high,
                            "baseline_mean": base_mean,
                            "pct_diff": pct,
                            "pct_ci_low": pct_lo,
                            "pct_ci_high": pct_hi,
                            "prob_improvement": prob,
                            "prob_ci_low": prob_lo,
                            "prob_ci_high": prob_hi,
                            "interval_over": _interval_over(int(np.isfinite(diff).sum()), policy, baseline),
                            "n_seeds": n_seeds,
                            "n_episodes": int(len(x_ep)),
                            "best_controller": best.get((profile, scenario)) == baseline,
                        }
                    )
    return pd.DataFrame(rows, columns=list(PAIRED_COLUMNS))


def performance_profiles(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per policy x profile x scenario, the fraction of packs with ``recovered_share >= tau`` for every
    ``tau`` of :data:`bmsrl.results.PROFILE_TAUS` (columns :data:`bmsrl.results.PROFILE_COLUMNS`): mean over
    seeds of the per-seed fraction (:func:`bmsrl.stats.performance_profile`, packs without a share left
    out), with a t interval over seeds intersected with [0, 1]. Groups without any share (the bound does not hold there) give no rows.
    """
    rows = []
    for (policy, profile, scenario), group in frame.groupby(list(GROUP), sort=False):
        if group["recovered_share"].notna().sum() == 0:
            continue
        shares = [g["recovered_share"].to_numpy(dtype=np.float64) for _, g in group.groupby("seed", sort=True)]
        padded = np.full((len(shares), max(map(len, shares))), np.nan)
        for i, s in enumerate(shares):
            padded[i, : len(s)] = s
        fractions = performance_profile(padded, PROFILE_TAUS)
        n = int(np.isfinite(fractions[:, 0]).sum())
        mean, low, high = t_interval(fractions, confidence)
        low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)  # a fraction: the interval within [0, 1]
        rows.append(
            pd.DataFrame(
                {
                    "policy": policy,
                    "profile": profile,
                    "scenario": scenario,
                    "tau": PROFILE_TAUS,
                    "fraction": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "interval_over": _interval_over(n, policy),
                    "n_seeds": n,
                    "n_episodes": len(group),
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=list(PROFILE_COLUMNS))
    return _sorted(pd.concat(rows, ignore_index=True), ["tau"])[list(PROFILE_COLUMNS)]


def robustness_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary rows of :data:`bmsrl.results.ROBUSTNESS_METRICS`, every scenario (robustness.csv)."""
    return summary[summary["metric"].isin(ROBUSTNESS_METRICS)].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# The report: summary.md (and the same blocks as HTML for the Snakemake report)

#: What the verdict and the tables show of each comparison: the headline metrics that have a per-pack value
#: (the ratio-of-sums share, a statistic of a seed's packs together, stays in the CSVs).
_REPORT_METRICS = tuple(m for m in HEADLINE if not m.per_seed)
#: The metric the verdict ranks and compares the policies by (usable capacity, higher is better).
_VERDICT_METRIC = HEADLINE[0]


def _fmt(value: float, spec: str) -> str:
    return "n/a" if not np.isfinite(value) else format(value, spec)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _interval(mean: float, low: float, high: float, spec: str) -> str:
    """``mean [low, high]``; the mean alone when there is no interval (one seed)."""
    if not np.isfinite(mean):
        return "n/a"
    if not (np.isfinite(low) and np.isfinite(high)):
        return _fmt(mean, spec)
    return f"{_fmt(mean, spec)} [{_fmt(low, spec)}, {_fmt(high, spec)}]"


def _signed_interval(mean: float, low: float, high: float, spec: str) -> str:
    if not np.isfinite(mean):
        return "n/a"
    if not (np.isfinite(low) and np.isfinite(high)):
        return format(mean, "+" + spec)
    return f"{format(mean, '+' + spec)} [{format(low, '+' + spec)}, {format(high, '+' + spec)}]"


def _seeds(n: float) -> str:
    """The seeds column: the count, or the words "one seed" (no interval)."""
    return "one seed" if int(n) == 1 else str(int(n))


def _where(profile: str, scenario: str) -> str:
    return f"`{profile}`" + ("" if scenario == DEFAULT_SCENARIO else f", scenario `{scenario}`")


def _comparison(row: pd.Series, metric) -> tuple[str, str]:
    """How an agent compares with a baseline on ``metric``, from its paired row: a verdict word (``better``,
    ``worse``, ``not told apart``; ``higher``/``lower`` with one seed, untested) and the difference."""
    diff = row["mean_diff"]
    text = f"{format(diff, '+' + metric.fmt)} {metric.unit}"
    if not (np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"])):
        return ("higher" if diff > 0 else "lower" if diff < 0 else "equal"), f"{text}, one seed"
    up = metric.better == "higher"
    if row["ci_low"] > 0:
        return ("better" if up else "worse"), text
    if row["ci_high"] < 0:
        return ("worse" if up else "better"), text
    return "not told apart", text


def verdict(summary: pd.DataFrame, paired: pd.DataFrame | None) -> list[str]:
    """Plain-language verdict per profile and scenario, one line per trained agent, generated from the
    summary and the paired comparisons on the verdict metric (:data:`_VERDICT_METRIC`)."""
    metric = _VERDICT_METRIC
    indexed = summary.set_index([*GROUP, "metric"])
    table = paired.set_index(["policy", "baseline", "profile", "scenario", "metric"]) if paired is not None else None
    lines = []
    for (profile, scenario), part in summary.groupby(["profile", "scenario"], sort=False):
        rows = part[part["metric"] == metric.name].set_index("policy")
        rows = rows[np.isfinite(rows["mean"])]
        if rows.empty:
            continue
        best = rows["mean"].idxmax() if metric.better == "higher" else rows["mean"].idxmin()
        items = [
            f"most {metric.title.lower()}: {policy_label(best)}, {_fmt(rows.loc[best, 'mean'], metric.fmt)} "
            f"{metric.unit} per episode"
        ]
        agents = [p for p in policy_order(rows.index) if not deterministic(p)]
        for agent in agents:
            n = int(rows.loc[agent, "n_seeds"])
            share = indexed.loc[(agent, profile, scenario, "recovered_share"), "mean"]
            head = f"{policy_label(agent)} ({'one seed: no test' if n == 1 else f'{n} seeds'})"
            if np.isfinite(share):
                head += f" recovers {share:.2f} of the recoverable capacity"
            groups: dict[str, list[str]] = {}
            for baseline in [b for b in BASELINES if b in rows.index]:
                key = (agent, baseline, profile, scenario, metric.name)
                if table is None or key not in table.index:
                    continue
                word, diff = _comparison(table.loc[key], metric)
                groups.setdefault(word, []).append(f"{policy_label(baseline)} ({diff})")
            said = [f"{word} than {', '.join(names)}" for word, names in groups.items() if word != "not told apart"]
            if "not told apart" in groups:
                said.append(f"not told apart from {', '.join(groups['not told apart'])}")
            what = f"{metric.title.lower()}: " + "; ".join(said) if said else "no baseline to compare with"
            items.append(f"{head}; {what}")
        if not agents:
            items.append("no trained agent was evaluated here")
        lines.append(f"- {_where(profile, scenario)}: " + ". ".join(items[:1]) + ".")
        lines += [f"  - {item}." for item in items[1:]]
    return lines


def report_blocks(
    summary: pd.DataFrame,
    *,
    confidence: float,
    sources: int,
    paired: pd.DataFrame | None = None,
    run_kind: str | None = None,
) -> list[tuple]:
    """The report as blocks: ``("h1"|"h2"|"h3"|"p"|"strong", text)``, ``("ul", lines)`` and ``("table", header,
    rows)``; :func:`render_markdown` and :func:`render_html` write them. ``run_kind`` (a key of
    :data:`bmsrl.results.RUN_KINDS`): its words open the report."""
    level = f"{100 * confidence:g} %"
    blocks: list[tuple] = [("h1", "Evaluation summary")]
    if run_kind is not None:
        blocks.append(("strong", RUN_KINDS[run_kind]))
    blocks.append(("h2", "Verdict"))
    blocks.append(
        (
            "p",
            f"Per profile and scenario, each trained agent against each baseline on the same packs, by "
            f"{_VERDICT_METRIC.title.lower()} per episode: *better* / *worse* where the {level} interval of the "
            f"paired difference over seeds excludes 0, *not told apart* where it contains 0; with one seed "
            f"there is no interval and the words are only *higher* / *lower*.",
        )
    )
    blocks.append(("ul", verdict(summary, paired)))
    blocks.append(
        (
            "p",
            f"Tables below: mean over seeds of the per-seed statistic over that seed's evaluation packs "
            f"[{level} t interval over seeds]; a trained agent's seeds replicate training, a baseline's (the "
            f'same deterministic controller in every seed) only its packs; "one seed": no interval. Read from '
            f"{sources} metrics file{'s' if sources != 1 else ''}; every metric and column is in summary.csv and "
            f"paired.csv.",
        )
    )
    indexed = summary.set_index([*GROUP, "metric"])
    columns = [m for m in METRICS if m.in_table]
    scenarios = list(dict.fromkeys(summary["scenario"]))
    for (profile, scenario), part in summary.groupby(["profile", "scenario"], sort=False):
        if scenario != DEFAULT_SCENARIO and DEFAULT_SCENARIO in scenarios:
            continue  # shifted scenarios: the robustness section below
        blocks.append(("h2", f"Profile {_where(profile, scenario)}"))
        header = ["Policy", "Seeds"] + [m.header for m in columns]
        rows = []
        for policy in policy_order(part["policy"].unique()):
            row = [policy, _seeds(indexed.loc[(policy, profile, scenario, _VERDICT_METRIC.name), "n_seeds"])]
            for metric in columns:
                r = indexed.loc[(policy, profile, scenario, metric.name)]
                if not np.isfinite(r["mean"]) and metric.name in OCCURRENCE:
                    fraction, never = OCCURRENCE[metric.name]
                    row.append(never if indexed.loc[(policy, profile, scenario, fraction), "mean"] == 0 else "n/a")
                else:
                    row.append(_interval(r["mean"], r["ci_low"], r["ci_high"], metric.fmt))
            rows.append(row)
        blocks.append(("table", header, rows))

    agents_rows = paired[~paired["policy"].map(deterministic)] if paired is not None else None
    if agents_rows is not None and not agents_rows.empty:
        blocks.append(("h2", "Trained agents against the baselines (paired)"))
        blocks.append(
            (
                "p",
                f"Each agent ran on the same packs as each baseline. Each cell: mean over seeds of the per-seed "
                f"difference agent − baseline on that seed's packs [{level} t interval over seeds] and the same "
                f"as % of the baseline's mean. Capacity and share: higher is better; SoC variance, spread, "
                f"switching and shunt energy: lower is better. An interval that contains 0 does not tell the two "
                f"apart. paired.csv adds the probability of improvement, the ratio-of-sums share, every scenario "
                f"and the baselines against each other.",
            )
        )
        shown = (
            agents_rows[agents_rows["scenario"] == DEFAULT_SCENARIO] if DEFAULT_SCENARIO in scenarios else agents_rows
        )
        table = shown.set_index(["policy", "baseline", "profile", "scenario", "metric"])
        for baseline in [b for b in (*BASELINES, *REFERENCES) if b in set(shown["baseline"])]:
            part = shown[shown["baseline"] == baseline]
            blocks.append(("h3", f"Against `{baseline}`"))
            header = ["Agent", "Profile", "Seeds"] + [f"Δ {m.header}" for m in _REPORT_METRICS]
            if baseline in REFERENCES:
                blocks.append(
                    ("p", "On the reference's own packs only (the first of each seed: `n_episodes` in `paired.csv`).")
                )
            rows = []
            for (profile, scenario), group in part.groupby(["profile", "scenario"], sort=False):
                for policy in policy_order(group["policy"].unique()):
                    first = table.loc[(policy, baseline, profile, scenario, _VERDICT_METRIC.name)]
                    row = [policy, profile if scenario == DEFAULT_SCENARIO else f"{profile}, {scenario}"]
                    row.append(_seeds(first["n_seeds"]))
                    for metric in _REPORT_METRICS:
                        key = (policy, baseline, profile, scenario, metric.name)
                        r = table.loc[key] if key in table.index else None
                        if r is None or not np.isfinite(r["mean_diff"]):
                            row.append("n/a")
                            continue
                        text = _signed_interval(r["mean_diff"], r["ci_low"], r["ci_high"], metric.fmt)
                        if np.isfinite(r["pct_diff"]):
                            text += f" ({format(r['pct_diff'], '+.1f')} %)"
                        row.append(text)
                    rows.append(row)
            blocks.append(("table", header, rows))
        blocks.append(
            (
                "p",
                "The study's own headline figures (*Reinforcement learning for battery energy management: a new "
                "balancing approach for Li-ion battery packs*, Results in Engineering, 2024: best cases of its "
                "learned policies, without intervals) are checked against this run, each with its definition, "
                "bound and verdict, in `claims.md` (`bmsrl claims`, docs/claims.md).",
            )
        )

    shifted = [s for s in scenarios if s != DEFAULT_SCENARIO]
    if shifted:
        blocks.append(("h2", "Shifted scenarios (robustness)"))
        blocks.append(
            (
                "p",
                f"`{DEFAULT_SCENARIO}` is the training distribution; the shifted scenarios "
                + ", ".join(f"`{s}`" for s in shifted)
                + " (`evaluation.scenarios`) were seen by no agent in "
                f"training, nor by the baselines' tuning. Each cell: mean [{level} t interval over seeds] as "
                "above; `robustness.csv` holds these rows, `plots/robustness.pdf` draws them.",
            )
        )
        metrics = [METRIC[m] for m in ROBUSTNESS_METRICS]
        for profile in dict.fromkeys(summary["profile"]):
            blocks.append(("h3", f"Profile `{profile}`"))
            header = ["Policy", "Scenario", "Seeds"] + [m.header for m in metrics]
            rows = []
            for policy in policy_order(summary["policy"].unique()):
                for scenario in scenarios:
                    if (policy, profile, scenario, metrics[0].name) not in indexed.index:
                        continue
                    row = [
                        policy,
                        scenario,
                        _seeds(indexed.loc[(policy, profile, scenario, metrics[0].name), "n_seeds"]),
                    ]
                    for metric in metrics:
                        r = indexed.loc[(policy, profile, scenario, metric.name)]
                        row.append(_interval(r["mean"], r["ci_low"], r["ci_high"], metric.fmt))
                    rows.append(row)
            blocks.append(("table", header, rows))

    first = summary[summary["metric"] == _VERDICT_METRIC.name]
    per_seed = sorted({f"{e / s:g}" for e, s in zip(first["n_episodes"], first["n_seeds"]) if s > 0})
    counts = sorted({int(n) for n in first["n_seeds"]})
    method = (
        f"Statistics: {' to '.join(map(str, sorted({counts[0], counts[-1]})))} seed"
        f"{'s' if counts[-1] > 1 else ''} per policy and profile; evaluation packs per seed: "
        f"{', '.join(per_seed)}. {level} interval = Student-t over the per-seed statistics (mean ± "
        f"t·s/√n, n seeds). Shares: `recovered_share` is the mean of the per-pack shares; the ratio-of-sums "
        f"share is Σ(C − C_nb) / Σ(C_bound − C_nb) over a seed's packs; the gap to the bound is C_bound − C "
        f"[mAh]; all three over the packs with a share. Performance profiles (fraction of packs with share "
        f"≥ τ) are in `profiles.csv` and `plots/profiles.pdf`."
    )
    if (first["n_seeds"] == 1).any():
        method += (
            " Where there is a single seed the spread over seeds cannot be estimated: no interval is "
            'given ("one seed"), and the value is not a measure of training variance.'
        )
    blocks.append(("p", method))
    return blocks


def render_markdown(summary: pd.DataFrame, **kwargs) -> str:
    """The ``summary.md`` report of a :func:`summarise` result (and :func:`paired_statistics`); ``kwargs``:
    those of :func:`report_blocks`."""
    lines: list[str] = []
    for block in report_blocks(summary, **kwargs):
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines.append("#" * int(kind[1]) + " " + block[1])
        elif kind == "strong":
            lines.append(f"**{block[1]}**")
        elif kind == "p":
            lines.append(block[1])
        elif kind == "ul":
            lines += block[1]
        else:
            lines += _md_table(block[1], block[2])
        lines.append("")
    return "\n".join(lines)


def _inline_html(text: str) -> str:
    """Markdown's inline code and emphasis of the report's text as HTML (the text escaped first)."""
    import html
    import re

    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)


def render_html(summary: pd.DataFrame, **kwargs) -> str:
    """The same report as a self-contained HTML page (tables as tables), for the Snakemake report."""
    body = []
    for block in report_blocks(summary, **kwargs):
        kind = block[0]
        if kind == "strong":
            body.append(f"<p><strong>{_inline_html(block[1])}</strong></p>")
        elif kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline_html(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(block[1])}</p>")
        elif kind == "ul":
            items, depth = [], 0
            for line in block[1]:
                nested = line.startswith("  - ")
                if nested and depth == 0:
                    items.append("<ul>")
                elif not nested and depth == 1:
                    items.append("</ul></li>" if items else "")
                elif not nested and items:
                    items.append("</li>")
                depth = 1 if nested else 0
                items.append(f"<li>{_inline_html(line.lstrip(' -'))}" + ("</li>" if nested else ""))
            items.append("</ul></li>" if depth else "</li>")
            body.append("<ul>" + "".join(items) + "</ul>")
        else:
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>" for row in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    style = (
        "body{font-family:sans-serif;font-size:14px;max-width:1200px}table{border-collapse:collapse;margin:0.5em 0}"
        "th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}th:first-child,td:first-child{text-align:left}"
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Evaluation summary</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


# --------------------------------------------------------------------------------------------
# Stage


def aggregate(
    metrics_paths: Sequence[str | os.PathLike],
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    confidence: float = 0.95,
    out_paired: str | os.PathLike | None = None,
    out_robustness: str | os.PathLike | None = None,
    out_profiles: str | os.PathLike | None = None,
    out_html: str | os.PathLike | None = None,
    run_kind: str | None = None,
) -> pd.DataFrame:
    """Read the metrics files, summarise them, write ``summary.csv`` and ``summary.md`` (and, if
    given, ``paired.csv``, ``robustness.csv``, ``profiles.csv`` and the report as ``summary.html``)
    atomically; ``run_kind`` (:data:`bmsrl.results.RUN_KINDS`) opens the report."""
    if not 0.0 < confidence < 1.0:
        raise UserError(f"--confidence must lie in (0, 1), got {confidence:g}")
    outputs = {
        "--out-csv": out_csv,
        "--out-md": out_md,
        "--out-paired": out_paired,
        "--out-robustness": out_robustness,
        "--out-profiles": out_profiles,
        "--out-html": out_html,
    }
    outputs = {option: path for option, path in outputs.items() if path is not None}
    check_distinct({"input": list(metrics_paths)}, outputs)
    for option, path in outputs.items():
        check_output(path, option)
    frame = read_all_metrics(metrics_paths)
    summary = summarise(frame, confidence)
    paired = paired_statistics(frame, confidence)
    if run_kind is not None and run_kind not in RUN_KINDS:
        raise UserError(f"--run-kind: unknown kind {run_kind!r} (choose from {', '.join(RUN_KINDS)})")
    content = {"confidence": confidence, "sources": len(metrics_paths), "paired": paired, "run_kind": run_kind}
    report = render_markdown(summary, **content)
    robustness = robustness_table(summary)
    profiles = performance_profiles(frame, confidence) if out_profiles is not None else None
    with atomic_outputs(out_csv, out_md, out_paired, out_robustness, out_profiles, out_html) as (
        tmp_csv,
        tmp_md,
        tmp_paired,
        tmp_robust,
        tmp_profiles,
        tmp_html,
    ):
        summary.to_csv(tmp_csv, index=False, lineterminator="\n", float_format="%.10g")
        for table, tmp in ((paired, tmp_paired), (robustness, tmp_robust), (profiles, tmp_profiles)):
            if tmp is not None:
                table.to_csv(tmp, index=False, lineterminator="\n", float_format="%.10g")
        tmp_md.write_text(report, encoding="utf-8")
        if tmp_html is not None:
            tmp_html.write_text(render_html(summary, **content), encoding="utf-8")
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``bmsrl aggregate METRICS.csv ... --out-csv CSV --out-md MD``."""
    parser.add_argument(
        "metrics", nargs="+", type=Path, metavar="METRICS.csv", help="per-episode metrics files of the evaluate stage"
    )
    parser.add_argument("--out-csv", type=Path, required=True, metavar="CSV", help="long-format summary table to write")
    parser.add_argument("--out-md", type=Path, required=True, metavar="MD", help="Markdown report to write")
    parser.add_argument(
        "--out-paired", type=Path, metavar="CSV", help="paired comparisons against the baselines to write (paired.csv)"
    )
    parser.add_argument(
        "--out-robustness",
        type=Path,
        metavar="CSV",
        help="the summary rows of the robustness metrics, every scenario, to write",
    )
    parser.add_argument(
        "--out-profiles",
        type=Path,
        metavar="CSV",
        help="performance profiles (fraction of packs with share >= tau) to write (profiles.csv)",
    )
    parser.add_argument(
        "--out-html", type=Path, metavar="HTML", help="the report as an HTML page, tables as tables (summary.html)"
    )
    parser.add_argument(
        "--run-kind",
        choices=list(RUN_KINDS),
        help="what the run is (config key run_kind): its words open the report",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        default=0.95,
        help="confidence level of the t intervals over seeds (default %(default)s)",
    )


def main(args: argparse.Namespace) -> int:
    """Run the stage from parsed arguments; print a one-line summary; return 0."""
    summary = aggregate(
        args.metrics,
        args.out_csv,
        args.out_md,
        args.confidence,
        args.out_paired,
        args.out_robustness,
        args.out_profiles,
        args.out_html,
        args.run_kind,
    )
    groups = summary[["policy", "profile"]].drop_duplicates()
    print(
        f"aggregate: {len(args.metrics)} metrics file(s) -> {args.out_csv} and {args.out_md}: "
        f"{len(groups)} policy x profile group(s)"
    )
    return 0
