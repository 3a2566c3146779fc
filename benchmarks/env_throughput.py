"""Environment throughput: env-steps/s of the single Gymnasium env and of the batched VecEnv.

    OMP_NUM_THREADS=1 python benchmarks/env_throughput.py [--steps 20000] [--n-envs 64] [--repeats 1]
        [--compare-src DIR]

Random actions over whole episodes (auto-reset included), after a warm-up that compiles the
integrator. One "env-step" is one 30 s decision interval of one pack; the figures are env-steps
per second of the process's CPU time (``time.process_time``: on an idle machine the wall-clock
rate, on a shared one the figure other jobs' load inflates least). Prints one line per case:
the default setting, then the realistic family (config/realistic.yaml: drive-cycle discharge,
estimated state, shunt limit; docs/model.md), whose drive cycle holds each 1 s value of its trace
and so takes more sub-steps per decision. With ``--repeats N`` each case is the median of N runs.

``--compare-src DIR`` times every case with this revision's ``src`` and with ``DIR`` on
``PYTHONPATH``, the ``src`` folder of another revision (benchmarks/revisions.py), each run a fresh
process: in each of ``--repeats`` rounds (default then 5) every case runs once per revision, the
two back to back (the order flips every round, so a drift of the machine's load meets both alike).
It prints per case the medians of both, and the median of the rounds' ratios this revision / that
one (each a pair of runs seconds apart: the ratio a shared machine's changing load blurs least). A case the other revision cannot build (the realistic
family before it existed) is printed as missing there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from revisions import OTHER, ROOT, THIS, add_compare_src, revision_envs

import bmsrl
from bmsrl.config import load_config
from bmsrl.env import PassiveBalancingEnv
from bmsrl.task_config import task_kwargs
from bmsrl.vec_env import BatchedBalancingVecEnv

REALISTIC = ROOT / "config" / "realistic.yaml"
#: the cases, in print order: (name, realistic family?, batched?)
CASES = (
    ("single env (PassiveBalancingEnv)", False, False),
    ("batched env (BatchedBalancingVecEnv)", False, True),
    ("realistic family, single env", True, False),
    ("realistic family, batched env", True, True),
)


def realistic_kwargs() -> dict:
    """The realistic family's env arguments on the training profile (the shipped tables)."""
    cfg = load_config(REALISTIC)
    return task_kwargs(cfg, cfg["profiles"]["train"])


def single_env_steps_per_s(steps: int, **kwargs) -> float:
    env = PassiveBalancingEnv(**kwargs)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 32, steps)
    env.step(0)  # warm-up (JIT)
    start = time.process_time()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
    return steps / (time.process_time() - start)


def batched_env_steps_per_s(steps: int, n_envs: int, **kwargs) -> float:
    env = BatchedBalancingVecEnv(n_envs, **kwargs)
    env.seed(0)
    env.reset()
    n_calls = max(1, steps // n_envs)
    actions = np.random.default_rng(0).integers(0, 32, (n_calls, n_envs))
    env.step(actions[0])  # warm-up
    start = time.process_time()
    for a in actions:
        env.step(a)
    return n_calls * n_envs / (time.process_time() - start)


def measure(steps: int, n_envs: int, cases=CASES, missing_ok: bool = False) -> dict[str, float | None]:
    """env-steps per CPU second of each of ``cases`` in this process (the batched cases take 10 x
    ``steps``). With ``missing_ok`` a realistic case whose env cannot be built (a revision without
    the family) is None."""
    figures: dict[str, float | None] = {}
    for name, realistic, batched in cases:
        kwargs = {}
        if realistic:
            try:
                kwargs = realistic_kwargs()
                if missing_ok:  # build it once, so that a revision without the family fails here
                    single_env_steps_per_s(1, **kwargs)
            except Exception:  # noqa: BLE001  (the other revision: any failure to build is "missing")
                if not missing_ok:
                    raise
                figures[name] = None
                continue
        if batched:
            figures[name] = batched_env_steps_per_s(steps * 10, n_envs, **kwargs)
        else:
            figures[name] = single_env_steps_per_s(steps, **kwargs)
    return figures


def compare(args: argparse.Namespace) -> dict[str, dict[str, list[float | None]]]:
    """Every case's figures per revision, ``args.repeats`` rounds: in each, every case runs once per
    revision, each a fresh process, the two back to back (the order flips every round)."""
    envs = revision_envs(args.compare_src)
    runs: dict[str, dict[str, list[float | None]]] = {rev: {name: [] for name, *_ in CASES} for rev in envs}
    order = list(envs)
    for round_ in range(args.repeats):
        for index, (name, *_) in enumerate(CASES):
            for rev in order if round_ % 2 == 0 else order[::-1]:
                cmd = [sys.executable, __file__, "--steps", str(args.steps), "--n-envs", str(args.n_envs)]
                cmd += ["--json", str(index)] + (["--missing-ok"] if rev == OTHER else [])
                done = subprocess.run(cmd, env=envs[rev], cwd=ROOT, check=True, capture_output=True, text=True)
                child = json.loads(done.stdout.splitlines()[-1])
                if child["src"] != envs[rev]["PYTHONPATH"]:
                    raise SystemExit(
                        f"the {rev} revision's run imported bmsrl from {child['src']}, not {envs[rev]['PYTHONPATH']}"
                    )
                runs[rev][name].append(child["figures"][name])
        print(f"round {round_ + 1}/{args.repeats} done", file=sys.stderr)
    return runs


def median(values: list[float | None]) -> float | None:
    return None if not values or None in values else statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000, help="env-steps per single-env case (batched: 10x)")
    parser.add_argument("--n-envs", type=int, default=64, help="packs in the batched env")
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per case, medians (default 1; 5 with --compare-src)"
    )
    add_compare_src(parser)
    parser.add_argument("--json", type=int, metavar="CASE", help=argparse.SUPPRESS)  # a child: one case, as JSON
    parser.add_argument("--missing-ok", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for key in ("steps", "n_envs", "repeats"):
        value = getattr(args, key)
        if value is not None and value < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1, got {value}")
    if args.json is not None:  # the figure, and the src it timed (the parent checks it is the one it put on PYTHONPATH)
        src = str(Path(bmsrl.__file__).resolve().parents[1])
        figures = measure(args.steps, args.n_envs, [CASES[args.json]], args.missing_ok)
        print(json.dumps({"src": src, "figures": figures}))
        return
    label = {name: f"{name}{f' (N={args.n_envs})' if batched else ''}" for name, _, batched in CASES}
    width = max(len(text) for text in label.values()) + 1
    if args.compare_src is None:
        args.repeats = args.repeats or 1
        runs = [measure(args.steps, args.n_envs) for _ in range(args.repeats)]
        figures = {name: median([run[name] for run in runs]) for name, *_ in CASES}
        print(f"env-steps per CPU second, median of {args.repeats} run(s)")
        for name, *_ in CASES:
            print(f"{label[name] + ':':<{width}} {figures[name]:12,.0f}")
        single, batched = figures[CASES[0][0]], figures[CASES[1][0]]
        print(f"batched / single env: {batched / single:.1f}x")
        return
    args.repeats = args.repeats or 5
    runs = compare(args)
    print(
        f"env-steps per CPU second, {args.repeats} rounds, each case a fresh process per revision, medians; "
        f"other: {args.compare_src}"
    )
    print("ratio: the median of the rounds' this / other (each round's two runs back to back)")
    print(f"{'case':<{width}} {'this':>12} {'other':>12} {'ratio':>6}   ratio min-max   this min-max")
    for name, *_ in CASES:
        this, other = median(runs[THIS][name]), median(runs[OTHER][name])
        spread = f"{min(runs[THIS][name]):,.0f}-{max(runs[THIS][name]):,.0f}"
        if other is None:
            print(f"{label[name]:<{width}} {this:12,.0f} {'missing':>12} {'':>6}   {'':13}   {spread}")
            continue
        ratios = [a / b for a, b in zip(runs[THIS][name], runs[OTHER][name], strict=True)]
        print(
            f"{label[name]:<{width}} {this:12,.0f} {other:12,.0f} {statistics.median(ratios):6.2f}   "
            f"{min(ratios):5.2f}-{max(ratios):<7.2f}   {spread}"
        )


if __name__ == "__main__":
    main()
