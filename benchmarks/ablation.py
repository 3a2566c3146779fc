"""What mattered (issue 19 item 6): each learning change alone and all together, at a fixed budget, on
several seeds, against ``room_balancing`` on the same test packs.

    python benchmarks/ablation.py [--algo ppo] [--steps 1000000] [--seeds 1 2 3] [--packs 100]
                                  [--changes per_cell cell_set test_profiles double_q] [--arms ARM ...]
                                  [--config config/config.yaml] [--ocv-table CSV] [--set training.n_envs=32 ...]
                                  [--tuned-hyperparams results/tuning/ALGO.yaml]
                                  [--compare-with OTHER_seeds.csv --compare-arm ARM]
                                  [--csv ablation.csv] [--keep DIR] [--out DIR]

    snakemake ablation_snapshot --cores 2     # DQN and A2C at the verdict's budgets: docs/results/ablation_<algo>/

``--csv`` appends one row per arm and seed (and the reference's per seed) as each finishes, with the
commit it was made at, and a rerun with the same file reuses the rows of the same algorithm, budget
and packs (it says how many): a long ablation survives a stop. ``--keep`` keeps each run's training folder (``evaluations.npz``,
the learning curve) under ``DIR/<algo>_<arm>_seed<N>/`` instead of a temporary folder.
``--out DIR`` writes the table: ``DIR/<algo>.csv`` (per arm and metric: mean, 95 % t interval, seeds),
``DIR/<algo>_seeds.csv`` (the per-seed rows behind it, each with the commit its run was made
at) and ``DIR/<algo>_hyperparams.csv`` (per arm, the hyperparameters its runs trained with, each
from the config or the search), only once every run has finished. The workflow's rule ``ablation`` runs this script per
algorithm at the verdict's budgets with the run's config and processed OCV table (its ``--csv`` is
``results/ablation/<algo>_runs.csv``, so a stopped rule resumes), and ``ablation_snapshot`` copies
the tables with their provenance to ``docs/results/ablation_<algo>/`` (workflow/rules/benchmarks.smk,
which also says which changes each algorithm's rule runs). ``--arms`` runs only the named arms (the
reference always), as a confirmation of one arm on fresh seeds does. ``--tuned-hyperparams FILE``
merges a search's best hyperparameters (``bmsrl search summary``'s file) over the config's in every
arm; its rows carry the study and trial (column ``hyperparams``), and only rows of that search are
reused. ``--compare-with SEEDS_CSV --compare-arm ARM`` pairs each arm with another run's arm on
the same seeds and test packs (``DIR/<algo>_compare.csv``: per metric the mean difference and its
95 % t interval over seeds; without ``--compare-with`` its header only), as the searched agent is
paired with the confirmation.

For each arm (``none``: the config as it is; each change of :data:`CHANGES` that applies to the
algorithm alone; ``all``: every applicable change together) and each seed, the algorithm trains
through ``bmsrl.train.train`` for ``--steps`` env steps in a temporary folder (evaluated every fifth
of the budget on its training-evaluation packs, as a training run picks ``best_model.zip``), and its
``best_model.zip`` is evaluated through ``bmsrl.evaluate.evaluate`` on the seed's default test packs
(``charge-rest-discharge``, default scenario, ``evaluation.episodes`` packs, or ``--packs``): the
packs the workflow's evaluation of that seed uses. ``room_balancing`` (the config's settings) runs
on the same packs. Per arm the table gives, as mean [95 % t interval over seeds] (``bmsrl.stats``):

* ``share``: the mean share of the recoverable capacity recovered (``recovered_share``);
* ``d_mAh``: the paired difference of the usable capacity against ``room_balancing`` on the same
  packs [mAh] (per seed the mean over packs, then the interval over seeds);
* ``changes``, ``shunt_Wh``: switch changes and shunt heat per episode;
* ``steps/s``: training env-steps per second of wall time, its periodic evaluations included.

Changes that do not apply to the algorithm (``per_cell`` for DQN, ``double_q`` for the others) are
left out. The budget is small next to the study's (docs/model.md, "Training budget"), so the table
ranks the changes at that budget only. docs/performance.md gives the command of the full run.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import multiprocessing
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bmsrl import algos
from bmsrl.config import load_config, read_raw_config, set_dotted
from bmsrl.errors import UserError
from bmsrl.evaluate import evaluate
from bmsrl.results import read_tuned_hyperparams
from bmsrl.stats import t_interval
from bmsrl.train import train

TEST_PROFILE = "charge-rest-discharge"
REFERENCE = "room_balancing"


@dataclass(frozen=True)
class Change:
    """One learning change of issue 19: the config keys it sets and the algorithms it applies to."""

    what: str
    overrides: dict  #: dotted config key -> value
    applies: tuple[str, ...]  #: the algorithms it applies to


#: name -> change, in the table's order
CHANGES: dict[str, Change] = {
    "per_cell": Change(
        "MultiBinary actions, one bit per shunt (env.action_space)",
        {"env.action_space": "multi_binary"},
        tuple(a for a, spec in algos.ALGOS.items() if "multi_binary" in spec.action_spaces),
    ),
    "cell_set": Change(
        "the per-cell network with the room features (training.features)",
        {"training.features": "cell_set_physics"},
        tuple(a for a, spec in algos.ALGOS.items() if spec.features_extractor),
    ),
    "test_profiles": Change(
        "both profile orders across the packs (training.profiles)",
        {"training.profiles": ["discharge-rest-charge", TEST_PROFILE]},
        tuple(algos.ALGOS),
    ),
    "double_q": Change(
        "Double DQN with a masked target (training.hyperparams.dqn)",
        {"training.hyperparams.dqn.double_q": True, "training.hyperparams.dqn.masked_target": True},
        ("dqn",),
    ),
}


def arms(algo: str, names: list[str]) -> dict[str, dict]:
    """Arm name -> config overrides: ``none``, each applicable change alone, and the applicable changes
    together: ``all`` when they are every change of :data:`CHANGES` that applies to the algorithm,
    else their names joined by ``+`` (``test_profiles+double_q``), so that a ``--csv`` row of one
    combination is never reused for another."""
    applicable = [n for n in names if algo in CHANGES[n].applies]
    out = {"none": {}}
    out.update({n: dict(CHANGES[n].overrides) for n in applicable})
    if len(applicable) > 1:
        every = [n for n, change in CHANGES.items() if algo in change.applies]
        name = "all" if sorted(applicable) == sorted(every) else "+".join(applicable)
        out[name] = {k: v for n in applicable for k, v in CHANGES[n].overrides.items()}
    return out


def arm_config(raw: dict, algo: str, steps: int, packs: int | None, overrides: dict) -> dict:
    raw = copy.deepcopy(raw)
    for key, value in overrides.items():
        set_dotted(raw, key, value)
    set_dotted(raw, "algos", [algo])
    set_dotted(raw, f"training.total_steps.{algo}", steps)
    if packs is not None:
        set_dotted(raw, "evaluation.episodes", packs)
    cfg = load_config(json_text=json.dumps(raw))
    training = cfg["training"]
    training["eval_interval"] = max(steps // 5, training["n_envs"])
    training["checkpoint_interval"] = 10 * steps  # none during the run
    return cfg


def merge_tuned(raw: dict, algo: str, path: Path) -> dict:
    """Merge the search result ``path`` (``bmsrl search summary``'s file) over
    ``training.hyperparams[algo]`` of the raw config ``raw``, as ``training.tuned_hyperparams`` does
    for a train job; returns its values and its label for the rows, ``"<study> trial <k>"``."""
    tuned = read_tuned_hyperparams(path, algo)
    for name, value in tuned["hyperparams"].items():
        set_dotted(raw, f"training.hyperparams.{algo}.{name}", value)
    return {"hyperparams": tuned["hyperparams"], "label": f"{tuned['study']} trial {tuned['trial']}"}


def run_seed(
    cfg: dict, algo: str, seed: int, reference, keep: Path | None = None, ocv_table: str | None = None
) -> dict:
    """Train one seed, evaluate its best model on the seed's test packs; per-seed statistics. The
    training folder is temporary unless ``keep`` names it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) if keep is None else keep
        start = time.perf_counter()
        train(cfg, algo, seed, out, tensorboard=None, ocv_table=ocv_table)
        wall = time.perf_counter() - start
        _, metrics = evaluate(cfg, algo, TEST_PROFILE, seed, out / "best_model.zip", ocv_table)
    return {**paired_stats(metrics, reference), "steps/s": int(cfg["training"]["total_steps"][algo]) / wall}


def run_all(calls: dict, jobs: int, record) -> None:
    """Run each ``key -> (function, *args)`` of ``calls`` and ``record(key, result)`` as each ends:
    one after another in this process, or ``jobs`` side by side in worker processes (spawned: torch
    does not survive a fork well). A run that fails stops the rest, its error raised here."""
    if jobs == 1:
        for key, (function, *args) in calls.items():
            record(key, function(*args))
        return
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(*call): key for key, call in calls.items()}
        try:
            for future in as_completed(futures):
                record(futures[future], future.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def paired_stats(metrics: pd.DataFrame, reference: pd.DataFrame) -> dict[str, float]:
    """A policy's per-seed statistics on a seed's test packs (metrics.csv rows), against the reference's
    rows on the same packs: mean share, mean paired capacity difference [mAh], switch changes and shunt
    heat [Wh] per episode (also used by benchmarks/imitation.py)."""
    return {
        "share": float(np.nanmean(metrics["recovered_share"])),
        "d_mAh": float(
            np.mean(metrics["usable_capacity_mah"].to_numpy() - reference["usable_capacity_mah"].to_numpy())
        ),
        "changes": float(metrics["switch_changes"].mean()),
        "shunt_Wh": float(metrics["shunt_energy_wh"].mean()),
    }


#: the table's columns and their decimals
COLUMNS = {"share": 3, "d_mAh": 1, "changes": 1, "shunt_Wh": 2, "steps/s": 0}
#: the columns of ``--csv`` that say which run a row belongs to
KEYS = ["algo", "steps", "packs", "arm", "seed"]
#: a reused row's commit when its table predates the ``commit`` column
UNRECORDED = "unrecorded"


def reference_stats(metrics) -> dict:
    """The reference's per-seed statistics (its paired difference to itself is 0)."""
    return paired_stats(metrics, metrics)


def read_rows(
    path: Path | None, algo: str, steps: int, packs: int, hyperparams: str | None = None
) -> dict[tuple[str, int], dict]:
    """(arm, seed) -> statistics of ``path``'s rows for this algorithm, budget and packs, and of the
    search result ``hyperparams`` (``--tuned-hyperparams``; ``None``: rows made without one)."""
    if path is None or not path.exists():
        return {}
    table = pd.read_csv(path)
    missing = [c for c in KEYS + list(COLUMNS) if c not in table.columns]
    if missing:
        raise SystemExit(f"{path}: not an ablation table (missing columns {missing}); name another --csv")
    table = table[(table["algo"] == algo) & (table["steps"] == steps) & (table["packs"] == packs)]
    tuned = table["hyperparams"] if "hyperparams" in table.columns else pd.Series(np.nan, index=table.index)
    table = table[tuned.isna()] if hyperparams is None else table[tuned == hyperparams]
    return {
        (row.arm, int(row.seed)): {
            **{k: getattr(row, k.replace("/", "_")) for k in COLUMNS},
            "commit": getattr(row, "commit", UNRECORDED)
            if isinstance(getattr(row, "commit", None), str)
            else UNRECORDED,
        }
        for row in table.rename(columns={"steps/s": "steps_s"}).itertuples()
    }


def append_row(path: Path | None, key: dict, stats: dict) -> None:
    if path is None:
        return
    row = pd.DataFrame([{**key, **{k: stats.get(k, np.nan) for k in COLUMNS}, "commit": stats["commit"]}])
    if path.exists() and path.stat().st_size:
        header = list(pd.read_csv(path, nrows=0).columns)
        if header != list(row.columns):  # rows with and without --tuned-hyperparams: one table each
            raise SystemExit(f"{path}: its columns {header} are not this run's {list(row.columns)}; name another --csv")
    row.to_csv(path, mode="a", header=not path.exists() or not path.stat().st_size, index=False)


def interval(values, decimals: int) -> str:
    """``mean [low, high]`` (the 95 % t interval over seeds, :func:`bmsrl.stats.t_interval`)."""
    mean, low, high = t_interval(np.asarray(values, dtype=float))
    return f"{mean:.{decimals}f} [{low:.{decimals}f}, {high:.{decimals}f}]"


def git_commit() -> str:
    """The commit of the source tree this script runs from (``+dirty`` with uncommitted changes)."""
    root = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(root)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "src", "benchmarks"], capture_output=True, text=True)
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def summary_table(key: dict, rows: dict[str, dict], reference: dict) -> pd.DataFrame:
    """Per arm (and the reference) and metric: mean and 95 % t interval over seeds, as printed; and
    ``d_share``, the arm's share less the reference's on the same seed's packs (paired by seed)."""
    out = []
    for arm, values in {**rows, REFERENCE: reference}.items():
        values = {**values, "d_share": np.asarray(values["share"], dtype=float) - np.asarray(reference["share"])}
        for metric, samples in values.items():
            mean, low, high = t_interval(np.asarray(samples, dtype=float))
            out.append(
                {
                    **key,
                    "arm": arm,
                    "metric": metric,
                    "mean": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "n_seeds": len(samples),
                }
            )
    return pd.DataFrame(out)


def hyperparams_table(
    algo: str, configs: dict[str, dict], tuned: dict | None = None, untuned: dict[str, dict] | None = None
) -> pd.DataFrame:
    """Per arm, every hyperparameter of ``algo`` its runs trained with (``training.hyperparams``
    after the arm's changes), where it comes from (the search's label, ``tuned``, or ``config``: the
    config and the registry's defaults) and ``config_value``, what the arm's config gives without
    the search (``untuned``: the arms' configs before the merge; the value itself without one)."""
    rows = []
    for arm, cfg in configs.items():
        plain = (untuned or configs)[arm]["training"]["hyperparams"][algo]
        for name, value in sorted(cfg["training"]["hyperparams"][algo].items()):
            searched = tuned is not None and name in tuned["hyperparams"]
            rows.append(
                {
                    "algo": algo,
                    "arm": arm,
                    "name": name,
                    "value": json.dumps(value),
                    "source": tuned["label"] if searched else "config",
                    "config_value": json.dumps(plain.get(name)),
                }
            )
    return pd.DataFrame(rows)


#: the per-seed metrics a comparison with another run pairs
PAIRED = ("share", "d_mAh", "changes", "shunt_Wh")


def comparable(other: Path, other_arm: str, key: dict, seeds: list[int]) -> pd.DataFrame:
    """``other`` (another run's ``<algo>_seeds.csv``) if it can pair with a run of ``key`` (algorithm,
    budget, packs) on ``seeds``: its arm ``other_arm`` and the reference on exactly those seeds; else
    one error naming the file. Checked before any training, and again on the finished rows."""
    try:
        theirs = pd.read_csv(other)
    except (OSError, ValueError) as exc:
        raise UserError(f"--compare-with {other}: cannot read it ({exc})") from None
    missing = [c for c in ("algo", "steps", "packs", "arm", "seed", *PAIRED) if c not in theirs.columns]
    if missing:
        raise UserError(f"--compare-with {other}: not an ablation's per-seed table (missing columns {missing})")
    for column, value in key.items():
        if set(theirs[column]) != {value}:
            raise UserError(f"--compare-with {other}: {column} {sorted(set(theirs[column]))}, this run's {value}")
    for arm in (other_arm, REFERENCE):
        if sorted(theirs.loc[theirs["arm"] == arm, "seed"]) != sorted(seeds):
            raise UserError(f"--compare-with {other}: arm {arm} has not exactly this run's seeds {sorted(seeds)}")
    return theirs


def compare_table(seeds: list[dict], other: Path, other_arm: str) -> pd.DataFrame:
    """Each arm of this run less arm ``other_arm`` of another run (its ``<algo>_seeds.csv``, ``other``)
    on the same seeds: per metric of :data:`PAIRED`, the mean and 95 % t interval over seeds of the
    per-seed differences. The two runs must share the algorithm, budget, packs and seeds, and the
    reference's per-seed rows must agree, which they do only on the same test packs."""
    mine = pd.DataFrame(seeds)
    key = {column: mine[column].iloc[0] for column in ("algo", "steps", "packs")}
    theirs = comparable(other, other_arm, key, sorted(set(mine["seed"])))
    by_seed = {arm: frame.set_index("seed").sort_index() for arm, frame in theirs.groupby("arm")}
    ours = {arm: frame.set_index("seed").sort_index() for arm, frame in mine.groupby("arm")}
    if not np.allclose(ours[REFERENCE]["share"], by_seed[REFERENCE]["share"], rtol=0, atol=1e-6):
        raise UserError(f"--compare-with {other}: {REFERENCE} differs per seed, so the test packs differ")
    out = []
    for arm, frame in ours.items():
        if arm == REFERENCE:
            continue
        for metric in PAIRED:
            diff = frame[metric].to_numpy(float) - by_seed[other_arm][metric].to_numpy(float)
            mean, low, high = t_interval(diff)
            out.append(
                {
                    "algo": frame["algo"].iloc[0],
                    "arm": arm,
                    "versus": f"{other.name}:{other_arm}",
                    "metric": metric,
                    "mean_diff": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "n_seeds": len(diff),
                }
            )
    return pd.DataFrame(out)


def write_tables(
    out: Path, algo: str, key: dict, rows: dict, reference: dict, seeds: list[dict], hyperparams: pd.DataFrame
) -> None:
    """``out/<algo>.csv``, ``out/<algo>_seeds.csv`` and ``out/<algo>_hyperparams.csv`` (module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    summary_table(key, rows, reference).to_csv(out / f"{algo}.csv", index=False, float_format="%.6g")
    pd.DataFrame(seeds).to_csv(out / f"{algo}_seeds.csv", index=False, float_format="%.6g")
    hyperparams.to_csv(out / f"{algo}_hyperparams.csv", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="ppo", choices=list(algos.ALGOS))
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps per training run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--packs", type=int, default=None, help="test packs per seed (evaluation.episodes)")
    parser.add_argument("--changes", nargs="+", default=list(CHANGES), choices=list(CHANGES))
    parser.add_argument(
        "--arms", nargs="+", default=None, metavar="ARM", help="run only these arms of the changes (default: every arm)"
    )
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    parser.add_argument("--csv", type=Path, default=None, help="append per-seed rows here; reuse its finished runs")
    parser.add_argument("--jobs", type=int, default=1, help="training runs side by side (one process each)")
    parser.add_argument("--keep", type=Path, default=None, help="keep each run's training folder under DIR")
    parser.add_argument("--ocv-table", default=None, help="the processed OCV table (default: the package's)")
    parser.add_argument(
        "--tuned-hyperparams",
        type=Path,
        default=None,
        metavar="FILE",
        help="a search's result (results/tuning/ALGO.yaml), merged over training.hyperparams[ALGO] in every arm",
    )
    parser.add_argument(
        "--compare-with",
        type=Path,
        default=None,
        metavar="SEEDS_CSV",
        help="another run's <algo>_seeds.csv on the same seeds and packs: --out also gets <algo>_compare.csv, each "
        "arm less its --compare-arm, paired by seed",
    )
    parser.add_argument("--compare-arm", default="none", help="the arm of --compare-with to compare with")
    parser.add_argument("--out", type=Path, default=None, help="write the table and its per-seed rows to DIR")
    args = parser.parse_args()
    if args.compare_with is not None and args.out is None:
        parser.error("--compare-with writes into --out: give --out")
    if args.jobs < 1:
        parser.error("--jobs: at least 1")
    if len(args.seeds) < 2:
        parser.error("--seeds: at least two seeds (an interval over one seed says nothing)")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        raw = read_raw_config(args.config, args.overrides)
        untuned_raw = copy.deepcopy(raw)
        tuned = None if args.tuned_hyperparams is None else merge_tuned(raw, args.algo, args.tuned_hyperparams)
    except UserError as exc:
        parser.error(str(exc))

    planned = arms(args.algo, args.changes)
    unknown = sorted(set(args.arms or ()) - set(planned))
    if unknown:
        parser.error(f"--arms: {unknown} are not arms of --algo {args.algo} with these --changes ({list(planned)})")
    if args.arms:
        planned = {arm: overrides for arm, overrides in planned.items() if arm in args.arms}

    base = arm_config(raw, args.algo, args.steps, args.packs, {})
    n_packs = int(base["evaluation"]["episodes"])
    if args.compare_with is not None:
        try:
            comparable(
                args.compare_with,
                args.compare_arm,
                {"algo": args.algo, "steps": args.steps, "packs": n_packs},
                args.seeds,
            )
        except UserError as exc:
            parser.error(str(exc))
    label = None if tuned is None else tuned["label"]
    done = read_rows(args.csv, args.algo, args.steps, n_packs, label)
    if done:
        print(f"{args.csv}: reusing {len(done)} finished runs of {args.algo} at this budget", file=sys.stderr)
    key = {"algo": args.algo, "steps": args.steps, "packs": n_packs, **({"hyperparams": label} if label else {})}
    commit = git_commit()  # the commit of every run made now (a reused row keeps its own)
    references, ref = {}, {k: [] for k in COLUMNS if k != "steps/s"}
    for seed in args.seeds:
        _, references[seed] = evaluate(base, REFERENCE, TEST_PROFILE, seed, None, args.ocv_table)
        stats = {**reference_stats(references[seed]), "commit": commit}
        if (REFERENCE, seed) not in done:
            append_row(args.csv, {**key, "arm": REFERENCE, "seed": seed}, stats)
        for k in ref:
            ref[k].append(stats[k])
    rows, seed_rows = (
        {},
        [{**key, "arm": REFERENCE, "seed": s, **reference_stats(references[s]), "commit": commit} for s in args.seeds],
    )
    # every (arm, seed) run not reused, --jobs at a time; each row is appended as its run ends
    configs = {arm: arm_config(raw, args.algo, args.steps, args.packs, overrides) for arm, overrides in planned.items()}
    calls = {}
    for arm in planned:
        for seed in args.seeds:
            if (arm, seed) not in done:
                keep = None if args.keep is None else args.keep / f"{args.algo}_{arm}_seed{seed}"
                calls[arm, seed] = (run_seed, configs[arm], args.algo, seed, references[seed], keep, args.ocv_table)

    def record(run: tuple[str, int], stats: dict) -> None:
        arm, seed = run
        print(f"{arm}: {args.algo} seed {seed} done ({stats['d_mAh']:+.1f} mAh)", file=sys.stderr)
        done[run] = {**stats, "commit": commit}
        append_row(args.csv, {**key, "arm": arm, "seed": seed}, done[run])

    print(
        f"training {len(calls)} runs of {args.algo}, {args.steps:,} env steps each, {args.jobs} at a time",
        file=sys.stderr,
    )
    run_all(calls, args.jobs, record)
    for arm in planned:
        per_seed = [done[arm, seed] for seed in args.seeds]
        rows[arm] = {k: [s[k] for s in per_seed] for k in COLUMNS}
        seed_rows += [{**key, "arm": arm, "seed": seed, **s} for seed, s in zip(args.seeds, per_seed)]

    print(
        f"{algos.get(args.algo).label}, {args.steps:,} env steps, seeds {args.seeds}, {n_packs} test packs "
        f"per seed ({TEST_PROFILE}, default scenario); mean [95 % t interval over seeds]"
    )
    print(f"{'arm':<24}" + "".join(f"{k:>30}" for k in COLUMNS))
    for arm, values in rows.items():
        print(f"{arm:<24}" + "".join(f"{interval(values[k], d):>30}" for k, d in COLUMNS.items()))
    print(f"{REFERENCE:<24}" + "".join(f"{interval(ref[k], COLUMNS[k]) if k in ref else '-':>30}" for k in COLUMNS))
    print("d_mAh: usable capacity minus room_balancing's on the same packs [mAh]; arms:")
    described = {"none": "the config as it is", "all": "every change above together"}
    for arm in rows:
        print(f"  {arm}: {CHANGES[arm].what if arm in CHANGES else described.get(arm, 'these changes together')}")
    if args.out is not None:
        untuned = {arm: arm_config(untuned_raw, args.algo, args.steps, args.packs, o) for arm, o in planned.items()}
        hyperparams = hyperparams_table(args.algo, configs, tuned, untuned)
        write_tables(args.out, args.algo, key, rows, ref, seed_rows, hyperparams)
        print(
            f"tables: {args.out}/{args.algo}.csv, {args.algo}_seeds.csv, {args.algo}_hyperparams.csv", file=sys.stderr
        )
        # without --compare-with the table holds its header only: a workflow output of every bench
        table = (
            compare_table(seed_rows, args.compare_with, args.compare_arm)
            if args.compare_with is not None
            else pd.DataFrame(columns=["algo", "arm", "versus", "metric", "mean_diff", "ci_low", "ci_high", "n_seeds"])
        )
        table.to_csv(args.out / f"{args.algo}_compare.csv", index=False, float_format="%.6g")
        if args.compare_with is not None:
            print(table.to_string(index=False))


if __name__ == "__main__":
    main()
