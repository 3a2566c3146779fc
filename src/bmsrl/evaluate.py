"""Evaluate one policy on one load profile and scenario: deterministic episodes, traces and metrics.

    bmsrl evaluate --config config/config.yaml --policy ppo --profile charge-rest-discharge --seed 1 \\
        --scenario default --model results/checkpoints/ppo_seed1/best_model.zip \\
        --out results/eval/ppo/charge-rest-discharge/default/seed1

``--policy`` is a trained algorithm (with ``--model``) or a baseline (``no_balancing``,
``rule_based``, ``top_balancing``, ``rule_based_untuned``; a tuned baseline takes its threshold and
hysteresis from ``--baseline-settings results/baselines/NAME.yaml``, else from the config).
``--scenario`` names an entry of ``evaluation.scenarios`` whose env overrides apply (``default``:
none). Episode ``e`` starts from the pack drawn with evaluation seed
``evaluation.seed_offset + 1000 * seed + e``: the same packs for every policy of a seed, and
disjoint from the training and tuning seeds. Writes ``traces.csv`` (one row per 30 s decision, row 0 the reset
state) and ``metrics.csv`` (one row per episode), whose columns :mod:`bmsrl.results` declares and
``docs/model.md`` defines; with ``--animation FILE.gif``, also episode 0 as an animation
(:func:`bmsrl.render.write_episode_animation`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from bmsrl import bound
from bmsrl.agents import load_policy
from bmsrl.baselines import BASELINES, setting_names
from bmsrl.config import add_config_arguments, config_from_args, scenario_config, seed_argument
from bmsrl.env import BalancingTask, PassiveBalancingEnv, draw_initial_state, rng_for_seed
from bmsrl.errors import UserError
from bmsrl.io import atomic_outputs, check_output, check_outputs
from bmsrl.pack import CellTables
from bmsrl.policies import BEST_KNOWN, POLICIES, settings_policy
from bmsrl.profiles import PROFILES, LoadProfile, read_load_profile
from bmsrl.results import DEFAULT_SCENARIO, METRICS_COLUMNS, read_baseline_settings, trace_columns
from bmsrl.rollout import rollout
from bmsrl.seeds import episode_seeds
from bmsrl.task_config import resolve_ocv_table, task_kwargs

#: SoC standard deviation [-] below which the pack counts as balanced (0.5 %; docs/model.md)
BALANCED_STD = 0.005
#: SoC spread max - min [%] that the pack must stay below for time_to_spread_1pct_s (docs/model.md)
SETTLED_SPREAD_PCT = 1.0


def settle_time_s(time_s: np.ndarray, spread_pct: np.ndarray, limit_pct: float = SETTLED_SPREAD_PCT) -> float:
    """First time from which the spread stays below ``limit_pct`` to the end; NaN if it ends above.

    ``time_s[k]``, ``spread_pct[k]``: the state after decision k (k = 0 is the reset state).
    """
    above = np.flatnonzero(np.asarray(spread_pct) >= limit_pct)
    if above.size == 0:
        return float(time_s[0])
    if above[-1] == len(spread_pct) - 1:
        return math.nan
    return float(time_s[above[-1] + 1])


def episode_metrics(records: list[dict], terminated: bool) -> dict:
    """The per-episode metrics of one episode from its records (docs/model.md, "Metrics")."""
    soc = np.array([r["soc"] for r in records])  # (steps + 1, cells)
    var = soc.var(axis=1)
    std = soc.std(axis=1)
    spread_pct = 100.0 * (soc.max(axis=1) - soc.min(axis=1))
    balanced = np.flatnonzero(std < BALANCED_STD)
    final = records[-1]
    return {
        "usable_capacity_mah": 1000.0 * final["discharged_ah"],
        "charge_accepted_mah": 1000.0 * final["charged_ah"],
        "final_soc_var": float(var[-1]),
        "mean_soc_var": float(var[1:].mean()),  # time average over the decision intervals
        "final_soc_std_pct": 100.0 * float(std[-1]),
        "final_soc_spread_pct": float(spread_pct[-1]),
        "switch_changes": int(sum(r["switch_changes"] for r in records)),
        "shunt_energy_wh": float(np.sum(final["shunt_energy_wh"])),
        "time_to_balance_s": float(records[balanced[0]]["time_s"]) if balanced.size else np.nan,
        "time_to_spread_1pct_s": settle_time_s(np.array([r["time_s"] for r in records]), spread_pct),
        "invalid_actions": int(sum(r["invalid_action"] for r in records)),
        "episode_steps": len(records) - 1,
        "terminated": bool(terminated),
        "total_reward": float(sum(r["reward"] for r in records)),
    }


def capacity_context(task: BalancingTask, episodes: list[list[dict]]) -> list[dict]:
    """Per episode (its records), the recoverable-capacity bound and the capacity without balancing,
    from the same initial pack (:mod:`bmsrl.bound`, docs/bound.md, every episode's in one simulator
    call), and the share of the recoverable capacity the policy recovered."""
    setup = bound.PackSetup.of(task)
    soc = np.array([records[0]["soc"] for records in episodes])
    soh = np.array([records[0]["soh"] for records in episodes])
    bound_ah, none_ah = bound.capacities_ah(setup, soc, soh)
    reason = bound.validity(setup)  # outside the bound's domain of validity: no share (docs/bound.md)
    if reason is not None:
        _log_once(f"recovered_share left empty: {reason}")
    return [
        {
            "recovered_share": math.nan
            if reason is not None
            else bound.recovered_share(records[-1]["discharged_ah"], float(none), float(best)),
            "capacity_bound_mah": 1000.0 * float(best),
            "no_balancing_capacity_mah": 1000.0 * float(none),
        }
        for records, best, none in zip(episodes, bound_ah, none_ah)
    ]


_LOGGED: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _LOGGED:
        _LOGGED.add(message)
        print(message, flush=True)


def trace_rows(records: list[dict], labels: list, episode: int, shunt_resistance_ohm: float) -> list[list]:
    """Rows of traces.csv (:func:`bmsrl.results.trace_columns`) of one episode."""
    rows = []
    previous_cycle = records[0].get("cycle", 0)
    for step, r in enumerate(records):
        cycle = r.get("cycle", 0)  # env.cycles 1: no cycle in info
        if cycle > previous_cycle:  # the interval ended a cycle; the next starts at the following decision
            row_cycle, delivered_ah = previous_cycle, r["ended_cycle_discharged_ah"]
        else:
            row_cycle, delivered_ah = cycle, r["discharged_ah"]
        previous_cycle = cycle
        v = np.asarray(r["cell_voltage_v"])
        s = np.asarray(r["switches"])
        rows.append(
            [
                *labels,
                episode,
                step,
                r["time_s"],
                r["phase"],
                r["pack_current_a"],
                row_cycle,
                1000.0 * delivered_ah,
                *r["soc"],
                *v,
                *r["cell_current_a"],
                *s,
                *(s * v * v / shunt_resistance_ohm),
                r["reward"],
            ]
        )
    return rows


def evaluate(
    cfg: dict,
    policy_name: str,
    profile: str | LoadProfile,
    seed: int,
    model: Path | None,
    ocv_table: str | None,
    scenario: str = DEFAULT_SCENARIO,
    baseline_settings: dict | None = None,
    policy=None,
    tables: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics of the seed's evaluation episodes on ``scenario``, and the traces of the first
    ``evaluation.trace_episodes`` of them: :func:`evaluate_scenarios` of one scenario."""
    return evaluate_scenarios(
        cfg, policy_name, profile, seed, model, ocv_table, [scenario], baseline_settings, policy, tables
    )[scenario]


#: the env keys a scenario may change and still share a batch with others: they set the initial
#: states drawn at reset only, not the simulator, the rules or a controller
_INITIAL_STATE_KEYS = ("init_soc", "init_soh")


def evaluate_scenarios(
    cfg: dict,
    policy_name: str,
    profile: str | LoadProfile,
    seed: int,
    model: Path | None,
    ocv_table: str | None,
    scenarios: list[str],
    baseline_settings: dict | None = None,
    policy=None,
    tables: dict | None = None,
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Per scenario, the metrics of the seed's evaluation episodes and the traces of the first
    ``evaluation.trace_episodes`` of them. ``profile``: a built-in profile's name or a
    :class:`~bmsrl.profiles.LoadProfile` (a user's own, :func:`bmsrl.profiles.read_load_profile`).
    ``policy``: the loaded policy, when the caller evaluates one policy on several profiles and
    scenarios (else loaded here from ``policy_name``/``model``). ``best_known`` runs on the first
    ``evaluation.best_known_episodes`` packs only (the same packs as every other policy's first
    episodes), it costs about 2^n rollouts per decision. ``tables``: the job's cell tables read so
    far, by file and SoC window (one reading for all its profiles and scenarios; None: read here).

    Scenarios whose env differs only in the initial-state ranges (``init_soc``, ``init_soh``) run as
    one batch, one simulator call per decision for all their packs: the packs are independent, so
    each episode is the one its own scenario's batch would give."""
    batches: dict[str, list[str]] = {}
    for scenario in scenarios:
        env = {k: v for k, v in scenario_config(cfg, scenario)["env"].items() if k not in _INITIAL_STATE_KEYS}
        batches.setdefault(json.dumps(env, sort_keys=True, default=str), []).append(scenario)
    results = {}
    for batch in batches.values():
        results.update(
            _evaluate_batch(cfg, policy_name, profile, seed, model, ocv_table, batch, baseline_settings, policy, tables)
        )
    return {scenario: results[scenario] for scenario in scenarios}


def _evaluate_batch(cfg, policy_name, profile, seed, model, ocv_table, scenarios, baseline_settings, policy, tables):
    """:func:`evaluate_scenarios` of scenarios that share one batch (their env differs in the
    initial-state ranges at most)."""
    configs = {scenario: scenario_config(cfg, scenario) for scenario in scenarios}
    first = configs[scenarios[0]]
    if policy is None:  # a baseline reads the facts of the scenario's env (its chip's shunt limits)
        policy = load_policy(policy_name, model, first, baseline_settings)
    seeds = episode_seeds(first, seed)
    if policy_name == BEST_KNOWN:
        seeds = seeds[: first["evaluation"]["best_known_episodes"]]
    kwargs = task_kwargs(first, profile, ocv_table)
    if tables is not None:
        key = (
            kwargs["ocv_table"],
            kwargs["ecm_table"],
            tuple(first["env"]["soc_limits"]),
            kwargs["allow_implausible_tables"],
        )
        if key not in tables:
            tables[key] = CellTables.from_files(
                key[0], key[1], soc_window=first["env"]["soc_limits"], allow_implausible=key[3]
            )
        kwargs["tables"] = tables[key]
    n_cells = first["env"]["n_cells"]
    task = BalancingTask(n_packs=len(seeds) * len(scenarios), **kwargs)
    drawn = [  # as env.reset(seed=s) draws, from each scenario's ranges
        draw_initial_state(
            rng_for_seed(s),
            n_cells,
            tuple(float(x) for x in configs[scenario]["env"]["init_soc"]),
            tuple(float(x) for x in configs[scenario]["env"]["init_soh"]),
        )
        for scenario in scenarios
        for s in seeds
    ]
    task.reset_packs(np.arange(task.n_packs), np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn]))
    episodes = rollout(task, policy, records=True)  # every episode of the batch at once
    context = capacity_context(task, episodes.records)
    r_sh = first["env"]["shunt_resistance_ohm"]
    results = {}
    for index, scenario in enumerate(scenarios):
        labels = [policy_name, profile.name if isinstance(profile, LoadProfile) else profile, scenario, seed]
        metrics, rows = [], []
        for episode, eval_seed in enumerate(seeds):
            k = index * len(seeds) + episode  # the pack of this episode in the batch
            records = episodes.records[k]
            metrics.append(
                {
                    **dict(zip(("policy", "profile", "scenario", "seed"), labels)),
                    "episode": episode,
                    "eval_seed": eval_seed,
                    **episode_metrics(records, bool(episodes.terminated[k])),
                    **context[k],
                }
            )
            if episode < first["evaluation"]["trace_episodes"]:
                rows += trace_rows(records, labels, episode, r_sh)
        results[scenario] = (
            pd.DataFrame(rows, columns=trace_columns(n_cells)),
            pd.DataFrame(metrics, columns=METRICS_COLUMNS),
        )
    return results


# ----------------------------------------------------------------------------------------- CLI
#: placeholders of ``--out`` when a job evaluates several profiles or scenarios
OUT_FIELDS = ("profile", "scenario")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument(
        "--policy",
        required=True,
        help=f"one of {list(POLICIES)} ({BEST_KNOWN}: the model-based reference, slow, on the first "
        "evaluation.best_known_episodes packs: bmsrl.best_known)",
    )
    parser.add_argument(
        "--profile",
        required=True,
        nargs="+",
        metavar="NAME|FILE.csv",
        help=f"load profile(s) to evaluate on, the policy loaded once for all: of {list(PROFILES)}, or your own "
        "CSV of pack current against time (columns time_s [s] from 0, current_a [A] > 0 discharging, held until "
        "the next row's time; the last row ends it; docs/workflow.md; its name in --out is the file's stem)",
    )
    parser.add_argument(
        "--seed", required=True, type=seed_argument(), help="training seed (sets the evaluation packs; 0..999999)"
    )
    parser.add_argument(
        "--scenario",
        default=[DEFAULT_SCENARIO],
        nargs="+",
        help="evaluation scenario(s), keys of evaluation.scenarios (default %(default)s: no overrides)",
    )
    parser.add_argument("--model", type=Path, help="trained model (.zip) for an RL policy")
    parser.add_argument(
        "--baseline-settings",
        type=Path,
        metavar="YAML",
        help="tuned settings of a baseline (results/baselines/NAME.yaml of tune-baselines)",
    )
    parser.add_argument("--ocv-table", help="processed OCV table (default: the config's ocv_table)")
    parser.add_argument(
        "--out",
        required=True,
        help="output folder for traces.csv and metrics.csv; with several profiles or scenarios a "
        "template naming them, e.g. 'results/eval/dqn/{profile}/{scenario}/seed1'",
    )
    parser.add_argument(
        "--animation",
        type=Path,
        metavar="FILE",
        help="also write episode 0 as an animation (.gif; .mp4 needs ffmpeg on PATH; one profile and scenario)",
    )


def output_folders(template: str, profiles: list[str], scenarios: list[str]) -> dict[tuple[str, str], Path]:
    """The output folder of every profile x scenario from ``--out``: a template with ``{profile}`` and
    ``{scenario}``, which it must name where more than one is given, so no two write to one place."""
    for name, values in (("profile", profiles), ("scenario", scenarios)):
        if len(set(values)) != len(values):
            raise UserError(f"--{name} names a {name} twice: {values}")
        if len(values) > 1 and "{" + name + "}" not in template:
            raise UserError(f"--out {template!r}: with several {name}s it must contain {{{name}}}")
    try:
        return {(p, s): Path(template.format(profile=p, scenario=s)) for p in profiles for s in scenarios}
    except (KeyError, IndexError, ValueError) as exc:
        raise UserError(f"--out {template!r}: only {{profile}} and {{scenario}} may be named ({exc})") from None


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if len(set(args.profile)) != len(args.profile):
        raise UserError(f"--profile names a profile twice: {args.profile}")
    profiles = {}  # the name in --out and the tables -> a built-in profile's name or a user's LoadProfile
    for profile in args.profile:
        if profile not in PROFILES and (profile.lower().endswith(".csv") or Path(profile).exists()):
            if not Path(profile).is_file():
                raise UserError(f"load profile {profile}: file not found")
            loaded = read_load_profile(
                profile, cfg["env"]["capacity_ah"], allow_implausible=bool(cfg.get("allow_implausible_tables"))
            )
            profiles[loaded.name] = loaded
        else:
            profiles[profile] = profile
    if len(profiles) != len(args.profile):  # two files of one stem: one name in --out and the tables
        raise UserError(
            f"--profile {args.profile}: two profiles share a name ({', '.join(profiles)} from the file stems)"
        )
    outs = output_folders(args.out, list(profiles), args.scenario)
    for out in outs.values():
        check_output(out, "--out", folder=True)
    if args.animation is not None:  # refuse a bad file name before the episodes run
        if len(outs) > 1:
            raise UserError("--animation draws one episode: give one --profile and one --scenario")
        from bmsrl.render import check_animation_path

        check_animation_path(args.animation)
        [out] = outs.values()
        check_outputs(
            {
                "--animation": args.animation,
                "--out (traces.csv)": out / "traces.csv",
                "--out (metrics.csv)": out / "metrics.csv",
            },
            {"--model": args.model, "--baseline-settings": args.baseline_settings},
        )
    settings = None
    name = settings_policy(args.policy)  # best_known: its base's settings
    if args.baseline_settings is not None:
        if args.policy not in (*BASELINES, BEST_KNOWN):
            raise UserError(f"policy {args.policy!r} is a trained algorithm; baseline settings do not apply")
        settings = read_baseline_settings(args.baseline_settings, name, setting_names(name))
    elif name in BASELINES and BASELINES[name].tunable and cfg["baselines"]["tuned"]:
        raise UserError(
            f"baselines.tuned is true: give --baseline-settings results/baselines/{name}.yaml (the tuned "
            f"settings of {name}, `snakemake tune_baselines`), or set baselines.tuned: false to run the "
            f"configured baselines.{name}; without either, the hand-set rule would run under the tuned rule's name"
        )
    for scenario in args.scenario:  # every scenario's env (and its rules) checked before any episode
        scenario_config(cfg, scenario)
    ocv_table = resolve_ocv_table(args.ocv_table, cfg)
    # an agent once (its load is most of a job's time); a controller per scenario, from that scenario's
    # env, as a BMS's controller is configured for its chip (e.g. a shunt limit a scenario lifts)
    # (the controller is also built here once, so that bad settings fail before any episode)
    policy = load_policy(args.policy, args.model, cfg, settings)
    per_scenario = args.policy in (*BASELINES, BEST_KNOWN)
    tables: dict = {}  # the cell tables, read once for every profile and scenario that shares them
    by_profile = {
        profile: evaluate_scenarios(
            cfg,
            args.policy,
            profiles[profile],
            args.seed,
            args.model,
            ocv_table,
            list(args.scenario),
            settings,
            None if per_scenario else policy,
            tables,
        )
        for profile in profiles
    }
    results = {(profile, scenario): by_profile[profile][scenario] for profile, scenario in outs}
    files = [out / name for out in outs.values() for name in ("traces.csv", "metrics.csv")]
    with atomic_outputs(*files) as tmps:  # all or nothing
        for (t_tmp, m_tmp), (traces, metrics) in zip(zip(tmps[::2], tmps[1::2]), results.values()):
            traces.to_csv(t_tmp, index=False, float_format="%.6g")
            metrics.to_csv(m_tmp, index=False, float_format="%.8g")
    if args.animation is not None:  # episode 0 again, drawn frame by frame (bmsrl.render)
        from bmsrl.render import write_episode_animation

        [(profile, scenario)] = outs
        env = PassiveBalancingEnv(**task_kwargs(scenario_config(cfg, scenario), profiles[profile], ocv_table))
        if per_scenario:
            policy = load_policy(args.policy, args.model, scenario_config(cfg, scenario), settings)
        metrics = results[(profile, scenario)][1]
        write_episode_animation(env, policy, int(metrics["eval_seed"].iloc[0]), args.animation)
    columns = ["usable_capacity_mah", "final_soc_std_pct", "switch_changes", "shunt_energy_wh"]
    for (profile, scenario), (_, metrics) in results.items():
        summary = metrics[columns].mean()
        print(
            f"{args.policy} on {profile}, scenario {scenario}, seed {args.seed}, {len(metrics)} episodes: "
            + ", ".join(f"{k} {v:.4g}" for k, v in summary.items())
        )
    return 0
