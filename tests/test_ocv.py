"""Tests of the OCV preprocessing stage, the shipped tables and the ECM table loader."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmsrl import cli
from bmsrl.errors import UserError
from bmsrl.io import package_data_file
from bmsrl.ocv import keil_nca_ocv, process_ocv_table
from bmsrl.tables import (
    DEFAULT_N_POINTS,
    ECM_COLUMNS,
    load_ecm_table,
    load_processed_ocv,
    read_ocv_table,
    resample_ocv,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_OCV = ROOT / "src" / "bmsrl" / "data" / "ocv_table.csv"
SHIPPED_ECM = ROOT / "src" / "bmsrl" / "data" / "ecm_params.csv"

#: A small valid table (lines 2..6 of the file).
GOOD = "soc,ocv_v\n0.0,3.2\n0.25,3.5\n0.5,3.7\n0.75,3.9\n1.0,4.2\n"


def write(tmp_path: Path, text: str, name: str = "ocv.csv") -> Path:
    """Write ``text`` to ``tmp_path / name`` and return the path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_rejected(tmp_path: Path, text: str | None, *fragments: str) -> str:
    """Process a table that must be refused; check the message and that nothing was written.

    ``text=None`` means the input file does not exist. Returns the error message.
    """
    source = tmp_path / "ocv.csv"
    if text is not None:
        source.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(UserError) as info:
        process_ocv_table(source, out / "ocv_processed.csv", out / "ocv.pdf")
    message = str(info.value)
    assert "\n" not in message, message
    assert str(source) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert not out.exists() or list(out.iterdir()) == []
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("ocv.csv", "out")]
    assert leftovers == []
    return message


# --- the analytic fit and the shipped OCV table -------------------------------------------------


def test_keil_fit_matches_published_check_values():
    values = keil_nca_ocv([0.0, 0.5, 1.0])
    assert values.dtype == np.float64
    np.testing.assert_allclose(values, [3.245, 3.693, 4.197], atol=5e-4)


def test_keil_fit_is_strictly_increasing_on_unit_interval():
    assert np.all(np.diff(keil_nca_ocv(np.linspace(0.0, 1.0, 10001))) > 0)


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_ocv_table", ROOT / "scripts" / "make_ocv_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_ocv_table_equals_generator_output(tmp_path):
    generator = _load_generator()
    out = tmp_path / "regenerated.csv"
    assert generator.main(["--output", str(out)]) == 0
    assert out.read_bytes() == SHIPPED_OCV.read_bytes()
    assert generator.main(["--check", "--output", str(SHIPPED_OCV)]) == 0


def test_generator_check_detects_a_changed_table(tmp_path):
    changed = write(tmp_path, SHIPPED_OCV.read_text().replace("3.6934", "3.6935"))
    assert _load_generator().main(["--check", "--output", str(changed)]) == 1


def test_shipped_ocv_table_content():
    table = pd.read_csv(SHIPPED_OCV)
    assert list(table.columns) == ["soc", "ocv_v"]
    assert len(table) == 101
    np.testing.assert_allclose(table["soc"], np.arange(101) / 100)
    np.testing.assert_allclose(table["ocv_v"], keil_nca_ocv(table["soc"]), atol=0.5e-4 + 1e-12)


def test_top_level_data_symlink_points_at_package_data():
    link = ROOT / "data"
    assert link.is_symlink()
    assert (link / "ocv_table.csv").resolve() == SHIPPED_OCV.resolve()
    assert Path(str(package_data_file("ocv_table.csv"))).resolve() == SHIPPED_OCV.resolve()


def test_round_trip_of_shipped_table(tmp_path):
    out_csv = tmp_path / "nested" / "dir" / "ocv_processed.csv"
    processed = process_ocv_table(SHIPPED_OCV, out_csv)
    written = pd.read_csv(out_csv)
    assert list(written.columns) == ["soc", "ocv_v"]
    assert len(written) == DEFAULT_N_POINTS
    np.testing.assert_array_equal(written.to_numpy(), processed.to_numpy())  # lossless CSV
    soc, ocv_v = written["soc"].to_numpy(), written["ocv_v"].to_numpy()
    np.testing.assert_allclose(np.diff(soc), (soc[-1] - soc[0]) / (len(soc) - 1), rtol=0, atol=1e-12)
    assert soc[0] == 0.0 and soc[-1] == 1.0
    assert np.all(np.diff(ocv_v) > 0)
    assert np.max(np.abs(ocv_v - keil_nca_ocv(soc))) < 1e-3
    # the processed table is itself a valid table the simulator can load
    soc2, ocv2 = load_processed_ocv(out_csv)
    np.testing.assert_array_equal(soc2, soc)
    np.testing.assert_array_equal(ocv2, ocv_v)


def test_load_processed_ocv_default_is_resampled_package_table():
    soc, ocv_v = load_processed_ocv()
    assert soc.dtype == np.float64 and ocv_v.dtype == np.float64
    assert soc.shape == ocv_v.shape == (DEFAULT_N_POINTS,)
    np.testing.assert_allclose(np.diff(soc), 1.0 / (DEFAULT_N_POINTS - 1))
    assert np.max(np.abs(ocv_v - keil_nca_ocv(soc))) < 1e-3


def test_load_processed_ocv_validates_a_given_file(tmp_path):
    bad = write(tmp_path, "soc,ocv_v\n0.0,3.2\n0.5,3.1\n1.0,4.2\n")
    with pytest.raises(UserError, match="not strictly increasing"):
        load_processed_ocv(bad)


# --- resampling ----------------------------------------------------------------------------------


def test_resample_interpolates_linearly_within_table_range():
    table = pd.DataFrame({"soc": [0.05, 0.45, 0.95], "ocv_v": [3.0, 3.4, 4.4]})
    out = resample_ocv(table, n_points=19)
    assert out["soc"].iloc[0] == 0.05 and out["soc"].iloc[-1] == 0.95  # no extrapolation
    np.testing.assert_allclose(out["soc"], np.linspace(0.05, 0.95, 19))
    expected = np.where(out["soc"] <= 0.45, 3.0 + (out["soc"] - 0.05), 3.4 + 2.0 * (out["soc"] - 0.45))
    np.testing.assert_allclose(out["ocv_v"], expected)


def test_resample_rejects_too_few_points():
    with pytest.raises(UserError, match="points"):
        resample_ocv(pd.DataFrame({"soc": [0.0, 1.0], "ocv_v": [3.0, 4.0]}), n_points=1)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.floats(1e-3, 0.2), min_size=1, max_size=30),
    rises=st.data(),
    n_points=st.integers(2, 500),
)
def test_resample_preserves_strict_monotonicity(steps, rises, n_points):
    soc = np.concatenate([[0.0], np.cumsum(steps)])
    soc = soc / soc[-1]
    dv = rises.draw(st.lists(st.floats(1e-4, 0.5), min_size=len(steps), max_size=len(steps)))
    ocv_v = 3.0 + np.concatenate([[0.0], np.cumsum(dv)])
    out = resample_ocv(pd.DataFrame({"soc": soc, "ocv_v": ocv_v}), n_points)
    assert len(out) == n_points
    assert np.all(np.diff(out["ocv_v"]) > 0)
    assert out["ocv_v"].iloc[0] == ocv_v[0]
    assert out["ocv_v"].iloc[-1] == pytest.approx(ocv_v[-1])


# --- accepted variations -------------------------------------------------------------------------


def test_extra_columns_unsorted_rows_blank_lines_and_bom_are_accepted(tmp_path):
    text = "\ufefftemp_c, soc ,ocv_v,note\n25,1.0,4.2,top\n\n25,0.0,3.2,\n25,0.5,3.7,mid\n,,,\n"
    table = read_ocv_table(write(tmp_path, text))
    assert list(table.columns) == ["soc", "ocv_v"]
    np.testing.assert_array_equal(table["soc"], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(table["ocv_v"], [3.2, 3.7, 4.2])


def test_exact_duplicates_are_dropped_with_a_warning(tmp_path):
    source = write(tmp_path, "soc,ocv_v\n0.0,3.2\n0.5,3.7\n0.5,3.7\n1.0,4.2\n1.0,4.2\n")
    with pytest.warns(UserWarning, match=r"dropped 2 exact duplicate row\(s\) at line\(s\) 4, 6"):
        processed = process_ocv_table(source, tmp_path / "out.csv", n_points=3)
    np.testing.assert_array_equal(processed["ocv_v"], [3.2, 3.7, 4.2])
    assert (tmp_path / "out.csv").exists()


def test_no_warning_without_duplicates(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_ocv_table(write(tmp_path, GOOD))


# --- defects: one test each; the message names the file and the line / column; nothing written ----


def test_missing_file(tmp_path):
    assert_rejected(tmp_path, None, "file not found")


def test_empty_file(tmp_path):
    assert_rejected(tmp_path, "", "file is empty")


def test_whitespace_only_file(tmp_path):
    assert_rejected(tmp_path, "\n  \n", "file is empty")


def test_header_without_rows(tmp_path):
    assert_rejected(tmp_path, "soc,ocv_v\n", "no data rows", "line 1")


@pytest.mark.parametrize("header, missing", [("state,ocv_v", "'soc'"), ("soc,voltage", "'ocv_v'")])
def test_missing_column(tmp_path, header, missing):
    assert_rejected(tmp_path, f"{header}\n0.0,3.2\n1.0,4.2\n", f"missing column {missing}", "line 1")


def test_semicolon_separated_file_gets_a_hint(tmp_path):
    assert_rejected(tmp_path, "soc;ocv_v\n0,3.2\n1,4.2\n", "missing column 'soc'", "comma-separated")


def test_non_numeric_value(tmp_path):
    assert_rejected(tmp_path, GOOD.replace("3.7", "3.7V"), "line 4", "column 'ocv_v'", "'3.7V' is not a number")


def test_empty_cell(tmp_path):
    assert_rejected(tmp_path, GOOD.replace("0.25,3.5", "0.25,"), "line 3", "column 'ocv_v'", "empty cell")


def test_missing_trailing_cell(tmp_path):
    assert_rejected(tmp_path, GOOD.replace("0.25,3.5", "0.25"), "line 3", "column 'ocv_v'", "empty cell")


def test_nan_value(tmp_path):
    assert_rejected(tmp_path, GOOD.replace("0.75,", "NaN,"), "line 5", "column 'soc'", "NaN")


def test_infinite_value(tmp_path):
    assert_rejected(tmp_path, GOOD.replace("4.2", "inf"), "line 6", "column 'ocv_v'", "not finite")


def test_row_with_too_many_cells(tmp_path):
    assert_rejected(tmp_path, GOOD.replace("0.5,3.7", "0.5,3,7"), "line 4", "3 cells", "2 columns")


@pytest.mark.parametrize("value", ["-0.01", "1.5"])
def test_soc_outside_unit_interval(tmp_path, value):
    assert_rejected(tmp_path, GOOD.replace("0.75,", f"{value},"), "line 5", "column 'soc'", "outside [0, 1]")


def test_soc_given_in_percent_gets_a_hint(tmp_path):
    text = "soc,ocv_v\n0,3.2\n50,3.7\n100,4.2\n"
    assert_rejected(tmp_path, text, "line 3", "column 'soc'", "(and 1 more row)", "not a percentage")


def test_soc_range_not_covering_window(tmp_path):
    text = "soc,ocv_v\n0.2,3.4\n0.5,3.7\n1.0,4.2\n"
    assert_rejected(tmp_path, text, "column 'soc'", "[0.2, 1] does not cover the SoC window [0.1, 0.9]")


def test_custom_soc_window_is_honoured(tmp_path):
    source = write(tmp_path, "soc,ocv_v\n0.2,3.4\n0.5,3.7\n0.8,4.0\n")
    process_ocv_table(source, tmp_path / "out.csv", soc_window=(0.2, 0.8))
    with pytest.raises(UserError, match=r"\[0\.15, 0\.8\]"):
        read_ocv_table(source, soc_window=(0.15, 0.8))


def test_ocv_decreasing(tmp_path):
    text = "soc,ocv_v\n0.0,3.2\n1.0,4.2\n0.5,3.1\n"  # unsorted: the pair is named after sorting
    assert_rejected(
        tmp_path,
        text,
        "column 'ocv_v'",
        "not strictly increasing",
        "line 2 (soc 0, ocv_v 3.2) then line 4 (soc 0.5, ocv_v 3.1)",
    )


def test_ocv_flat(tmp_path):
    assert_rejected(tmp_path, GOOD.replace("0.5,3.7", "0.5,3.5"), "not strictly increasing", "line 3", "line 4")


def test_conflicting_duplicate_soc(tmp_path):
    text = "soc,ocv_v\n0.0,3.2\n0.5,3.7\n1.0,4.2\n0.5,3.71\n"
    assert_rejected(tmp_path, text, "column 'soc'", "lines 3 and 5", "soc = 0.5", "different ocv_v (3.7 vs 3.71)")


def test_fewer_than_two_distinct_points(tmp_path):
    with pytest.warns(UserWarning, match="duplicate"):
        assert_rejected(tmp_path, "soc,ocv_v\n0.5,3.7\n0.5,3.7\n", "at least 2 distinct SoC points, found 1")


def test_binary_file(tmp_path):
    source = tmp_path / "ocv.csv"
    source.write_bytes(b"soc,ocv_v\n\xff\xfe\x00\x01\n")
    assert_rejected(tmp_path, None, "not UTF-8")


def test_bad_soc_window_argument(tmp_path):
    with pytest.raises(UserError, match="SoC window"):
        process_ocv_table(write(tmp_path, GOOD), tmp_path / "out.csv", soc_window=(0.9, 0.1))
    assert not (tmp_path / "out.csv").exists()


def test_failure_while_writing_leaves_no_output(tmp_path, monkeypatch):
    import bmsrl.ocv

    def broken_plot(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(bmsrl.ocv, "_plot_ocv", broken_plot)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="plotting failed"):
        process_ocv_table(write(tmp_path, GOOD), out / "ocv_processed.csv", out / "ocv.pdf")
    assert list(out.iterdir()) == []  # neither the CSV nor any temporary file


def test_unwritable_output_is_a_user_error(tmp_path):
    blocked = tmp_path / "taken"
    blocked.mkdir()  # a folder where the CSV should go
    with pytest.raises(UserError, match=f"output {blocked} is a directory, not a file"):
        process_ocv_table(write(tmp_path, GOOD), blocked)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ocv.csv", "taken"]


def test_failed_run_keeps_previous_output(tmp_path):
    out_csv = tmp_path / "out.csv"
    out_csv.write_text("previous\n")
    with pytest.raises(UserError):
        process_ocv_table(write(tmp_path, "soc,ocv_v\n"), out_csv)
    assert out_csv.read_text() == "previous\n"


# --- command line --------------------------------------------------------------------------------


def test_cli_bad_file_exits_2_with_one_line_message(tmp_path, capsys):
    source = write(tmp_path, GOOD.replace("3.5", "x"))
    out = tmp_path / "out"
    status = cli.main(["ocv", str(source), str(out / "p.csv"), "--plot", str(out / "p.pdf")])
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("bmsrl ocv: error: ")
    assert str(source) in lines[0] and "line 3" in lines[0] and "column 'ocv_v'" in lines[0]
    assert not out.exists()


def test_cli_good_file_writes_csv_and_pdf(tmp_path, capsys):
    out = tmp_path / "out"
    status = cli.main(
        [
            "ocv",
            str(SHIPPED_OCV),
            str(out / "p.csv"),
            "--plot",
            str(out / "p.pdf"),
            "--points",
            "51",
            "--soc-window",
            "0.05",
            "0.95",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0
    assert captured.err == ""
    assert len(captured.out.strip().splitlines()) == 1 and "51 points" in captured.out
    assert len(pd.read_csv(out / "p.csv")) == 51
    assert (out / "p.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in out.iterdir()) == ["p.csv", "p.pdf"]


def test_cli_defaults(tmp_path, capsys):
    assert cli.main(["ocv", str(SHIPPED_OCV), str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == DEFAULT_N_POINTS
    assert not list(tmp_path.glob("*.pdf"))


def test_plot_is_reproducible(tmp_path):
    process_ocv_table(SHIPPED_OCV, tmp_path / "a.csv", tmp_path / "a.pdf")
    process_ocv_table(SHIPPED_OCV, tmp_path / "b.csv", tmp_path / "b.pdf")
    pdf = (tmp_path / "a.pdf").read_bytes()
    assert b"/CreationDate" not in pdf  # a time stamp would differ from run to run
    assert pdf == (tmp_path / "b.pdf").read_bytes()


# --- ECM table -----------------------------------------------------------------------------------

#: the study's ECM table (src/bmsrl/data/README.md), values as the scaffold lists them (for SoC "0.9, 0.8, ..., 0.1").
LISTED_ECM = {
    "r0_ohm": [0.1325, 0.1070, 0.1042, 0.1040, 0.1024, 0.1023, 0.1020, 0.1016, 0.1063],
    "r1_ohm": [0.0498, 0.0272, 0.0272, 0.0275, 0.0271, 0.0390, 0.0315, 0.0302, 0.0303],
    "c1_f": [747.54, 982.50, 1128.74, 1161.67, 1131.40, 929.76, 766.53, 734.10, 726.32],
    "r2_ohm": [0.0096, 0.0076, 0.0077, 0.0077, 0.0078, 0.0078, 0.0105, 0.0102, 0.0099],
    "c2_f": [639.61, 746.24, 788.39, 791.77, 789.73, 613.48, 575.44, 594.41, 636.78],
}


def test_shipped_ecm_table_loads_ascending_with_reversed_order():
    table = load_ecm_table()
    assert list(table) == list(ECM_COLUMNS)
    assert all(v.dtype == np.float64 and v.shape == (9,) for v in table.values())
    np.testing.assert_allclose(table["soc"], np.arange(1, 10) / 10)
    assert np.all(np.diff(table["soc"]) > 0)
    # chosen order (see data/README.md): the first listed value belongs to SoC 0.1
    for name, listed in LISTED_ECM.items():
        np.testing.assert_array_equal(table[name], listed, err_msg=name)
    assert table["r0_ohm"].argmax() == 0  # R0 peaks at the lowest SoC
    assert SHIPPED_ECM.read_text().splitlines()[0] == ",".join(ECM_COLUMNS)


def test_ecm_table_from_path_sorts_rows(tmp_path):
    lines = SHIPPED_ECM.read_text().splitlines()
    source = write(tmp_path, "\n".join([lines[0], *reversed(lines[1:])]) + "\n", "ecm.csv")
    shuffled, shipped = load_ecm_table(source), load_ecm_table()
    for name in ECM_COLUMNS:
        np.testing.assert_array_equal(shuffled[name], shipped[name])


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda t: t.replace("0.1325", "-0.1325"), ("line 2", "column 'r0_ohm'", "must be positive")),
        (lambda t: t.replace("c2_f", "c2"), ("line 1", "missing column 'c2_f'")),
        (lambda t: t.replace("747.54", "abc"), ("line 2", "column 'c1_f'", "not a number")),
        (lambda t: t.replace("0.9,", "1.9,"), ("line 10", "column 'soc'", "outside [0, 1]")),
        (lambda t: t.replace("0.9,", "0.8,"), ("column 'soc'", "lines 9 and 10")),
        (lambda t: t.splitlines()[0] + "\n", ("no data rows",)),
    ],
    ids=["negative", "missing-column", "non-numeric", "soc-range", "duplicate-soc", "no-rows"],
)
def test_bad_ecm_table(tmp_path, edit, fragments):
    source = write(tmp_path, edit(SHIPPED_ECM.read_text()), "ecm.csv")
    with pytest.raises(UserError) as info:
        load_ecm_table(source)
    message = str(info.value)
    assert message.startswith(f"ECM table {source}")
    for fragment in fragments:
        assert fragment in message, message


def test_missing_ecm_file(tmp_path):
    with pytest.raises(UserError, match="ECM table .*missing.csv: file not found"):
        load_ecm_table(tmp_path / "missing.csv")
