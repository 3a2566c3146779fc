"""Time of evaluation jobs, process start included: `bmsrl evaluate` run as the workflow runs it (issue 22).

    OMP_NUM_THREADS=1 python benchmarks/eval_throughput.py [--repeats 3] [--seeds 10] [--compare-src DIR] [--realistic]

Every case is the whole command as a subprocess (Python start, imports, numba's cached kernels, the
policy's loading, the batched rollouts, the bound, metrics and traces written), timed as CPU time
(user + system of the job: the ``cpu_time`` of the workflow's benchmark files, what a shared
machine's load inflates least) and wall time, median of ``--repeats`` runs after one warm-up run (a
verdict job: one run).
Each is printed as a ratio to a yardstick measured in the same run, ``no_balancing`` on one pack of
one profile and scenario (a job's bare process start), and against issue 22's targets:

1. ``agent 100 packs``: a DQN on 100 packs of one profile and scenario (target: under 5 s);
2. ``verdict job POLICY``: every evaluate job of one seed of config/verdict.yaml (config/config.yaml +
   config/verdict.yaml: its agents, baselines and ``best_known``, each on every evaluation profile and
   scenario, ``evaluation.episodes`` packs, ``evaluation.best_known_episodes`` for ``best_known``);
3. ``verdict evaluation stage``: those jobs summed, times ``--seeds`` (default the verdict's): the
   whole 10-seed evaluation stage's job time (target: under 600 s);
4. with ``--realistic``: ``realistic best_known 1 pack``, the ``best_known`` job of one pack of
   config/realistic.yaml (config/config.yaml + config/realistic.yaml, scenario ``default``, both
   evaluation profiles, its ``evaluation.best_known_stride``), run once; the realistic workflow runs
   it for every seed and scenario. A revision whose schema has no ``best_known_stride`` runs without
   it (every decision looked ahead).

The agents are trained here for a few thousand env steps (their network's size, not their skill,
sets the inference cost); the baselines run with their configured settings (``baselines.tuned``
off, no tuning files; the same cost). ``--compare-src DIR`` also times every case with ``DIR`` on
``PYTHONPATH``, the ``src`` folder of another revision (``git archive REV src | tar -x -C /tmp/before``:
DIR is /tmp/before/src), and prints the ratio this revision / that one, same inputs, same sitting.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from revisions import OTHER, ROOT, THIS, add_compare_src, revision_envs

from bmsrl.baselines import evaluated_baselines
from bmsrl.config import load_workflow_config
from bmsrl.policies import BEST_KNOWN

#: issue 22's targets [s]: one agent's 100 packs incl. process start; the 10-seed evaluation stage
AGENT_TARGET_S, STAGE_TARGET_S = 5.0, 600.0
REALISTIC = "realistic best_known 1 pack"


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(CPU [s], wall [s]) of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def median_time(cmd: list[str], env: dict, repeats: int) -> tuple[float, float]:
    """Medians of ``repeats`` runs; with more than one, after a warm-up run (numba's cache, the file
    system; the first case warms them for the cases after it)."""
    if repeats > 1:
        timed(cmd, env)
    runs = [timed(cmd, env) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of the small cases (median); a verdict job runs once"
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds of the stage estimate (default: the verdict's)")
    add_compare_src(parser)
    parser.add_argument(
        "--realistic", action="store_true", help="also time best_known on one pack of config/realistic.yaml (minutes)"
    )
    args = parser.parse_args(argv)
    verdict = load_workflow_config([ROOT / "config/config.yaml", ROOT / "config/verdict.yaml"])
    seeds = args.seeds or len(verdict["seeds"])
    ev = verdict["evaluation"]
    profiles, scenarios = verdict["profiles"]["evaluate"], list(ev["scenarios"])
    baselines = evaluated_baselines(verdict["baselines"]["tuned"])
    stage = [*verdict["algos"], *baselines, *([BEST_KNOWN] if ev["best_known_episodes"] else [])]
    envs = revision_envs(args.compare_src)
    bmsrl = [sys.executable, "-m", "bmsrl.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = {"training": {"n_envs": 8, "eval_interval": 2048, "eval_episodes": 1}}
        models = {}
        for algo in verdict["algos"]:
            (tmp / f"train_{algo}.yaml").write_text(
                yaml.safe_dump({**small, "training": {**small["training"], "total_steps": {algo: 4096}}})
            )
            subprocess.run([*bmsrl, "train", "--config", str(tmp / f"train_{algo}.yaml"), "--algo", algo, "--seed", "1",
                            "--out", str(tmp / algo)], check=True, env=envs[THIS], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            models[algo] = ["--model", str(tmp / algo / "best_model.zip")]
        one = tmp / "one.yaml"  # one profile and scenario, the default config's
        one.write_text(
            yaml.safe_dump({"evaluation": {"episodes": 1, "trace_episodes": 1}, "baselines": {"tuned": False}})
        )
        hundred = tmp / "hundred.yaml"
        hundred.write_text(
            yaml.safe_dump({"evaluation": {"episodes": 100, "trace_episodes": 1}, "baselines": {"tuned": False}})
        )
        out = iter(range(10**6))

        def job(policy: str, cfg: Path, grouped: bool) -> list[str]:
            where = (
                ["--profile", *profiles, "--scenario", *scenarios]
                if grouped
                else ["--profile", "charge-rest-discharge"]
            )
            target = str(tmp / f"out{next(out)}" / ("{profile}/{scenario}" if grouped else ""))
            return [*bmsrl, "evaluate", "--config", str(cfg), "--policy", policy, *where, "--seed", "1",
                    "--out", target, *models.get(policy, [])]  # fmt: skip

        def written(cfg: dict, name: str, src: str) -> Path:
            """``cfg`` as a file for revision ``src``: without ``evaluation.best_known_stride`` where its
            schema has no such key (a revision before it: every decision looked ahead, the key's default)."""
            if (
                "best_known_stride:"
                not in (Path(envs[src]["PYTHONPATH"]) / "bmsrl/schemas/config.schema.yaml").read_text()
            ):
                cfg = {**cfg, "evaluation": {k: v for k, v in cfg["evaluation"].items() if k != "best_known_stride"}}
            path = tmp / f"{name}_{src}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            return path

        # the verdict's evaluation, its baselines' configured settings
        shape = {**verdict, "baselines": {**verdict["baselines"], "tuned": False}}
        realistic = load_workflow_config([ROOT / "config/config.yaml", ROOT / "config/realistic.yaml"])
        realistic["baselines"] = {**realistic["baselines"], "tuned": False}
        realistic["evaluation"] = {**realistic["evaluation"], "best_known_episodes": 1}
        commands = {}
        for src in envs:
            commands[src] = {
                "yardstick: no_balancing 1 pack": (job("no_balancing", one, False), args.repeats),
                f"agent 100 packs ({verdict['algos'][0]})": (job(verdict["algos"][0], hundred, False), args.repeats),
            }
            verdict_cfg = written(shape, "verdict", src)
            commands[src].update({f"verdict job {policy}": (job(policy, verdict_cfg, True), 1) for policy in stage})
            if args.realistic:
                cmd = [*bmsrl, "evaluate", "--config", str(written(realistic, "realistic", src)), "--policy",
                       BEST_KNOWN, "--profile", *profiles, "--scenario", "default", "--seed", "1",
                       "--out", str(tmp / f"out{next(out)}" / "{profile}")]  # fmt: skip
                commands[src][REALISTIC] = (cmd, 1)
        times = {
            src: {name: median_time(cmd, envs[src], n) for name, (cmd, n) in commands[src].items()} for src in envs
        }
    yard = times[THIS]["yardstick: no_balancing 1 pack"][0]
    print(f"bmsrl evaluate, process start included; CPU and wall time [s] (medians of {args.repeats} runs, a")
    print(f"verdict job once); 'x yard': CPU / the yardstick's; verdict shape: {len(profiles)} profiles x "
          f"{len(scenarios)} scenarios, {ev['episodes']} packs each ({ev['best_known_episodes']} for best_known)")  # fmt: skip
    header = f"{'case':<34} {'CPU':>7} {'wall':>7} {'x yard':>7}"
    if OTHER in times:
        header += f" {'CPU other':>10} {'this/other':>10}"
    print(header)
    for name in times[THIS]:
        cpu, wall = times[THIS][name]
        line = f"{name:<34} {cpu:7.2f} {wall:7.2f} {cpu / yard:7.2f}"
        if OTHER in times:
            line += f" {times[OTHER][name][0]:10.2f} {cpu / times[OTHER][name][0]:10.2f}"
        print(line)
    agent = times[THIS][f"agent 100 packs ({verdict['algos'][0]})"][0]
    print(f"agent 100 packs: {agent:.2f} s CPU = {agent / AGENT_TARGET_S:.2f} x the {AGENT_TARGET_S:g} s target")
    for src in times:
        per_seed = sum(times[src][f"verdict job {policy}"][0] for policy in stage)
        label = "this revision" if src == THIS else f"{args.compare_src}"
        print(
            f"verdict evaluation stage ({label}): {len(stage)} jobs per seed, {per_seed:.1f} s CPU per seed x {seeds} "
            f"seeds = {seeds * per_seed:.0f} s of job time = {seeds * per_seed / STAGE_TARGET_S:.2f} x the "
            f"{STAGE_TARGET_S:g} s target"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
