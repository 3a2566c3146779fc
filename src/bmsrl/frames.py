"""Reading the pipeline's own result tables (metrics, traces, summary) with one-line errors.

The evaluation and aggregation stages write mixed-type CSVs (string columns such as ``policy`` or
``phase`` beside numeric ones, some numeric cells legitimately empty). :func:`read_result_csv`
reads such a file and checks it against the contract of the stage that wrote it; every defect is a
:class:`~bmsrl.errors.UserError` that names the file, and the column and line where there is one.
Line numbers count the header as line 1, as a text editor shows them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bmsrl.errors import UserError

#: Spellings accepted in boolean columns (pandas writes ``True``/``False``; other tools 1/0).
_BOOL_TEXT = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}


def read_result_csv(
    path: str | os.PathLike,
    *,
    kind: str,
    text: Sequence[str] = (),
    numeric: Sequence[str] = (),
    optional_numeric: Sequence[str] = (),
    boolean: Sequence[str] = (),
    cell_prefixes: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a result table and check its columns.

    Parameters
    ----------
    path:
        The CSV file (UTF-8, comma-separated, header line).
    kind:
        What the table is (e.g. ``"metrics file"``); starts every error message.
    text:
        Required columns holding non-empty strings.
    numeric:
        Required columns holding finite numbers in every row.
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
        All columns of the file; the checked ones converted (numbers as float64, strings
        stripped). The index is the data row's line number in the file.

    Raises
    ------
    UserError
        Naming the file: missing/unreadable/empty file, no data rows, a missing column, an empty
        or non-numeric cell (with line and column), a non-finite number.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False,
                            encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{kind} {path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{kind} {path}: is a directory, not a file") from None
    except pd.errors.EmptyDataError:
        raise UserError(f"{kind} {path}: file is empty (expected a header line)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{kind} {path}: not a readable CSV table ({reason})") from None
    except OSError as exc:
        raise UserError(f"{kind} {path}: cannot be read ({exc.strerror or exc})") from None

    frame = frame.fillna("")  # cells missing from short rows count as empty
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.Index(np.arange(len(frame)) + 2, name="line")
    # blank lines (or rows of empty cells) are skipped, but keep their line numbers counted
    blank = (frame.apply(lambda col: col.str.strip()) == "").all(axis=1)
    frame = frame[~blank.to_numpy()]
    for name in (*text, *numeric, *optional_numeric, *boolean):
        if name not in frame.columns:
            raise UserError(
                f"{kind} {path}: missing column {name!r} (header has {', '.join(map(repr, frame.columns))})"
            )
    if frame.empty:
        raise UserError(f"{kind} {path}: no data rows after the header")

    for name in text:
        values = frame[name].str.strip()
        _fail_first(values == "", kind, path, frame, name, "empty cell (a name is required)")
        frame[name] = values
    for prefix in cell_prefixes:
        numeric = (*numeric, *numbered_columns(frame, prefix, kind=kind, path=path))
    for name in numeric:
        frame[name] = _to_float(frame, name, kind, path, allow_empty=False)
    for name in optional_numeric:
        frame[name] = _to_float(frame, name, kind, path, allow_empty=True)
    for name in boolean:
        cells = frame[name].str.strip().str.lower()
        mapped = cells.map(_BOOL_TEXT)
        _fail_first(mapped.isna(), kind, path, frame, name, "{value!r} is not a boolean (True/False/1/0)",
                    raw=frame[name])
        frame[name] = mapped.astype(np.float64)
    return frame


def _to_float(frame: pd.DataFrame, name: str, kind: str, path: Path, *, allow_empty: bool) -> pd.Series:
    """Column ``name`` as float64; empty cells become NaN if ``allow_empty``, otherwise an error."""
    cells = frame[name].str.strip()
    empty = cells == ""
    if not allow_empty:
        _fail_first(empty, kind, path, frame, name, "empty cell (a number is required)")
    values = pd.to_numeric(cells.where(~empty), errors="coerce")
    _fail_first(values.isna() & ~empty, kind, path, frame, name, "{value!r} is not a number", raw=cells)
    _fail_first(~np.isfinite(values) & values.notna(), kind, path, frame, name,
                "{value!r} is not a finite number", raw=cells)
    return values.astype(np.float64)


def _fail_first(bad: Iterable[bool], kind: str, path: Path, frame: pd.DataFrame, column: str,
                template: str, raw: pd.Series | None = None) -> None:
    """Raise a :class:`UserError` naming the first row flagged in ``bad`` (and how many more)."""
    bad = np.asarray(bad, dtype=bool)
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    first = rows[0]
    value = raw.iloc[first] if raw is not None else ""
    more = f" (and {rows.size - 1} more row{'s' if rows.size != 2 else ''})" if rows.size > 1 else ""
    raise UserError(
        f"{kind} {path}, line {frame.index[first]}, column {column!r}: {template.format(value=value)}{more}"
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
