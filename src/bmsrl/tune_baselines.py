"""Tune a classical baseline: grid search of its settings (e.g. threshold and hysteresis) on the training profile.

    bmsrl tune-baselines --config config/config.yaml --baseline rule_based \\
        --out results/baselines/rule_based.yaml --grid-out results/baselines/rule_based_grid.csv

A baseline a learned policy must beat should be the best its own design allows, not a hand default.
Every candidate (the baseline's grid in ``baselines.tuning``, :attr:`bmsrl.baselines.BaselineSpec.candidates`:
threshold x hysteresis fraction, hysteresis = fraction x threshold, for ``rule_based`` and
``top_balancing``; margin x hysteresis fraction in mAh for ``room_balancing``) runs ``baselines.tuning.episodes`` episodes of the *training* profile, all candidates on
the same packs: episode k starts from the pack drawn with the integer seed
``baselines.tuning.seed_offset + k``, which the config validator keeps disjoint from every evaluation
seed (and the training packs draw from spawned seed sequences, never an integer seed). No
evaluation pack, profile phase order or scenario is seen.

Objective (docs/model.md, "Baselines"). On the discharge-first training profile the episode's usable
capacity is fixed by the initial SoC before any balancing acts, so it cannot rank candidates. What the
episode's balancing leaves behind is measured instead: the **next-discharge capacity**, the charge the
pack delivers in a following discharge at ``i_max_a`` (no balancing) from the state the episode ends
in, simulated with the same pack model and cut-offs. The objective is lexicographic:

1. next-discharge capacity (mean over episodes) within ``capacity_tolerance_pct`` of the best candidate;
2. among those, the fewest switch changes per episode;
3. then the least shunt energy.

Candidates with a terminated (safety-violating) episode are dropped unless every candidate has one.
Writes the chosen settings (``results/baselines/{baseline}.yaml``, read by ``bmsrl evaluate
--baseline-settings``) and every candidate's means (``..._grid.csv``).
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bmsrl import baselines
from bmsrl.baselines import TUNABLE, make_baseline, setting_names, settings_key
from bmsrl.config import add_config_arguments, config_from_args
from bmsrl.env import BalancingTask, rng_for_seed
from bmsrl.errors import UserError
from bmsrl.io import atomic_output, check_outputs
from bmsrl.profiles import LoadProfile, Phase
from bmsrl.rollout import rollout
from bmsrl.seeds import evaluation_seeds, tuning_seeds
from bmsrl.task_config import resolve_ocv_table, task_kwargs

log = logging.getLogger(__name__)

#: columns of the grid file after the baseline and its settings, one row per candidate (means over the tuning episodes)
GRID_METRICS: tuple[str, ...] = (
    "next_capacity_mah",
    "switch_changes",
    "shunt_energy_wh",
    "final_soc_spread_pct",
    "usable_capacity_mah",
    "terminated_fraction",
    "episodes",
    "eligible",
    "selected",
)
OBJECTIVE = (
    "maximise the next-discharge capacity (within capacity_tolerance_pct of the best), "
    "then minimise switch changes, then shunt energy; means over the tuning episodes"
)


def grid_columns(baseline: str) -> list[str]:
    """Columns of ``baseline``'s grid file: ``baseline``, its settings, :data:`GRID_METRICS`."""
    return ["baseline", *setting_names(baseline), *GRID_METRICS]


def candidates(baseline: str, tuning: dict) -> list[dict[str, float]]:
    """The candidate settings of ``baseline`` from the grid in ``baselines.tuning``
    (:attr:`bmsrl.baselines.BaselineSpec.candidates`, e.g. threshold x hysteresis fraction)."""
    spec = baselines.get(baseline)
    if not spec.tunable:
        raise UserError(f"baseline {baseline!r} has nothing to tune; choose one of {list(TUNABLE)}")
    return spec.candidates(tuning)


class _Candidates:
    """Candidate ``i`` of ``controllers`` acts on packs ``i * n_eps ... (i + 1) * n_eps - 1``."""

    def __init__(self, controllers: list, n_eps: int) -> None:
        self.controllers, self.n_eps = controllers, n_eps

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        n = self.n_eps
        return np.concatenate(
            [c.predict(observation[i * n : (i + 1) * n])[0] for i, c in enumerate(self.controllers)]
        ), state


def follow_up_discharge(kwargs: dict) -> LoadProfile:
    """One discharge at ``i_max_a`` to the lower cut-off; its time cap (twice a full discharge of a
    nominal cell) never binds, unlike the training profile's 1900 s, which would cap every candidate."""
    cap_s = 2.0 * 3600.0 * kwargs["pack"]["capacity_ah"] / kwargs["i_max_a"]
    return LoadProfile("follow-up-discharge", (Phase("discharge", kwargs["i_max_a"], cap_s, "lower"),))


def next_discharge_capacity_mah(kwargs: dict, soc: np.ndarray, soh: np.ndarray) -> np.ndarray:
    """Charge [mAh] each pack delivers discharging at ``i_max_a`` from ``soc``/``soh`` (RC voltages
    relaxed, shunts open) until the first cell reaches the lower cut-off, per pack."""
    task = BalancingTask(n_packs=len(soc), **{**kwargs, "profile": follow_up_discharge(kwargs)})
    packs = np.arange(len(soc))
    task.reset_packs(packs, soc, soh)
    delivered = np.full(len(soc), np.nan)
    state = task.sim.state
    for _ in range(100_000):
        ended = (state.phase > 0) & np.isnan(delivered)
        delivered[ended] = state.discharged_ah[ended]
        if not np.isnan(delivered).any():
            return 1000.0 * delivered
        task.step(np.zeros(len(soc), dtype=np.intp))
    raise RuntimeError("the follow-up discharge did not end")


def evaluate_grid(cfg: dict, baseline: str, ocv_table: str | None = None) -> pd.DataFrame:
    """Every candidate's means over the tuning episodes (columns :func:`grid_columns` without the
    selection); all candidates and episodes run as one batch of packs."""
    grid = candidates(baseline, cfg["baselines"]["tuning"])
    seeds = list(tuning_seeds(cfg))
    kwargs = task_kwargs(cfg, cfg["profiles"]["train"], ocv_table)
    n_cells, n_eps = cfg["env"]["n_cells"], len(seeds)
    task = BalancingTask(n_packs=len(grid) * n_eps, **kwargs)
    drawn = [task.draw_initial_state(rng_for_seed(seed)) for seed in seeds]  # as env.reset(seed=seed) draws
    soc0 = np.tile(np.stack([d[0] for d in drawn]), (len(grid), 1))
    soh0 = np.tile(np.stack([d[1] for d in drawn]), (len(grid), 1))
    task.reset_packs(np.arange(task.n_packs), soc0, soh0)
    controllers = [make_baseline(baseline, n_cells, settings, env=cfg["env"]) for settings in grid]
    episodes = rollout(task, _Candidates(controllers, n_eps))
    end = episodes.end
    capacity = next_discharge_capacity_mah(kwargs, end["soc"], end["soh"])
    spread = 100.0 * (end["soc"].max(axis=1) - end["soc"].min(axis=1))
    per_episode = {
        "next_capacity_mah": capacity,
        "switch_changes": episodes.switch_changes.astype(np.float64),
        "shunt_energy_wh": end["shunt_energy_wh"].sum(axis=1),
        "final_soc_spread_pct": spread,
        "usable_capacity_mah": 1000.0 * end["discharged_ah"],
        "terminated_fraction": episodes.terminated.astype(np.float64),
    }
    rows = []
    for i, settings in enumerate(grid):
        part = slice(i * n_eps, (i + 1) * n_eps)
        rows.append(
            {
                "baseline": baseline,
                **settings,
                **{k: float(v[part].mean()) for k, v in per_episode.items()},
                "episodes": n_eps,
            }
        )
    return pd.DataFrame(rows)


def select(grid: pd.DataFrame, tolerance_pct: float) -> pd.DataFrame:
    """Mark the ``eligible`` candidates (capacity within ``tolerance_pct`` of the best, no terminated
    episode unless all have one) and the ``selected`` one (fewest switch changes, then least shunt energy,
    then highest capacity, then the smaller settings, e.g. threshold and hysteresis, in their order)."""
    settings = setting_names(grid["baseline"].iloc[0])
    grid = grid.copy()
    safe = grid["terminated_fraction"] == 0.0
    pool = safe if safe.any() else np.ones(len(grid), dtype=bool)
    best = grid.loc[pool, "next_capacity_mah"].max()
    grid["eligible"] = pool & (grid["next_capacity_mah"] >= best - abs(best) * tolerance_pct / 100.0)
    order = (
        grid[grid["eligible"]]
        .assign(neg_capacity=lambda f: -f["next_capacity_mah"])
        .sort_values(["switch_changes", "shunt_energy_wh", "neg_capacity", *settings], kind="stable")
    )
    grid["selected"] = False
    grid.loc[order.index[0], "selected"] = True
    return grid[grid_columns(grid["baseline"].iloc[0])]


def tune(cfg: dict, baseline: str, ocv_table: str | None = None) -> tuple[dict, pd.DataFrame]:
    """The settings record (the YAML's content) and the grid table of ``baseline``."""
    candidates(baseline, cfg["baselines"]["tuning"])  # refuses a baseline with nothing to tune
    seeds = tuning_seeds(cfg)
    overlap = set(seeds) & evaluation_seeds(cfg)
    if overlap:  # the validator refuses such a config; this guards a hand-built one
        raise UserError(f"tuning seed {min(overlap)} is an evaluation seed; change baselines.tuning.seed_offset")
    tuning = cfg["baselines"]["tuning"]
    grid = select(evaluate_grid(cfg, baseline, ocv_table), tuning["capacity_tolerance_pct"])
    chosen = grid[grid["selected"]].iloc[0]
    hand = cfg["baselines"][settings_key(baseline)]
    record = {
        "baseline": baseline,
        "settings": {k: float(chosen[k]) for k in setting_names(baseline)},
        "objective": OBJECTIVE,
        "capacity_tolerance_pct": float(tuning["capacity_tolerance_pct"]),
        "profile": cfg["profiles"]["train"],
        "tuning_seeds": {"first": seeds.start, "last": seeds.stop - 1},
        "candidates": len(grid),
        "eligible": int(grid["eligible"].sum()),
        "selected": {
            k: float(chosen[k])
            for k in (
                "next_capacity_mah",
                "switch_changes",
                "shunt_energy_wh",
                "final_soc_spread_pct",
                "terminated_fraction",
            )
        },
        "best_next_capacity_mah": float(grid["next_capacity_mah"].max()),
        "hand_set": {k: float(hand[k]) for k in setting_names(baseline)},
    }
    return record, grid


# ----------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--baseline", required=True, choices=list(TUNABLE), help="baseline to tune")
    parser.add_argument("--ocv-table", help="processed OCV table (default: the config's ocv_table)")
    parser.add_argument("--out", required=True, type=Path, metavar="YAML", help="chosen settings to write")
    parser.add_argument("--grid-out", type=Path, metavar="CSV", help="every candidate's means to write")


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    check_outputs(
        {"--out": args.out, "--grid-out": args.grid_out}, {"--config": args.config, "--ocv-table": args.ocv_table}
    )
    record, grid = tune(cfg, args.baseline, resolve_ocv_table(args.ocv_table, cfg))
    header = (
        f"# {args.baseline}: {' and '.join(setting_names(args.baseline))} chosen by `bmsrl tune-baselines` "
        f'(src/bmsrl/tune_baselines.py; docs/model.md, "Baselines")\n'
    )
    with atomic_output(args.out) as tmp:
        tmp.write_text(header + yaml.safe_dump(record, sort_keys=False), encoding="utf-8")
    if args.grid_out is not None:
        with atomic_output(args.grid_out) as tmp:
            grid.to_csv(tmp, index=False, float_format="%.8g")
    s = record["settings"]
    sel = record["selected"]
    print(
        f"{args.baseline}: " + ", ".join(f"{k} {v:g}" for k, v in s.items()) + " "
        f"({record['eligible']} of {record['candidates']} candidates within "
        f"{record['capacity_tolerance_pct']:g} % of the best next-discharge capacity "
        f"{record['best_next_capacity_mah']:.1f} mAh; selected: {sel['next_capacity_mah']:.1f} mAh, "
        f"{sel['switch_changes']:.1f} switch changes, {sel['shunt_energy_wh']:.3f} Wh)"
    )
    return 0 if math.isfinite(sel["next_capacity_mah"]) else 1
