"""The results contract: the columns of every file one stage writes and another reads.

``metrics.csv`` (evaluate, one row per episode), ``traces.csv`` (evaluate, one row per decision),
``summary.csv`` (aggregate, one row per policy x profile x scenario x metric) and the training
``evaluations.npz`` (train) are declared here once, with units, and read back here with one-line
errors (:mod:`bmsrl.tables`). Every row carries its labels (:data:`LABELS`), so no stage recovers
policy, profile, scenario or seed from a file's path. The metrics are defined in ``docs/model.md``.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bmsrl.errors import UserError
from bmsrl.tables import check_within, read_table

#: Columns that say which run a row belongs to, in every metrics, traces and summary file.
LABELS: tuple[str, ...] = ("policy", "profile", "scenario", "seed")
#: The scenario of the plain evaluation (the configured env, no overrides).
DEFAULT_SCENARIO = "default"


@dataclass(frozen=True)
class Metric:
    """One per-episode quantity of ``metrics.csv`` (or one derived from them in the summary)."""

    name: str
    unit: str  #: "-" for dimensionless quantities and counts
    title: str  #: column header / axis label, without the unit
    fmt: str = ".4g"  #: number format in the Markdown summary
    #: "higher" / "lower" is better (the headline metrics compared against the baselines), or None
    better: str | None = None
    in_table: bool = False  #: a column of the per-profile tables of summary.md (narrow: the rest is in the CSVs)
    in_figure: bool = False  #: a panel of the metrics figure (besides the headline metrics)
    log_scale: bool = False  #: spans decades: drawn on a log axis
    optional: bool = False  #: may be empty (NaN) in a metrics file
    derived: bool = False  #: computed by the aggregate stage, not a column of metrics.csv
    #: a statistic of a seed's packs together (not a mean of per-episode values): no per-episode
    #: pairing (``prob_improvement``) and no per-episode value
    per_seed: bool = False
    #: the smallest value a metrics file may hold (0: a capacity, energy, time, variance or count);
    #: None: any (a return, a share below no balancing's)
    minimum: float | None = None

    @property
    def header(self) -> str:
        return f"{self.title} [{self.unit}]"


#: Every metric, in summary order. Definitions: docs/model.md, section "Metrics".
METRICS: tuple[Metric, ...] = (
    Metric("usable_capacity_mah", "mAh", "Usable capacity", ".0f", better="higher", in_table=True, minimum=0),
    Metric(
        "recovered_share", "-", "Share of recoverable capacity", ".2f", better="higher", in_table=True, optional=True
    ),
    Metric(
        "recovered_share_of_sums",
        "-",
        "Share, ratio of sums",
        ".3f",
        better="higher",
        derived=True,
        per_seed=True,
    ),
    Metric("optimality_gap_mah", "mAh", "Gap to the bound", ".1f", derived=True),
    Metric("capacity_bound_mah", "mAh", "Recoverable-capacity bound", ".0f", minimum=0),
    Metric("no_balancing_capacity_mah", "mAh", "Capacity without balancing", ".0f", minimum=0),
    Metric("charge_accepted_mah", "mAh", "Charge accepted", ".0f", minimum=0),
    Metric("final_soc_var", "-", "Final SoC variance", ".2e", minimum=0),
    Metric("mean_soc_var", "-", "Mean SoC variance", ".2e", better="lower", in_table=True, log_scale=True, minimum=0),
    Metric("final_soc_std_pct", "%", "Final SoC std", ".2f", minimum=0),
    Metric("final_soc_spread_pct", "%", "Final SoC spread", ".2f", better="lower", in_table=True, minimum=0),
    Metric("switch_changes", "-", "Switch changes", ".1f", better="lower", in_table=True, minimum=0),
    Metric("shunt_energy_wh", "Wh", "Shunt energy", ".3f", better="lower", in_table=True, minimum=0),
    Metric("time_to_balance_s", "s", "Time to balance", ".0f", optional=True, minimum=0),
    Metric("balanced_fraction", "-", "Balanced episodes", ".2f", derived=True),
    Metric(
        "time_to_spread_1pct_s",
        "s",
        "Time to spread < 1 %",
        ".0f",
        in_table=True,
        optional=True,
        in_figure=True,
        minimum=0,
    ),
    Metric("settled_fraction", "-", "Episodes settled < 1 %", ".2f", derived=True),
    Metric("invalid_actions", "-", "Invalid actions", minimum=0),
    Metric("episode_steps", "-", "Decisions per episode", minimum=0),
    Metric("terminated_fraction", "-", "Terminated episodes", derived=True),
    Metric("total_reward", "-", "Return"),
)
METRIC = {m.name: m for m in METRICS}
#: The metrics compared against the baselines, with their direction.
HEADLINE: tuple[Metric, ...] = tuple(m for m in METRICS if m.better is not None)
#: The panels of the metrics figure: the headline metrics, then the others marked ``in_figure``.
FIGURE: tuple[Metric, ...] = HEADLINE + tuple(m for m in METRICS if m.in_figure and m not in HEADLINE)
#: A time that is only defined when something happened -> (the derived fraction of episodes where it did
#: (aggregate: 1 where the time is not NaN), the words for "it never happened" in tables and figures).
OCCURRENCE: dict[str, tuple[str, str]] = {
    "time_to_balance_s": ("balanced_fraction", "never balanced"),
    "time_to_spread_1pct_s": ("settled_fraction", "never settled"),
}
#: Optional per-episode metrics (may be empty in metrics.csv).
OPTIONAL: tuple[str, ...] = tuple(m.name for m in METRICS if m.optional)

#: Columns of metrics.csv, in file order: labels, episode bookkeeping, the per-episode metrics.
#: (``terminated`` is the per-episode flag the summary's ``terminated_fraction`` averages)
METRICS_COLUMNS: tuple[str, ...] = (
    *LABELS,
    "episode",
    "eval_seed",
    *(
        "terminated" if m.name == "terminated_fraction" else m.name
        for m in METRICS
        if not m.derived or m.name == "terminated_fraction"
    ),
)
#: What the seeds of a row replicate (column ``interval_over`` of summary, paired and profiles tables) ->
#: its words in summary.md: a trained agent and its packs per seed; for a deterministic controller (both
#: policies, in a paired row), the same controller in every seed, only the seed's set of evaluation packs
#: (pack-sampling uncertainty, not training variance); a single seed gives no interval.
INTERVAL_OVER: dict[str, str] = {
    "seeds": "training seeds",
    "pack sets": "pack sets only (deterministic)",
    "one seed": "one seed: no interval",
}
#: What a run is (config key ``run_kind``, the schema's enum is completed from this): kind -> the words the
#: summary and the report open with.
RUN_KINDS: dict[str, str] = {
    "study": "Study run: the agents train to the configured budgets; its numbers are results.",
    "smoke": (
        "Smoke run (quick or test config): every stage runs, with budgets far too small for the agents to "
        "learn; its numbers check the pipeline and are not results."
    ),
}
#: Columns of summary.csv (and of robustness.csv, its rows of :data:`ROBUSTNESS_METRICS`).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "policy",
    "profile",
    "scenario",
    "metric",
    "unit",
    "mean",
    "ci_low",
    "ci_high",
    "interval_over",
    "n_seeds",
    "n_episodes",
)
#: Columns of paired.csv: per policy x baseline x profile x scenario x headline metric, statistics over
#: seeds of the per-seed differences policy - baseline on the same packs (docs/model.md, "Statistics");
#: ``best_controller``: whether the baseline is the best controller of that profile and scenario
#: (:data:`BEST_CONTROLLER_METRIC`).
PAIRED_COLUMNS: tuple[str, ...] = (
    "policy",
    "baseline",
    "profile",
    "scenario",
    "metric",
    "unit",
    "better",
    "mean_diff",
    "ci_low",
    "ci_high",
    "baseline_mean",
    "pct_diff",
    "pct_ci_low",
    "pct_ci_high",
    "prob_improvement",
    "prob_ci_low",
    "prob_ci_high",
    "interval_over",
    "n_seeds",
    "n_episodes",
    "best_controller",
)
#: The metric that names the best controller of a profile and scenario (paired.csv's ``best_controller``:
#: the baseline with the highest mean) and that the paired figure draws: the capacity the pack delivers,
#: defined in every scenario (the share of the recoverable capacity is not where the bound does not hold,
#: e.g. on a drive-cycle discharge).
BEST_CONTROLLER_METRIC = "usable_capacity_mah"
#: Columns of profiles.csv: per policy x profile x scenario x threshold ``tau``, the fraction of packs whose
#: ``recovered_share`` is at least ``tau`` (mean over seeds of the per-seed fraction, t interval over seeds).
PROFILE_COLUMNS: tuple[str, ...] = (
    "policy",
    "profile",
    "scenario",
    "tau",
    "fraction",
    "ci_low",
    "ci_high",
    "interval_over",
    "n_seeds",
    "n_episodes",
)
#: The thresholds of the performance profiles [-]: share of the recoverable capacity from 0 to 1 in 0.005.
PROFILE_TAUS: np.ndarray = np.round(np.linspace(0.0, 1.0, 201), 3)
#: Metrics of robustness.csv and the robustness figure, per scenario.
ROBUSTNESS_METRICS: tuple[str, ...] = ("recovered_share", "usable_capacity_mah", "switch_changes")

#: Per-cell column families of traces.csv: prefix -> (unit, meaning); cell i is ``{prefix}{i}``, i from 1.
TRACE_CELL_COLUMNS: dict[str, tuple[str, str]] = {
    "soc_": ("-", "state of charge at the end of the interval"),
    "voltage_v_": ("V", "terminal voltage at the end of the interval"),
    "current_a_": ("A", "mean cell current over the interval, shunt current included (> 0 discharges)"),
    "switch_": ("-", "shunt closed (1) or open (0) during the interval"),
    "shunt_power_w_": ("W", "shunt power at the end of the interval"),
}
#: Pack-level columns of traces.csv after the labels and before the per-cell families.
TRACE_PACK_COLUMNS: dict[str, tuple[str, str]] = {
    "episode": ("-", "evaluation episode"),
    "step": ("-", "decision index; 0 is the reset state"),
    "time_s": ("s", "time at the end of the interval"),
    "phase": ("-", "load-profile phase at the end of the interval"),
    "pack_current_a": ("A", "mean pack current over the interval (> 0 discharges)"),
    "cycle": (
        "-",
        "cycle of the profile the interval belongs to (env.cycles; 0 first): the one it ended, if it ended one",
    ),
    "cycle_discharged_mah": (
        "mAh",
        "charge the pack has delivered in that cycle by the end of the interval; a cycle's last row holds the "
        "cycle's delivered charge (cycle_capacities_mah), the last cycle's is usable_capacity_mah",
    ),
}


def trace_columns(n_cells: int) -> list[str]:
    """Columns of traces.csv for a pack of ``n_cells`` cells."""
    cells = range(1, n_cells + 1)
    return [*LABELS, *TRACE_PACK_COLUMNS] + [f"{p}{i}" for p in TRACE_CELL_COLUMNS for i in cells] + ["reward"]


def cycle_capacities_mah(traces: pd.DataFrame) -> pd.DataFrame:
    """Each traced episode's delivered charge per cycle [mAh] from a ``traces.csv`` frame: one row per
    label, episode and cycle, ``capacity_mah`` the ``cycle_discharged_mah`` of the cycle's last step."""
    keys = [*LABELS, "episode", "cycle"]
    last = traces.sort_values("step", kind="stable").groupby(keys, sort=True).tail(1)
    out = last[keys + ["cycle_discharged_mah"]].rename(columns={"cycle_discharged_mah": "capacity_mah"})
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Readers

_METRICS_FILE = "metrics file"
_TRACES_FILE = "traces file"
_SUMMARY_FILE = "summary table"
_PROFILES_FILE = "performance-profile table"
_PAIRED_FILE = "paired table"
_EVALS_FILE = "evaluations file"


def _integer_column(frame: pd.DataFrame, name: str, kind: str, path) -> None:
    values = frame[name].to_numpy()
    bad = np.flatnonzero(values != np.round(values))
    if bad.size:
        raise UserError(
            f"{kind} {path}, line {frame.index[bad[0]]}, column {name!r}: {values[bad[0]]:g} is not an integer"
        )
    frame[name] = values.astype(np.int64)


def read_metrics(path: str | os.PathLike) -> pd.DataFrame:
    """One validated ``metrics.csv``; column ``source`` = path."""
    numeric = [c for c in METRICS_COLUMNS if c not in (*LABELS, *OPTIONAL, "terminated")]
    frame = read_table(
        path,
        kind=_METRICS_FILE,
        text=("policy", "profile", "scenario"),
        numeric=("seed", *numeric),
        optional_numeric=OPTIONAL,
        boolean=("terminated",),
    )
    for name in ("seed", "episode"):
        _integer_column(frame, name, _METRICS_FILE, path)
    for metric in METRICS:
        if metric.minimum is not None and not metric.derived:  # a negative capacity would average in silently
            check_within(
                frame,
                metric.name,
                metric.minimum,
                np.inf,
                kind=_METRICS_FILE,
                path=path,
                hint=f" ({metric.header} cannot be below {metric.minimum:g}: a damaged or hand-edited file)",
            )
    frame["source"] = str(path)
    return frame


def read_traces(path: str | os.PathLike, prefixes=(), numeric=()) -> pd.DataFrame:
    """Episode 0 of a ``traces.csv``, sorted by step, with ``time_h`` [h] added; labels in ``attrs``.

    ``prefixes`` are the per-cell column families needed (``"soc_"``, ...), ``numeric`` further
    numeric columns (``"pack_current_a"``); other columns are not checked.
    """
    frame = read_table(
        path,
        kind=_TRACES_FILE,
        text=("policy", "profile", "scenario", "phase"),
        numeric=("seed", "episode", "step", "time_s", *numeric),
        cell_prefixes=prefixes,
    )
    for name in LABELS:
        values = frame[name].unique()
        if len(values) != 1:
            raise UserError(
                f"{_TRACES_FILE} {path}, column {name!r}: holds several values "
                f"({', '.join(map(str, values[:3]))}); one file is one run"
            )
    episode = frame[frame["episode"] == 0].sort_values("step", kind="stable")
    if episode.empty:
        found = ", ".join(f"{e:g}" for e in sorted(frame["episode"].unique())[:5])
        raise UserError(f"{_TRACES_FILE} {path}: no rows of episode 0 (episodes found: {found})")
    if len(episode) < 2:
        raise UserError(f"{_TRACES_FILE} {path}: episode 0 has a single row; nothing to plot over time")
    episode = episode.copy()
    episode["time_h"] = episode["time_s"] / 3600.0
    episode.attrs.update(source=str(path), **{name: episode[name].iloc[0] for name in LABELS})
    episode.attrs["seed"] = int(episode.attrs["seed"])
    return episode


def read_summary(path: str | os.PathLike, needed=()) -> pd.DataFrame:
    """The aggregate stage's ``summary.csv``, checked to hold rows for the ``needed`` metrics."""
    frame = read_table(
        path,
        kind=_SUMMARY_FILE,
        text=("policy", "profile", "scenario", "metric"),
        optional_numeric=("mean", "ci_low", "ci_high"),
    )
    missing = [m for m in needed if m not in set(frame["metric"])]
    if missing:
        raise UserError(f"{_SUMMARY_FILE} {path}: no rows for metric {missing[0]!r} (column 'metric')")
    return frame


def read_profiles(path: str | os.PathLike) -> pd.DataFrame:
    """The aggregate stage's ``profiles.csv`` (columns :data:`PROFILE_COLUMNS`)."""
    return read_table(
        path,
        kind=_PROFILES_FILE,
        text=("policy", "profile", "scenario", "interval_over"),
        numeric=("tau", "n_seeds", "n_episodes"),
        optional_numeric=("fraction", "ci_low", "ci_high"),
    )


def read_paired(path: str | os.PathLike, needed=()) -> pd.DataFrame:
    """The aggregate stage's ``paired.csv`` (columns :data:`PAIRED_COLUMNS`), checked to hold rows for the
    ``needed`` metrics."""
    frame = read_table(
        path,
        kind=_PAIRED_FILE,
        text=("policy", "baseline", "profile", "scenario", "metric", "interval_over"),
        numeric=("n_seeds", "n_episodes"),
        optional_numeric=("mean_diff", "ci_low", "ci_high", "baseline_mean"),
        boolean=("best_controller",),
    )
    missing = [m for m in needed if m not in set(frame["metric"])]
    if missing:
        raise UserError(f"{_PAIRED_FILE} {path}: no rows for metric {missing[0]!r} (column 'metric')")
    return frame


#: The arrays of the training ``evaluations.npz`` (train stage; :func:`read_evaluations`): name ->
#: shape and unit. ``capacity_mah`` is optional: files written before it existed lack it, and their
#: training curves are drawn without the capacity panel.
EVALUATIONS_ARRAYS: dict[str, str] = {
    "algo": "() text: the algorithm's registry name",
    "seed": "() integer: the training seed",
    "timesteps": "(evaluations,) env steps at each evaluation, strictly increasing",
    "results": "(evaluations, episodes) each evaluation episode's return [reward units]",
    "ep_lengths": "(evaluations, episodes) each evaluation episode's decisions [-]",
    "capacity_mah": "(evaluations, episodes) optional: the usable capacity U of the pack at each "
    "evaluation episode's end, i.e. the capacity of its next discharge after a full charge "
    "(bmsrl.env.BalancingTask.usable_capacity_ah) [mAh]; NaN for evaluations carried over from a "
    "file without it. A return is not a capacity: on the training profile bleeding during the "
    "discharge earns nothing, though it raises the next discharge's capacity",
}


def write_evaluations(path: Path, source: Path, algo: str, seed: int) -> None:
    """Copy SB3's EvalCallback file ``source`` to ``path`` with the run's labels ``algo`` and ``seed`` added."""
    with np.load(source) as data:
        arrays = {name: data[name] for name in data.files}
    arrays.update(algo=np.array(algo), seed=np.array(seed))
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def read_evaluations(path: str | os.PathLike) -> dict:
    """Labels ``algo``, ``seed`` and validated arrays ``timesteps`` (n,), ``results`` (n, episodes)
    and ``capacity_mah`` (n, episodes), or ``None`` for a file without it (:data:`EVALUATIONS_ARRAYS`)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name]) for name in data.files}
    except FileNotFoundError:
        raise UserError(f"{_EVALS_FILE} {path}: file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # empty, truncated, not an npz
        raise UserError(f"{_EVALS_FILE} {path}: not a readable .npz file ({exc}); rerun the train stage") from None
    for name in ("timesteps", "results", "algo", "seed"):
        if name not in arrays:
            raise UserError(f"{_EVALS_FILE} {path}: missing array {name!r} (has {', '.join(map(repr, arrays))})")
    steps = arrays["timesteps"].astype(np.float64).reshape(-1)
    results = arrays["results"].astype(np.float64)
    if results.ndim == 1:
        results = results[:, None]
    if steps.size == 0:
        raise UserError(f"{_EVALS_FILE} {path}: no evaluations recorded (empty 'timesteps')")
    if results.ndim != 2 or results.shape[0] != steps.size or results.shape[1] == 0:
        raise UserError(
            f"{_EVALS_FILE} {path}: 'results' has shape {arrays['results'].shape}, expected "
            f"({steps.size}, n_eval_episodes) to match 'timesteps'"
        )
    if not (np.isfinite(steps).all() and np.isfinite(results).all()):
        raise UserError(f"{_EVALS_FILE} {path}: 'timesteps' or 'results' holds NaN or infinite values")
    if np.any(np.diff(steps) <= 0):
        raise UserError(f"{_EVALS_FILE} {path}: 'timesteps' is not strictly increasing")
    capacity = None
    if "capacity_mah" in arrays:
        capacity = arrays["capacity_mah"].astype(np.float64)
        if capacity.ndim == 1:
            capacity = capacity[:, None]
        if capacity.shape != results.shape:
            raise UserError(
                f"{_EVALS_FILE} {path}: 'capacity_mah' has shape {arrays['capacity_mah'].shape}, expected "
                f"{results.shape} to match 'results'"
            )
        if np.isinf(capacity).any() or (capacity < 0).any():
            raise UserError(f"{_EVALS_FILE} {path}: 'capacity_mah' holds negative or infinite values")
    return {
        "algo": str(arrays["algo"]),
        "seed": int(arrays["seed"]),
        "timesteps": steps,
        "results": results,
        "capacity_mah": capacity,
    }


def load_evaluations(paths: Sequence[str | os.PathLike]) -> dict[tuple[str, int], dict]:
    """``{(algo, seed): arrays}`` for every evaluations file; refuses a run given twice."""
    if not paths:
        raise UserError("no evaluations files given (--evaluations)")
    runs: dict[tuple[str, int], dict] = {}
    sources: dict[tuple[str, int], Path] = {}
    for path in paths:
        arrays = read_evaluations(path)
        key = (arrays["algo"], arrays["seed"])
        if key in runs:
            raise UserError(f"{_EVALS_FILE} {path}: run {key[0]} seed {key[1]} also given as {sources[key]}")
        runs[key], sources[key] = arrays, Path(path)
    return runs


# --------------------------------------------------------------------------------------------
# Tuned baseline settings (tune_baselines -> evaluate)

_SETTINGS_FILE = "baseline settings file"


def read_baseline_settings(path: str | os.PathLike, baseline: str, keys: Sequence[str]) -> dict[str, float]:
    """``{key: value}`` of the baseline's settings ``keys`` (its :attr:`bmsrl.baselines.BaselineSpec.settings`,
    e.g. threshold and hysteresis) from ``results/baselines/{baseline}.yaml`` (written by
    ``bmsrl tune-baselines``); refuses a file of another baseline or with other keys."""
    path = Path(path)
    record = _read_yaml_record(path, _SETTINGS_FILE, "run `bmsrl tune-baselines`")
    if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
        raise UserError(f"{_SETTINGS_FILE} {path}: no 'settings' mapping")
    if record.get("baseline") != baseline:
        raise UserError(f"{_SETTINGS_FILE} {path}: holds the settings of {record.get('baseline')!r}, not {baseline!r}")
    settings = record["settings"]
    if set(settings) != set(keys):
        raise UserError(f"{_SETTINGS_FILE} {path}: settings has keys {sorted(settings)}, expected {list(keys)}")
    for key, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise UserError(f"{_SETTINGS_FILE} {path}: settings.{key}: {value!r} is not a finite number")
    return {key: float(settings[key]) for key in keys}


# --------------------------------------------------------------------------------------------
# Training reference lines (reference -> plot training)

_REFERENCES_FILE = "training references file"
#: Columns of training_references.csv: per baseline x training seed x training-evaluation pack, the
#: episode's return [reward units] on the packs the train stage evaluates on, and the pack's
#: capacity at the episode's end [mAh], as ``capacity_mah`` of evaluations.npz (:data:`EVALUATIONS_ARRAYS`).
REFERENCE_COLUMNS: tuple[str, ...] = ("policy", "seed", "episode", "return", "capacity_mah")


def read_references(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """``{baseline: {"return": mean return, "capacity_mah": mean capacity [mAh]}}`` over the rows of
    ``training_references.csv`` (every seed's packs alike: each seed has ``training.eval_episodes``
    rows per baseline)."""
    frame = read_table(
        path, kind=_REFERENCES_FILE, text=("policy",), numeric=("seed", "episode", "return", "capacity_mah")
    )
    return {
        name: {"return": float(rows["return"].mean()), "capacity_mah": float(rows["capacity_mah"].mean())}
        for name, rows in frame.groupby("policy", sort=False)
    }


_TUNED_FILE = "tuned hyperparameters file"


def read_tuned_hyperparams(path: str | os.PathLike, algo: str) -> dict:
    """``{"hyperparams": {...}, "study": ..., "trial": ...}`` of ``results/tuning/{algo}.yaml`` (written
    by ``bmsrl search summary``): the best trial's sampled hyperparameters, which training merges over
    ``training.hyperparams[algo]``; refuses a file of another algorithm."""
    path = Path(path)
    record = _read_yaml_record(path, _TUNED_FILE, "run the search: snakemake search")
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("hyperparams"), dict)
        or not isinstance(record.get("best"), dict)
    ):
        raise UserError(f"{_TUNED_FILE} {path}: no 'hyperparams' and 'best' mappings")
    if record.get("algo") != algo:
        raise UserError(f"{_TUNED_FILE} {path}: holds the hyperparameters of {record.get('algo')!r}, not {algo!r}")
    return {"hyperparams": record["hyperparams"], "study": record.get("study"), "trial": record["best"].get("trial")}


def _read_yaml_record(path: Path, what: str, hint: str):
    """The YAML document of a stage's record file, or one error naming ``what`` and ``path``."""
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} {path}: file not found ({hint})") from None
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{what} {path}: not readable YAML ({exc})") from None
