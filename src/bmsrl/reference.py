"""Reference lines of the training curves: the return each baseline earns on the very packs the
agents are evaluated on during training (the same seeds, env, profile and reward), and the capacity
it leaves the pack with (the capacity of the next discharge), so a curve can be read against "doing
nothing" and against the rule-based controllers, in return and in capacity: a return is not a
capacity (on the training profile, bleeding during the discharge earns nothing, though it raises
the next discharge's capacity).

    bmsrl reference --config config/config.yaml --seeds 1 2 3 \\
        --baseline-settings results/baselines/rule_based.yaml ... --out results/tables/training_references.csv

Writes one row per baseline x training seed x training-evaluation pack (columns
:data:`bmsrl.results.REFERENCE_COLUMNS`); ``bmsrl plot training --references`` draws their means.
Every evaluated baseline runs with its tuned settings (a ``--baseline-settings`` file) or else the
config's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from bmsrl import baselines as bl
from bmsrl.baselines import make_baseline
from bmsrl.config import add_config_arguments, config_from_args, seed_argument
from bmsrl.env import BalancingTask, pack_rng
from bmsrl.errors import UserError
from bmsrl.io import atomic_output
from bmsrl.results import REFERENCE_COLUMNS, read_baseline_settings
from bmsrl.rollout import rollout
from bmsrl.seeds import training_eval_seed
from bmsrl.settings import training_profiles
from bmsrl.task_config import resolve_ocv_table, task_kwargs


def baseline_results(
    cfg: dict, seed: int, baselines: dict[str, dict | None], ocv_table: str | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """``{baseline: {"return": episode returns, "capacity_mah": capacities [mAh]}}`` on the
    training-evaluation packs of training seed ``seed``.

    ``baselines`` maps each baseline's name to its settings (``None``: none needed). The packs are
    those the train stage's evaluation callback resets (``training.eval_episodes`` packs, pack k from
    ``SeedSequence(training_eval_seed, spawn_key=(k,))``, on the training profiles as there: pack k
    on the k-th of ``training.profiles`` modulo their number, or ``profiles.train``); each runs one
    deterministic episode. Its return is the sum of the (raw, unnormalised) rewards until its episode
    ends; its capacity the pack's usable capacity at that end
    (:meth:`bmsrl.env.BalancingTask.usable_capacity_ah`), as the evaluation callback records it for
    the agents (``capacity_mah`` of evaluations.npz).
    """
    n = cfg["training"]["eval_episodes"]
    profiles = training_profiles(cfg, cfg["profiles"]["train"])
    start = training_eval_seed(cfg, seed)
    results = {name: {"return": np.empty(n), "capacity_mah": np.empty(n)} for name in baselines}
    for j, profile in enumerate(profiles):
        packs = np.arange(j, n, len(profiles))
        task = BalancingTask(n_packs=len(packs), **task_kwargs(cfg, profile, ocv_table))
        for name, settings in baselines.items():
            task.reset_drawn([pack_rng(start, int(k)) for k in packs])  # the same packs for every baseline
            policy = make_baseline(name, task.params.n_cells, settings, env=cfg["env"])
            run = rollout(task, policy)
            results[name]["return"][packs] = run.returns
            results[name]["capacity_mah"][packs] = 1000.0 * task.usable_capacity_ah(run.end["soc"], run.end["soh"])
    return results


def chosen_settings(cfg: dict, baseline_settings=()) -> dict[str, dict | None]:
    """``{baseline: settings}`` of every evaluated baseline: tuned settings from the
    ``baseline_settings`` files (results/baselines/NAME.yaml), else the config's."""
    tuned = {}
    for path in baseline_settings:
        name = Path(path).stem
        if name not in bl.BASELINES:
            raise UserError(f"--baseline-settings {path}: {name!r} is not a baseline (results/baselines/NAME.yaml)")
        tuned[name] = read_baseline_settings(path, name, bl.setting_names(name))
    return {
        name: tuned.get(name, cfg["baselines"].get(bl.settings_key(name)))
        for name in bl.evaluated_baselines(cfg["baselines"]["tuned"])
    }


def reference_table(cfg: dict, seeds, baseline_settings=(), ocv_table: str | None = None) -> pd.DataFrame:
    """The rows of ``training_references.csv`` (:data:`bmsrl.results.REFERENCE_COLUMNS`)."""
    chosen = chosen_settings(cfg, baseline_settings)
    rows = []
    for seed in seeds:
        for name, result in baseline_results(cfg, seed, chosen, ocv_table).items():
            rows += [
                (name, seed, episode, float(value), float(capacity))
                for episode, (value, capacity) in enumerate(zip(result["return"], result["capacity_mah"]))
            ]
    return pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS))


# ----------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--seeds", nargs="+", type=seed_argument(), help="training seeds (default: the config's seeds)")
    parser.add_argument(
        "--baseline-settings",
        nargs="+",
        type=Path,
        default=[],
        metavar="YAML",
        help="tuned settings, results/baselines/NAME.yaml (else the config's)",
    )
    parser.add_argument("--ocv-table", help="processed OCV table (default: the config's ocv_table)")
    parser.add_argument("--out", required=True, type=Path, metavar="CSV", help="training_references.csv to write")


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    seeds = args.seeds if args.seeds else cfg["seeds"]
    table = reference_table(cfg, seeds, args.baseline_settings, resolve_ocv_table(args.ocv_table, cfg))
    with atomic_output(args.out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.10g")
    for name, rows in table.groupby("policy", sort=False):
        print(
            f"reference: {name} mean return {rows['return'].mean():.2f}, mean next-discharge capacity "
            f"{rows['capacity_mah'].mean():.0f} mAh over {len(rows)} packs"
        )
    return 0
