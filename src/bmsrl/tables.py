"""Validated CSV tables: one reader and one set of checks for every table the package reads.

Input tables (the OCV table, the ECM parameter table) are written by hand or exported from a
spreadsheet; result tables (``metrics.csv``, ``traces.csv``, ``summary.csv``, see
:mod:`bmsrl.results`) are written by the pipeline. Both are read by :func:`read_table`, so every
defect is reported the same way: a :class:`~bmsrl.errors.UserError` with a single line that names
the file and, where there is one, the line and the column.

Line numbers are physical line numbers in the file, counted from 1, the header being line 1 (so
the first data row is normally line 2). This is what a text editor shows, and what the user needs
to find the defect. Blank lines (including rows whose cells are all empty, as spreadsheets export)
are skipped but still counted.

Also here: the loaders of the two input tables the simulator needs, :func:`load_ocv_table`
(raw, validated) / :func:`load_processed_ocv` (the ``ocv`` stage's output) and
:func:`load_ecm_table`.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from bmsrl.errors import UserError
from bmsrl.io import package_data_file

#: Columns of the ECM parameter table: SoC [-], R0 [ohm], R1 [ohm], C1 [F], R2 [ohm], C2 [F].
ECM_COLUMNS: tuple[str, ...] = ("soc", "r0_ohm", "r1_ohm", "c1_f", "r2_ohm", "c2_f")
#: Columns of an OCV table: SoC [-] (a fraction, not a percentage), open-circuit voltage [V].
OCV_COLUMNS: tuple[str, str] = ("soc", "ocv_v")
#: SoC window [-] a processed OCV table is checked against when no window is given; also the default
#: of :class:`bmsrl.pack.PackParameters` ``soc_limits`` (callers pass the configured window).
DEFAULT_SOC_WINDOW: tuple[float, float] = (0.1, 0.9)
#: Points of the uniform SoC grid of a processed OCV table.
DEFAULT_N_POINTS = 201
#: The most points of a processed OCV table: a SoC step of 1e-4, five times finer than the simulator's
#: lookup grid (bmsrl.pack.CellTables, 5e-4), so more points add nothing but file size.
MAX_N_POINTS = 10_001

#: Plausible ranges of a Li-ion cell's table values, (low, high, unit). Outside them a table is in
#: the wrong unit (mV, mOhm, kF) or wrong; ``allow_implausible`` (``bmsrl ocv --allow-implausible``,
#: config key ``allow_implausible_tables``) accepts it. OCV: every Li-ion chemistry (LTO ~1.5 V
#: empty, LFP 2.5-3.6 V, NCA/NMC 3-4.2 V, high-voltage cathodes < 5 V). Resistances: 0.1 mOhm (a
#: large prismatic cell) to 1 Ohm (a small, cold, aged cell). RC capacitances: 1 F to 1 MF (time
#: constants R*C of the shipped table 0.4-40 s).
PLAUSIBLE_OCV_V: tuple[float, float, str] = (1.5, 5.0, "V")
PLAUSIBLE_RESISTANCE_OHM: tuple[float, float, str] = (1e-4, 1.0, "Ohm")
PLAUSIBLE_CAPACITANCE_F: tuple[float, float, str] = (1.0, 1e6, "F")
#: how to accept a table outside the plausible ranges (appended to the error message)
OVERRIDE_HINT = (
    "if the table really is in these units, pass --allow-implausible (bmsrl ocv) or set allow_implausible_tables: true"
)

#: Name of the index holding file line numbers in the frames of :func:`read_table`.
LINE = "line"

#: Spellings accepted in boolean columns (pandas writes ``True``/``False``; other tools 1/0).
_BOOL_TEXT = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}


def _where(kind: str, path: Path, line: int | None = None, column: str | None = None) -> str:
    """Message prefix naming the table, the file and optionally the line and column."""
    text = f"{kind} {path}"
    if line is not None:
        text += f", line {line}"
    if column is not None:
        text += f", column {column!r}"
    return text


def _more(count: int) -> str:
    """Suffix telling how many further rows share a defect (messages name only the first)."""
    return f" (and {count} more row{'s' if count != 1 else ''})" if count > 0 else ""


# --------------------------------------------------------------------------------------------
# The reader


def read_table(
    path: str | os.PathLike,
    *,
    kind: str,
    text: Sequence[str] = (),
    numeric: Sequence[str] = (),
    optional_numeric: Sequence[str] = (),
    boolean: Sequence[str] = (),
    cell_prefixes: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a comma-separated table with a header line and check its columns.

    Parameters
    ----------
    path:
        The CSV file, decoded as UTF-8 (a leading byte-order mark, as Excel writes, is accepted).
        Header names are stripped of surrounding whitespace; columns not named below are kept
        as text and not checked.
    kind:
        What the table is (e.g. ``"OCV table"``); starts every error message.
    text:
        Required columns holding non-empty strings (returned stripped).
    numeric:
        Required columns holding finite numbers in every row (returned as float64).
    optional_numeric:
        Required columns holding finite numbers or empty cells (read as NaN).
    boolean:
        Required columns holding ``True``/``False``/``1``/``0``; returned as float 1.0 / 0.0.
    cell_prefixes:
        Per-cell numeric column families: for prefix ``"soc_"`` the columns ``soc_1``, ``soc_2``,
        ... (at least ``soc_1``; see :func:`numbered_columns`) must hold finite numbers.

    Returns
    -------
    pandas.DataFrame
        All columns of the file, the checked ones converted. The index, named ``"line"``, holds
        each row's line number in the file (header = line 1).

    Raises
    ------
    UserError
        One line naming the file (and line / column): file missing or unreadable, not UTF-8,
        empty file, header without data rows, missing or repeated column, a row with more cells
        than the header, an empty or non-numeric cell, NaN or an infinite number.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            records = list(_numbered_rows(handle, kind, path))
    except FileNotFoundError:
        raise UserError(f"{kind} {path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{kind} {path}: is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{kind} {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"{kind} {path}: cannot be read ({exc.strerror or exc})") from None

    required = (*text, *numeric, *optional_numeric, *boolean)
    if not records:
        expected = f" (expected a header line: {','.join(required)})" if required else " (expected a header line)"
        raise UserError(f"{kind} {path}: file is empty{expected}")
    header_line, header = records[0]
    names = [name.strip() for name in header]
    seen: set[str] = set()
    for name in names:
        if name in seen and (name in required or not cell_prefixes):
            raise UserError(f"{_where(kind, path, header_line, name)}: column appears twice in the header")
        seen.add(name)
    for name in required:
        if name not in seen:
            found = ", ".join(repr(n) for n in names)
            hint = "; the file must be comma-separated" if any(s in ",".join(header) for s in (";", "\t")) else ""
            raise UserError(f"{_where(kind, path, header_line)}: missing column {name!r} (header has {found}{hint})")
    body = records[1:]
    if not body:
        raise UserError(f"{kind} {path}: no data rows after the header (line {header_line})")
    for line, row in body:
        if len(row) > len(names):
            raise UserError(f"{_where(kind, path, line)}: {len(row)} cells but the header has {len(names)} columns")
    cells = [[row[i].strip() if i < len(row) else "" for i in range(len(names))] for _, row in body]
    frame = pd.DataFrame(cells, columns=names, index=pd.Index([line for line, _ in body], name=LINE), dtype=object)

    for name in text:
        _fail_first(frame[name] == "", kind, path, frame, name, "empty cell (a name is required)")
        frame[name] = frame[name].astype(str)
    checked = list(numeric)
    for prefix in cell_prefixes:
        checked += numbered_columns(frame, prefix, kind=kind, path=path)
    for name in checked:
        frame[name] = _to_float(frame, name, kind, path, allow_empty=False)
    for name in optional_numeric:
        frame[name] = _to_float(frame, name, kind, path, allow_empty=True)
    for name in boolean:
        mapped = frame[name].str.lower().map(_BOOL_TEXT)
        _fail_first(
            mapped.isna(), kind, path, frame, name, "{value!r} is not a boolean (True/False/1/0)", raw=frame[name]
        )
        frame[name] = mapped.astype(np.float64)
    return frame


def _numbered_rows(handle, kind: str, path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, cells)`` for every non-blank CSV record of an open file."""
    reader = csv.reader(handle)
    line = 0
    try:
        for row in reader:
            line_start = line + 1
            line = reader.line_num
            if all(not cell.strip() for cell in row):
                continue  # blank line, or a row of empty cells exported by a spreadsheet
            yield line_start, row
    except csv.Error as exc:
        raise UserError(f"{_where(kind, path, reader.line_num)}: not valid CSV ({exc})") from None


def _to_float(frame: pd.DataFrame, name: str, kind: str, path: Path, *, allow_empty: bool) -> pd.Series:
    """Column ``name`` as float64; empty cells become NaN if ``allow_empty``, otherwise an error."""
    cells = frame[name].astype(str)
    empty = cells == ""
    if not allow_empty:
        _fail_first(empty, kind, path, frame, name, "empty cell (a number is required)")
    values = pd.to_numeric(cells.where(~empty), errors="coerce")
    is_nan_text = cells.str.lower().isin(("nan", "+nan", "-nan"))
    _fail_first(is_nan_text, kind, path, frame, name, "value is NaN (a number is required)")
    _fail_first(values.isna() & ~empty, kind, path, frame, name, "{value!r} is not a number", raw=cells)
    _fail_first(
        ~np.isfinite(values) & values.notna(), kind, path, frame, name, "value {value!r} is not finite", raw=cells
    )
    return values.astype(np.float64)


def _fail_first(
    bad: Iterable[bool],
    kind: str,
    path: Path,
    frame: pd.DataFrame,
    column: str,
    template: str,
    raw: pd.Series | None = None,
) -> None:
    """Raise a :class:`UserError` naming the first row flagged in ``bad`` (and how many more)."""
    bad = np.asarray(bad, dtype=bool)
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    value = raw.iloc[rows[0]] if raw is not None else ""
    raise UserError(
        f"{_where(kind, Path(path), int(frame.index[rows[0]]), column)}: {template.format(value=value)}"
        f"{_more(rows.size - 1)}"
    )


def numbered_columns(frame: pd.DataFrame, prefix: str, *, kind: str, path: str | os.PathLike) -> list[str]:
    """The consecutive per-cell columns ``{prefix}1``, ``{prefix}2``, ... present in ``frame``.

    Raises a :class:`UserError` naming the file if ``{prefix}1`` is missing.
    """
    names = []
    while f"{prefix}{len(names) + 1}" in frame.columns:
        names.append(f"{prefix}{len(names) + 1}")
    if not names:
        raise UserError(f"{kind} {path}: missing column {prefix + '1'!r} (and the further per-cell columns)")
    return names


def read_numeric_csv(path: str | os.PathLike, columns: Sequence[str], *, kind: str = "table") -> pd.DataFrame:
    """The ``columns`` of a table that must all hold finite numbers, as float64 (:func:`read_table`)."""
    return read_table(path, kind=kind, numeric=columns)[list(columns)].astype(np.float64)


# --------------------------------------------------------------------------------------------
# Checks of numeric columns


def check_within(
    frame: pd.DataFrame, column: str, low: float, high: float, *, kind: str, path: str | os.PathLike, hint: str = ""
) -> None:
    """Raise a :class:`UserError` naming the first row whose ``column`` lies outside ``[low, high]``."""
    values = frame[column].to_numpy()
    bad = np.flatnonzero((values < low) | (values > high))
    if bad.size:
        first = bad[0]
        raise UserError(
            f"{_where(kind, Path(path), int(frame.index[first]), column)}: {values[first]:g} is outside "
            f"[{low:g}, {high:g}]{hint}{_more(bad.size - 1)}"
        )


def check_positive(frame: pd.DataFrame, columns: Sequence[str], *, kind: str, path: str | os.PathLike) -> None:
    """Raise a :class:`UserError` naming the first row and column holding a value <= 0."""
    for column in columns:
        values = frame[column].to_numpy()
        bad = np.flatnonzero(values <= 0)
        if bad.size:
            first = bad[0]
            raise UserError(
                f"{_where(kind, Path(path), int(frame.index[first]), column)}: {values[first]:g} must be "
                f"positive{_more(bad.size - 1)}"
            )


def sort_unique(frame: pd.DataFrame, key: str, *, kind: str, path: str | os.PathLike) -> pd.DataFrame:
    """Sort rows by ``key`` and resolve rows that repeat a ``key`` value.

    Rows equal in every column are exact duplicates: all but the first are dropped and a
    :class:`UserWarning` names the lines. Rows with the same ``key`` but different values elsewhere
    contradict each other: :class:`UserError` naming both lines. The ``"line"`` index is kept.
    """
    path = Path(path)
    ordered = frame.sort_values(key, kind="stable")
    repeated = ordered[key].duplicated(keep=False).to_numpy()
    if not repeated.any():
        return ordered
    dropped: list[int] = []
    for _, group in ordered[repeated].groupby(key, sort=True):
        first_line, first = int(group.index[0]), group.iloc[0]
        for line, row in group.iloc[1:].iterrows():
            if not row.equals(first):
                differing = next(c for c in group.columns if row[c] != first[c])
                raise UserError(
                    f"{_where(kind, path, column=key)}: lines {first_line} and {line} both have "
                    f"{key} = {first[key]:g} but different {differing} ({first[differing]:g} vs {row[differing]:g})"
                )
            dropped.append(int(line))
    warnings.warn(
        f"{kind} {path}: dropped {len(dropped)} exact duplicate row(s) at line(s) "
        f"{', '.join(map(str, sorted(dropped)))}",
        UserWarning,
        stacklevel=3,
    )
    return ordered.drop(index=dropped)


def check_strictly_increasing(
    frame: pd.DataFrame, column: str, *, along: str, kind: str, path: str | os.PathLike
) -> None:
    """Raise a :class:`UserError` if ``column`` is not strictly increasing in row order.

    ``frame`` is expected sorted by ``along``; the message names both lines of the first
    offending pair with their ``along`` and ``column`` values.
    """
    values = frame[column].to_numpy()
    bad = np.flatnonzero(np.diff(values) <= 0)
    if bad.size:
        i = bad[0]
        a, b = frame.iloc[i], frame.iloc[i + 1]
        raise UserError(
            f"{_where(kind, Path(path), column=column)}: not strictly increasing in {along}: line "
            f"{frame.index[i]} ({along} {a[along]:g}, {column} {a[column]:g}) then line {frame.index[i + 1]} "
            f"({along} {b[along]:g}, {column} {b[column]:g}){_more(bad.size - 1)}"
        )


# --------------------------------------------------------------------------------------------
# The input tables


def _check_soc_window(soc_window) -> tuple[float, float]:
    """The SoC window as two floats with 0 <= lo < hi <= 1, or a :class:`UserError`."""
    try:
        low, high = (float(v) for v in soc_window)
    except (TypeError, ValueError):
        raise UserError(f"SoC window must be two numbers LO HI, got {soc_window!r}") from None
    if not (0.0 <= low < high <= 1.0):
        raise UserError(f"SoC window [{low:g}, {high:g}] must satisfy 0 <= LO < HI <= 1")
    return low, high


def _check_n_points(n_points) -> int:
    """The number of grid points as an int in [2, MAX_N_POINTS], or a :class:`UserError`."""
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or not 2 <= n_points <= MAX_N_POINTS:
        raise UserError(
            f"number of resampling points must be an integer in [2, {MAX_N_POINTS}] (a SoC step of "
            f"1e-4 is finer than the simulator resolves), got {n_points!r}"
        )
    return int(n_points)


def check_plausible(
    frame: pd.DataFrame, column: str, plausible: tuple[float, float, str], *, kind: str, path: str | os.PathLike
) -> None:
    """Raise a :class:`UserError` naming the first row whose ``column`` is outside the ``plausible``
    range ``(low, high, unit)``, with a guess at the unit and the way to accept it."""
    low, high, unit = plausible
    values = frame[column].to_numpy()
    bad = np.flatnonzero((values < low) | (values > high))
    if not bad.size:
        return
    first = values[bad[0]]
    guess = ""
    if low * 1e3 <= first <= high * 1e3:
        guess = f"; it looks like m{unit}: convert to {unit}"
    elif low * 1e-3 <= first <= high * 1e-3 and unit == "F":
        guess = f"; it looks like k{unit}: convert to {unit}"
    raise UserError(
        f"{_where(kind, Path(path), int(frame.index[bad[0]]), column)}: {first:g} {unit} is outside the plausible "
        f"range [{low:g}, {high:g}] {unit} for a Li-ion cell{guess}{_more(bad.size - 1)}; {OVERRIDE_HINT}"
    )


#: the SoC range [-] pulse tests of Li-ion cells measure ECM parameters over (the shipped table's): an
#: ECM table must cover the pack's SoC window inside it; beyond it the end rows' values are held
ECM_MEASURED_SOC = (0.1, 0.9)


def check_covers(frame: pd.DataFrame, soc_window: tuple[float, float], *, kind: str, path: str | os.PathLike) -> None:
    """Refuse a table (sorted by ``soc``) whose SoC range does not cover ``soc_window`` [-]: the
    simulator would hold its first or last row's values over the rest of the window."""
    low, high = soc_window
    soc_lo, soc_hi = frame["soc"].iloc[0], frame["soc"].iloc[-1]
    if soc_lo > low or soc_hi < high:
        raise UserError(
            f"{kind} {path}, column 'soc': SoC range [{soc_lo:g}, {soc_hi:g}] does not cover the "
            f"SoC window [{low:g}, {high:g}]"
        )


def read_ocv_table(
    path: str | os.PathLike, soc_window: tuple[float, float] = DEFAULT_SOC_WINDOW, *, allow_implausible: bool = False
) -> pd.DataFrame:
    """Read and validate an OCV table.

    Parameters
    ----------
    path:
        CSV with a header line and columns ``soc`` [-] and ``ocv_v`` [V]; rows in any order,
        other columns allowed and ignored.
    soc_window:
        ``(lo, hi)`` SoC interval [-] the table must cover (its SoC range must include it).

    Returns
    -------
    pandas.DataFrame
        Columns ``soc`` [-], ``ocv_v`` [V] as float64, sorted by strictly increasing SoC, exact
        duplicate rows dropped, index 0..n-1.

    Raises
    ------
    UserError
        With one line naming the file and the line in it (header = line 1) and/or the column:
        the defects of :func:`read_table`, SoC outside [0, 1], fewer than 2 distinct SoC points,
        SoC range not covering ``soc_window``, two rows with the same SoC and different OCV (both
        lines named), OCV not strictly increasing in SoC, and (unless ``allow_implausible``) an OCV
        outside :data:`PLAUSIBLE_OCV_V` (a table in mV, or negative voltages).

    Warns
    -----
    UserWarning
        When exact duplicate rows (same SoC and OCV) are dropped; it names their lines.
    """
    kind = "OCV table"
    low, high = _check_soc_window(soc_window)
    frame = read_numeric_csv(path, OCV_COLUMNS, kind=kind)
    soc_max = frame["soc"].max()
    hint = "; SoC is a fraction, not a percentage" if 1.0 < soc_max <= 100.0 else ""
    check_within(frame, "soc", 0.0, 1.0, kind=kind, path=path, hint=hint)
    if not allow_implausible:
        check_plausible(frame, "ocv_v", PLAUSIBLE_OCV_V, kind=kind, path=path)
    frame = sort_unique(frame, "soc", kind=kind, path=path)
    if len(frame) < 2:
        raise UserError(f"{kind} {path}, column 'soc': needs at least 2 distinct SoC points, found {len(frame)}")
    check_covers(frame, (low, high), kind=kind, path=path)
    check_strictly_increasing(frame, "ocv_v", along="soc", kind=kind, path=path)
    return frame.reset_index(drop=True)


def resample_ocv(df: pd.DataFrame, n_points: int = DEFAULT_N_POINTS) -> pd.DataFrame:
    """Linearly interpolate a validated OCV table onto a uniform SoC grid.

    The grid spans the table's own SoC range [min soc, max soc] with ``n_points`` points, so
    nothing is extrapolated. Piecewise-linear interpolation of a strictly increasing table on a
    strictly increasing grid is strictly increasing, so monotonicity is preserved.

    Returns a frame with columns ``soc`` [-] (uniform grid) and ``ocv_v`` [V], float64.
    """
    n_points = _check_n_points(n_points)
    table = df.sort_values("soc")
    soc = table["soc"].to_numpy(dtype=np.float64)
    ocv_v = table["ocv_v"].to_numpy(dtype=np.float64)
    grid = np.linspace(soc[0], soc[-1], n_points)
    return pd.DataFrame({"soc": grid, "ocv_v": np.interp(grid, soc, ocv_v)})


def load_processed_ocv(
    path: str | os.PathLike | None = None,
    *,
    soc_window: tuple[float, float] = DEFAULT_SOC_WINDOW,
    n_points: int = DEFAULT_N_POINTS,
    allow_implausible: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The OCV curve for the simulator: ``(soc_grid [-], ocv_v [V])`` as float64 arrays.

    With ``path=None``, the package's default table ``bmsrl/data/ocv_table.csv`` is read and
    resampled exactly as the ``ocv`` stage does (:func:`read_ocv_table` then :func:`resample_ocv`
    with ``n_points``). With a path (normally the ``ocv`` stage's output), the table is read and
    validated with :func:`read_ocv_table` and returned as it is, sorted by SoC. ``soc_window`` is
    the pack's configured SoC window (``env.soc_limits``), which the table must cover.
    """
    if path is None:
        with resources.as_file(package_data_file("ocv_table.csv")) as default:
            table = resample_ocv(read_ocv_table(default, soc_window=soc_window), n_points)
    else:
        table = read_ocv_table(path, soc_window=soc_window, allow_implausible=allow_implausible)
    return (
        np.ascontiguousarray(table["soc"].to_numpy(dtype=np.float64)),
        np.ascontiguousarray(table["ocv_v"].to_numpy(dtype=np.float64)),
    )


def load_ecm_table(
    path: str | os.PathLike | None = None,
    *,
    soc_window: tuple[float, float] = DEFAULT_SOC_WINDOW,
    allow_implausible: bool = False,
) -> dict[str, np.ndarray]:
    """The equivalent-circuit (2-RC Thevenin) parameter table, validated, by ascending SoC.

    Parameters
    ----------
    path:
        A CSV with columns ``soc`` [-], ``r0_ohm`` [ohm], ``r1_ohm`` [ohm], ``c1_f`` [F],
        ``r2_ohm`` [ohm], ``c2_f`` [F] (other columns ignored; rows in any order). ``None``
        reads the package's ``bmsrl/data/ecm_params.csv`` (see the provenance note there).
    soc_window:
        The pack's ``soc_limits`` [-]: the table must cover the part of it inside
        :data:`ECM_MEASURED_SOC` (outside, the end rows' values are held, as for the shipped table).

    Returns
    -------
    dict[str, numpy.ndarray]
        One float64 array per column of :data:`ECM_COLUMNS`, sorted by strictly increasing ``soc``.

    Raises
    ------
    UserError
        Naming the file (and line / column): the defects of :func:`read_numeric_csv`, a SoC outside
        [0, 1], a SoC range not covering ``soc_window``, a parameter <= 0, or two rows with the same
        SoC and different parameters (exact
        duplicate rows are dropped with a warning); unless ``allow_implausible``, a resistance outside
        :data:`PLAUSIBLE_RESISTANCE_OHM` or a capacitance outside :data:`PLAUSIBLE_CAPACITANCE_F`.
    """
    if path is None:
        with resources.as_file(package_data_file("ecm_params.csv")) as default:
            return load_ecm_table(default, soc_window=soc_window)
    kind = "ECM table"
    low, high = _check_soc_window(soc_window)
    must_cover = (max(low, ECM_MEASURED_SOC[0]), min(high, ECM_MEASURED_SOC[1]))
    frame = read_numeric_csv(path, ECM_COLUMNS, kind=kind)
    check_within(frame, "soc", 0.0, 1.0, kind=kind, path=path)
    check_positive(frame, ECM_COLUMNS[1:], kind=kind, path=path)
    if not allow_implausible:
        for name in ECM_COLUMNS[1:]:
            plausible = PLAUSIBLE_CAPACITANCE_F if name.endswith("_f") else PLAUSIBLE_RESISTANCE_OHM
            check_plausible(frame, name, plausible, kind=kind, path=path)
    frame = sort_unique(frame, "soc", kind=kind, path=path)
    check_covers(frame, must_cover, kind=kind, path=path)
    return {name: np.ascontiguousarray(frame[name].to_numpy(dtype=np.float64)) for name in ECM_COLUMNS}


#: columns of a drive-cycle table: time [s] and current [A] (> 0 discharging)
DRIVE_CYCLE_COLUMNS = ("time_s", "current_a")
#: shipped drive cycles by name (bmsrl/data, provenance in its README.md)
DRIVE_CYCLES = {"us06": "drive_cycle_us06.csv"}
#: the time steps [s] a drive-cycle table may have: a step outside is a unit error (ms, h)
PLAUSIBLE_DRIVE_CYCLE_STEP_S = (0.1, 60.0)


def load_drive_cycle(name_or_path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """A drive cycle's current [A] per time step and the step [s], validated.

    ``name_or_path``: a shipped cycle (a key of :data:`DRIVE_CYCLES`, e.g. ``"us06"``) or a CSV with
    the columns ``time_s`` [s] and ``current_a`` [A] (> 0 discharging), one row per step from
    ``time_s`` 0 on a uniform step. Each current holds from its time to the next row's (the last
    row's for one step).

    Raises
    ------
    UserError
        Naming the file (and line / column): the defects of :func:`read_numeric_csv`; a time not
        starting at 0, not strictly increasing or not on a uniform step; a step outside
        :data:`PLAUSIBLE_DRIVE_CYCLE_STEP_S` (the time in ms or h?); no discharging current; a mean
        current <= 0 (the cycle would charge the pack).
    """
    if str(name_or_path) in DRIVE_CYCLES:
        with resources.as_file(package_data_file(DRIVE_CYCLES[str(name_or_path)])) as shipped:
            return load_drive_cycle(shipped)
    path = Path(name_or_path)
    kind = "drive-cycle table"
    frame = read_numeric_csv(path, DRIVE_CYCLE_COLUMNS, kind=kind)
    time_s = frame["time_s"].to_numpy()
    current_a = np.ascontiguousarray(frame["current_a"].to_numpy())
    lines = frame.index.to_numpy()
    if time_s[0] != 0.0:
        raise UserError(
            f"{_where(kind, path, int(lines[0]), 'time_s')}: the cycle must start at time_s 0, not {time_s[0]:g}"
        )
    if len(time_s) < 2:
        raise UserError(f"{kind} {path}: one row; a cycle needs at least two (its time step)")
    steps = np.diff(time_s)
    step_s = float(steps[0])
    bad = np.flatnonzero(np.abs(steps - step_s) > 1e-6 * max(step_s, 1e-9))
    if step_s <= 0 or bad.size:
        i = bad[0] if bad.size else 0
        raise UserError(
            f"{_where(kind, path, int(lines[i + 1]), 'time_s')}: time_s must rise by one uniform step "
            f"({step_s:g} s from line {lines[0]} to {lines[1]}), but goes from {time_s[i]:g} to {time_s[i + 1]:g}"
            f"{_more(bad.size - 1)}"
        )
    lo, hi = PLAUSIBLE_DRIVE_CYCLE_STEP_S
    if not lo <= step_s <= hi:
        raise UserError(
            f"{_where(kind, path, column='time_s')}: a time step of {step_s:g} s is outside [{lo:g}, {hi:g}] s "
            "(is the time in ms or h? it must be in s)"
        )
    if not (current_a > 0).any() or current_a.mean() <= 0:
        raise UserError(
            f"{_where(kind, path, column='current_a')}: the mean current is {current_a.mean():g} A; a discharge "
            "cycle needs a positive mean (current > 0 discharges the pack)"
        )
    return current_a, step_s
