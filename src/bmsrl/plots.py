"""Plot stage: publication figures from evaluation traces, training logs and the summary table.

Every figure is built with matplotlib's object-oriented :class:`~matplotlib.figure.Figure` API
(no pyplot, no GUI backend) inside a :func:`matplotlib.rc_context` holding the journal style
(8 pt fonts, embedded TrueType fonts), and saved as a vector PDF without a creation date, so the
same inputs give byte-identical files. Widths follow a journal layout: one column 3.5 in (89 mm),
full page 7.2 in (183 mm).

Each policy has one colour in every figure (:func:`policy_color`); the five cells of a pack are
drawn in an ordered colour-blind-safe sequence (:data:`CELL_COLORS`, cell 1 dark to cell 5 light).

Kinds (``bmsrl plot KIND --out FILE.pdf ...``):

``soc``, ``voltage``, ``current``, ``switching`` (``--traces``)
    Episode 0 of ``results/eval/{policy}/{profile}/{scenario}/seed{seed}/traces.csv`` files (the
    workflow passes the ``default`` scenario's), one panel per policy (columns) and profile (rows),
    the lowest seed of each policy x profile.
``training`` (``--evaluations``)
    ``results/checkpoints/{algo}_seed{seed}/evaluations.npz`` (Stable-Baselines3 EvalCallback):
    mean evaluation return and, below it, the next-discharge capacity [mAh] vs environment steps,
    mean over seeds with a 95 % t-interval band; the baselines' return and capacity on the same
    packs as labelled lines (``--references``).
``metrics`` (``--summary``)
    The aggregate stage's ``summary.csv``: headline metrics (and the other ``in_figure`` metrics) per
    policy and profile with CIs, default scenario.
``robustness`` (``--summary``)
    The aggregate stage's ``robustness.csv``: usable capacity and switch changes per scenario, policy and
    profile with CIs.
``profiles`` (``--profiles``)
    The aggregate stage's ``profiles.csv``: performance profiles, the fraction of packs whose share of the
    recoverable capacity is at least tau, per policy (mean over seeds, t-interval band), one panel per
    profile, default scenario.
``paired`` (``--paired``)
    The aggregate stage's ``paired.csv``: per scenario (rows) and profile (panels), every policy's usable
    capacity minus that of the best controller of that scenario and profile, on the same packs (mean over
    seeds of the per-seed difference, t interval over seeds).

Trace timing convention: row ``k`` of a traces file holds the state at ``time_s[k]``, the end of
decision interval ``k``; row 0 (``time_s = 0``) is the reset state. The switch state of row ``k``
(k >= 1) is the one applied during ``(time_s[k-1], time_s[k]]``.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bmsrl.config import add_config_arguments, config_from_args
from bmsrl.errors import UserError
from bmsrl.io import atomic_output, check_distinct, check_output
from bmsrl.policies import policy_color, policy_label, policy_order
from bmsrl.results import (
    BEST_CONTROLLER_METRIC,
    DEFAULT_SCENARIO,
    FIGURE,
    HEADLINE,
    METRIC,
    OCCURRENCE,
    ROBUSTNESS_METRICS,
    load_evaluations,
    read_paired,
    read_profiles,
    read_references,
    read_summary,
    read_traces,
)
from bmsrl.stats import training_curve
from bmsrl.tables import numbered_columns

#: Journal widths [in].
COLUMN_WIDTH_IN = 3.5
PAGE_WIDTH_IN = 7.2

#: Journal style used for every figure (applied with matplotlib.rc_context, restored afterwards).
STYLE: dict[str, object] = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 9,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "lines.linewidth": 1.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.5,
    "legend.frameon": False,
    "pdf.fonttype": 42,
    "svg.fonttype": "none",
    "savefig.dpi": 300,
    "axes.formatter.use_mathtext": True,
}

#: Cell colours, cell 1 first (viridis samples: ordered, colour-blind safe, print to grey).
CELL_COLORS: tuple[str, ...] = ("#440154", "#3b528b", "#21918c", "#5ec962", "#d8b000")
#: Background shading of the load-profile phases.
PHASE_COLORS: dict[str, str] = {"discharge": "#f4a582", "rest": "#737373", "charge": "#92c5de"}
PHASE_ALPHA = 0.3
PROFILE_ORDER: tuple[str, ...] = ("discharge-rest-charge", "charge-rest-discharge")

_TRACES = "traces file"


# --------------------------------------------------------------------------------------------
# Names, colours, style


def _profile_order(profiles) -> list[str]:
    names = set(profiles)
    return [p for p in PROFILE_ORDER if p in names] + sorted(names - set(PROFILE_ORDER))


def _styled(function: Callable) -> Callable:
    """Run a figure function inside the journal style context."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return function(*args, **kwargs)

    return wrapper


def save_figure(fig: Figure, out: str | os.PathLike) -> Path:
    """Save ``fig`` atomically; PDF (default) without a creation date, or PNG/SVG by suffix."""
    out = Path(out)
    fmt = out.suffix.lstrip(".").lower() or "pdf"
    if fmt not in ("pdf", "png", "svg"):
        raise UserError(f"output {out}: unsupported figure format {fmt!r} (use .pdf, .png or .svg)")
    metadata = {"CreationDate": None} if fmt == "pdf" else {"Date": None} if fmt == "svg" else None
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format=fmt, metadata=metadata)
    return out


def _wrap(text: str, width: int) -> str:
    """``text`` on lines of at most ``width`` characters, breaking at spaces and hyphens."""
    return textwrap.fill(text, width, break_on_hyphens=True)


def _caption(fig: Figure, text: str) -> None:
    """``text`` as the figure's caption below the panels, wrapped to the figure's width (8 pt text: about
    4.7 pt per character)."""
    width = int(fig.get_figwidth() * 72 / 4.7)
    fig.supxlabel("\n".join(_wrap(line, width) for line in text.split("\n")), fontsize=8, color="0.3")


# --------------------------------------------------------------------------------------------
# Inputs


def load_traces(
    paths: Sequence[str | os.PathLike], prefixes: Sequence[str], numeric: Sequence[str] = ()
) -> dict[tuple[str, str], pd.DataFrame]:
    """Episode 0 per (policy, profile), from the lowest seed given for each pair.

    The seed used is stored in ``frame.attrs["seed"]``. Raises a :class:`UserError` if no file
    is given or a path does not follow the evaluation layout.
    """
    if not paths:
        raise UserError("no traces files given (--traces)")
    traces: dict[tuple[str, str], pd.DataFrame] = {}
    for path in paths:
        frame = read_traces(path, prefixes, numeric)
        key = (frame.attrs["policy"], frame.attrs["profile"])
        if key not in traces or frame.attrs["seed"] < traces[key].attrs["seed"]:
            traces[key] = frame
    return traces


# --------------------------------------------------------------------------------------------
# Trace figures


def _phase_runs(frame: pd.DataFrame) -> list[tuple[str, float, float]]:
    """Contiguous phases as ``(phase, start_h, end_h)``; a run ends where the next one starts."""
    phase = frame["phase"].to_numpy()
    t = frame["time_h"].to_numpy()
    starts = np.flatnonzero(np.r_[True, phase[1:] != phase[:-1]])
    ends = np.r_[starts[1:], len(phase) - 1]
    return [(str(phase[s]), float(t[s]), float(t[e])) for s, e in zip(starts, ends) if t[e] > t[s]]


def _shade_phases(ax, frame: pd.DataFrame) -> None:
    for phase, start, end in _phase_runs(frame):
        if phase in PHASE_COLORS:
            ax.axvspan(start, end, color=PHASE_COLORS[phase], alpha=PHASE_ALPHA, lw=0, zorder=0)


def _phase_handles(traces: Mapping) -> list[Patch]:
    seen = {str(p) for frame in traces.values() for p in frame["phase"].unique()}
    return [
        Patch(facecolor=c, alpha=PHASE_ALPHA, edgecolor="none", label=f"{p} phase")
        for p, c in PHASE_COLORS.items()
        if p in seen
    ]


def _cell_handles(n_cells: int, **line_kw) -> list:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], color=CELL_COLORS[i % len(CELL_COLORS)], label=f"cell {i + 1}", **line_kw)
        for i in range(n_cells)
    ]


def _grid_layout(traces: Mapping[tuple[str, str], pd.DataFrame]) -> tuple[list[str], list[str]]:
    policies = policy_order({policy for policy, _ in traces})
    profiles = _profile_order({profile for _, profile in traces})
    return policies, profiles


def _panel_title(ax, policy: str, n_cols: int) -> None:
    """Policy name in its colour; two-word names wrap when panels are narrow (> 4 columns)."""
    label = policy_label(policy)
    if n_cols > 4:
        label = label.replace(" ", "\n")
    ax.set_title(label, color=policy_color(policy), fontweight="bold", loc="left")


def _time_ticks(ax, n_cols: int) -> None:
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(3 if n_cols > 4 else 4))


def _seed_note(traces: Mapping[tuple[str, str], pd.DataFrame]) -> str:
    """Which seed each panel shows (episode 0 of the lowest seed given per policy and profile)."""
    seeds = {key: frame.attrs.get("seed") for key, frame in traces.items()}
    if len(set(seeds.values())) == 1:
        return f"Episode 0 of training seed {next(iter(seeds.values()))} for every policy."
    per_policy = {}
    for (policy, _), seed in sorted(seeds.items()):
        per_policy.setdefault(policy, set()).add(seed)
    text = "; ".join(
        f"{policy_label(p)} {'/'.join(map(str, sorted(s)))}"
        for p, s in ((p, per_policy[p]) for p in policy_order(per_policy))
    )
    return f"Episode 0 of the lowest training seed given: {text}."


def _legend_columns(n_handles: int, per_row: int) -> int:
    """Columns for a figure legend of ``n_handles`` entries, at most ``per_row`` per row, rows balanced."""
    rows = -(-n_handles // per_row)
    return max(1, -(-n_handles // rows))


def _missing_note(traces: Mapping[tuple[str, str], pd.DataFrame]) -> str:
    """Caption words for the grid panels left out (a policy without a trace on a profile)."""
    policies, profiles = _grid_layout(traces)
    missing = [f"{policy_label(p)} on {q}" for q in profiles for p in policies if (p, q) not in traces]
    return f" No trace given (panel left out): {'; '.join(missing)}." if missing else ""


def _cell_grid_figure(
    traces: Mapping[tuple[str, str], pd.DataFrame],
    draw: Callable,
    ylabel: str,
    extra_handles: Sequence = (),
    panel_height_in: float = 1.55,
    note: str = "",
) -> Figure:
    """Policies in columns, profiles in rows; ``draw(ax, frame)`` fills one panel."""
    policies, profiles = _grid_layout(traces)
    n_rows, n_cols = len(profiles), len(policies)
    width = PAGE_WIDTH_IN if n_cols > 2 else COLUMN_WIDTH_IN * max(n_cols, 1) * 1.1
    fig = Figure(figsize=(min(width, PAGE_WIDTH_IN), 0.6 + panel_height_in * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True, sharey=True)  # one time axis
    n_cells = 0
    for r, profile in enumerate(profiles):
        for c, policy in enumerate(policies):
            ax = axes[r, c]
            frame = traces.get((policy, profile))
            if frame is None:
                ax.set_visible(False)
                continue
            _shade_phases(ax, frame)
            n_cells = max(n_cells, draw(ax, frame))
            _panel_title(ax, policy, n_cols)
            ax.grid(True, axis="y")
            _time_ticks(ax, n_cols)
            ax.margins(x=0)
            if r == n_rows - 1:
                ax.set_xlabel("Time [h]")
        axes[r, 0].set_ylabel(f"{profile}\n{ylabel}")
    handles = [*_cell_handles(n_cells), *extra_handles, *_phase_handles(traces)]
    fig.legend(
        handles=handles,
        loc="outside upper center",
        ncol=_legend_columns(len(handles), 6),
        handlelength=1.6,
        columnspacing=1.2,
    )
    _caption(fig, _seed_note(traces) + (f" {note}" if note else "") + _missing_note(traces))
    return fig


def _draw_cells(prefix: str, scale: float = 1.0, drawstyle: str = "default") -> Callable:
    """Panel function drawing the per-cell columns ``{prefix}1..n`` times ``scale``.

    States (SoC, voltage) are joined linearly; interval quantities (currents) use
    ``drawstyle="steps-pre"``: the value of row k is held over the interval ending at ``time_s[k]``.
    """

    def draw(ax, frame: pd.DataFrame) -> int:
        names = numbered_columns(frame, prefix, kind=_TRACES, path=frame.attrs.get("source", "?"))
        for i, name in enumerate(names):
            ax.plot(
                frame["time_h"],
                frame[name] * scale,
                color=CELL_COLORS[i % len(CELL_COLORS)],
                lw=0.9,
                drawstyle=drawstyle,
            )
        return len(names)

    return draw


@_styled
def plot_soc(traces: Mapping[tuple[str, str], pd.DataFrame], out: str | os.PathLike) -> Path:
    """SoC of each cell [%] vs time [h]: policies in columns, profiles in rows, phases shaded."""
    fig = _cell_grid_figure(traces, _draw_cells("soc_", 100.0), "SoC [%]")
    return save_figure(fig, out)


@_styled
def plot_voltage(
    traces: Mapping[tuple[str, str], pd.DataFrame], out: str | os.PathLike, voltage_limits_v: tuple[float, float]
) -> Path:
    """Terminal voltage of each cell [V] vs time [h]; the voltage window's limits dashed when in view."""
    from matplotlib.lines import Line2D

    def draw(ax, frame: pd.DataFrame) -> int:
        n = _draw_cells("voltage_v_")(ax, frame)
        for limit in voltage_limits_v:
            ax.axhline(limit, color="0.2", ls="--", lw=0.7, zorder=1)
        return n

    values = np.concatenate(
        [
            frame[numbered_columns(frame, "voltage_v_", kind=_TRACES, path="?")].to_numpy().ravel()
            for frame in traces.values()
        ]
    )
    # the data and the window: a cell outside the window shows against the drawn limit
    low, high = min(float(values.min()), voltage_limits_v[0]), max(float(values.max()), voltage_limits_v[1])
    pad = max(0.05, 0.05 * (high - low))
    limit = Line2D(
        [], [], color="0.2", ls="--", lw=0.7, label=f"limits {voltage_limits_v[0]:g}/{voltage_limits_v[1]:g} V"
    )
    fig = _cell_grid_figure(traces, draw, "Terminal voltage [V]", extra_handles=[limit])
    for ax in fig.axes:
        if ax.lines:
            ax.set_ylim(low - pad, high + pad)
    return save_figure(fig, out)


@_styled
def plot_current(traces: Mapping[tuple[str, str], pd.DataFrame], out: str | os.PathLike) -> Path:
    """Pack current and per-cell current (shunt current included) [A] vs time [h]; > 0 discharges."""
    from matplotlib.lines import Line2D

    def draw(ax, frame: pd.DataFrame) -> int:
        ax.axhline(0.0, color="0.6", lw=0.5, zorder=1)
        ax.plot(
            frame["time_h"], frame["pack_current_a"], color="black", lw=2.2, alpha=0.35, zorder=2, drawstyle="steps-pre"
        )
        return _draw_cells("current_a_", drawstyle="steps-pre")(ax, frame)

    pack = Line2D([], [], color="black", lw=2.2, alpha=0.35, label="pack")
    fig = _cell_grid_figure(
        traces,
        draw,
        "Current [A]",
        extra_handles=[pack],
        note="Current > 0 discharges; a cell's current includes its shunt current.",
    )
    return save_figure(fig, out)


def _toggle_times(frame: pd.DataFrame, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative switch toggles: ``(times_h, count)`` as a post-step function from time 0."""
    switches = frame[list(names)].to_numpy()
    t = frame["time_h"].to_numpy()
    toggles = np.abs(np.diff(switches, axis=0)).sum(axis=1)  # toggles of interval k at its start t[k-1]
    return np.r_[t[:-1], t[-1]], np.r_[np.cumsum(toggles), toggles.sum()]


@_styled
def plot_switching(traces: Mapping[tuple[str, str], pd.DataFrame], out: str | os.PathLike) -> Path:
    """Per profile: a raster of each cell's shunt state per policy, and cumulative toggles of all policies.

    A bar marks a closed shunt over the decision interval it was applied in.
    """
    policies, profiles = _grid_layout(traces)
    n_cols = len(policies)
    fig = Figure(figsize=(PAGE_WIDTH_IN, 0.5 + 2.9 * len(profiles)), layout="constrained")
    grid = fig.add_gridspec(2 * len(profiles), n_cols, height_ratios=[1.0, 1.15] * len(profiles))
    n_cells = 1
    t_end_h = max(float(frame["time_h"].iloc[-1]) for frame in traces.values())  # one time span for all panels
    for r, profile in enumerate(profiles):
        raster_axes = []
        for c, policy in enumerate(policies):
            ax = fig.add_subplot(grid[2 * r, c], sharey=raster_axes[0] if raster_axes else None)
            raster_axes.append(ax)
            frame = traces.get((policy, profile))
            if frame is None:
                ax.set_visible(False)
                continue
            names = numbered_columns(frame, "switch_", kind=_TRACES, path=frame.attrs.get("source", "?"))
            n_cells = max(n_cells, len(names))
            _shade_phases(ax, frame)
            t = frame["time_h"].to_numpy()
            for i, name in enumerate(names):
                closed = np.flatnonzero(frame[name].to_numpy()[1:] > 0.5)  # interval k+1 = (t[k], t[k+1]]
                ax.broken_barh(
                    [(t[k], t[k + 1] - t[k]) for k in closed],
                    (i + 0.6, 0.8),
                    facecolors=policy_color(policy),
                    edgecolor="none",
                )
            ax.set_ylim(len(names) + 0.5, 0.5)
            ax.set_yticks(range(1, len(names) + 1))
            ax.set_xlim(0.0, t_end_h)
            _time_ticks(ax, n_cols)
            ax.set_xlabel("Time [h]")
            _panel_title(ax, policy, n_cols)
            if c == 0:
                ax.set_ylabel(f"{profile}\nCell (bar = shunt on)")
            else:
                ax.tick_params(labelleft=False)

        ax = fig.add_subplot(grid[2 * r + 1, :])
        for policy in policies:
            frame = traces.get((policy, profile))
            if frame is None:
                continue
            names = numbered_columns(frame, "switch_", kind=_TRACES, path=frame.attrs.get("source", "?"))
            times, count = _toggle_times(frame, names)
            ax.step(
                times,
                count,
                where="post",
                color=policy_color(policy),
                lw=1.3,
                label=f"{policy_label(policy)} ({int(count[-1])})",
            )
        ax.set_xlabel("Time [h]")
        ax.set_ylabel("Cumulative switch\ntoggles [-]")
        top = max(ax.get_ylim()[1], 1.0)
        ax.set_ylim(-0.03 * top, top)  # a policy that never switches stays visible above the axis
        ax.set_xlim(0.0, t_end_h)
        ax.grid(True, axis="y")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title="total toggles", title_fontsize=8)
    if _phase_handles(traces):
        fig.legend(handles=_phase_handles(traces), loc="outside upper center", ncol=3)
    _caption(fig, _seed_note(traces) + _missing_note(traces))
    return save_figure(fig, out)


# --------------------------------------------------------------------------------------------
# Training curves


#: the dash patterns of the baselines' reference lines, in turn, so that close lines stay apart
REFERENCE_DASHES: tuple = ((0, (5, 2)), (0, (1, 1.5)), (0, (6, 1.5, 1, 1.5)), (0, (2, 2)), (0, (8, 2, 1, 2, 1, 2)))
#: the share of the x range at its start left out when a panel's y range is chosen, so that an
#: untrained policy's early evaluations do not set the scale of the whole curve
EARLY_SHARE = 0.1
#: the fewest evaluations a curve needs before :data:`EARLY_SHARE` of them may be left out of its range
MIN_EVALUATIONS_ROBUST = 5
#: the training-curve panels: evaluations.npz array, reference key, value format, axis label
TRAINING_PANELS: tuple[tuple[str, str, str, str], ...] = (
    ("results", "return", ".2f", "Mean evaluation return [-]"),
    ("capacity_mah", "capacity_mah", ".0f", "Next-discharge capacity [mAh]"),
)


def _value_text(value: float, fmt: str) -> str:
    """``value`` formatted with ``fmt``, without a minus sign on a value that prints as zero."""
    text = f"{value:{fmt}}"
    return f"{0.0:{fmt}}" if np.isfinite(value) and float(text) == 0.0 else text


def _finite(values) -> np.ndarray:
    flat = np.concatenate([np.atleast_1d(np.asarray(v, dtype=float)).ravel() for v in values] or [np.zeros(0)])
    return flat[np.isfinite(flat)]


def robust_limits(curves: list[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]], references):
    """``(low, high, off_scale)``: the y range of a training-curve panel.

    ``curves`` are ``(grid, mean, low, high)`` (band edges None with one seed). The range holds every
    reference value and every mean from :data:`EARLY_SHARE` of the x range on, the earlier means
    that lie within that range's span again on either side (an untrained policy's first evaluation
    far below does not set the scale) and the bands up to that span (a band over two seeds is
    wide), with 5 % margins. ``off_scale``: the mean farthest outside the range, or None."""
    start = min(float(c[0][0]) for c in curves)
    stop = max(float(c[0][-1]) for c in curves)
    cut = start + EARLY_SHARE * (stop - start)
    # a curve of a few evaluations keeps them all: none of them is "early" enough to leave out
    late = [
        c[0] >= min(cut, float(c[0][-1])) if c[0].size >= MIN_EVALUATIONS_ROBUST else np.ones(c[0].size, bool)
        for c in curves
    ]
    core = _finite([*references, *(c[1][keep] for c, keep in zip(curves, late))])
    low, high = float(core.min()), float(core.max())
    span = high - low if high > low else max(abs(high), 1.0) * 0.1
    # early means count where they lie within that span again of the late values; bands widen the
    # range up to that span on either side and run off the panel beyond it
    near = _finite([c[1] for c in curves])
    near = near[(near >= low - span) & (near <= high + span)]
    bands = _finite([edge for c in curves for edge in c[2:] if edge is not None])
    if bands.size:
        near = np.r_[near, max(float(bands.min()), low - span), min(float(bands.max()), high + span)]
    if near.size:
        low, high = min(low, float(near.min())), max(high, float(near.max()))
    pad = 0.05 * (high - low) if high > low else span
    low, high = low - pad, high + pad
    means = _finite([c[1] for c in curves])
    outside = means[(means < low) | (means > high)]
    off_scale = float(outside[np.argmax(np.abs(outside - (low + high) / 2))]) if outside.size else None
    return low, high, off_scale


def reference_groups(references: Mapping[str, Mapping[str, float]], keys: Sequence[tuple[str, str]]):
    """Baselines whose values print alike in every panel (``keys``: reference key and format) share
    one line and one legend entry (e.g. ``rule_based`` and ``rule_based_untuned`` with equal
    settings): ``[(names, {key: value})]``, in the order of the first panel's values."""
    groups: dict[tuple, tuple[list[str], dict]] = {}
    for name, values in references.items():
        printed = tuple(_value_text(values.get(key, math.nan), fmt) for key, fmt in keys)
        groups.setdefault(printed, ([], {key: values.get(key, math.nan) for key, _ in keys}))[0].append(name)
    first = keys[0][0]
    return sorted(groups.values(), key=lambda group: -group[1][first] if np.isfinite(group[1][first]) else math.inf)


@_styled
def plot_training(
    runs: Mapping[tuple[str, int], Mapping[str, np.ndarray]],
    out: str | os.PathLike,
    references: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """Training curves: the mean evaluation return vs environment steps per algorithm (top) and the
    pack's next-discharge capacity at the evaluation episodes' ends [mAh] (bottom, only when every
    run recorded it: ``capacity_mah`` of evaluations.npz), mean over seeds with a 95 % t-interval
    band. ``references``: baseline -> ``{"return": ..., "capacity_mah": ...}``, its means on the
    same evaluation packs, drawn as horizontal lines, one dash pattern per baseline, with their
    values in the legend below. A return is not a capacity: compare capacities in the bottom panel.
    Each panel's y range is :func:`robust_limits`'s."""
    by_algo: dict[str, list] = {}
    for (algo, _seed), arrays in sorted(runs.items()):
        by_algo.setdefault(algo, []).append(arrays)
    references = references or {}
    with_capacity = all(arrays.get("capacity_mah") is not None for arrays in runs.values())
    panels = TRAINING_PANELS if with_capacity else TRAINING_PANELS[:1]
    groups = reference_groups(references, [(ref, fmt) for _, ref, fmt, _ in panels])
    fig = Figure(figsize=(COLUMN_WIDTH_IN, 2.2 + 2.0 * len(panels) + 0.16 * len(groups)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    curve_handles, reference_handles = [], []
    for ax, (key, ref, fmt, ylabel) in zip(axes, panels):
        curves = []
        for algo in policy_order(by_algo):
            seeds = by_algo[algo]
            try:
                grid, mean, low, high = training_curve(seeds, key=key)
            except UserError as exc:
                raise UserError(f"training curves of {algo} ({key}): {exc}") from None
            color = policy_color(algo)
            label = f"{policy_label(algo)} ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})"
            marker = "o" if grid.size <= 15 else None
            (line,) = ax.plot(grid, mean, color=color, lw=1.3, marker=marker, ms=2.5, label=label, zorder=3)
            if low is not None:
                ax.fill_between(grid, low, high, color=color, alpha=0.2, lw=0, zorder=2)
            curves.append((grid, mean, low, high))
            if ax is axes[0]:
                curve_handles.append(line)
        ylow, yhigh, off_scale = robust_limits(curves, [values[ref] for _, values in groups])
        ax.set_ylim(ylow, yhigh)
        if off_scale is not None:
            below = off_scale < ylow
            ax.text(
                0.98,
                0.04 if below else 0.96,
                f"off scale: an early evaluation at {_value_text(off_scale, fmt)}",
                transform=ax.transAxes,
                ha="right",
                va="bottom" if below else "top",
                color="0.3",
            )
        for k, (names, values) in enumerate(groups):
            if np.isfinite(values[ref]):
                style = dict(color=policy_color(names[0]), ls=REFERENCE_DASHES[k % len(REFERENCE_DASHES)], lw=1.0)
                handle = ax.axhline(values[ref], zorder=1, **style)
                if ax is axes[0]:
                    text = "; ".join(_value_text(values[r], f) for _, r, f, _ in panels) + (
                        " mAh" if with_capacity else ""
                    )
                    handle.set_label(" = ".join(policy_label(n) for n in names) + f": {text}")
                    reference_handles.append(handle)
        ax.set_ylabel(ylabel)
        ax.grid(True)
    axes[-1].set_xlabel("Environment steps [-]")
    axes[-1].xaxis.set_major_formatter(matplotlib.ticker.EngFormatter(sep=""))
    if any(len(s) > 1 for s in by_algo.values()):
        axes[0].set_title("line: mean over seeds; band: 95 % t-interval", fontsize=8, color="0.3", loc="left")
    fig.legend(handles=curve_handles, loc="outside upper center", ncol=_legend_columns(len(curve_handles), 2))
    if reference_handles:
        what = "return; capacity" if with_capacity else "return"
        fig.legend(
            handles=reference_handles,
            loc="outside lower center",
            ncol=1,
            title=f"Baselines on the same packs ({what})",
        )
    return save_figure(fig, out)


# --------------------------------------------------------------------------------------------
# Metrics bars

#: What a bar slot holds: a value ``(mean, ci_low, ci_high)`` (the interval NaN with one seed), or
#: :data:`_NEVER` where the time is undefined because the event never happened in any episode.
_NEVER = "never"


def _slot_value(indexed: pd.DataFrame, key: tuple, metric: str):
    """The bar of ``key + (metric,)`` in a summary indexed by labels and metric: ``(mean, low, high)``,
    :data:`_NEVER`, or ``None`` (no value: the metric does not apply)."""
    full = (*key, metric)
    if full in indexed.index and np.isfinite(indexed.loc[full, "mean"]):
        r = indexed.loc[full]
        return float(r["mean"]), float(r["ci_low"]), float(r["ci_high"])
    occurred = (*key, OCCURRENCE[metric][0]) if metric in OCCURRENCE else None
    if occurred in indexed.index and indexed.loc[occurred, "mean"] == 0.0:
        return _NEVER
    return None


def _draw_bars(ax, slots: Sequence[str], policies: Sequence[str], value: Callable, metric, log: bool = False) -> None:
    """One group of bars per slot (x position), one bar per policy with its 95 % interval where it has one.

    ``value(policy, slot)`` gives what :func:`_slot_value` gives. A zero bar is marked ``0`` (a zero-height
    bar is invisible); a time that never happened is a hatched bar to the top of the axis, marked so (not a
    gap, which would read as the best score); a log metric is drawn as points.
    """
    width = 0.8 / len(policies)
    never = []
    for i, policy in enumerate(policies):
        color = policy_color(policy)
        for j, slot in enumerate(slots):
            v = value(policy, slot)
            pos = j - 0.4 + width * (i + 0.5)
            if v is None:
                continue
            if v == _NEVER:
                never.append((j, i, pos, color))
                continue
            mean, low, high = v
            if log and mean <= 0:
                continue
            if log:
                ax.plot([pos], [mean], "o", ms=4, color=color)
            else:
                ax.bar([pos], [mean], width=width * 0.92, color=color)
            if np.isfinite(low) and np.isfinite(high):
                ax.errorbar(
                    [pos],
                    [mean],
                    yerr=[[max(mean - low, 0.0)], [max(high - mean, 0.0)]],
                    fmt="none",
                    ecolor="black",
                    elinewidth=0.7,
                    capsize=2,
                )
            if mean == 0.0 and not log:  # a zero-height bar is invisible: say it is zero, not missing
                ax.annotate(
                    "0", (pos, 0.0), xytext=(0, 1.5), textcoords="offset points", ha="center", va="bottom", color=color
                )
    if log:
        ax.set_yscale("log")
    if never:
        ax.autoscale_view()
        bottom, top = ax.get_ylim()
        bottom = min(bottom, 0.0)
        runs: list[list[float]] = []  # neighbouring never-bars of one slot share one label
        for k, (j, i, pos, color) in enumerate(sorted(never)):
            ax.bar(
                [pos], [top - bottom], bottom=bottom, width=width * 0.92, facecolor="white", edgecolor=color,
                hatch="////", lw=0.6,
            )  # fmt: skip
            previous = sorted(never)[k - 1] if k else None
            if previous and previous[0] == j and previous[1] == i - 1:
                runs[-1].append(pos)
            else:
                runs.append([pos])
        for run in runs:
            ax.text(
                float(np.mean(run)), bottom + 0.03 * (top - bottom), OCCURRENCE[metric][1], rotation=90,
                ha="center", va="bottom", color="0.2",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.3},
            )  # fmt: skip
        ax.set_ylim(bottom, top)
    if len(slots) > 3:  # many groups in one panel: names slanted, whole (a name wrapped mid-word misreads)
        ax.set_xticks(np.arange(len(slots)), list(slots), rotation=30, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(np.arange(len(slots)), [_wrap(s, 12) for s in slots])
    ax.set_xlim(-0.5, len(slots) - 0.5)
    ax.grid(True, axis="y", which="major")
    for j in range(len(slots) - 1):
        ax.axvline(j + 0.5, color="0.8", lw=0.6)


def _seed_words(summary: pd.DataFrame) -> str:
    """How many seeds the bars average and whether they have intervals, from the rows with a value."""
    n_seeds = pd.to_numeric(summary.loc[np.isfinite(summary["mean"]), "n_seeds"], errors="coerce").dropna()
    counts = sorted({int(n) for n in n_seeds if n > 0})
    if counts == [1]:
        return "one seed per policy: the bars are that seed's means, without intervals"
    if len(counts) == 1:
        return f"mean over {counts[0]} seeds per policy; error bars: 95 % t interval over seeds"
    return (
        f"mean over {counts[0]} to {counts[-1]} seeds per policy and metric (the seeds with a value); error bars: "
        f"95 % t interval over seeds{' (none with one seed)' if counts[0] == 1 else ''}"
    )


def _left_out(missing: Mapping[str, list[str]]) -> str:
    """Caption words for the panels (metric -> slots) left out because they hold no value."""
    by_slots: dict[tuple[str, ...], list[str]] = {}
    for title, slots in missing.items():
        by_slots.setdefault(tuple(slots), []).append(title)
    parts = [f"{' and '.join(titles)} on {', '.join(slots)}" for slots, titles in by_slots.items()]
    return f" Not shown, no values (the metric is undefined there): {'; '.join(parts)}." if parts else ""


def _never_words(drawn: set[str]) -> str:
    return f" Hatched bar: {' / '.join(sorted(drawn))} in any episode (no time to average)." if drawn else ""


def _bar_legend(fig: Figure, policies: Sequence[str]) -> None:
    handles = [Patch(facecolor=policy_color(p), label=policy_label(p)) for p in policies]
    fig.legend(handles=handles, loc="outside upper center", ncol=_legend_columns(len(handles), 4))


@_styled
def plot_metrics(summary: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Headline metrics per policy, grouped by profile, with the CI over seeds as error bars.

    Linear metrics are bars from zero; the SoC variance spans decades and is drawn on a log axis
    as points with error bars (a bar's length from an arbitrary log baseline would mean nothing).
    A panel or a profile without any value is left out and named in the caption; a time that never
    happened (never settled) is a hatched bar, not a gap.
    """
    summary = summary[summary["scenario"] == DEFAULT_SCENARIO]
    policies = policy_order(summary["policy"].unique())
    profiles = _profile_order(summary["profile"].unique())
    indexed = summary.set_index(["policy", "profile", "metric"])
    panels, missing, never = [], {}, set()
    for panel in FIGURE:
        values = {(p, s): _slot_value(indexed, (p, s), panel.name) for p in policies for s in profiles}
        slots = [s for s in profiles if any(values[p, s] is not None for p in policies)]
        if len(slots) < len(profiles):
            missing[panel.title] = [s for s in profiles if s not in slots]
        if slots:
            panels.append((panel, slots, values))
        if any(v == _NEVER for v in values.values()):
            never.add(OCCURRENCE[panel.name][1])
    if not panels:
        raise UserError("summary table: no metric of the figure has a value in the default scenario")
    n_rows = math.ceil(len(panels) / 3)
    fig = Figure(figsize=(PAGE_WIDTH_IN, 2.45 * n_rows + 0.3), layout="constrained")
    axes = fig.subplots(n_rows, 3, squeeze=False).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax, (panel, slots, values) in zip(axes, panels):
        log = panel.log_scale
        label = (
            f"{panel.header} (log scale)" if log else panel.header if panel.per_seed else f"{panel.header} per episode"
        )
        _draw_bars(ax, slots, policies, lambda p, s, values=values: values[p, s], panel.name, log)
        ax.set_ylabel(_wrap(label, 30))
    _bar_legend(fig, policies)
    caption = (
        f"Default scenario; {_seed_words(summary)}. Time to spread < 1\u00a0%: mean over the episodes that "
        f"settled.{_never_words(never)}{_left_out(missing)}"
    )
    _caption(fig, caption)
    return save_figure(fig, out)


@_styled
def plot_robustness(summary: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Robustness metrics per scenario: one row of panels per metric, one panel per profile with a value;
    bars per policy with the CI over seeds, scenarios on the x axis (the default scenario first)."""
    metrics = [m for m in ROBUSTNESS_METRICS if m in set(summary["metric"])]
    if not metrics:
        raise UserError(f"robustness table: no rows for {', '.join(ROBUSTNESS_METRICS)}")
    policies = policy_order(summary["policy"].unique())
    profiles = _profile_order(summary["profile"].unique())
    scenarios = sorted(summary["scenario"].unique(), key=lambda s: (s != DEFAULT_SCENARIO, s))
    indexed = summary.set_index(["policy", "profile", "scenario", "metric"])
    rows, missing = [], {}
    for metric in metrics:
        panels = []
        for profile in profiles:
            values = {(p, s): _slot_value(indexed, (p, profile, s), metric) for p in policies for s in scenarios}
            if any(v is not None for v in values.values()):
                panels.append((profile, values))
            else:
                missing.setdefault(METRIC[metric].title, []).append(profile)
        if panels:
            rows.append((metric, panels))
    if not rows:
        raise UserError(f"robustness table: no values for {', '.join(metrics)}")
    fig = Figure(figsize=(PAGE_WIDTH_IN, 2.3 * len(rows) + 0.6), layout="constrained")
    grid = fig.add_gridspec(len(rows), 1)
    for r, (metric, panels) in enumerate(rows):
        cells = grid[r].subgridspec(1, len(panels))
        for c, (profile, values) in enumerate(panels):
            ax = fig.add_subplot(cells[0, c])
            _draw_bars(ax, scenarios, policies, lambda p, s, values=values: values[p, s], metric)
            ax.set_ylabel(_wrap(f"{METRIC[metric].header} per episode", 30))
            ax.set_title(profile)
    _bar_legend(fig, policies)
    caption = (
        f"Evaluation scenario on the x axis (default: the training distribution); {_seed_words(summary)}."
        f"{_left_out(missing)}"
    )
    _caption(fig, caption)
    return save_figure(fig, out)


def _profile_view_start(profiles: pd.DataFrame) -> float:
    """Left end of the tau axis: 0.1 below where the first curve leaves 1 (floored to 0.1), so the part
    where the policies differ fills the panel. Curves already at 0 by tau = 0.1 (no balancing) stay at 0 in
    view; curves that never leave 1 do not move it."""
    starts = []
    for _, curve in profiles.groupby(["policy", "profile"]):
        curve = curve.sort_values("tau")
        tau, fraction = curve["tau"].to_numpy(), curve["fraction"].to_numpy()
        if np.interp(0.1, tau, fraction) < 0.01:
            continue
        below = tau[fraction < 0.99]
        if below.size:
            starts.append(below[0])
    return max(0.0, math.floor(10.0 * min(starts)) / 10.0 - 0.1) if starts else 0.0


@_styled
def plot_profiles(profiles: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Performance profiles of the default scenario: per profile (panel), the fraction of packs with a share
    of the recoverable capacity >= tau against tau, one line per policy (mean over seeds) with its t-interval
    band over seeds (none with one seed). Deterministic baselines are dashed."""
    from matplotlib.lines import Line2D

    from bmsrl.baselines import BASELINES

    scenario = DEFAULT_SCENARIO if DEFAULT_SCENARIO in set(profiles["scenario"]) else sorted(profiles["scenario"])[0]
    profiles = profiles[profiles["scenario"] == scenario]
    policies = policy_order(profiles["policy"].unique())
    names = _profile_order(profiles["profile"].unique())
    start = _profile_view_start(profiles)
    style = {p: ("--" if p in BASELINES else "-") for p in policies}
    fig = Figure(figsize=(COLUMN_WIDTH_IN if len(names) == 1 else PAGE_WIDTH_IN, 3.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names), sharey=True, squeeze=False).ravel())
    for ax, name in zip(axes, names):
        part = profiles[profiles["profile"] == name]
        for policy in policies:
            curve = part[part["policy"] == policy].sort_values("tau")
            if curve.empty:
                continue
            color = policy_color(policy)
            ax.plot(curve["tau"], curve["fraction"], color=color, ls=style[policy], lw=1.2, zorder=3)
            if curve["ci_low"].notna().all():
                ax.fill_between(
                    curve["tau"], curve["ci_low"], curve["ci_high"], color=color, alpha=0.15, lw=0, zorder=2
                )
        ax.set_xlim(start, 1.0)
        ax.set_ylim(-0.01, 1.02)
        ax.set_xlabel("Threshold τ on the share of recoverable capacity [-]")
        ax.set_title(name if scenario == DEFAULT_SCENARIO else f"{name}, {scenario}")
        ax.grid(True)
    axes[0].set_ylabel("Fraction of packs\nwith share ≥ τ [-]")
    handles = [Line2D([], [], color=policy_color(p), ls=style[p], lw=1.5, label=policy_label(p)) for p in policies]
    narrow = len(names) == 1
    fig.legend(handles=handles, loc="outside upper center", ncol=_legend_columns(len(handles), 2 if narrow else 5))
    n = sorted({int(v) for v in profiles["n_seeds"]})
    note = [
        "Line: the fraction of packs of the one seed (no band)."
        if n == [1]
        else f"Line: mean over {' to '.join(map(str, sorted({n[0], n[-1]})))} seeds of the per-seed fraction of "
        "packs; band: 95 % t interval over seeds (none with one seed).",
        "Dashed: deterministic baselines, whose seeds differ only in their evaluation packs (the band is "
        "pack sampling, not training).",
    ]
    _caption(fig, "\n".join(note))
    return save_figure(fig, out)


def _symlog_threshold(values: np.ndarray) -> float | None:
    """The linear range [mAh] of a symmetric log axis when ``values`` (the points and interval ends) span
    more than 30 times their median size (a far point, no balancing, would crush the close ones to a line),
    else ``None`` (a linear axis): the power of ten at or above that median."""
    size = np.abs(values[np.isfinite(values) & (values != 0.0)])
    if size.size == 0:
        return None
    median = float(np.median(size))
    if size.max() <= 30.0 * median:
        return None
    return float(10.0 ** math.ceil(math.log10(max(median, 1e-9))))


def _paired_points(paired: pd.DataFrame) -> tuple[dict, dict, pd.DataFrame]:
    """What :func:`plot_paired` draws, from paired.csv: the best controller per ``(profile, scenario)``, the
    point ``(mean, ci_low, ci_high)`` [mAh] per ``(profile, scenario, policy)`` (every policy against that
    controller, finite means only) and the table's rows of the capacity metric (for the caption)."""
    marked = paired[(paired["best_controller"] == 1.0) & (paired["metric"] == BEST_CONTROLLER_METRIC)]
    best = {(r.profile, r.scenario): r.baseline for r in marked.itertuples()}
    if not best:
        raise UserError(
            f"paired table: no row of {BEST_CONTROLLER_METRIC} marks a best controller (column 'best_controller'): "
            "no baseline was evaluated; nothing to plot"
        )
    rows = paired[paired["metric"] == BEST_CONTROLLER_METRIC]
    against_best = [
        r
        for r in rows.itertuples()
        if best.get((r.profile, r.scenario)) == r.baseline and r.policy != r.baseline and np.isfinite(r.mean_diff)
    ]
    points = {(r.profile, r.scenario, r.policy): (float(r.mean_diff), r.ci_low, r.ci_high) for r in against_best}
    if not points:
        raise UserError(
            f"paired table: no finite difference in {BEST_CONTROLLER_METRIC} to a best controller; nothing to plot"
        )
    return best, points, rows


@_styled
def plot_paired(paired: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Every policy against the best controller of each scenario, paired on the same packs.

    One panel per profile, one row per scenario (the default first), one point per policy: the mean over
    seeds of the per-seed difference in usable capacity, policy - the best controller of that scenario and
    profile (paired.csv's ``best_controller``, :func:`bmsrl.aggregate.best_controllers`; named at the row),
    with its 95 % t interval over seeds. Right of the zero line: more capacity than the best controller. A
    symmetric log axis, linear near zero, when a far point (no balancing) would crush the others.
    """
    from matplotlib.lines import Line2D

    from bmsrl.algos import ALGOS
    from bmsrl.baselines import BASELINES
    from bmsrl.policies import BEST_KNOWN

    best, points, rows = _paired_points(paired)
    profiles = _profile_order({profile for profile, _ in best})
    scenarios = sorted({scenario for _, scenario in best}, key=lambda s: (s != DEFAULT_SCENARIO, s))
    drawn = policy_order({policy for _, _, policy in points})
    values = np.array([v for triple in points.values() for v in triple], dtype=np.float64)
    threshold = _symlog_threshold(values)
    # every panel names its references, unless each scenario has the same one in every profile
    same_reference = all(len({best.get((p, s)) for p in profiles} - {None}) == 1 for s in scenarios)

    band = 0.7  # of the unit distance between scenario rows
    offsets = {p: band * ((i + 0.5) / len(drawn) - 0.5) for i, p in enumerate(drawn)}
    marker = {p: "o" if p in ALGOS else "s" if p in BASELINES else "D" for p in drawn}
    height = 1.2 + len(scenarios) * max(0.55, 0.13 * len(drawn))
    fig = Figure(figsize=(PAGE_WIDTH_IN, height), layout="constrained")
    axes = fig.subplots(1, len(profiles), squeeze=False).ravel()  # not sharey: each panel names its references
    for c, (ax, profile) in enumerate(zip(axes, profiles)):
        for policy in drawn:
            for j, scenario in enumerate(scenarios):
                if (profile, scenario, policy) not in points:
                    continue
                mean, low, high = points[(profile, scenario, policy)]
                y = j + offsets[policy]
                if np.isfinite(low) and np.isfinite(high):
                    ax.plot([low, high], [y, y], color=policy_color(policy), lw=1.0, solid_capstyle="butt", zorder=2)
                ax.plot([mean], [y], marker[policy], ms=3.5, color=policy_color(policy), zorder=3)
        ax.axvline(0.0, color="0.3", lw=0.7, zorder=1)
        for j in range(len(scenarios) - 1):
            ax.axhline(j + 0.5, color="0.85", lw=0.6, zorder=0)
        if threshold is not None:
            ax.set_xscale("symlog", linthresh=threshold, linscale=1.0)
        ax.set_ylim(len(scenarios) - 0.5, -0.5)  # the default scenario on top
        ax.set_title(profile)
        ax.set_xlabel(f"Δ usable capacity [{METRIC[BEST_CONTROLLER_METRIC].unit}]")
        ax.grid(True, axis="x")
        labels = [
            f"{scenario}\nvs {policy_label(best[(profile, scenario)])}" if (profile, scenario) in best else scenario
            for scenario in scenarios
        ]
        ax.set_yticks(np.arange(len(scenarios)), labels if c == 0 or not same_reference else [])
    handles = [
        Line2D([], [], color=policy_color(p), marker=marker[p], ms=4, lw=1.0, label=policy_label(p)) for p in drawn
    ]
    fig.legend(handles=handles, loc="outside upper center", ncol=_legend_columns(len(handles), 5))
    seeds = sorted({int(n) for n in rows["n_seeds"] if n > 0})
    words = [
        "Point: mean over "
        + (f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}")
        + " seeds of the per-seed difference in usable capacity, policy − the best controller of the scenario "
        "and profile (the baseline with the highest mean usable capacity there, named at each row), on the same "
        "packs; bar: 95 % t interval over seeds (none with one seed). Right of 0: more capacity than that "
        "controller."
    ]
    if BEST_KNOWN in drawn:
        known = rows[rows["policy"] == BEST_KNOWN]
        per_seed = sorted({int(round(e / n)) for e, n in zip(known["n_episodes"], known["n_seeds"]) if n > 0})
        if per_seed:
            packs = "the first pack" if per_seed[-1] == 1 else f"the first {per_seed[-1]} packs"
            words.append(f"{policy_label(BEST_KNOWN)} (model-based reference): on {packs} of each seed only.")
    if threshold is not None:
        words.append(f"Symmetric log axis, linear within ±{threshold:g} {METRIC[BEST_CONTROLLER_METRIC].unit}.")
    _caption(fig, " ".join(words))
    return save_figure(fig, out)


# --------------------------------------------------------------------------------------------
# Stage

#: kind -> (input option, per-cell column families and further numeric trace columns, figure function
#: taking the data, the output path and the config)
KINDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], Callable]] = {
    "soc": ("traces", ("soc_",), (), lambda data, out, cfg, references: plot_soc(data, out)),
    "switching": ("traces", ("switch_",), (), lambda data, out, cfg, references: plot_switching(data, out)),
    "voltage": (
        "traces",
        ("voltage_v_",),
        (),
        lambda data, out, cfg, references: plot_voltage(data, out, tuple(cfg["env"]["voltage_limits_v"])),
    ),
    "current": (
        "traces",
        ("current_a_",),
        ("pack_current_a",),
        lambda data, out, cfg, references: plot_current(data, out),
    ),
    "training": ("evaluations", (), (), lambda data, out, cfg, references: plot_training(data, out, references)),
    "metrics": ("summary", (), (), lambda data, out, cfg, references: plot_metrics(data, out)),
    "robustness": ("summary", (), (), lambda data, out, cfg, references: plot_robustness(data, out)),
    "profiles": ("profiles", (), (), lambda data, out, cfg, references: plot_profiles(data, out)),
    "paired": ("paired", (), (), lambda data, out, cfg, references: plot_paired(data, out)),
}


def _check_plottable(summary: pd.DataFrame, kind: str, path: str | os.PathLike) -> None:
    """Refuse a summary whose every mean the ``kind`` figure would draw is NaN: the figure would be
    empty axes, not a result (the evaluation jobs produced no finite metric)."""
    if kind == "metrics":
        drawn = summary[(summary["scenario"] == DEFAULT_SCENARIO) & summary["metric"].isin([m.name for m in FIGURE])]
        what = f"the metrics figure draws (scenario {DEFAULT_SCENARIO})"
    else:
        drawn = summary[summary["metric"].isin(ROBUSTNESS_METRICS)]
        what = "the robustness figure draws"
    if not np.isfinite(drawn["mean"].to_numpy(dtype=np.float64)).any():
        raise UserError(
            f"summary table {path}: every mean of the metrics {what} is empty (NaN); nothing to plot: "
            "the metrics files held no finite value (see the evaluate and aggregate logs)"
        )


def _no_value_panel(ax) -> None:
    """Say on a panel whose every value is NaN that it is empty, not zero."""
    ax.text(0.5, 0.5, "no finite value", transform=ax.transAxes, ha="center", va="center", color="0.5")


def make_plot(
    kind: str,
    out: str | os.PathLike,
    *,
    traces: Sequence | None = None,
    evaluations: Sequence | None = None,
    summary: str | os.PathLike | None = None,
    profiles: str | os.PathLike | None = None,
    paired: str | os.PathLike | None = None,
    cfg: dict | None = None,
    references: str | os.PathLike | None = None,
) -> Path:
    """Read the inputs of ``kind``, draw the figure and write ``out`` atomically.

    ``cfg``: the validated config (its ``env`` section gives the voltage window); ``None``: defaults.
    ``references`` (training curves): ``training_references.csv`` of the reference stage
    (:mod:`bmsrl.reference`), each baseline's returns on the same evaluation packs, drawn as dashed
    lines at their means; ``None``: none.
    """
    if kind not in KINDS:
        raise UserError(f"unknown plot kind {kind!r} (choose from {', '.join(KINDS)})")
    option, prefixes, numeric, function = KINDS[kind]
    given = {"traces": traces, "evaluations": evaluations, "summary": summary, "profiles": profiles, "paired": paired}
    if not given[option]:
        raise UserError(f"plot {kind} needs --{option}")
    for name, value in given.items():
        if name != option and value:
            raise UserError(f"plot {kind} does not use --{name} (it reads --{option})")
    check_distinct({f"--{option}": given[option]}, {"--out": out})
    check_output(out, "--out")
    if option == "traces":
        data = load_traces(traces, prefixes, numeric)
    elif option == "evaluations":
        data = load_evaluations(evaluations)
    elif option == "profiles":
        data = read_profiles(profiles)
    elif option == "paired":
        data = read_paired(paired, needed=[BEST_CONTROLLER_METRIC])
    else:
        data = read_summary(summary, needed=ROBUSTNESS_METRICS if kind == "robustness" else [m.name for m in HEADLINE])
        _check_plottable(data, kind, summary)
    if references is not None and kind != "training":
        raise UserError(f"plot {kind} draws no reference lines (only plot training does)")
    cfg = cfg if cfg is not None else config_from_args(argparse.Namespace())
    return function(data, out, cfg, None if references is None else read_references(references))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``bmsrl plot KIND --out FILE.pdf [--traces ...|--evaluations ...|--summary CSV]``."""
    add_config_arguments(parser)
    parser.add_argument("kind", choices=list(KINDS), help="figure to draw")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE.pdf", help="figure to write (.pdf; .png or .svg also accepted)"
    )
    parser.add_argument(
        "--traces",
        nargs="+",
        type=Path,
        metavar="TRACES.csv",
        help="soc/switching/voltage/current: traces.csv files of the evaluate stage",
    )
    parser.add_argument(
        "--evaluations",
        nargs="+",
        type=Path,
        metavar="EVALS.npz",
        help="training: evaluations.npz files of the train stage",
    )
    parser.add_argument(
        "--references",
        type=Path,
        metavar="CSV",
        help="training: each baseline's returns on the same evaluation packs, drawn as dashed lines "
        "(training_references.csv of `bmsrl reference`)",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        metavar="SUMMARY.csv",
        help="metrics: summary.csv of the aggregate stage; robustness: its robustness.csv",
    )
    parser.add_argument(
        "--profiles",
        type=Path,
        metavar="PROFILES.csv",
        help="profiles: profiles.csv of the aggregate stage (performance profiles)",
    )
    parser.add_argument(
        "--paired",
        type=Path,
        metavar="PAIRED.csv",
        help="paired: paired.csv of the aggregate stage (each policy against the best controller per scenario)",
    )


def main(args: argparse.Namespace) -> int:
    """Run the stage from parsed arguments; print a one-line summary; return 0."""
    cfg = config_from_args(args)
    out = make_plot(
        args.kind,
        args.out,
        traces=args.traces,
        evaluations=args.evaluations,
        summary=args.summary,
        profiles=args.profiles,
        paired=args.paired,
        cfg=cfg,
        references=args.references,
    )
    print(f"plot {args.kind}: -> {out}")
    return 0
