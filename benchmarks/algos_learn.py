"""Does each algorithm learn? A short training run of each, against the baselines on the same packs.

    python benchmarks/algos_learn.py [--algos dqn ppo a2c trpo ars] [--steps 1000000 --steps ars=5000000]
                                     [--seed 1] [--config config/config.yaml] [--set training.n_envs=32 ...]

Each algorithm trains once through ``bmsrl.train.train`` (the project's settings: the config's
``training`` section and the registry's hyperparameters) in a temporary folder, for ``--steps`` env
steps (``--steps ALGO=N`` sets one algorithm's budget), evaluated every tenth of its budget and at
the end on the training-evaluation packs of ``--seed`` (``training.eval_episodes`` packs, the ones
the training curves use). The table gives, per algorithm: env steps done, wall time (evaluations
included), env-steps/s, the final and the best evaluation mean return, the final evaluation's mean
next-discharge capacity [mAh] (``capacity_mah`` of evaluations.npz), and "learns: yes" when the
final return exceeds ``no_balancing``'s on the same packs by more than 5 % of the best baseline's
gain over ``no_balancing`` (a margin in the reward's own units, so ``-0.0`` against ``0.0`` is no).
The baselines' returns and capacities on those packs (``bmsrl.reference.baseline_results``, with
the config's baseline settings) are printed below it. A return is not a capacity: on the training
profile bleeding during the discharge earns nothing though it raises the next discharge's capacity,
so compare capacities with capacities.

A short budget says whether an algorithm moves away from its initial policy in the right
direction, not what it reaches at the study's budget. ``--set KEY=VALUE`` changes one config key
(dotted path, YAML value) before validation, e.g. ``--set training.eval_episodes=16``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bmsrl import algos
from bmsrl.baselines import BASELINES, settings_key
from bmsrl.config import load_config, read_raw_config
from bmsrl.errors import UserError
from bmsrl.reference import baseline_results
from bmsrl.train import train

STUDY = ("dqn", "ppo", "a2c", "trpo", "ars")


def configured(path: Path, overrides: list[str]) -> dict:
    """The validated config of ``path`` with each ``KEY=VALUE`` override applied."""
    return load_config(json_text=json.dumps(read_raw_config(path, overrides)))


def budgets(items: list[str], names: list[str]) -> dict[str, int]:
    """``["400000", "ars=2000000"]`` -> ``{algo: steps}`` (the bare number applies to every algorithm)."""
    default, per_algo = 1_000_000, {}
    for item in items:
        name, sep, value = item.rpartition("=")
        if sep:
            per_algo[algos.get(name).name] = int(value)
        else:
            default = int(value)
    return {a: per_algo.get(a, default) for a in names}


def run(cfg: dict, algo: str, steps: int, seed: int) -> dict:
    """Train ``algo`` for ``steps`` env steps; its evaluation history and timing."""
    training = cfg["training"]
    training["total_steps"][algo] = steps
    training["eval_interval"] = max(steps // 10, training["n_envs"])
    training["checkpoint_interval"] = 10 * steps  # none during the run
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train(cfg, algo, seed, Path(tmp), tensorboard=None)
        wall = time.perf_counter() - start
        with np.load(Path(tmp) / "evaluations.npz") as ev:
            means = ev["results"].mean(axis=1)
            done = int(ev["timesteps"][-1])
            capacity = float(ev["capacity_mah"][-1].mean())
    return {"steps": done, "wall": wall, "final": float(means[-1]), "best": float(means.max()), "capacity": capacity}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=list(STUDY), choices=list(algos.ALGOS))
    parser.add_argument(
        "--steps",
        action="append",
        default=[],
        metavar="[ALGO=]N",
        help="env steps per run (default 1000000); ALGO=N for one algorithm",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        cfg = configured(args.config, args.overrides)
    except UserError as exc:
        parser.error(str(exc))
    steps = budgets(args.steps, args.algos)

    reference = baseline_results(cfg, args.seed, {b: cfg["baselines"].get(settings_key(b)) for b in BASELINES})
    floor = float(reference["no_balancing"]["return"].mean())
    # "learns": the final policy beats doing nothing by more than 5 % of the best baseline's gain
    # over doing nothing on the same packs (a margin in the reward's own units, whatever its kind)
    margin = 0.05 * (max(float(r["return"].mean()) for r in reference.values()) - floor)
    rows = []
    for algo in args.algos:
        print(f"training {algo} for {steps[algo]:,} env steps ...", file=sys.stderr, flush=True)
        rows.append((algo, run(cfg, algo, steps[algo], args.seed)))

    n = cfg["training"]["eval_episodes"]
    print(
        f"seed {args.seed}, {cfg['training']['n_envs']} packs, evaluation mean return over the same "
        f"{n} training-evaluation packs (deterministic policy)"
    )
    header = f"{'algorithm':<14}{'env steps':>11}{'wall s':>9}{'env-steps/s':>13}{'final':>9}{'best':>9}"
    print(f"{header}{'capacity mAh':>14}  learns")
    for algo, r in rows:
        print(
            f"{algos.get(algo).label:<14}{r['steps']:>11,}{r['wall']:>9.1f}{r['steps'] / r['wall']:>13,.0f}"
            f"{r['final']:>9.2f}{r['best']:>9.2f}{r['capacity']:>14.0f}"
            f"  {'yes' if r['final'] > floor + margin else 'no'}"
        )
    print("baselines on the same packs (config settings): mean return, mean next-discharge capacity [mAh]")
    for name, result in reference.items():
        print(f"  {name:<22}{result['return'].mean():9.2f}{result['capacity_mah'].mean():14.0f}")
    print(
        f"learns: final return > no_balancing + {margin:.2f} (5 % of the best baseline's gain over no_balancing); "
        "capacity: the pack's next-discharge capacity at the episode's end, the column to compare capacities by"
    )


if __name__ == "__main__":
    main()
