"""Claims stage (CLI verb ``bmsrl claims``): the paper's headline claims checked against a run.

    bmsrl claims METRICS.csv ... --config results/run/config.yaml --out-csv claims.csv --out-md claims.md

The paper, *Reinforcement learning for battery energy management: a new balancing approach for Li-ion
battery packs* (Results in Engineering, 2024), says in its abstract that TRPO, the best of the five
algorithms it compared, achieves "up to" a gain in pack capacity, a reduction of the SoC variance among
cells and a decrease in the number of switching operations. :data:`CLAIMS` holds these figures (the one
place they are written) with the definition this project reads them with; ``docs/claims.md`` explains each.

Input: the ``metrics.csv`` files of the evaluate stage (read with :func:`bmsrl.results.read_metrics`)
and the run's recorded config (``results/run/config.yaml``, rule ``record``), which says the setting
(the study's or the BMS default) and which controller is the study's hand-set rule. Only the rows of
:data:`CLAIMS_PROFILE` and the default scenario are used.

Per claim the table gives: the paper's figure and its definition, the project's figure for the
paper's algorithm (TRPO; the best algorithm of the run on that claim's metric when TRPO was not
evaluated), as the mean over training seeds of per-seed means over packs, with a 95 % Student-t
interval over those seed means, and the best pack; the bound or ceiling of the metric in this setting;
and a verdict by :func:`percent_verdict` / :func:`ranking_verdict`:

* **not comparable**: what the claim needs is missing (the policy, its reference, the profile), or
  the setting cannot reach the figure at all (capacity: no pack's recoverable-capacity bound allows
  the paper's gain, so no passive policy could show it);
* **reproduced**: a percentage claim, a best case ("up to"), is reproduced when the project's best
  pack reaches the paper's figure (a gain at least as large, a reduction at least as deep); the
  ranking claim when TRPO has the highest mean return of the algorithms evaluated;
* **not reproduced**: otherwise.

The reason says whether the mean (not just the best pack) also reaches the figure and whether the
seeds' intervals separate the ranking.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bmsrl import algos
from bmsrl.baselines import BASELINES
from bmsrl.config import add_config_arguments, config_from_args
from bmsrl.errors import UserError
from bmsrl.io import atomic_outputs, check_distinct, check_output
from bmsrl.results import DEFAULT_SCENARIO, read_metrics
from bmsrl.stats import t_interval

#: the profile the claims are read on: the test profile, on which balancing shows in the usable capacity
#: (on the discharge-first training profile no policy can change it; docs/model.md, "Load profiles")
CLAIMS_PROFILE = "charge-rest-discharge"
#: the algorithm the paper found best, whose figures the percentage claims are
PAPER_ALGORITHM = "trpo"
#: the policy every policy is compared with for capacity and SoC variance
NO_BALANCING = "no_balancing"
#: what the study's hand-set rule is called in a run, by ``baselines.tuned``: tuned, the hand-set copy
#: of rule_based is its own row; untuned, rule_based itself runs the hand-set values
_HAND_SET = {True: next(n for n, spec in BASELINES.items() if spec.settings_of == "rule_based"), False: "rule_based"}
#: the interval's confidence level
CONFIDENCE = 0.95

REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE = "reproduced", "not reproduced", "not comparable"

#: Columns of claims.csv.
CLAIMS_COLUMNS: tuple[str, ...] = (
    "claim",
    "paper_figure",
    "unit",
    "paper_definition",
    "policy",
    "reference",
    "metric",
    "project_mean",
    "project_ci_low",
    "project_ci_high",
    "project_best",
    "n_seeds",
    "n_packs",
    "ceiling",
    "ceiling_mean",
    "ceiling_best",
    "verdict",
    "reason",
)


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims and the definition this project checks it with."""

    name: str
    what: str  #: what the figure is about (the title adds the figure)
    metric: str  #: the metrics.csv column it is about
    #: the paper's figure [%] (a signed change against ``reference``), None for the ranking claim
    paper_pct: float | None
    #: "no_balancing", "hand_set_rule" (the study's untuned rule) or "algorithms" (the ranking)
    reference: str
    definition: str  #: what the paper's figure is, as this project reads it

    @property
    def title(self) -> str:
        return self.what if self.paper_pct is None else f"{self.paper_pct:+.1f} % {self.what}"

    @property
    def higher_is_better(self) -> bool:
        """A gain claim (capacity, return) rather than a reduction (variance, switching)."""
        return self.paper_pct is None or self.paper_pct > 0


#: The paper's claims (abstract), the only place their figures are written.
CLAIMS: tuple[Claim, ...] = (
    Claim(
        "capacity",
        "pack capacity",
        "usable_capacity_mah",
        +16.8,
        "no_balancing",
        "best case ('up to') of TRPO: per-pack usable capacity against no balancing on the same pack, "
        "100 (C - C_nb) / C_nb",
    ),
    Claim(
        "soc_variance",
        "SoC variance",
        "mean_soc_var",
        -69.4,
        "no_balancing",
        "best case ('up to') of TRPO: per-pack time-averaged SoC variance against no balancing on the "
        "same pack, 100 (V - V_nb) / V_nb",
    ),
    Claim(
        "switching",
        "switching operations",
        "switch_changes",
        -40.4,
        "hand_set_rule",
        "best case ('up to') of TRPO: per-pack switch changes against the study's hand-set threshold "
        "rule on the same pack, 100 (S - S_rule) / S_rule",
    ),
    Claim(
        "trpo_best",
        "TRPO best of the five algorithms",
        "total_reward",
        None,
        "algorithms",
        "TRPO has the highest mean evaluation return of the algorithms (the objective they were "
        "trained for: the run's reward)",
    ),
)
CLAIM = {c.name: c for c in CLAIMS}


# --------------------------------------------------------------------------------------------
# The run's setting


def hand_set_rule(cfg: dict) -> str:
    """The policy that runs the study's hand-set threshold rule in a run with config ``cfg``."""
    return _HAND_SET[bool(cfg["baselines"]["tuned"])]


def describe_setting(cfg: dict) -> str:
    """One line naming the setting (the study's, the BMS default, or mixed) with the keys that decide it."""
    env, reward = cfg["env"], cfg["reward"]
    keys = (env["cutoff"], env["charging"], reward["kind"])
    name = {
        ("soc", "cc", "study"): "the study's setting",
        ("soc_and_voltage", "cc_cv", "capacity"): "the BMS default setting",
    }.get(keys, "a mixed setting")
    rule = cfg["baselines"]["rule_based"]
    return (
        f"Setting: {name} (env.cutoff {env['cutoff']}, env.charging {env['charging']}, reward.kind "
        f"{reward['kind']}); hand-set rule `{hand_set_rule(cfg)}` at threshold {100 * rule['threshold']:g} %, "
        f"hysteresis {100 * rule['hysteresis']:g} %; algorithms {', '.join(cfg['algos'])}; "
        f"seeds {', '.join(map(str, cfg['seeds']))}."
    )


# --------------------------------------------------------------------------------------------
# Statistics


def _rows(frame: pd.DataFrame, policy: str) -> pd.DataFrame:
    return frame[frame["policy"] == policy]


def paired_pct(frame: pd.DataFrame, policy: str, reference: str, metric: str) -> pd.DataFrame:
    """Per pack (seed, episode) both evaluated: ``pct`` = 100 (x - x_ref) / |x_ref| of ``metric``
    (NaN where x_ref is 0). Refuses packs whose evaluation seeds differ (not the same pack)."""
    cols = ["seed", "episode", "eval_seed", metric]
    merged = _rows(frame, policy)[cols].merge(
        _rows(frame, reference)[cols], on=["seed", "episode"], suffixes=("", "_ref"), validate="one_to_one"
    )
    wrong = merged[merged["eval_seed"] != merged["eval_seed_ref"]]
    if not wrong.empty:
        r = wrong.iloc[0]
        raise UserError(
            f"{policy} and {reference}: episode {r['episode']} of seed {r['seed']} ran on evaluation "
            f"seeds {r['eval_seed']} and {r['eval_seed_ref']}; a claim compares the same packs"
        )
    ref = merged[f"{metric}_ref"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(ref != 0.0, 100.0 * (merged[metric].to_numpy(dtype=np.float64) - ref) / np.abs(ref), np.nan)
    return pd.DataFrame({"seed": merged["seed"], "episode": merged["episode"], "pct": pct})


@dataclass(frozen=True)
class Figure:
    """A per-pack quantity summarised: mean [CI] over seeds of per-seed means, best pack, counts."""

    mean: float
    low: float
    high: float
    best: float
    n_seeds: int
    n_packs: int
    n_undefined: int = 0  #: packs where the quantity is undefined (a reference of 0)


def summarise_packs(packs: pd.DataFrame, column: str, higher_is_better: bool) -> Figure:
    """:class:`Figure` of ``packs[column]`` (rows: seed, episode); best = max (gain) or min (reduction)."""
    finite = packs[np.isfinite(packs[column].to_numpy(dtype=np.float64))]
    seed_means = finite.groupby("seed")[column].mean()
    mean, low, high = t_interval(seed_means.to_numpy(), CONFIDENCE)
    values = finite[column].to_numpy(dtype=np.float64)
    best = (values.max() if higher_is_better else values.min()) if values.size else math.nan
    return Figure(mean, low, high, float(best), int(seed_means.size), int(values.size), len(packs) - len(finite))


def reaches(value: float, target: float, higher_is_better: bool) -> bool:
    """``value`` is at least as good as ``target`` (a gain as large, a reduction as deep)."""
    return bool(np.isfinite(value) and (value >= target if higher_is_better else value <= target))


# --------------------------------------------------------------------------------------------
# Verdicts


def percent_verdict(
    claim: Claim, figure: Figure | None, ceiling_best: float | None = None, missing: str | None = None
) -> tuple[str, str]:
    """(verdict, reason) of a percentage claim, a best case:

    * not comparable: ``missing`` says what is missing, no pack gave a finite value, or the metric's
      ceiling in this setting (``ceiling_best``, the best pack of a bound) does not reach the figure;
    * reproduced: the best pack reaches the paper's figure;
    * not reproduced: otherwise.
    """
    paper = claim.paper_pct
    if missing:
        return NOT_COMPARABLE, missing
    if figure is None or figure.n_packs == 0:
        return NOT_COMPARABLE, "no pack with a defined value"
    up = claim.higher_is_better
    if ceiling_best is not None and not reaches(ceiling_best, paper, up):
        return NOT_COMPARABLE, (
            f"no pack of this setting allows {paper:+.1f} %: the bound's best pack gives "
            f"{ceiling_best:+.1f} %, so no passive policy could show the figure here"
        )
    mean_text = f"mean {figure.mean:+.1f} %"
    if not reaches(figure.best, paper, up):
        return NOT_REPRODUCED, (
            f"best pack {figure.best:+.1f} % does not reach the paper's best case "
            f"{paper:+.1f} % ({mean_text}, {figure.n_packs} packs)"
        )
    if reaches(figure.mean, paper, up):
        beyond = "exceeds" if figure.mean != paper else "equals"
        extra = f"; the {mean_text} {beyond} it too"
        if np.isfinite(figure.low):
            side = figure.low if up else figure.high
            extra += (
                ", interval included"
                if reaches(side, paper, up)
                else f", but the interval [{figure.low:+.1f}, {figure.high:+.1f}] % contains it"
            )
    else:
        extra = f"; the {mean_text} falls short of it (the paper's figure is a best case)"
    return REPRODUCED, f"best pack {figure.best:+.1f} % reaches the paper's best case {paper:+.1f} %{extra}"


def ranking_verdict(
    returns: dict[str, tuple[float, float, float]], paper_best: str = PAPER_ALGORITHM
) -> tuple[str, str]:
    """(verdict, reason) of "``paper_best`` is the best algorithm" from ``{algo: (mean, low, high)}`` of the
    evaluation return: not comparable without ``paper_best`` or with fewer than 2 algorithms; reproduced
    when ``paper_best`` has the highest mean; the reason says whether the intervals separate the top two."""
    finite = {a: v for a, v in returns.items() if np.isfinite(v[0])}
    if paper_best not in finite:
        return NOT_COMPARABLE, f"{paper_best} was not evaluated in this run"
    if len(finite) < 2:
        return NOT_COMPARABLE, f"only {paper_best} was evaluated; nothing to rank it against"
    order = sorted(finite, key=lambda a: finite[a][0], reverse=True)
    first, second = order[0], order[1]
    separated = (
        np.isfinite(finite[first][1]) and np.isfinite(finite[second][2]) and finite[first][1] > finite[second][2]
    )
    sep = (
        "the intervals separate it from the next"
        if separated
        else "the intervals over seeds do not separate it from the next"
    )
    ranking = ", ".join(f"{a} {finite[a][0]:.4g}" for a in order)
    if first == paper_best:
        return REPRODUCED, f"{paper_best} has the highest mean return ({ranking}); {sep}"
    rank = order.index(paper_best) + 1
    return (
        NOT_REPRODUCED,
        f"{first} has the highest mean return, {paper_best} ranks {rank} of {len(order)} ({ranking}); {sep}",
    )


# --------------------------------------------------------------------------------------------
# The table


def _claim_policy(
    frame: pd.DataFrame, present_algos: list[str], claim: Claim, reference: str
) -> tuple[str | None, str]:
    """The policy a claim is read for: the paper's algorithm if evaluated, else the algorithm with the best
    mean on the claim's metric (and a note saying so)."""
    if PAPER_ALGORITHM in present_algos:
        return PAPER_ALGORITHM, ""
    best, best_mean = None, math.nan
    for algo in present_algos:
        fig = summarise_packs(paired_pct(frame, algo, reference, claim.metric), "pct", claim.higher_is_better)
        if np.isfinite(fig.mean) and (best is None or reaches(fig.mean, best_mean, claim.higher_is_better)):
            best, best_mean = algo, fig.mean
    if best is None:
        return None, ""
    return best, f"{PAPER_ALGORITHM} was not evaluated: the run's best algorithm on this metric, {best}, stands in; "


def _row(claim: Claim, **values) -> dict:
    row = {c: math.nan for c in CLAIMS_COLUMNS}
    row.update(
        claim=claim.name,
        paper_figure=claim.paper_pct if claim.paper_pct is not None else math.nan,
        unit="%" if claim.paper_pct is not None else "-",
        paper_definition=claim.definition,
        metric=claim.metric,
        policy="",
        reference="",
        ceiling="",
    )
    row.update(values)
    return row


def _figure_values(fig: Figure | None) -> dict:
    if fig is None:
        return {}
    return dict(
        project_mean=fig.mean,
        project_ci_low=fig.low,
        project_ci_high=fig.high,
        project_best=fig.best,
        n_seeds=fig.n_seeds,
        n_packs=fig.n_packs,
    )


def claims_table(frame: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """One row per claim of :data:`CLAIMS` (columns :data:`CLAIMS_COLUMNS`) from concatenated metrics rows
    (only those of :data:`CLAIMS_PROFILE`, default scenario, are read) and the run's config ``cfg``."""
    frame = frame[(frame["profile"] == CLAIMS_PROFILE) & (frame["scenario"] == DEFAULT_SCENARIO)]
    present = set(frame["policy"])
    present_algos = [a for a in algos.ALGOS if a in present]
    rule = hand_set_rule(cfg)
    references = {"no_balancing": NO_BALANCING, "hand_set_rule": rule}
    no_rows = f"no metrics rows of profile {CLAIMS_PROFILE!r}, scenario {DEFAULT_SCENARIO!r}" if frame.empty else None
    rows = []
    for claim in CLAIMS:
        if claim.paper_pct is None:
            rows.append(_ranking_row(claim, frame, present_algos, no_rows))
            continue
        reference = references[claim.reference]
        if no_rows:
            missing = no_rows
        elif reference not in present:
            missing = f"the reference {reference} was not evaluated"
        elif not present_algos:
            missing = "no algorithm was evaluated"
        else:
            missing = None
        if missing:
            verdict, reason = percent_verdict(claim, None, missing=missing)
            rows.append(_row(claim, reference=reference, verdict=verdict, reason=reason))
            continue
        policy, note = _claim_policy(frame, present_algos, claim, reference)
        packs = paired_pct(frame, policy, reference, claim.metric) if policy else None
        fig = summarise_packs(packs, "pct", claim.higher_is_better) if packs is not None else None
        ceiling, ceil_mean, ceil_best, ceil_arg, extra = _ceiling(claim, frame, policy, reference, present)
        verdict, reason = percent_verdict(
            claim, fig, ceil_arg, missing=None if policy else "no algorithm has a defined value"
        )
        if packs is not None and fig.n_packs:
            reached = int(sum(reaches(v, claim.paper_pct, claim.higher_is_better) for v in packs["pct"]))
            extra += f"; {reached} of {fig.n_packs} packs of {policy} reach {claim.paper_pct:+.1f} %"
        if fig is not None and fig.n_undefined:
            extra += f"; {fig.n_undefined} packs left out where {reference} has 0"
        rows.append(
            _row(
                claim,
                policy=policy or "",
                reference=reference,
                **_figure_values(fig),
                ceiling=ceiling,
                ceiling_mean=ceil_mean,
                ceiling_best=ceil_best,
                verdict=verdict,
                reason=note + reason + extra,
            )
        )
    return pd.DataFrame(rows, columns=list(CLAIMS_COLUMNS))


def _ceiling(
    claim: Claim, frame: pd.DataFrame, policy: str | None, reference: str, present: set[str]
) -> tuple[str, float, float, float | None, str]:
    """(what the ceiling is, its mean, its best pack, the best pack the verdict must check or None, a note)."""
    if claim.name == "capacity":
        rows = _rows(frame, policy or reference)
        nb = rows["no_balancing_capacity_mah"].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(nb > 0, 100.0 * (rows["capacity_bound_mah"].to_numpy(dtype=np.float64) - nb) / nb, np.nan)
        packs = pd.DataFrame({"seed": rows["seed"].to_numpy(), "gain": gain})
        fig = summarise_packs(packs, "gain", True)
        allow = int(np.sum(gain[np.isfinite(gain)] >= claim.paper_pct))
        note = f"; {allow} of {fig.n_packs} packs' bounds allow {claim.paper_pct:+.1f} %"
        return (
            "recoverable-capacity bound's gain over no balancing, 100 (C_bound - C_nb) / C_nb",
            fig.mean,
            fig.best,
            fig.best,
            note,
        )
    if claim.name == "switching":
        return (
            "-100 % (no switching at all, as no_balancing): no tighter bound; the figure depends on the "
            "reference's threshold",
            math.nan,
            -100.0,
            None,
            "",
        )
    # SoC variance: no bound exists; the best evaluated policy by mean is the empirical ceiling
    best, best_fig = None, None
    for other in sorted(present - {reference}):
        fig = summarise_packs(paired_pct(frame, other, reference, claim.metric), "pct", claim.higher_is_better)
        if np.isfinite(fig.mean) and (best_fig is None or reaches(fig.mean, best_fig.mean, claim.higher_is_better)):
            best, best_fig = other, fig
    if best_fig is None:
        return "no bound; no other policy evaluated", math.nan, math.nan, None, ""
    return (
        f"no bound; the best evaluated policy by mean, {best} (empirical, not a bound)",
        best_fig.mean,
        best_fig.best,
        None,
        "",
    )


def _ranking_row(claim: Claim, frame: pd.DataFrame, present_algos: list[str], missing: str | None) -> dict:
    if missing:
        return _row(claim, verdict=NOT_COMPARABLE, reason=missing)
    returns = {}
    for algo in present_algos:
        seed_means = _rows(frame, algo).groupby("seed")[claim.metric].mean()
        returns[algo] = t_interval(seed_means.to_numpy(), CONFIDENCE)
    verdict, reason = ranking_verdict(returns)
    values = {}
    if PAPER_ALGORITHM in returns:
        mean, low, high = returns[PAPER_ALGORITHM]
        rows = _rows(frame, PAPER_ALGORITHM)
        values = dict(
            project_mean=mean,
            project_ci_low=low,
            project_ci_high=high,
            project_best=float(rows[claim.metric].max()),
            n_seeds=int(rows["seed"].nunique()),
            n_packs=len(rows),
        )
    finite = {a: v for a, v in returns.items() if np.isfinite(v[0])}
    ceiling, c_mean = "", math.nan
    if finite:
        top = max(finite, key=lambda a: finite[a][0])
        ceiling, c_mean = f"best algorithm by mean return: {top}", finite[top][0]
    return _row(
        claim,
        policy=PAPER_ALGORITHM if PAPER_ALGORITHM in returns else "",
        reference=", ".join(a for a in present_algos if a != PAPER_ALGORITHM),
        ceiling=ceiling,
        ceiling_mean=c_mean,
        verdict=verdict,
        reason=reason,
        **values,
    )


# --------------------------------------------------------------------------------------------
# Markdown


def _num(value: float, spec: str = "+.1f") -> str:
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


def render_markdown(table: pd.DataFrame, setting: str) -> str:
    """``claims.md``: the setting, how to read the table, one row per claim."""
    level = f"{100 * CONFIDENCE:g} %"
    lines = [
        "# The paper's claims checked",
        "",
        setting,
        "",
        f"Project figure: the policy's per-pack change against the reference on profile `{CLAIMS_PROFILE}`, "
        f"scenario `{DEFAULT_SCENARIO}`: mean over training seeds of per-seed means [{level} Student-t "
        f"interval over seeds; n/a with one seed], and the best pack. The paper's percentages are best "
        f"cases ('up to'): a claim is reproduced when the best pack reaches the figure. Definitions and "
        f"verdict rules: docs/claims.md.",
        "",
    ]
    header = [
        "Claim",
        "Paper (definition)",
        "Policy vs reference",
        f"Project: mean [{level} CI]; best pack",
        "Bound or ceiling: mean; best pack",
        "Verdict",
        "Reason",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in table.itertuples(index=False):
        claim = CLAIM[r.claim]
        if claim.paper_pct is not None:
            spec, unit = "+.1f", " %"
            paper = f"{claim.paper_pct:+.1f} % ({r.paper_definition})"
        else:
            spec, unit = ".4g", ""
            paper = r.paper_definition
        project = (
            f"{_num(r.project_mean, spec)}{unit} [{_num(r.project_ci_low, spec)}, {_num(r.project_ci_high, spec)}]"
            f"; {_num(r.project_best, spec)}{unit}"
            if np.isfinite(r.project_mean)
            else "n/a"
        )
        if np.isfinite(r.project_mean):
            project += f" ({int(r.n_seeds)} seeds, {int(r.n_packs)} packs)"
        ceiling = f"{r.ceiling}: {_num(r.ceiling_mean, spec)}; {_num(r.ceiling_best, spec)}" if r.ceiling else "n/a"
        who = f"`{r.policy}` vs {r.reference}" if r.policy else (f"vs {r.reference}" if r.reference else "n/a")
        cells = [claim.title, paper, who, project, ceiling, f"**{r.verdict}**", r.reason]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Stage


def read_claims_metrics(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Every metrics file concatenated; refuses an episode given twice."""
    if not paths:
        raise UserError("no metrics files given")
    frame = pd.concat([read_metrics(p) for p in paths], ignore_index=True)
    keys = ["policy", "profile", "scenario", "seed", "episode"]
    dup = frame[frame.duplicated(keys, keep=False)]
    if not dup.empty:
        r = dup.iloc[0]
        raise UserError(
            f"metrics file {r['source']}: episode {r['episode']} of policy {r['policy']!r}, profile "
            f"{r['profile']!r}, scenario {r['scenario']!r}, seed {r['seed']} appears twice"
        )
    return frame


def claims(
    metrics_paths: Sequence[str | os.PathLike], cfg: dict, out_csv: str | os.PathLike, out_md: str | os.PathLike
) -> pd.DataFrame:
    """Read the metrics, build the claims table, write ``claims.csv`` and ``claims.md`` atomically."""
    check_distinct({"input": list(metrics_paths)}, {"--out-csv": out_csv, "--out-md": out_md})
    check_output(out_csv, "--out-csv")
    check_output(out_md, "--out-md")
    table = claims_table(read_claims_metrics(metrics_paths), cfg)
    with atomic_outputs(out_csv, out_md) as (tmp_csv, tmp_md):
        table.to_csv(tmp_csv, index=False, lineterminator="\n", float_format="%.6g")
        tmp_md.write_text(render_markdown(table, describe_setting(cfg)), encoding="utf-8")
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``bmsrl claims METRICS.csv ... --config RUN_CONFIG --out-csv CSV --out-md MD``."""
    parser.add_argument(
        "metrics",
        nargs="+",
        type=Path,
        metavar="METRICS.csv",
        help="per-episode metrics files of the evaluate stage (every policy and seed)",
    )
    add_config_arguments(parser)  # required: the run's config (rule record), see main
    parser.add_argument("--out-csv", type=Path, required=True, metavar="CSV", help="claims table to write")
    parser.add_argument("--out-md", type=Path, required=True, metavar="MD", help="Markdown claims table to write")


def main(args: argparse.Namespace) -> int:
    """Run the stage; print one line per claim; return 0."""
    if args.config is None and args.config_json is None:  # the defaults would name the wrong setting
        raise UserError(
            "give the run's recorded config, --config results/run/config.yaml: the table's setting "
            "and the hand-set rule are read from it"
        )
    cfg = config_from_args(args)
    table = claims(args.metrics, cfg, args.out_csv, args.out_md)
    for r in table.itertuples(index=False):
        print(f"claims: {r.claim}: {r.verdict}")
    return 0
