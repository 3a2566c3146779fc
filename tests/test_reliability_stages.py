"""No late failure, no silent acceptance in the stages (issue 23, items 6 and 9): ``bmsrl evaluate
--animation`` checked before any episode, a tunable baseline without its tuned settings, an ECM table
that covers part of the SoC window, a negative capacity in ``aggregate``, an all-NaN summary plotted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import bmsrl.evaluate
from bmsrl.cli import main
from bmsrl.errors import UserError
from cli_support import one_line_error

ROOT = Path(__file__).resolve().parents[1]
ECM = ROOT / "src" / "bmsrl" / "data" / "ecm_params.csv"
ONE_EPISODE = {"evaluation": {"episodes": 1}, "env": {"decision_interval_s": 300}}


def evaluate_args(out: Path, *extra: str, cfg: dict = ONE_EPISODE, policy: str = "no_balancing") -> list[str]:
    return [
        "evaluate",
        "--config-json",
        json.dumps(cfg),
        "--policy",
        policy,
        "--profile",
        "charge-rest-discharge",
        "--seed",
        "1",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture
def no_episode(monkeypatch):
    """Fail the test if the verb gets as far as running an episode."""

    def ran(*args, **kwargs):
        raise AssertionError("an episode ran before the bad input was refused")

    monkeypatch.setattr(bmsrl.evaluate, "evaluate", ran)


# ------------------------------------------------------------- item 6: the animation's path
@pytest.mark.parametrize(
    "where, fragment",
    [
        (lambda t: Path("/proc") / "episode0.gif", "cannot write in /proc"),
        (lambda t: t / "a_file" / "episode0.gif", "is a file, not a folder"),
        (lambda t: t / "x.gif", "is a directory, not a file"),
    ],
    ids=["under-proc", "below-a-file", "a-directory"],
)
def test_an_unwritable_animation_is_refused_before_any_episode(tmp_path, capsys, no_episode, where, fragment):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "x.gif").mkdir()
    out = tmp_path / "eval"
    code = main(evaluate_args(out, "--animation", str(where(tmp_path))))
    one_line_error(code, capsys.readouterr().err, "evaluate", "--animation", fragment)
    assert not out.exists()  # no traces, no metrics


def test_a_writable_animation_passes_the_check(tmp_path, capsys):
    gif = tmp_path / "anim" / "episode0.gif"
    assert main(evaluate_args(tmp_path / "eval", "--animation", str(gif))) == 0
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")


# ------------------------------------------ item 9: a tunable baseline without its tuned settings
@pytest.mark.parametrize("policy", ["rule_based", "top_balancing", "room_balancing", "best_known"])
def test_a_tunable_baseline_without_its_settings_is_refused_while_tuned(tmp_path, capsys, no_episode, policy):
    code = main(evaluate_args(tmp_path / "eval", policy=policy))
    base = "room_balancing" if policy == "best_known" else policy
    one_line_error(
        code, capsys.readouterr().err, "evaluate", "baselines.tuned is true", f"results/baselines/{base}.yaml"
    )
    assert not (tmp_path / "eval").exists()


def test_the_configured_rule_runs_when_tuning_is_off_and_untuned_never_needs_settings(tmp_path, capsys):
    untuned = {**ONE_EPISODE, "baselines": {"tuned": False}}
    assert main(evaluate_args(tmp_path / "a", cfg=untuned, policy="rule_based")) == 0
    assert main(evaluate_args(tmp_path / "b", policy="rule_based_untuned")) == 0
    assert main(evaluate_args(tmp_path / "c", policy="no_balancing")) == 0


# ------------------------------------------------ item 9: an ECM table covering part of the window
def test_an_ecm_table_covering_part_of_the_soc_window_is_refused(tmp_path, capsys):
    table = pd.read_csv(ECM)
    partial = tmp_path / "ecm_partial.csv"
    table[(table["soc"] >= 0.4) & (table["soc"] <= 0.6)].to_csv(partial, index=False)
    cfg = {**ONE_EPISODE, "ecm_table": str(partial)}
    code = main(evaluate_args(tmp_path / "eval", cfg=cfg))
    one_line_error(
        code, capsys.readouterr().err, "evaluate", str(partial), "SoC range [0.4, 0.6] does not cover", "[0.1, 0.9]"
    )
    assert not (tmp_path / "eval").exists()


def test_an_ecm_table_must_cover_the_window_only_inside_its_measured_range(tmp_path):
    from bmsrl.tables import load_ecm_table

    # the shipped table (0.1 ... 0.9) in a window [0, 1]: its end rows are held outside 0.1 ... 0.9
    assert load_ecm_table(ECM, soc_window=(0.0, 1.0))["soc"][[0, -1]].tolist() == [0.1, 0.9]
    table = pd.read_csv(ECM)
    path = tmp_path / "ecm.csv"
    table[table["soc"] <= 0.8].to_csv(path, index=False)
    assert load_ecm_table(path, soc_window=(0.1, 0.8))["soc"][-1] == 0.8
    with pytest.raises(UserError, match=r"SoC range \[0\.1, 0\.8\] does not cover the SoC window \[0\.1, 0\.85\]"):
        load_ecm_table(path, soc_window=(0.1, 0.85))


# ---------------------------------------------------- item 9: aggregate and plot on bad numbers
@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    """A real metrics.csv of one evaluation (two episodes of no_balancing)."""
    out = tmp_path_factory.mktemp("eval")
    cfg = {**ONE_EPISODE, "evaluation": {"episodes": 2}}
    assert main(evaluate_args(out, cfg=cfg)) == 0
    return out / "metrics.csv"


@pytest.mark.parametrize("column", ["usable_capacity_mah", "shunt_energy_wh", "switch_changes"])
def test_aggregate_refuses_a_negative_capacity_energy_or_count(tmp_path, capsys, evaluated, column):
    frame = pd.read_csv(evaluated)
    frame.loc[1, column] = -frame.loc[1, column] - 1.0
    bad = tmp_path / "metrics.csv"
    frame.to_csv(bad, index=False)
    summary = tmp_path / "summary.csv"
    code = main(["aggregate", str(bad), "--out-csv", str(summary), "--out-md", str(tmp_path / "summary.md")])
    one_line_error(code, capsys.readouterr().err, "aggregate", str(bad), "line 3", repr(column), "cannot be below 0")
    assert not summary.exists()


def test_aggregate_takes_the_real_metrics(tmp_path, evaluated):
    code = main(["aggregate", str(evaluated), "--out-csv", str(tmp_path / "s.csv"), "--out-md", str(tmp_path / "s.md")])
    assert code == 0


@pytest.mark.parametrize("kind", ["metrics", "robustness"])
def test_an_all_nan_summary_is_not_plotted_as_empty_bars(tmp_path, capsys, evaluated, kind):
    summary = tmp_path / "summary.csv"
    assert main(["aggregate", str(evaluated), "--out-csv", str(summary), "--out-md", str(tmp_path / "s.md")]) == 0
    frame = pd.read_csv(summary)
    frame[["mean", "ci_low", "ci_high"]] = float("nan")
    frame.to_csv(summary, index=False)
    out = tmp_path / f"{kind}.pdf"
    code = main(["plot", kind, "--summary", str(summary), "--out", str(out)])
    one_line_error(code, capsys.readouterr().err, "plot", str(summary), "is empty (NaN); nothing to plot")
    assert not out.exists()


def test_a_panel_without_a_finite_value_says_so(tmp_path, evaluated, monkeypatch):
    """A metric without a finite value anywhere gets no (empty) panel: it is left out and the caption
    names it, so an all-NaN metric never reads as bars of zero."""
    from bmsrl import plots

    summary = tmp_path / "summary.csv"
    assert main(["aggregate", str(evaluated), "--out-csv", str(summary), "--out-md", str(tmp_path / "s.md")]) == 0
    frame = pd.read_csv(summary)
    frame.loc[frame["metric"] == "shunt_energy_wh", ["mean", "ci_low", "ci_high"]] = float("nan")
    frame.to_csv(summary, index=False)
    figures = []
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, out: (figures.append(fig), real_save(fig, out))[1])
    assert main(["plot", "metrics", "--summary", str(summary), "--out", str(tmp_path / "m.pdf")]) == 0
    labels = [ax.get_ylabel() for ax in figures[0].axes if ax.get_visible()]
    assert not any("Shunt energy" in label for label in labels), labels
    assert any("Usable capacity" in label for label in labels), labels
    caption = " ".join(figures[0].get_supxlabel().split())
    assert "Not shown" in caption and "Shunt energy" in caption, caption
