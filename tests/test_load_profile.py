"""A user's own load profile (a CSV of pack current against time): read, validated like the OCV table,
and evaluated by `bmsrl evaluate --profile FILE.csv`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bmsrl import cli
from bmsrl.errors import UserError
from bmsrl.profiles import read_load_profile


def write(tmp_path: Path, text: str, name: str = "my_cycle.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_rows_become_phases_with_their_durations_and_cut_offs(tmp_path):
    profile = read_load_profile(write(tmp_path, "time_s,current_a\n0,-2.0\n3000,0\n3100,1.5\n5000,3.0\n8000,99\n"))
    assert profile.name == "my_cycle"
    assert [p.name for p in profile.phases] == ["charge", "rest", "discharge", "discharge"]
    assert [p.max_duration_s for p in profile.phases] == [3000.0, 100.0, 1900.0, 3000.0]
    assert [p.current_a for p in profile.phases] == [-2.0, 0.0, 1.5, 3.0]  # the last row's current is not applied
    assert [p.until for p in profile.phases] == ["upper", None, "lower", "lower"]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("time_s,current_a\n0,2350\n100,0\n", "line 2, column 'current_a': 2350 A is outside the plausible range"),
        ("time_s,current_a\n0,2350\n100,0\n", "it looks like mA"),
        ("time_s,current_a\n5,1\n100,0\n", "line 2, column 'time_s': the profile starts at time_s 0, not 5"),
        ("time_s,current_a\n0,1\n100,0\n100,1\n200,0\n", "column 'time_s': not strictly increasing"),
        ("time_s,current_a\n0,1\n", "needs at least 2 rows"),
        ("time,current_a\n0,1\n100,0\n", "missing column 'time_s'"),
        ("time_s,current_a\n0,abc\n100,0\n", "line 2, column 'current_a'"),
    ],
)
def test_bad_profiles_are_one_error_naming_file_and_line(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(UserError, match="load profile") as error:
        read_load_profile(path)
    assert str(path) in str(error.value) and fragment in str(error.value) and "\n" not in str(error.value)


def test_a_large_current_is_accepted_when_asked(tmp_path):
    path = write(tmp_path, "time_s,current_a\n0,30\n100,0\n")
    assert read_load_profile(path, allow_implausible=True).phases[0].current_a == 30.0


def test_evaluate_runs_a_policy_on_the_users_profile(tmp_path, capsys):
    path = write(tmp_path, "time_s,current_a\n0,-2.0\n3000,0\n3100,2.0\n8000,0\n")
    out = tmp_path / "out"
    argv = ["evaluate", "--policy", "rule_based", "--profile", str(path), "--seed", "1", "--out", str(out)]
    assert cli.main([*argv, "--config-json", '{"evaluation": {"episodes": 1}, "baselines": {"tuned": false}}']) == 0
    metrics = pd.read_csv(out / "metrics.csv")
    traces = pd.read_csv(out / "traces.csv")
    assert list(metrics["profile"]) == ["my_cycle"] and metrics["usable_capacity_mah"].iloc[0] > 0
    assert set(traces["phase"]) <= {"charge", "rest", "discharge", "done"} and traces["time_s"].iloc[-1] <= 8000
    assert "rule_based on my_cycle" in capsys.readouterr().out

    bad = write(tmp_path, "time_s,current_a\n0,2350\n100,0\n", "bad.csv")
    assert cli.main([*argv[:4], str(bad), *argv[5:]]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "it looks like mA" in err and err.count("\n") == 1
    assert cli.main([*argv[:4], str(tmp_path / "missing.csv"), *argv[5:]]) == 2
    assert "file not found" in capsys.readouterr().err
