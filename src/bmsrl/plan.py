"""The run plan the workflow prints before its jobs start: where the outputs go, what kind of run it is,
which agents it trains with which budgets, and how long that takes at the measured throughput.

The throughput is each algorithm's :attr:`bmsrl.algos.AlgoSpec.steps_per_s` (measured once, recorded in
the registry); nothing else here is a measurement. ``workflow/rules/common.smk`` calls
:func:`run_plan` from Snakemake's ``onstart`` with the training jobs the DAG will run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bmsrl.algos import ALGOS
from bmsrl.results import RUN_KINDS


def _duration(seconds: float) -> str:
    """``seconds`` in words a person plans with: minutes below two hours, else hours (and days)."""
    minutes = seconds / 60
    if minutes < 1:
        return "under 1 min"
    if minutes < 120:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours:.0f} h ({hours / 24:.1f} days)"


def training_seconds(algo: str, steps: int) -> float | None:
    """Seconds one training run of ``steps`` env steps takes at ``algo``'s measured throughput [s];
    ``None`` if it was not measured."""
    rate = ALGOS[algo].steps_per_s
    return None if rate is None else steps / rate


def run_plan(cfg: Mapping[str, Any], to_train: Iterable[tuple[str, int]], cores: int) -> str:
    """The plan as text (one screen): ``cfg`` the validated config, ``to_train`` the ``(algo, seed)`` training
    runs the workflow will run (not those already done), ``cores`` the cores Snakemake may use."""
    to_train = sorted(set(to_train), key=lambda run: (list(ALGOS).index(run[0]), run[1]))
    root = cfg["results_root"]
    lines = [
        f"bmsrl run plan: outputs in {root}/ (config results_root)",
        f"  {RUN_KINDS[cfg['run_kind']]}",
    ]
    planned = [(a, s) for a in cfg["algos"] for s in cfg["seeds"]]
    if not to_train:
        lines.append(f"  training: nothing to train (all {len(planned)} planned runs are done or not needed)")
        return "\n".join(lines)
    lines.append(f"  training: {len(to_train)} of the {len(planned)} runs (algorithm x seed) of this config")
    total, longest, unmeasured = 0.0, 0.0, []
    for algo in dict.fromkeys(a for a, _ in to_train):
        seeds = [s for a, s in to_train if a == algo]
        steps = cfg["training"]["total_steps"][algo]
        each = training_seconds(algo, steps)
        spec = ALGOS[algo]
        if each is None:
            unmeasured.append(spec.label)
            timing = "throughput not measured"
        else:
            total += each * len(seeds)
            longest = max(longest, each)
            timing = f"{_duration(each)} each at {spec.steps_per_s:,.0f} env-steps/s"
        lines.append(f"    {spec.label:<14} seeds {', '.join(map(str, seeds)):<12} {steps:>12,} env steps  {timing}")
    threads = max(1, int(cfg["training"]["torch_threads"]))
    parallel = max(1, min(cores // threads, len(to_train)))
    wall = max(total / parallel, longest)
    estimate = f"  estimated training time (learning alone, without its evaluations): {_duration(total)} of jobs"
    if parallel > 1:
        estimate += f", about {_duration(wall)} with {parallel} side by side on {cores} cores"
    if unmeasured:
        estimate += f" (without {', '.join(unmeasured)})"
    lines.append(estimate)
    lines.append(
        "  (throughput measured on the 2-core reference machine, src/bmsrl/algos.py steps_per_s; "
        "stop with Ctrl-C, finished jobs are kept)"
    )
    return "\n".join(lines)
