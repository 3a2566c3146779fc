"""OCV preprocessing stage (CLI verb ``bmsrl ocv``): validate, resample and plot an OCV table.

An OCV table maps state of charge ``soc`` [-] (a fraction in [0, 1], not a percentage) to
open-circuit voltage ``ocv_v`` [V]. The simulator interpolates it linearly, so it must be a
strictly increasing function of SoC that covers the SoC window the pack is operated in.

The package ships ``bmsrl/data/ocv_table.csv``, sampled from the analytic NCA fit of Keil et al.
(2016) implemented by :func:`keil_nca_ocv`; a user replaces it with a measured table (e.g. Tran et
al.'s) through the workflow's ``ocv_table`` config key. :func:`process_ocv_table` validates that
table (:func:`read_ocv_table`), resamples it onto a uniform SoC grid (:func:`resample_ocv`) and
writes the processed table the environment reads (:func:`bmsrl.tables.load_processed_ocv`), plus a plot.

Error messages name the file and, where there is one, the line in the file (header = line 1)
and the column; see :mod:`bmsrl.tables`.
"""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bmsrl.errors import UserError
from bmsrl.io import atomic_outputs, check_distinct, check_output
from bmsrl.tables import (
    DEFAULT_N_POINTS,
    DEFAULT_SOC_WINDOW,
    MAX_N_POINTS,
    _check_n_points,
    _check_soc_window,
    read_ocv_table,
    resample_ocv,
)

#: figure formats of ``--plot``, by file suffix
PLOT_FORMATS = ("pdf", "png", "svg")

#: Keil et al. 2016, doi:10.1149/2.0411609jes, Panasonic NCR18650 (NCA): a_i, b_i [-], k_i [V].
KEIL_NCA_PARAMS: dict[str, float] = {
    "a1": -0.3777,
    "a2": 10.2859,
    "a3": 17.0608,
    "a4": -3.7820,
    "b1": -5.6272,
    "b2": 0.2907,
    "k0": 4.9852,
    "k1": -2.86523,
    "k2": 0.3852,
    "k3": -0.1599,
    "k4": 1.2256,
    "k5": 0.7412,
}


def keil_nca_ocv(soc) -> np.ndarray:
    """Open-circuit voltage [V] of an NCA cell at state of charge ``soc`` [-] (vectorized).

    The analytic fit of Keil et al., "Calendar aging of lithium-ion batteries",
    J. Electrochem. Soc. 163(9) A1872 (2016), doi:10.1149/2.0411609jes, for a Panasonic NCR18650::

        OCV(x) = k0 + k1/(1+exp(a1(x-b1))) + k2/(1+exp(a2(x-b2))) + k3/(1+exp(a3(x-1)))
                 + k4/(1+exp(a4 x)) + k5 x

    with the coefficients :data:`KEIL_NCA_PARAMS`. Fitted on SoC in [0, 1]; it gives about
    3.245 V at 0, 3.693 V at 0.5 and 4.197 V at 1. Returns a float64 array of ``soc``'s shape.
    """
    x = np.asarray(soc, dtype=np.float64)
    p = KEIL_NCA_PARAMS

    def logistic(k: float, a: float, centre: float) -> np.ndarray:
        return k / (1.0 + np.exp(a * (x - centre)))

    return (
        p["k0"]
        + logistic(p["k1"], p["a1"], p["b1"])
        + logistic(p["k2"], p["a2"], p["b2"])
        + logistic(p["k3"], p["a3"], 1.0)
        + logistic(p["k4"], p["a4"], 0.0)
        + p["k5"] * x
    )


def plot_format(path: str | os.PathLike) -> str:
    """The figure format of ``path`` by its suffix (``.pdf``, ``.png``, ``.svg``), or a :class:`UserError`."""
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in PLOT_FORMATS:
        raise UserError(
            f"--plot {path}: unsupported figure format {Path(path).suffix or '(no suffix)'!r} (use .pdf, .png or .svg)"
        )
    return fmt


def _plot_ocv(
    raw: pd.DataFrame, processed: pd.DataFrame, soc_window: tuple[float, float], path: Path, fmt: str = "pdf"
) -> None:
    """Write the figure (``fmt``: pdf, png or svg): the input points, the resampled curve and the
    SoC window shaded.

    Uses matplotlib's object-oriented API (no pyplot, no GUI backend, no global state), and no
    creation date in the PDF so identical inputs give identical bytes.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.axvspan(
        *soc_window, color="tab:green", alpha=0.12, lw=0, label=f"SoC window [{soc_window[0]:g}, {soc_window[1]:g}]"
    )
    ax.plot(
        processed["soc"],
        processed["ocv_v"],
        "-",
        color="tab:blue",
        lw=1.2,
        label=f"resampled ({len(processed)} points)",
    )
    ax.plot(
        raw["soc"],
        raw["ocv_v"],
        "o",
        color="black",
        ms=3,
        mfc="none",
        mew=0.7,
        label=f"input table ({len(raw)} points)",
    )
    ax.set_xlabel("State of charge [-]")
    ax.set_ylabel("Open-circuit voltage [V]")
    ax.set_xlim(0.0, 1.0)
    ax.grid(True, lw=0.4, alpha=0.5)
    ax.legend(loc="lower right", fontsize="small", frameon=False)
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {}}[fmt]
    # Drawn in memory, then written: a failed write (a full disk) is then an OSError naming the file
    # (matplotlib's PDF writer masks it with an AttributeError while it cleans up).
    drawn = io.BytesIO()
    fig.savefig(drawn, format=fmt, metadata=metadata)
    Path(path).write_bytes(drawn.getvalue())


def process_ocv_table(
    in_path: str | os.PathLike,
    out_csv: str | os.PathLike,
    out_plot: str | os.PathLike | None = None,
    n_points: int = DEFAULT_N_POINTS,
    soc_window: tuple[float, float] = DEFAULT_SOC_WINDOW,
    allow_implausible: bool = False,
) -> pd.DataFrame:
    """Validate an OCV table, resample it, write the processed CSV and optionally a plot.

    Both outputs are written to temporary files in their target folders (created if needed) and
    moved into place only after both were written, so a failure leaves no half-written output.

    Parameters
    ----------
    in_path:
        OCV table (see :func:`read_ocv_table`).
    out_csv:
        Processed table: header ``soc,ocv_v``, ``n_points`` rows, SoC [-] on a uniform grid,
        OCV [V]; floats written in full precision.
    out_plot:
        Optional figure (.pdf, .png or .svg by suffix): input points, resampled curve, SoC window shaded.
    n_points:
        Points of the uniform SoC grid (2 to :data:`~bmsrl.tables.MAX_N_POINTS`).
    soc_window:
        ``(lo, hi)`` SoC window [-] the table must cover.
    allow_implausible:
        Accept OCV values outside :data:`~bmsrl.tables.PLAUSIBLE_OCV_V` (refused by default: a table
        in mV, negative voltages).

    Raises :class:`UserError` when an output is the input or both outputs are one file.

    Returns
    -------
    pandas.DataFrame
        The processed table (columns ``soc``, ``ocv_v``).
    """
    window = _check_soc_window(soc_window)
    n_points = _check_n_points(n_points)
    check_distinct({"input": in_path}, {"output": out_csv, "--plot": out_plot})
    check_output(out_csv, "output")
    check_output(out_plot, "--plot")
    fmt = plot_format(out_plot) if out_plot is not None else None
    raw = read_ocv_table(in_path, soc_window=window, allow_implausible=allow_implausible)
    processed = resample_ocv(raw, n_points)
    with atomic_outputs(out_csv, out_plot) as (tmp_csv, tmp_plot):
        # both outputs are moved into place only when the whole block has succeeded
        processed.to_csv(tmp_csv, index=False, lineterminator="\n")
        if tmp_plot is not None:
            _plot_ocv(raw, processed, window, tmp_plot, fmt)
    return processed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``bmsrl ocv INPUT OUTPUT [--plot PDF] [--points N] [--soc-window LO HI] [--allow-implausible]``."""
    parser.add_argument("input", type=Path, help="OCV table CSV with columns soc [-], ocv_v [V]")
    parser.add_argument("output", type=Path, help="processed table CSV to write (uniform SoC grid)")
    parser.add_argument("--plot", type=Path, metavar="PATH", help="also write a plot of the table (.pdf, .png or .svg)")
    parser.add_argument(
        "--points",
        type=int,
        default=DEFAULT_N_POINTS,
        metavar="N",
        help=f"points of the uniform SoC grid, 2 to {MAX_N_POINTS} (default {DEFAULT_N_POINTS})",
    )
    parser.add_argument(
        "--allow-implausible",
        action="store_true",
        help="accept OCV values outside 1.5-5 V (refused by default: they catch tables in mV)",
    )
    parser.add_argument(
        "--soc-window",
        type=float,
        nargs=2,
        default=list(DEFAULT_SOC_WINDOW),
        metavar=("LO", "HI"),
        help="SoC window the table must cover (default %(default)s)",
    )


def main(args: argparse.Namespace) -> int:
    """Run the stage from parsed arguments; print a one-line summary; return 0."""
    processed = process_ocv_table(
        args.input,
        args.output,
        out_plot=args.plot,
        n_points=args.points,
        soc_window=tuple(args.soc_window),
        allow_implausible=args.allow_implausible,
    )
    soc, ocv_v = processed["soc"].to_numpy(), processed["ocv_v"].to_numpy()
    plot = f" and {args.plot}" if args.plot is not None else ""
    print(
        f"ocv: {args.input} -> {args.output}{plot}: {len(processed)} points, SoC {soc[0]:g}-{soc[-1]:g}, "
        f"OCV {ocv_v[0]:.4f}-{ocv_v[-1]:.4f} V"
    )
    return 0
