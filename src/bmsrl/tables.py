"""Small numeric CSV tables: one validation implementation for every table the package reads.

The OCV table (:mod:`bmsrl.ocv`) and the ECM parameter table (:func:`load_ecm_table`) are plain
comma-separated files with a header line. They are written by hand or exported from a spreadsheet,
so every defect is reported as a :class:`~bmsrl.errors.UserError` with a single line that names the
file and, where there is one, the line and the column.

Line numbers are physical line numbers in the file, counted from 1, the header being line 1 (so
the first data row is normally line 2). This is what a text editor shows, and what the user needs
to find the defect. Blank lines (including rows whose cells are all empty, as spreadsheets export)
are skipped but still counted.

Also here: :func:`atomic_output`, which writes a file through a temporary sibling and
:func:`os.replace`, so that a failed stage never leaves a half-written output behind.
"""

from __future__ import annotations

import csv
import math
import os
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from bmsrl.errors import UserError

#: Columns of the ECM parameter table: SoC [-], R0 [ohm], R1 [ohm], C1 [F], R2 [ohm], C2 [F].
ECM_COLUMNS: tuple[str, ...] = ("soc", "r0_ohm", "r1_ohm", "c1_f", "r2_ohm", "c2_f")

#: Name of the column holding file line numbers in the index of :func:`read_numeric_csv` frames.
LINE = "line"


def package_data_file(name: str) -> resources.abc.Traversable:
    """A file shipped in the package's ``bmsrl/data`` folder (``name`` e.g. ``"ocv_table.csv"``)."""
    return resources.files("bmsrl") / "data" / name


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


def read_numeric_csv(path: str | os.PathLike, columns: Sequence[str], *, kind: str = "table") -> pd.DataFrame:
    """Read a comma-separated table whose ``columns`` must all hold finite numbers.

    Parameters
    ----------
    path:
        The CSV file. It is decoded as UTF-8 (a leading byte-order mark, as Excel writes, is
        accepted). Header names are stripped of surrounding whitespace; other columns than
        ``columns`` are allowed and ignored (their cells are not checked).
    columns:
        Required column names.
    kind:
        What the table is (e.g. ``"OCV table"``); starts every error message.

    Returns
    -------
    pandas.DataFrame
        The required columns as float64, in file order. The index, named ``"line"``, holds each
        row's line number in the file (header = line 1), for error messages further down.

    Raises
    ------
    UserError
        One line naming the file (and line / column): file missing or unreadable, empty file,
        header without data rows, missing or repeated column, a row with more cells than the
        header, an empty cell, a value that is not a number, NaN or infinite.
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

    if not records:
        raise UserError(f"{kind} {path}: file is empty (expected a header line: {','.join(columns)})")
    header_line, header = records[0]
    names = [name.strip() for name in header]
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in columns and name in seen:
            raise UserError(f"{_where(kind, path, header_line, name)}: column appears twice in the header")
        seen.setdefault(name, position)
    for name in columns:
        if name not in seen:
            found = ", ".join(repr(n) for n in names)
            hint = ""
            if any(sep in ",".join(header) for sep in (";", "\t")):
                hint = "; the file must be comma-separated"
            raise UserError(
                f"{_where(kind, path, header_line)}: missing column {name!r} (header has {found}{hint})"
            )
    body = records[1:]
    if not body:
        raise UserError(f"{kind} {path}: no data rows after the header (line {header_line})")

    values = {name: np.empty(len(body)) for name in columns}
    lines = np.empty(len(body), dtype=np.int64)
    for i, (line, row) in enumerate(body):
        if len(row) > len(names):
            raise UserError(
                f"{_where(kind, path, line)}: {len(row)} cells but the header has {len(names)} columns"
            )
        lines[i] = line
        for name in columns:
            values[name][i] = _parse_cell(row, seen[name], kind, path, line, name)
    return pd.DataFrame(values, index=pd.Index(lines, name=LINE))


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


def _parse_cell(row: list[str], position: int, kind: str, path: Path, line: int, column: str) -> float:
    """One cell as a finite float, or a :class:`UserError` naming file, line and column."""
    text = row[position].strip() if position < len(row) else ""
    if not text:
        raise UserError(f"{_where(kind, path, line, column)}: empty cell (a number is required)")
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{_where(kind, path, line, column)}: {text!r} is not a number") from None
    if math.isnan(value):
        raise UserError(f"{_where(kind, path, line, column)}: value is NaN (a number is required)")
    if math.isinf(value):
        raise UserError(f"{_where(kind, path, line, column)}: value {text!r} is not finite")
    return value


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


def sort_unique(
    frame: pd.DataFrame, key: str, *, kind: str, path: str | os.PathLike
) -> pd.DataFrame:
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


def load_ecm_table(path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The equivalent-circuit (2-RC Thevenin) parameter table, validated, by ascending SoC.

    Parameters
    ----------
    path:
        A CSV with columns ``soc`` [-], ``r0_ohm`` [ohm], ``r1_ohm`` [ohm], ``c1_f`` [F],
        ``r2_ohm`` [ohm], ``c2_f`` [F] (other columns ignored; rows in any order). ``None``
        reads the package's ``bmsrl/data/ecm_params.csv`` (see the provenance note there).

    Returns
    -------
    dict[str, numpy.ndarray]
        One float64 array per column of :data:`ECM_COLUMNS`, sorted by strictly increasing ``soc``.

    Raises
    ------
    UserError
        Naming the file (and line / column): the defects of :func:`read_numeric_csv`, a SoC outside
        [0, 1], a parameter <= 0, or two rows with the same SoC and different parameters (exact
        duplicate rows are dropped with a warning).
    """
    if path is None:
        with resources.as_file(package_data_file("ecm_params.csv")) as default:
            return load_ecm_table(default)
    kind = "ECM table"
    frame = read_numeric_csv(path, ECM_COLUMNS, kind=kind)
    check_within(frame, "soc", 0.0, 1.0, kind=kind, path=path)
    check_positive(frame, ECM_COLUMNS[1:], kind=kind, path=path)
    frame = sort_unique(frame, "soc", kind=kind, path=path)
    return {name: np.ascontiguousarray(frame[name].to_numpy(dtype=np.float64)) for name in ECM_COLUMNS}


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    Parent folders are created. If the ``with`` body raises, the temporary file is removed and
    ``path`` is left as it was (absent, or its previous content). The temporary file lives in the
    same folder, so :func:`os.replace` never crosses a file system. An :class:`OSError` while
    writing becomes a :class:`UserError` naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        with suppress(OSError):
            tmp.unlink()
