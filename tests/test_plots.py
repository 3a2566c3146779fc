"""Tests of the plot stage on synthetic traces, training logs and summary tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bmsrl import cli
from bmsrl.aggregate import paired_statistics, performance_profiles, summarise
from bmsrl.errors import UserError
from bmsrl.plots import KINDS, _toggle_times, plot_soc
from bmsrl.results import read_evaluations, read_traces
from bmsrl.stats import training_curve

POLICIES = ("dqn", "ppo", "no_balancing", "rule_based")
PROFILES = {  # phase name -> (pack current [A], duration [s]); > 0 discharges
    "discharge-rest-charge": (("discharge", 2.35, 1800), ("rest", 0.0, 120), ("charge", -2.35, 3600)),
    "charge-rest-discharge": (("charge", -2.35, 2100), ("rest", 0.0, 120), ("discharge", 2.35, 3900)),
}
N_CELLS, DT_S, Q_AH, R_SHUNT = 5, 30.0, 3.4, 6.0


def synthetic_traces(policy: str, profile: str, seed: int, episodes: int = 2) -> pd.DataFrame:
    """A plausible traces table: coulomb counting, a linear OCV, shunts closed on the high cells."""
    rng = np.random.default_rng([seed, sum(map(ord, policy))])
    rows = []
    for episode in range(episodes):
        soc = rng.uniform(0.4, 0.6, N_CELLS)
        switches = np.zeros(N_CELLS)
        time_s, step = 0.0, 0
        schedule = [
            (name, current) for name, current, duration in PROFILES[profile] for _ in range(int(duration // DT_S))
        ]
        schedule = [(schedule[0][0], 0.0), *schedule]  # step 0 is the reset state
        for k, (phase, pack) in enumerate(schedule):
            if k > 0:
                if policy == "rule_based":
                    switches = (soc > soc.min() + 0.01).astype(float)
                elif policy in ("dqn", "ppo"):
                    keep = rng.random(N_CELLS) < 0.8
                    switches = np.where(keep, switches, (soc > soc.min() + 0.005).astype(float))
                time_s += DT_S
                step += 1
            voltage = 3.2 + 1.0 * soc - 0.1 * pack
            cell = pack + switches * voltage / R_SHUNT
            if k > 0:
                soc = soc - cell * DT_S / (3600 * Q_AH)
            rows.append(
                {
                    "policy": policy,
                    "profile": profile,
                    "scenario": "default",
                    "seed": seed,
                    "episode": episode,
                    "step": step,
                    "time_s": time_s,
                    "phase": "done" if k == len(schedule) - 1 else phase,
                    "pack_current_a": pack,
                    **{f"soc_{i + 1}": soc[i] for i in range(N_CELLS)},
                    **{f"voltage_v_{i + 1}": voltage[i] for i in range(N_CELLS)},
                    **{f"current_a_{i + 1}": cell[i] for i in range(N_CELLS)},
                    **{f"switch_{i + 1}": int(switches[i]) for i in range(N_CELLS)},
                    **{f"shunt_power_w_{i + 1}": switches[i] * voltage[i] ** 2 / R_SHUNT for i in range(N_CELLS)},
                    "reward": -float(np.var(soc)),
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict[str, object]:
    """Traces (2 seeds each), evaluations (3 algorithms, uneven grids) and a summary table."""
    root = tmp_path_factory.mktemp("results")
    traces = []
    for policy in POLICIES:
        for profile in PROFILES:
            for seed in (1, 0) if policy in ("dqn", "ppo") else (0,):
                path = root / "eval" / policy / profile / f"seed{seed}" / "traces.csv"
                path.parent.mkdir(parents=True)
                synthetic_traces(policy, profile, seed).to_csv(path, index=False)
                traces.append(path)

    evaluations = []
    rng = np.random.default_rng(0)
    for algo, n_seeds in (("dqn", 3), ("ppo", 3), ("a2c", 1)):
        for seed in range(n_seeds):
            steps = np.arange(1, 21) * 5000 + 1000 * seed  # seeds evaluated at different steps
            level = -200 + 150 * (1 - np.exp(-steps / 30000)) + (20 if algo == "ppo" else 0)
            results = level[:, None] + rng.normal(0, 10, (steps.size, 5))
            capacity = 2300 + 300 * (1 - np.exp(-steps / 30000))[:, None] + rng.normal(0, 5, (steps.size, 5))
            path = root / "checkpoints" / f"{algo}_seed{seed}" / "evaluations.npz"
            path.parent.mkdir(parents=True)
            np.savez(
                path,
                timesteps=steps,
                results=results,
                capacity_mah=capacity,
                ep_lengths=np.full(results.shape, 200),
                algo=np.array(algo),
                seed=np.array(seed),
            )
            evaluations.append(path)

    metrics = []
    for policy in POLICIES:
        for profile in PROFILES:
            seeds = (0, 1, 2) if policy in ("dqn", "ppo") else (0,)
            for seed in seeds:
                base = {"no_balancing": 2050, "rule_based": 2200}.get(policy, 2250 + 10 * seed)
                for episode in range(3):
                    metrics.append(
                        {
                            "policy": policy,
                            "profile": profile,
                            "scenario": "default",
                            "seed": seed,
                            "episode": episode,
                            "eval_seed": episode,
                            "usable_capacity_mah": base + rng.normal(0, 5),
                            "charge_accepted_mah": 2300.0,
                            "final_soc_var": 1e-5,
                            "mean_soc_var": (4e-4 if policy == "no_balancing" else 3e-5) * rng.uniform(0.8, 1.2),
                            "final_soc_std_pct": 0.3,
                            "final_soc_spread_pct": 12.0 if policy == "no_balancing" else 1.5 + rng.uniform(0, 1),
                            "time_to_spread_1pct_s": np.nan if policy == "no_balancing" else 3000.0 + 100 * episode,
                            "switch_changes": 0.0 if policy == "no_balancing" else 40.0 + rng.normal(0, 3),
                            "shunt_energy_wh": 0.0 if policy == "no_balancing" else 0.5 + rng.normal(0, 0.02),
                            "time_to_balance_s": np.nan if policy == "no_balancing" else 900.0,
                            "invalid_actions": 0.0,
                            "episode_steps": 200.0,
                            "terminated": 0.0,
                            "total_reward": -10.0,
                            "capacity_bound_mah": 2300.0,
                            "no_balancing_capacity_mah": 2050.0,
                            "recovered_share": 0.0 if policy == "no_balancing" else 0.6 + rng.normal(0, 0.02),
                        }
                    )
    summary = root / "tables" / "summary.csv"
    summary.parent.mkdir()
    summarise(pd.DataFrame(metrics)).to_csv(summary, index=False)
    profiles = root / "tables" / "profiles.csv"
    performance_profiles(pd.DataFrame(metrics)).to_csv(profiles, index=False)
    paired = root / "tables" / "paired.csv"
    paired_statistics(pd.DataFrame(metrics)).to_csv(paired, index=False)
    return {
        "root": root,
        "traces": traces,
        "evaluations": evaluations,
        "summary": summary,
        "profiles": profiles,
        "paired": paired,
    }


def inputs(kind: str, study) -> list[str]:
    option = KINDS[kind][0]
    value = study[option]
    return [f"--{option}", *map(str, value if isinstance(value, list) else [value])]


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_writes_a_reproducible_pdf(kind, study, tmp_path, capsys):
    out = tmp_path / "plots" / f"{kind}.pdf"
    assert cli.main(["plot", kind, "--out", str(out), *inputs(kind, study)]) == 0
    assert str(out) in capsys.readouterr().out
    data = out.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 5_000
    again = tmp_path / "again.pdf"
    assert cli.main(["plot", kind, "--out", str(again), *inputs(kind, study)]) == 0
    assert again.read_bytes() == data  # no creation date, deterministic drawing


def write_bad(tmp_path: Path, frame: pd.DataFrame, policy: str = "ppo") -> Path:
    path = tmp_path / "eval" / policy / "charge-rest-discharge" / "seed0" / "traces.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def good_traces() -> pd.DataFrame:
    return synthetic_traces("ppo", "charge-rest-discharge", 0, episodes=1)


@pytest.mark.parametrize(
    "kind, make, fragment",
    [
        ("soc", lambda t: write_bad(t, good_traces().drop(columns="soc_1")), "missing column 'soc_1'"),
        ("voltage", lambda t: write_bad(t, good_traces().drop(columns="time_s")), "missing column 'time_s'"),
        ("current", lambda t: write_bad(t, good_traces().drop(columns="pack_current_a")), "'pack_current_a'"),
        ("switching", lambda t: write_bad(t, good_traces().assign(switch_3="on")), "'on' is not a number"),
        ("soc", lambda t: write_bad(t, good_traces().iloc[:0]), "no data rows"),
        ("soc", lambda t: write_bad(t, good_traces().assign(episode=3)), "no rows of episode 0"),
        ("soc", lambda t: t / "eval" / "ppo" / "p" / "seed0" / "traces.csv", "file not found"),
        ("soc", lambda t: write_bad(t, good_traces().drop(columns="policy")), "missing column 'policy'"),
        (
            "soc",
            lambda t: write_bad(t, pd.concat([good_traces(), good_traces().assign(seed=7)])),
            "column 'seed': holds several values",
        ),
    ],
)
def test_bad_traces_exit_2_and_write_nothing(kind, make, fragment, study, tmp_path, capsys):
    bad = make(tmp_path)
    out = tmp_path / "plots" / f"{kind}.pdf"
    code = cli.main(["plot", kind, "--out", str(out), "--traces", str(study["traces"][0]), str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and str(bad) in err and fragment in err, err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_bad_evaluations_and_summary(study, tmp_path, capsys):
    out = tmp_path / "plots" / "fig.pdf"
    run = tmp_path / "ppo_seed0" / "evaluations.npz"
    run.parent.mkdir()
    np.savez(run, timesteps=np.arange(3))  # no 'results'
    assert cli.main(["plot", "training", "--out", str(out), "--evaluations", str(run)]) == 2
    err = capsys.readouterr().err
    assert str(run) in err and "missing array 'results'" in err

    unlabelled = tmp_path / "ppo-0" / "evaluations.npz"  # SB3's own file: no algo and seed labels
    unlabelled.parent.mkdir()
    np.savez(unlabelled, timesteps=np.arange(3), results=np.zeros((3, 2)))
    assert cli.main(["plot", "training", "--out", str(out), "--evaluations", str(unlabelled)]) == 2
    err = capsys.readouterr().err
    assert str(unlabelled) in err and "missing array 'algo'" in err

    summary = tmp_path / "summary.csv"
    pd.read_csv(study["summary"]).query("metric != 'shunt_energy_wh'").to_csv(summary, index=False)
    assert cli.main(["plot", "metrics", "--out", str(out), "--summary", str(summary)]) == 2
    err = capsys.readouterr().err
    assert str(summary) in err and "shunt_energy_wh" in err
    assert not out.parent.exists()


def test_wrong_input_option_for_kind(study, tmp_path, capsys):
    out = tmp_path / "soc.pdf"
    assert cli.main(["plot", "soc", "--out", str(out), "--summary", str(study["summary"])]) == 2
    assert "plot soc needs --traces" in capsys.readouterr().err
    assert not out.exists()


def test_labels_come_from_the_rows_not_the_path(study, tmp_path):
    """A traces file moved to a folder that says nothing keeps its policy, profile and seed."""
    moved = tmp_path / "anywhere.csv"
    moved.write_bytes(Path(study["traces"][0]).read_bytes())
    frame = read_traces(moved, ("soc_",))
    assert (frame.attrs["policy"], frame.attrs["profile"], frame.attrs["seed"]) == ("dqn", "discharge-rest-charge", 1)


def test_lowest_seed_is_used(study, tmp_path):
    out = tmp_path / "soc.png"
    from bmsrl.plots import load_traces

    traces = load_traces(study["traces"], ("soc_",))
    assert traces[("dqn", "charge-rest-discharge")].attrs["seed"] == 0
    plot_soc(traces, out)  # PNG by suffix, also through the atomic writer
    assert out.read_bytes().startswith(b"\x89PNG")


def test_training_curve_union_grid_and_band():
    a = {"timesteps": np.array([0.0, 10.0, 20.0]), "results": np.array([[0.0], [10.0], [20.0]])}
    b = {"timesteps": np.array([5.0, 15.0, 25.0]), "results": np.array([[5.0], [15.0], [25.0]])}
    grid, mean, low, high = training_curve([a, b])
    assert grid.tolist() == [5.0, 10.0, 15.0, 20.0]  # union within the common range [5, 20]
    assert np.allclose(mean, grid)  # both seeds lie on y = x
    assert np.allclose(low, mean) and np.allclose(high, mean)
    grid1, mean1, low1, high1 = training_curve([a])
    assert low1 is None and high1 is None and grid1.tolist() == [0.0, 10.0, 20.0]
    c = {"timesteps": np.array([30.0, 40.0]), "results": np.zeros((2, 1))}
    with pytest.raises(UserError, match="do not overlap"):
        training_curve([a, c])


def test_toggle_count_matches_switch_changes(tmp_path):
    frame = read_traces(write_bad(tmp_path, good_traces()), ("switch_",))
    names = [f"switch_{i}" for i in range(1, 6)]
    _, count = _toggle_times(frame, names)
    expected = np.abs(np.diff(frame[names].to_numpy(), axis=0)).sum()
    assert count[-1] == expected and count[0] >= 0 and np.all(np.diff(count) >= 0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_all_text_is_at_least_8_pt_and_axes_are_labelled(kind, study, tmp_path, monkeypatch):
    import matplotlib.text

    from bmsrl import plots

    figures = []
    real_save = plots.save_figure

    def capture(fig, out):
        figures.append(fig)
        return real_save(fig, out)

    monkeypatch.setattr(plots, "save_figure", capture)
    assert cli.main(["plot", kind, "--out", str(tmp_path / "f.pdf"), *inputs(kind, study)]) == 0
    (fig,) = figures
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 8]
    assert small == []
    xlabels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
    ylabels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    # categorical x (profiles, scenarios) or y (scenarios)
    assert (ylabels or kind == "paired") and (xlabels or kind in ("metrics", "robustness"))
    quantities = [label for label in xlabels + ylabels if "\nCell" not in label]  # cell number: no unit
    assert all("[" in label and "]" in label for label in quantities), quantities  # units


def test_training_returns_script_prints_the_plotted_curves(study):
    """scripts/training_returns.py reads the curves `plot training` draws, at the requested steps."""
    import subprocess
    import sys

    from bmsrl.results import load_evaluations

    script = Path(__file__).resolve().parents[1] / "scripts" / "training_returns.py"
    files = [str(p) for p in study["evaluations"]]
    out = subprocess.run(
        [sys.executable, script, *files, "--at", "30000", "60000"], capture_output=True, text=True, check=True
    ).stdout
    runs = load_evaluations(files)
    grid, mean, _, _ = training_curve([runs["ppo", s] for s in range(3)])
    ppo_mean = next(line for line in out.splitlines() if line.startswith("ppo mean")).split()[2:]
    np.testing.assert_allclose([float(v) for v in ppo_mean], np.interp([30000, 60000], grid, mean), atol=0.05)
    assert sum(line.startswith("dqn seed") for line in out.splitlines()) == 3
    outside = subprocess.run([sys.executable, script, *files, "--at", "1e9"], capture_output=True, text=True)
    assert outside.returncode != 0 and "--at must lie within" in outside.stderr


def test_panels_share_one_time_axis_and_the_voltage_window_is_drawn(study, tmp_path, monkeypatch):
    """Every panel of a trace figure spans the same time axis; the voltage figure shows the
    configured window even when no cell reaches it."""
    from bmsrl import plots

    figures = []
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, out: (figures.append(fig), real_save(fig, out))[1])
    for kind in ("soc", "switching", "voltage"):
        assert (
            cli.main(
                [
                    "plot",
                    kind,
                    "--out",
                    str(tmp_path / f"{kind}.pdf"),
                    *inputs(kind, study),
                    "--config-json",
                    '{"env": {"voltage_limits_v": [2.0, 4.35]}}',
                ]
            )
            == 0
        )
    soc, switching, voltage = figures
    for fig in (soc, switching, voltage):
        spans = {tuple(round(v, 6) for v in ax.get_xlim()) for ax in fig.axes if ax.get_xlabel() == "Time [h]"}
        assert len(spans) == 1, spans
    for ax in voltage.axes:
        if ax.lines:
            low, high = ax.get_ylim()
            assert low < 2.0 and high > 4.35  # the configured window, not the default 2.5-4.2 V
            assert {2.0, 4.35} <= {line.get_ydata()[0] for line in ax.lines if len(set(line.get_ydata())) == 1}


def test_training_reference_lines_are_the_baselines_returns_and_capacities_on_the_same_packs(
    study, tmp_path, monkeypatch
):
    """The reference lines are each baseline's return and next-discharge capacity on the packs the
    train stage evaluates on: the same returns SB3's evaluate_policy gives on the seeded batched
    env, and the capacities the evaluation callback records; the figure draws one line per evaluated
    baseline at each value, in the return and in the capacity panel."""
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecMonitor

    from bmsrl import plots
    from bmsrl.baselines import make_baseline
    from bmsrl.config import defaults
    from bmsrl.learning import seeded_evaluation
    from bmsrl.reference import baseline_results
    from bmsrl.seeds import training_eval_seed
    from bmsrl.task_config import task_kwargs
    from bmsrl.vec_env import BatchedBalancingVecEnv

    cfg = defaults()
    cfg["training"]["eval_episodes"] = 2
    ours = baseline_results(cfg, 1, {"no_balancing": None, "rule_based": cfg["baselines"]["rule_based"]})
    env = VecMonitor(BatchedBalancingVecEnv(2, **task_kwargs(cfg, cfg["profiles"]["train"], None)))
    callback = seeded_evaluation(plots_eval_base())(env, seed=0, work=tmp_path / "w", total_steps=1)
    for name, settings in (("no_balancing", None), ("rule_based", cfg["baselines"]["rule_based"])):
        env.seed(training_eval_seed(cfg, 1))
        callback._capacity_buffer = []
        sb3, _ = evaluate_policy(
            make_baseline(name, 5, settings),
            env,
            n_eval_episodes=2,
            return_episode_rewards=True,
            callback=callback._log_success_callback,
        )
        got = sorted(zip(ours[name]["return"], ours[name]["capacity_mah"]))
        np.testing.assert_allclose(np.array(got), np.array(sorted(zip(sb3, callback._capacity_buffer))), rtol=1e-5)
    # rule_based bleeds: more capacity for the next discharge than doing nothing, on every pack
    assert (ours["rule_based"]["capacity_mah"] > ours["no_balancing"]["capacity_mah"] + 10).all()

    # the reference stage writes every pack's return and capacity; the plot draws their means, simulating nothing
    refs = tmp_path / "training_references.csv"
    assert (
        cli.main(
            [
                "reference",
                "--config-json",
                '{"training": {"eval_episodes": 2}}',
                "--seeds",
                "0",
                "1",
                "2",
                "--out",
                str(refs),
            ]
        )
        == 0
    )
    table = pd.read_csv(refs)
    evaluated = ("no_balancing", "rule_based", "top_balancing", "room_balancing", "rule_based_untuned")
    assert list(table.columns) == ["policy", "seed", "episode", "return", "capacity_mah"] and len(table) == 5 * 3 * 2
    assert list(dict.fromkeys(table["policy"])) == list(evaluated)
    seed1 = table[(table["seed"] == 1) & (table["policy"] == "rule_based")]
    np.testing.assert_allclose(seed1["return"], ours["rule_based"]["return"], rtol=1e-8)  # the same packs as above
    np.testing.assert_allclose(seed1["capacity_mah"], ours["rule_based"]["capacity_mah"], rtol=1e-8)

    import bmsrl.reference

    monkeypatch.setattr(bmsrl.reference, "baseline_results", None)  # plotting must not simulate
    figures = []
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, out: (figures.append(fig), real_save(fig, out))[1])
    assert (
        cli.main(
            [
                "plot",
                "training",
                "--out",
                str(tmp_path / "t.pdf"),
                *inputs("training", study),
                "--references",
                str(refs),
            ]
        )
        == 0
    )
    (fig,) = figures
    returns_ax, capacity_ax = fig.axes
    assert capacity_ax.get_ylabel() == "Next-discharge capacity [mAh]"
    means = table.groupby("policy")[["return", "capacity_mah"]].mean()
    groups = plots.reference_groups(
        {p: {"return": r["return"], "capacity_mah": r["capacity_mah"]} for p, r in means.iterrows()},
        [("return", ".2f"), ("capacity_mah", ".0f")],
    )
    assert sorted(n for names, _ in groups for n in names) == sorted(evaluated)
    for ax, column in ((returns_ax, "return"), (capacity_ax, "capacity_mah")):
        flat = sorted(line.get_ydata()[0] for line in ax.lines if len(set(line.get_ydata())) == 1)
        assert flat == pytest.approx(sorted(values[column] for _, values in groups))
    # the legend names every baseline with its return and capacity
    legend_text = " ".join(t.get_text() for legend in fig.legends for t in legend.get_texts())
    for name in evaluated:
        assert plots.policy_label(name) in legend_text
        assert f"{means.loc[name, 'capacity_mah']:.0f} mAh" in legend_text
    with pytest.raises(UserError, match="draws no reference lines"):
        plots.make_plot("metrics", tmp_path / "m.pdf", summary=study["summary"], references=refs)


def plots_eval_base():
    from stable_baselines3.common.callbacks import EvalCallback

    return EvalCallback


def test_evaluations_without_capacity_give_curves_without_the_capacity_panel(study, tmp_path, monkeypatch):
    """An evaluations.npz written before capacity_mah was recorded still plots: one panel (returns)."""
    from bmsrl import plots

    old = []
    for path in study["evaluations"]:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files if k != "capacity_mah"}
        target = tmp_path / Path(path).parent.name / "evaluations.npz"
        target.parent.mkdir()
        np.savez(target, **arrays)
        old.append(str(target))
    assert read_evaluations(old[0])["capacity_mah"] is None
    figures = []
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, out: (figures.append(fig), real_save(fig, out))[1])
    assert cli.main(["plot", "training", "--out", str(tmp_path / "t.pdf"), "--evaluations", *old]) == 0
    (fig,) = figures
    assert [ax.get_ylabel() for ax in fig.axes] == ["Mean evaluation return [-]"]


def test_a_capacity_array_that_does_not_match_the_returns_is_one_clear_error(study, tmp_path, capsys):
    with np.load(study["evaluations"][0]) as data:
        arrays = {k: data[k] for k in data.files}
    bad = tmp_path / "dqn_seed9" / "evaluations.npz"
    bad.parent.mkdir()
    np.savez(bad, **dict(arrays, capacity_mah=arrays["capacity_mah"][:, :2]))
    assert cli.main(["plot", "training", "--out", str(tmp_path / "t.pdf"), "--evaluations", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "'capacity_mah' has shape" in err, err
    # restored evaluations of a file without capacity are NaN: accepted, left out of the curve
    capacity = arrays["capacity_mah"].copy()
    capacity[:3] = np.nan
    np.savez(bad, **dict(arrays, capacity_mah=capacity))
    run = read_evaluations(bad)
    grid, mean, _, _ = training_curve([run], key="capacity_mah")
    assert grid[0] == run["timesteps"][3] and np.allclose(mean, capacity[3:].mean(axis=1))


def test_training_curves_y_range_is_not_set_by_one_early_outlier():
    """One early evaluation far below the rest stays off the scale, with a note; later values and the
    references set the range."""
    from bmsrl.plots import robust_limits

    grid = np.arange(1, 21) * 1000.0
    mean = np.linspace(0.0, 8.0, 20)
    mean[0] = -75.0
    low, high, off = robust_limits([(grid, mean, None, None)], [9.0, -0.5])
    assert -75.0 < low < -0.5 and high > 9.0 and off == -75.0
    assert high - low < 15.0  # the late values' span (-0.5 to 9) with margins, not 84
    # no outlier: nothing off scale; a wide band widens the range by at most the values' span
    rising = np.linspace(0.0, 8.0, 20)
    low, high, off = robust_limits([(grid, rising, None, None)], [])
    assert off is None and low < 0.0 and high > 8.0 and high - low < 10.0
    low, high, _ = robust_limits([(grid, rising, rising - 1000.0, rising + 1000.0)], [])
    assert -20.0 < low < -5.0 and 13.0 < high < 30.0  # the band widens it by the values' span, not by 1000
    # two evaluations: both count; one flat value: a range around it, not a singular one
    low, high, off = robust_limits([(np.array([1.0, 2.0]), np.array([1.0, 2.0]), None, None)], [])
    assert off is None and low < 1.0 and high > 2.0
    low, high, off = robust_limits([(np.array([1.0, 2.0]), np.array([3.0, 3.0]), None, None)], [3.0])
    assert off is None and low < 3.0 < high


def test_reference_lines_of_equal_values_share_one_entry_and_close_ones_differ():
    from bmsrl.plots import reference_groups

    refs = {
        "no_balancing": {"return": -1e-13, "capacity_mah": 2288.1},
        "rule_based": {"return": 0.15, "capacity_mah": 2624.4},
        "rule_based_untuned": {"return": 0.15, "capacity_mah": 2624.4},
        "top_balancing": {"return": 7.53, "capacity_mah": 2627.1},
    }
    groups = reference_groups(refs, [("return", ".2f"), ("capacity_mah", ".0f")])
    assert [names for names, _ in groups] == [["top_balancing"], ["rule_based", "rule_based_untuned"], ["no_balancing"]]


@pytest.mark.parametrize("kind, column", [("profiles", "tau"), ("paired", "baseline")])
def test_a_table_without_a_column_or_the_wrong_table_is_one_error(kind, column, study, tmp_path, capsys):
    out = tmp_path / "plots" / f"{kind}.pdf"
    bad = tmp_path / f"{kind}.csv"
    pd.read_csv(study[kind]).drop(columns=column).to_csv(bad, index=False)
    assert cli.main(["plot", kind, "--out", str(out), f"--{kind}", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and f"missing column '{column}'" in err, err
    assert cli.main(["plot", kind, "--out", str(out), "--summary", str(study["summary"])]) == 2
    assert f"plot {kind} needs --{kind}" in capsys.readouterr().err
    assert not out.parent.exists()


def test_profile_axis_starts_where_the_curves_differ():
    from bmsrl.plots import _profile_view_start
    from bmsrl.results import PROFILE_TAUS

    def curve(policy, fraction):
        return pd.DataFrame({"policy": policy, "profile": "p", "tau": PROFILE_TAUS, "fraction": fraction})

    good = curve("dqn", np.where(PROFILE_TAUS < 0.74, 1.0, 0.5))  # leaves 1 at 0.74
    zero = curve("no_balancing", np.where(PROFILE_TAUS < 0.02, 1.0, 0.0))  # at 0 from 0.02: does not move it
    assert _profile_view_start(pd.concat([good, zero])) == pytest.approx(0.6)
    assert _profile_view_start(zero) == 0.0


# --------------------------------------------------------------------------------------------
# Layout: every figure readable as drawn


QUICK_POLICIES = ("dqn", "ppo", "maskable_ppo", "no_balancing", "rule_based", "top_balancing", "room_balancing")


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> dict[str, object]:
    """A quick run's inputs: one seed, seven policies, two profiles, two scenarios; no share on the training
    profile (no recoverable-capacity bound there), a policy that never settles below 1 % spread, zero switch
    changes and shunt energy for no balancing, an early outlier in a training curve and baselines whose
    reference returns lie close together."""
    root = tmp_path_factory.mktemp("quick")
    rng = np.random.default_rng(1)
    traces = []
    for policy in QUICK_POLICIES:
        for profile in PROFILES:
            path = root / "eval" / policy / profile / "default" / "seed1" / "traces.csv"
            path.parent.mkdir(parents=True)
            synthetic_traces(policy, profile, 1, episodes=1).to_csv(path, index=False)
            traces.append(path)

    evaluations = []
    for algo in ("dqn", "ppo", "maskable_ppo"):
        steps = np.arange(1, 11) * 20000
        level = 8 - 10 * np.exp(-steps / 40000)
        level[0] = -75.0 if algo == "ppo" else level[0]  # one early outlier
        path = root / "checkpoints" / f"{algo}_seed1" / "evaluations.npz"
        path.parent.mkdir(parents=True)
        results = level[:, None] + rng.normal(0, 0.3, (steps.size, 3))
        np.savez(path, timesteps=steps, results=results, ep_lengths=np.full(results.shape, 200), algo=algo, seed=1)
        evaluations.append(path)
    references = root / "tables" / "training_references.csv"
    references.parent.mkdir()
    returns = {"no_balancing": 0.0, "rule_based": 2.0, "top_balancing": 9.6, "room_balancing": 9.8}
    capacity = {"no_balancing": 2290.0, "rule_based": 2620.0, "top_balancing": 2627.0, "room_balancing": 2631.0}
    pd.DataFrame(
        [
            {"policy": p, "seed": 1, "episode": e, "return": r, "capacity_mah": capacity[p]}
            for p, r in returns.items()
            for e in range(3)
        ]
    ).to_csv(references, index=False)

    metrics = []
    for policy in QUICK_POLICIES:
        for profile in PROFILES:
            for scenario in ("default", "current_1c"):
                for episode in range(3):
                    none = policy == "no_balancing"
                    settles = not none and not (policy == "maskable_ppo" and profile == "charge-rest-discharge")
                    shared = profile == "charge-rest-discharge"
                    metrics.append(
                        {
                            "policy": policy,
                            "profile": profile,
                            "scenario": scenario,
                            "seed": 1,
                            "episode": episode,
                            "eval_seed": episode,
                            "usable_capacity_mah": 2200 + (0 if none else 300) + rng.normal(0, 5),
                            "charge_accepted_mah": 2300.0,
                            "final_soc_var": 1e-5,
                            "mean_soc_var": (4e-3 if none else 4e-4) * rng.uniform(0.8, 1.2),
                            "final_soc_std_pct": 0.3,
                            "final_soc_spread_pct": 12.0 if none else 1.5 + rng.uniform(0, 3),
                            "time_to_spread_1pct_s": 3000.0 + 100 * episode if settles else np.nan,
                            "switch_changes": 0.0 if none else 10.0 + rng.normal(0, 3),
                            "shunt_energy_wh": 0.0 if none else 4 + rng.normal(0, 0.2),
                            "time_to_balance_s": np.nan if none else 900.0,
                            "invalid_actions": 0.0,
                            "episode_steps": 200.0,
                            "terminated": 0.0,
                            "total_reward": 5.0,
                            "capacity_bound_mah": 2600.0 if shared else np.nan,
                            "no_balancing_capacity_mah": 2200.0,
                            "recovered_share": (0.0 if none else 0.8 + rng.normal(0, 0.05)) if shared else np.nan,
                        }
                    )
    frame = pd.DataFrame(metrics)
    summary = root / "tables" / "summary.csv"
    summarise(frame).to_csv(summary, index=False)
    profiles = root / "tables" / "profiles.csv"
    performance_profiles(frame).to_csv(profiles, index=False)
    paired = root / "tables" / "paired.csv"
    paired_statistics(frame).to_csv(paired, index=False)
    return {
        "paired": paired,
        "root": root,
        "traces": traces,
        "evaluations": evaluations,
        "summary": summary,
        "profiles": profiles,
        "references": references,
    }


def drawn_figure(kind: str, data: dict, tmp_path: Path, monkeypatch):
    """Run ``bmsrl plot kind`` on ``data``; return the figure, drawn, and the texts the draw put on it
    with their extents [px]."""
    import matplotlib.text
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from bmsrl import plots

    figures = []
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, out: (figures.append(fig), real_save(fig, out))[1])
    extra = ["--references", str(data["references"])] if kind == "training" and "references" in data else []
    assert cli.main(["plot", kind, "--out", str(tmp_path / f"{kind}.png"), *inputs(kind, data), *extra]) == 0
    (fig,) = figures
    drawn = []
    real_draw = matplotlib.text.Text.draw

    def record(text, renderer):
        real_draw(text, renderer)
        if text.get_visible() and text.get_text().strip():
            drawn.append((text, text.get_window_extent(renderer)))

    monkeypatch.setattr(matplotlib.text.Text, "draw", record)
    FigureCanvasAgg(fig).draw()
    monkeypatch.setattr(matplotlib.text.Text, "draw", real_draw)
    return fig, drawn


def has_data(ax) -> bool:
    """Whether ``ax`` draws data: a line, patch or collection in data coordinates (not only reference
    lines spanning the axes, phase shading or text)."""
    artists = [*ax.lines, *ax.patches, *ax.collections]
    return any(getattr(a, "get_data_transform", a.get_transform)() == ax.transData for a in artists if a.get_visible())


@pytest.mark.parametrize("data", ["study", "quick"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_no_text_overlaps_and_no_axis_is_empty(kind, data, request, tmp_path, monkeypatch):
    """After drawing, no two texts of a figure overlap, every text lies inside the figure and every axis
    shows data (what does not apply is left out and said in the caption)."""
    fig, drawn = drawn_figure(kind, request.getfixturevalue(data), tmp_path, monkeypatch)
    assert drawn
    page = fig.bbox
    outside = [
        t.get_text()
        for t, box in drawn
        if not (box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y0 >= page.y0 - 1 and box.y1 <= page.y1 + 1)
    ]
    assert outside == [], f"{kind}: texts cut off at the figure's edge: {outside}"
    overlaps = []
    for i, (a, box_a) in enumerate(drawn):
        for b, box_b in drawn[i + 1 :]:
            if box_a.padded(-0.5).overlaps(box_b.padded(-0.5)):
                overlaps.append((a.get_text(), b.get_text()))
    assert overlaps == [], f"{kind}: overlapping texts: {overlaps}"
    empty = [ax.get_title() or ax.get_ylabel() for ax in fig.axes if ax.get_visible() and not has_data(ax)]
    assert empty == [], f"{kind}: axes without data: {empty}"


def test_never_settled_is_drawn_and_undefined_panels_are_named(quick, tmp_path, monkeypatch):
    """A time that never happened is a hatched bar with its words (not a gap that reads as 0 s); a profile
    where a metric has no value is left out of its panel and named in the caption."""
    fig, drawn = drawn_figure("metrics", quick, tmp_path, monkeypatch)
    (settle,) = [ax for ax in fig.axes if ax.get_ylabel().startswith("Time to spread")]
    hatched = [p for p in settle.patches if p.get_hatch()]
    assert len(hatched) == 3  # no balancing on both profiles, Maskable PPO on charge-rest-discharge
    assert all(p.get_y() + p.get_height() >= settle.get_ylim()[1] - 1e-9 for p in hatched)  # to the top
    assert sum(t.get_text() == "never settled" for t, _ in drawn) == 2  # one label per run of neighbours
    (share,) = [ax for ax in fig.axes if ax.get_ylabel().startswith("Share of recoverable")]
    assert [t.get_text() for t in share.get_xticklabels()] == ["charge-rest-\ndischarge"]
    caption = " ".join(fig.get_supxlabel().split())
    assert "Share of recoverable capacity and Share, ratio of sums on discharge-rest-charge" in caption
    assert "one seed per policy" in caption and not any(c.get_label() for c in share.collections)


def test_training_axis_leaves_out_a_far_outlier_and_says_so(quick, tmp_path, monkeypatch):
    fig, _ = drawn_figure("training", quick, tmp_path, monkeypatch)
    ax = fig.axes[0]
    assert -75.0 < ax.get_ylim()[0] < 0.0  # the -75 of PPO's first evaluation is out of view, 0 is in
    notes = [t.get_text() for t in ax.texts if "off scale" in t.get_text()]
    assert len(notes) == 1 and "-7" in notes[0]  # and the panel says where it went


def paired_rows(means: dict[tuple[str, str], float], best: dict[str, str]) -> pd.DataFrame:
    """A paired table of usable capacity on one profile: ``means`` (policy, scenario) -> mean, every policy
    against every baseline of them, 3 seeds x 2 packs (``best_known``: 1 pack per seed); ``best``: scenario
    -> its best controller."""
    from bmsrl.baselines import BASELINES

    rows = []
    for (policy, scenario), value in means.items():
        for (baseline, other), base in means.items():
            if other != scenario or baseline == policy or baseline not in BASELINES:
                continue
            diff = value - base
            rows.append(
                {"policy": policy, "baseline": baseline, "profile": "charge-rest-discharge", "scenario": scenario,
                 "metric": "usable_capacity_mah", "unit": "mAh", "better": "higher", "mean_diff": diff,
                 "ci_low": diff - 2.0, "ci_high": diff + 2.0, "baseline_mean": base, "interval_over": "seeds",
                 "n_seeds": 3, "n_episodes": 3 if policy == "best_known" else 6,
                 "best_controller": best[scenario] == baseline}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_paired_figure_draws_each_policy_against_its_scenarios_best_controller(tmp_path, monkeypatch):
    """Each point is the policy's paired difference to the scenario's best controller (that row of the
    table), the row names that controller, and the far no-balancing point puts the axis on a symmetric log
    scale, said in the caption."""
    means = {
        ("dqn", "default"): 2600.0, ("room_balancing", "default"): 2610.0, ("top_balancing", "default"): 2605.0,
        ("no_balancing", "default"): 2200.0, ("best_known", "default"): 2620.0, ("dqn", "bleed"): 2500.0,
        ("room_balancing", "bleed"): 2480.0, ("top_balancing", "bleed"): 2490.0, ("no_balancing", "bleed"): 2100.0,
    }  # fmt: skip
    path = tmp_path / "paired.csv"
    paired_rows(means, {"default": "room_balancing", "bleed": "top_balancing"}).to_csv(path, index=False)
    fig, drawn = drawn_figure("paired", {"paired": path}, tmp_path, monkeypatch)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["default\nvs Room balancing", "bleed\nvs Top balancing"]
    centres = {}
    for line in ax.lines:
        x, y = line.get_xdata(), line.get_ydata()
        if len(x) == 1:  # a point (the intervals are two-point lines, the zero line spans the axes)
            centres[round(float(y[0]))] = centres.get(round(float(y[0])), []) + [float(x[0])]
    assert sorted(centres[0]) == sorted([-10.0, -5.0, -410.0, 10.0])  # dqn, top, none, best_known vs room
    assert sorted(centres[1]) == sorted([10.0, -10.0, -390.0])  # dqn, room, none vs top
    assert ax.get_xscale() == "symlog"
    caption = " ".join(fig.get_supxlabel().split())
    assert "Symmetric log axis, linear within ±10 mAh" in caption and "on the first pack of each seed only" in caption


def test_a_paired_table_without_capacity_rows_or_with_unreadable_marks_is_one_error(study, tmp_path, capsys):
    out = tmp_path / "plots" / "paired.pdf"
    bad = tmp_path / "paired.csv"
    frame = pd.read_csv(study["paired"])
    frame[frame["metric"] != "usable_capacity_mah"].to_csv(bad, index=False)
    assert cli.main(["plot", "paired", "--out", str(out), "--paired", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "no rows for metric 'usable_capacity_mah'" in err, err
    frame.assign(best_controller="maybe").to_csv(bad, index=False)
    assert cli.main(["plot", "paired", "--out", str(out), "--paired", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "'best_controller'" in err, err
    assert not out.parent.exists()
