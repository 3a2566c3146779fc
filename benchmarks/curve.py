"""Does an agent's evaluation return fall after its peak? Long training runs, evaluated often (issue 19).

    python benchmarks/curve.py train --algo dqn --seed 1 --steps 4000000 [--eval-interval 100000]
                                     [--eval-episodes 16] [--config config/config.yaml] [--ocv-table CSV]
                                     [--set KEY=VALUE ...] --out DIR
    python benchmarks/curve.py table --algo dqn --runs DIR/seed1 DIR/seed2 DIR/seed3
                                     [--config ...] [--ocv-table CSV] [--set ...] --out DIR

    snakemake curve_snapshot --cores 2     # DQN, 3 seeds to 4 M env steps: docs/results/curve_dqn/

The earlier study's DQN peaked at about 0.8 M env steps in all three seeds and got worse after (so
the verdict trains it 1 M steps, config/verdict.yaml). Issue 19 changed how episodes end (the
profile's end is ``terminated``: no bootstrapping from a state training never visits), a likely
cause. This trains the algorithm well past that budget and says whether the return still falls.

``train`` trains one seed through ``bmsrl.train.train`` (the config's settings; ``--steps``,
``--eval-interval`` and ``--eval-episodes`` set ``training.total_steps[algo]``,
``training.eval_interval`` and ``training.eval_episodes``) into ``--out``: a stopped run resumes
from its newest checkpoint (every tenth of the budget), as the train stage's does.

``table`` reads the runs' ``evaluations.npz`` (the deterministic policy on the seed's fixed
training-evaluation packs, every ``--eval-interval`` env steps) and runs ``no_balancing`` and
``room_balancing`` (the config's settings) on the same packs. It writes into ``--out``:

* ``<algo>_curve.csv``: per seed and evaluation, the mean return and the mean next-discharge
  capacity [mAh] over the packs;
* ``<algo>_peak_seeds.csv``: per seed, the peak (the evaluation with the highest mean return: its
  env steps, return and capacity), the late evaluations' means (those in the last quarter of the
  budget), ``d_return`` and ``d_capacity_mah`` (late less peak), and ``kept``, the share of the
  peak's gain over ``no_balancing`` that the late evaluations keep ((late − none) / (peak − none) on
  the same packs: 1 holds the peak, 0 is back to doing nothing);
* ``<algo>_peak.csv``: each of those as mean [95 % t interval over seeds] (``bmsrl.stats``), and
  the two baselines' returns and capacities;
* ``<algo>_curve.png``: the curves (``bmsrl.plots.plot_training``: mean over seeds with its band,
  the baselines on the same packs as lines).

The peak is the maximum of noisy evaluations, so it sits above the policy's typical return even
when nothing falls; ``kept`` near 1 with the late return's interval covering the peak's says the
return holds. A return is the configured reward on the training profile, not the test packs'
capacity: the capacity columns say what the pack gains.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd

from bmsrl import algos
from bmsrl.baselines import settings_key
from bmsrl.config import load_config, read_raw_config, set_dotted
from bmsrl.errors import UserError
from bmsrl.plots import plot_training
from bmsrl.reference import baseline_results
from bmsrl.results import read_evaluations
from bmsrl.stats import t_interval
from bmsrl.train import train

REFERENCES = ("no_balancing", "room_balancing")
#: the late evaluations: those past this share of the budget
LATE_FROM = 0.75


def configured(path: Path, overrides: list[str], algo: str, steps: int | None = None, **training) -> dict:
    """The validated config of ``path`` (a YAML config or the workflow's JSON stage config) with the
    ``KEY=VALUE`` overrides, ``algos: [algo]`` and, if given, the budget and training settings."""
    raw = read_raw_config(path, overrides)
    set_dotted(raw, "algos", [algo])
    if steps is not None:
        set_dotted(raw, f"training.total_steps.{algo}", steps)
        set_dotted(raw, "training.checkpoint_interval", max(steps // 10, 1))
    for key, value in training.items():
        if value is not None:
            set_dotted(raw, f"training.{key}", value)
    return load_config(json_text=json.dumps(raw))


def peak_stats(curve: pd.DataFrame, budget: int, none_return: float) -> dict[str, float]:
    """One seed's peak and late evaluations (module docstring); ``curve``: steps, return, capacity_mah."""
    curve = curve.sort_values("steps")
    peak = curve.loc[curve["return"].idxmax()]
    late = curve[curve["steps"] > LATE_FROM * budget]
    if late.empty:
        raise UserError(f"no evaluation past {LATE_FROM:.0%} of the budget ({budget} env steps): the run is short")
    late_return = float(late["return"].mean())
    gain = float(peak["return"]) - none_return
    return {
        "peak_steps": int(peak["steps"]),
        "peak_return": float(peak["return"]),
        "peak_capacity_mah": float(peak["capacity_mah"]),
        "late_return": late_return,
        "late_capacity_mah": float(late["capacity_mah"].mean()),
        "final_return": float(curve["return"].iloc[-1]),
        "d_return": late_return - float(peak["return"]),
        "d_capacity_mah": float(late["capacity_mah"].mean()) - float(peak["capacity_mah"]),
        "kept": (late_return - none_return) / gain if gain > 0 else float("nan"),
    }


def table(args) -> None:
    cfg = configured(args.config, args.overrides, args.algo)
    runs, curves, seeds = {}, [], []
    budget = None
    for folder in args.runs:
        evaluations = read_evaluations(folder / "evaluations.npz")
        record = json.loads((folder / "run_config.json").read_text())
        if evaluations["algo"] != args.algo:
            raise UserError(f"{folder}: a run of {evaluations['algo']}, not {args.algo}")
        if budget not in (None, record["total_steps"]):
            raise UserError(f"{folder}: a budget of {record['total_steps']} env steps, the others {budget}")
        budget = int(record["total_steps"])
        seed = int(evaluations["seed"])
        runs[(args.algo, seed)] = evaluations
        curve = pd.DataFrame(
            {
                "seed": seed,
                "steps": evaluations["timesteps"].astype(int),
                "return": evaluations["results"].mean(axis=1),
                "capacity_mah": evaluations["capacity_mah"].mean(axis=1),
            }
        )
        set_dotted(cfg, "training.eval_episodes", evaluations["results"].shape[1])
        reference = baseline_results(
            cfg, seed, {b: cfg["baselines"].get(settings_key(b)) for b in REFERENCES}, args.ocv_table
        )
        row = {"algo": args.algo, "seed": seed, "budget": budget}
        for name in REFERENCES:
            row[f"{name}_return"] = float(reference[name]["return"].mean())
            row[f"{name}_capacity_mah"] = float(reference[name]["capacity_mah"].mean())
        seeds.append({**row, **peak_stats(curve, budget, row["no_balancing_return"])})
        curves.append(curve)
    per_seed = pd.DataFrame(seeds).sort_values("seed")
    summary = []
    for metric in per_seed.columns.drop(["algo", "seed", "budget"]):
        mean, low, high = t_interval(per_seed[metric].to_numpy(dtype=float))
        summary.append(
            {
                "algo": args.algo,
                "budget": budget,
                "metric": metric,
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
                "n_seeds": len(per_seed),
            }
        )
    args.out.mkdir(parents=True, exist_ok=True)
    curve_table = pd.concat(curves)
    curve_table.insert(0, "algo", args.algo)
    curve_table.to_csv(args.out / f"{args.algo}_curve.csv", index=False, float_format="%.6g")
    per_seed.to_csv(args.out / f"{args.algo}_peak_seeds.csv", index=False, float_format="%.6g")
    pd.DataFrame(summary).to_csv(args.out / f"{args.algo}_peak.csv", index=False, float_format="%.6g")
    references = {
        name: {
            "return": float(per_seed[f"{name}_return"].mean()),
            "capacity_mah": float(per_seed[f"{name}_capacity_mah"].mean()),
        }
        for name in REFERENCES
    }
    plot_training(runs, args.out / f"{args.algo}_curve.png", references)
    print(pd.DataFrame(summary).to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    for verb in ("train", "table"):
        sub = verbs.add_parser(verb)
        sub.add_argument("--algo", required=True, choices=list(algos.ALGOS))
        sub.add_argument("--config", type=Path, default=Path("config/config.yaml"))
        sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
        sub.add_argument("--ocv-table", default=None)
        sub.add_argument("--out", type=Path, required=True)
    run = verbs.choices["train"]
    run.add_argument("--seed", type=int, required=True)
    run.add_argument("--steps", type=int, required=True, help="env steps of the run")
    run.add_argument("--eval-interval", type=int, default=None, help="env steps between evaluations")
    run.add_argument("--eval-episodes", type=int, default=None, help="packs per evaluation")
    verbs.choices["table"].add_argument(
        "--runs", type=Path, nargs="+", required=True, help="the train verb's --out folders"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    try:
        if args.verb == "train":
            cfg = configured(
                args.config,
                args.overrides,
                args.algo,
                args.steps,
                eval_interval=args.eval_interval,
                eval_episodes=args.eval_episodes,
            )
            train(cfg, args.algo, args.seed, args.out, tensorboard=None, ocv_table=args.ocv_table)
        else:
            table(args)
    except UserError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
