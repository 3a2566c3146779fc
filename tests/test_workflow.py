"""Tests of the Snakemake workflow: the planned DAG, config validation at start-up, lint, a full run.

Every test runs ``snakemake`` in a subprocess inside a temporary copy of the repository's
``workflow/``, ``config/`` and ``data/`` (real files, not the symlinks; the ``workdir`` fixture of
conftest.py), so nothing is written into the repository. The ``bmsrl`` on PATH is a shim that runs
this checkout's ``src/`` (workflow_support.py). The conda environments are checked in test_conda_envs.py.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bmsrl.baselines import BASELINES, TUNABLE, evaluated_baselines
from bmsrl.config import load_config, load_yaml
from bmsrl.results import METRICS
from workflow_support import SNAKEMAKE, TRACE_PLOTS, check_pdf, run

pytestmark = pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")

# the algorithms the configs train, every baseline of the registry, the model-based reference
POLICIES = ["dqn", "ppo", *BASELINES, "best_known"]
N_BASELINES, N_TUNABLE = len(BASELINES), len(TUNABLE)
#: evaluate jobs per seed of a run with dqn and ppo: one per policy (each covers every profile and scenario)
PER_SEED = 2 + N_BASELINES + 1
PROFILES = ["discharge-rest-charge", "charge-rest-discharge"]
SCENARIOS = ["default", "init_soc_wide", "soh_wide", "current_0p3c", "current_1c"]


def job_counts(output: str) -> dict[str, int]:
    """The "Job stats" table of a dry run: rule -> number of jobs (without the total)."""
    match = re.search(r"Job stats:\n(.*?)\ntotal\s+(\d+)", output, re.DOTALL)
    assert match, f"no job stats in:\n{output}"
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", match[1], re.MULTILINE)}
    assert sum(counts.values()) == int(match[2])
    return counts


def dry_run(workdir: Path, *args: str) -> dict[str, int]:
    result = run(workdir, "-n", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return job_counts(result.stdout + result.stderr)


# ------------------------------------------------------------------------------- dry runs
def test_default_config_plans_the_study(workdir):
    assert dry_run(workdir) == {
        "record": 1,  # results/run/: the run's config and package versions
        "ocv": 1,
        "train": 6,  # dqn, ppo x seeds 1, 2, 3
        "tune_baselines": N_TUNABLE,  # rule_based, top_balancing, room_balancing
        "evaluate": PER_SEED * 3,  # (dqn, ppo, the baselines, best_known) x 3 seeds, all profiles and scenarios each
        "aggregate": 1,
        "claims": 1,  # the paper's claims on the test profile (docs/claims.md)
        "plot_traces": 4,  # soc, switching, voltage, current
        "training_references": 1,
        "plot_training": 1,
        "plot_metrics": 1,
        "plot_robustness": 1,
        "plot_profiles": 1,
        "plot_paired": 1,
        "all": 1,
    }


def test_one_figure_plans_only_what_it_needs(workdir):
    counts = dry_run(workdir, "results/plots/soc.pdf")  # traces of the default scenario only
    assert counts == {
        "ocv": 1,
        "train": 6,
        "tune_baselines": N_TUNABLE,
        "evaluate": PER_SEED * 3,
        "plot_traces": 1,
    }


def test_ocv_plot_needs_no_training(workdir):
    assert dry_run(workdir, "results/plots/ocv.pdf") == {"ocv": 1}


def test_baseline_evaluation_needs_no_training(workdir):
    target = "results/eval/no_balancing/charge-rest-discharge/default/seed2/metrics.csv"
    assert dry_run(workdir, target) == {"ocv": 1, "evaluate": 1}
    target = "results/eval/rule_based/charge-rest-discharge/current_1c/seed2/metrics.csv"
    assert dry_run(workdir, target) == {"ocv": 1, "tune_baselines": 1, "evaluate": 1}  # its tuning, no training
    target = "results/eval/rule_based_untuned/charge-rest-discharge/default/seed2/metrics.csv"
    assert dry_run(workdir, target) == {"ocv": 1, "evaluate": 1}


def test_untuned_study_skips_tuning_and_the_untuned_copy(workdir):
    counts = dry_run(workdir, "--config", "baselines={tuned: false}")
    assert "tune_baselines" not in counts
    assert counts["evaluate"] == (PER_SEED - 1) * 3  # rule_based_untuned would duplicate rule_based


def test_scenarios_are_jobs(workdir):
    counts = dry_run(
        workdir, "--config", "evaluation={scenarios: {default: {}, hot: {shunt_resistance_ohm: 3.0}}}", "seeds=[1]"
    )
    assert counts["evaluate"] == PER_SEED
    counts = dry_run(workdir, "--config", "evaluation={best_known_episodes: 0}", "seeds=[1]")
    assert counts["evaluate"] == PER_SEED - 1  # no model-based reference


def test_config_override_changes_the_plan(workdir):
    counts = dry_run(workdir, "--config", "seeds=[1,2]")
    assert counts["train"] == 4 and counts["evaluate"] == PER_SEED * 2
    counts = dry_run(workdir, "--config", "algos=[ppo,trpo,ars]", "seeds=[5]")
    assert counts["train"] == 3 and counts["evaluate"] == PER_SEED + 1


@pytest.mark.parametrize(
    "configfile, train, evaluate",
    [("config/quick.yaml", 2, PER_SEED), ("config/test.yaml", 4, PER_SEED * 2)],
)
def test_shipped_configs_plan(workdir, configfile, train, evaluate):
    counts = dry_run(workdir, "--configfile", configfile)
    assert counts["train"] == train and counts["evaluate"] == evaluate
    assert counts["aggregate"] == 1 and counts["plot_traces"] == 4 and counts["tune_baselines"] == N_TUNABLE


def test_realistic_config_plans_the_per_factor_study(workdir):
    """config/realistic.yaml: the agents train on the whole family; every evaluate job covers it and
    each factor alone (docs/model.md, "The realistic family")."""
    counts = dry_run(workdir, "--configfile", "config/realistic.yaml")
    # the verdict's shape: two agents (DQN, A2C) x 10 seeds
    assert counts["train"] == 2 * 10 and counts["evaluate"] == PER_SEED * 10 and counts["aggregate"] == 1
    factors = ["default", "bleed_only", "estimate_only", "drive_cycle_only", "no_factor"]
    commands = shell_commands(workdir, "--configfile", "config/realistic.yaml")
    evaluate = [c for c in commands if " bmsrl evaluate " in c]
    assert len(evaluate) == PER_SEED * 10
    assert all(f"--scenario {' '.join(factors)} --seed" in c for c in evaluate)


def test_study_config_plans_the_papers_setting(workdir):
    counts = dry_run(workdir, "--configfile", "config/study.yaml")
    assert "tune_baselines" not in counts  # the study's hand-set rule, untuned
    untuned = len(evaluated_baselines(False))  # the baselines of an untuned run (no *_untuned copies)
    assert counts["train"] == 5 * 5 and counts["evaluate"] == (5 + untuned + 1) * 5 and counts["claims"] == 1


def test_the_benchmarks_the_docs_quote_are_rules_outside_all_with_their_snapshots(workdir):
    """`snakemake imitation_snapshot` / `ablation_snapshot` / `confirm_snapshot`: the run record, the
    OCV table, the benchmark (the ablation: one job per algorithm at the verdict's budgets with its
    changes; the confirmation: the chosen arm alone on ten fresh seeds) and its snapshot folders; the
    study's default targets include none of it."""
    base = {"record": 1, "ocv": 1}
    assert dry_run(workdir, "imitation_snapshot") == {
        **base,
        "imitation": 1,
        "benchmark_snapshot": 1,
        "imitation_snapshot": 1,
    }
    assert dry_run(workdir, "ablation_snapshot") == {
        **base,
        "ablation": 2,
        "benchmark_snapshot": 2,
        "ablation_snapshot": 1,
    }
    assert dry_run(workdir, "confirm_snapshot") == {
        **base,
        "ablation": 2,
        "benchmark_snapshot": 2,
        "confirm_snapshot": 1,
    }
    commands = shell_commands(workdir, "imitation_snapshot", "ablation_snapshot", "confirm_snapshot")
    (imitation,) = [c for c in commands if "imitation.py" in c]
    assert "--ocv-table" in imitation and "--out" in imitation
    runs = sorted(c for c in commands if "ablation.py" in c)
    pattern = r"--algo (\w+) --jobs 2 --steps (\d+) --changes ([\w ]+?)(?: --arms (\w+))? --seeds ([\d ]+) --packs 100"
    assert [re.search(pattern, c).groups() for c in runs] == [
        ("a2c", "5000000", "per_cell cell_set test_profiles", "cell_set", " ".join(map(str, range(4, 14)))),
        ("a2c", "5000000", "per_cell cell_set test_profiles", None, "1 2 3"),
        ("dqn", "1000000", "test_profiles", "test_profiles", " ".join(map(str, range(4, 14)))),
        ("dqn", "1000000", "test_profiles", None, "1 2 3"),
    ]
    assert all("--csv" in c and "_runs.csv" in c and "--ocv-table" in c for c in runs)
    assert any("results/confirm/a2c_runs.csv" in c for c in runs)
    planned = dry_run(workdir)
    assert not {"imitation", "ablation", "benchmark_snapshot", "curve_train", "curve"} & planned.keys()


def test_the_curve_benchmark_trains_each_seed_as_a_job_and_snapshots_its_figure(workdir):
    """`snakemake curve_snapshot`: one long DQN run per seed (4 M env steps, an evaluation of 16 packs
    every 100 k), the table of their peaks, and a snapshot that keeps the figure."""
    assert dry_run(workdir, "curve_snapshot") == {
        "record": 1,
        "ocv": 1,
        "curve_train": 3,
        "curve": 1,
        "benchmark_snapshot": 1,
        "curve_snapshot": 1,
    }
    commands = shell_commands(workdir, "curve_snapshot")
    runs = sorted(c for c in commands if "curve.py train" in c)
    assert [
        re.search(r"--seed (\d+) --steps 4000000 --eval-interval 100000 --eval-episodes 16 ", c).group(1) for c in runs
    ] == ["1", "2", "3"]
    (table,) = [c for c in commands if "curve.py table" in c]
    assert all(f"results/curve/dqn_runs/seed{s}" in table for s in (1, 2, 3))
    (snapshot,) = [c for c in commands if "bmsrl snapshot" in c]
    assert "--figures results/curve/dqn_curve.png" in snapshot.replace("'", "")


def test_the_searched_agent_runs_only_with_its_config_and_waits_for_the_search(workdir):
    """`snakemake tuned_snapshot --configfile config/tuned.yaml`: the search of A2C with the per-cell
    network (24 trials), then the searched A2C on the confirmation's ten seeds (config/tuned_dqn.yaml:
    DQN's, paired with its own confirmation); the tuned benchmark
    refuses the default config, whose hyperparameters are the registry's. It pairs with the committed
    confirmation's per-seed table (an input; the workdir holds the snapshots' tables)."""
    assert dry_run(workdir, "tuned_snapshot", "--configfile", "config/tuned.yaml") == {
        "ocv": 1,
        "record": 1,
        "search_trial": 24,
        "search_summary": 1,
        "ablation": 1,
        "benchmark_snapshot": 1,
        "tuned_snapshot": 1,
    }
    (command,) = [
        c for c in shell_commands(workdir, "tuned_snapshot", "--configfile", "config/tuned.yaml") if "ablation.py" in c
    ]
    assert "--arms none --seeds 4 5 6 7 8 9 10 11 12 13 " in command
    assert "--tuned-hyperparams results-tuned/tuning/a2c.yaml" in command.replace("'", "")
    assert "--compare-with docs/results/confirm_a2c/a2c_seeds.csv --compare-arm cell_set " in command
    # the second algorithm's config: DQN alone, its own results root, paired with its confirmation
    (command,) = [
        c
        for c in shell_commands(workdir, "tuned_snapshot", "--configfile", "config/tuned_dqn.yaml")
        if "ablation.py" in c
    ]
    assert "--algo dqn " in command and "--arms none --seeds 4 5 6 7 8 9 10 11 12 13 " in command
    assert "--tuned-hyperparams results-tuned-dqn/tuning/dqn.yaml" in command.replace("'", "")
    assert "--compare-with docs/results/confirm_dqn/dqn_seeds.csv --compare-arm test_profiles " in command
    refused = run(workdir, "-n", "docs/results/tuned_a2c")
    assert (
        refused.returncode != 0
        and "benchmark tuned: runs with training.tuned_hyperparams: true" in refused.stdout + refused.stderr
    )


def test_search_is_optional_and_feeds_training_when_asked(workdir):
    """`snakemake search` plans one job per trial and a summary per algorithm; the study's default
    targets include no search; training.tuned_hyperparams makes every train job wait for it."""
    assert dry_run(workdir, "search", "--configfile", "config/test.yaml", "--config", "algos=[ppo]") == {
        "ocv": 1,
        "search_trial": 2,
        "search_summary": 1,
        "search": 1,
    }
    assert dry_run(workdir, "search", "--config", "algos=[ppo,dqn]")["search_trial"] == 2 * 24
    tuned = dry_run(workdir, "--configfile", "config/test.yaml", "--config", "training={tuned_hyperparams: true}")
    assert tuned["search_trial"] == 2 * 2 and tuned["search_summary"] == 2 and tuned["train"] == 4
    commands = shell_commands(
        workdir, "--configfile", "config/test.yaml", "--config", "training={tuned_hyperparams: true}"
    )
    train = next(c for c in commands if " bmsrl train " in c and "--algo ppo --seed 2 " in c)
    assert "--tuned-hyperparams results/tuning/ppo.yaml" in train.replace("'", "")
    trial = next(c for c in commands if " bmsrl search trial " in c and "--algo dqn --trial 1 " in c)
    assert "--storage results/tuning/dqn/study.journal --out results/tuning/dqn/trial1.json" in trial
    assert not any("--tuned-hyperparams" in c for c in shell_commands(workdir, "--configfile", "config/test.yaml"))


def test_more_trials_or_a_longer_training_leave_the_trials_done_alone(workdir):
    """A trial's config holds what changes it: not search.trials, not training.total_steps."""

    def trial_config(*config):
        commands = shell_commands(workdir, "search", "--config", "algos=[ppo]", *config)
        return _config_of(next(c for c in commands if "--trial 0 " in c), workdir)

    base = trial_config()
    assert trial_config("search={trials: 30}") == base
    assert trial_config("training={total_steps: {ppo: 100}}") == base
    assert trial_config("search={eval_episodes: 3}") != base
    # what the trial's agent learns from: its network's features and its training profiles
    assert trial_config("training={features: cell_set}") != base
    assert trial_config("training={profiles: [charge-rest-discharge]}") != base


def shell_commands(workdir: Path, *args: str) -> list[str]:
    result = run(workdir, "-n", "-p", *args)
    assert result.returncode == 0, result.stderr
    return re.findall(r"^\s*Shell command:\s*(.+)$", result.stdout + result.stderr, re.MULTILINE)


def test_rule_commands_follow_the_cli_contracts(workdir):
    commands = shell_commands(workdir)
    train = [c for c in commands if " bmsrl train " in c]
    assert len(train) == 6
    dqn1 = next(c for c in train if "--algo dqn --seed 1 " in c)
    assert dqn1.startswith("OMP_NUM_THREADS=1 ")
    assert "--ocv-table results/ocv/ocv_processed.csv --out results/checkpoints/dqn_seed1" in dqn1
    assert "--tensorboard results/runs/dqn_seed1 > results/logs/train/dqn_seed1.log 2>&1" in dqn1
    every = f"--profile {' '.join(PROFILES)} --scenario {' '.join(SCENARIOS)}"  # one job per policy and seed
    agent = next(c for c in commands if f"--policy ppo {every} --seed 3 " in c)
    assert "--model results/checkpoints/ppo_seed3/best_model.zip" in agent.replace("'", "")
    baseline = next(c for c in commands if f"--policy no_balancing {every} --seed 2 " in c)
    assert "--model" not in baseline and "--baseline-settings" not in baseline
    assert "--out results/eval/no_balancing/{profile}/{scenario}/seed2 " in baseline.replace("'", "")
    tuned = next(c for c in commands if f"--policy top_balancing {every} --seed 1 " in c)
    assert "--baseline-settings results/baselines/top_balancing.yaml" in tuned.replace("'", "")
    reference = next(c for c in commands if f"--policy best_known {every} --seed 1 " in c)
    assert "--baseline-settings results/baselines/room_balancing.yaml" in reference.replace("'", "")  # its base's
    assert any(
        c.startswith("OMP_NUM_THREADS=1 bmsrl tune-baselines ")
        and "--baseline rule_based" in c
        and "--out results/baselines/rule_based.yaml" in c
        for c in commands
    )
    assert any(
        c.startswith("bmsrl ocv data/ocv_table.csv results/ocv/ocv_processed.csv --plot results/plots/ocv.pdf")
        for c in commands
    )
    assert any(
        c.startswith("bmsrl aggregate ")
        and "--out-csv results/tables/summary.csv "
        "--out-md results/tables/summary.md --out-paired results/tables/paired.csv"
        in c
        for c in commands
    )
    assert any(
        c.startswith("bmsrl reference --config results/configs/")
        and "--out results/tables/training_references.csv" in c
        for c in commands
    )
    assert any(
        c.startswith("bmsrl plot training --evaluations ")  # draws the references, simulates nothing
        and "--references results/tables/training_references.csv" in c.replace("'", "")
        for c in commands
    )
    claims = next(c for c in commands if c.startswith("bmsrl claims "))
    policies = 2 + len(evaluated_baselines(True)) + 1  # dqn, ppo, every baseline of a tuned run, best_known
    assert claims.count("/metrics.csv") == policies * 2 * 3 and "/current_1c/" not in claims  # the default scenario
    assert (
        "--config results/run/config.yaml --out-csv results/tables/claims.csv "
        "--out-md results/tables/claims.md > results/logs/claims.log 2>&1"
    ) in claims
    assert any(
        c.startswith("bmsrl plot metrics --summary results/tables/summary.csv --out results/plots/metrics.pdf")
        for c in commands
    )


def _config_of(command: str, workdir: Path) -> str:
    """The per-job config file a command reads (written when the DAG is built), as text."""
    return (workdir / re.search(r"--config (results/configs/\w+\.json)", command)[1]).read_text()


def _train_config(commands: list[str], algo: str, seed: int, workdir: Path) -> str:
    command = next(c for c in commands if " bmsrl train " in c and f"--algo {algo} --seed {seed} " in c)
    return _config_of(command, workdir)


def test_each_job_gets_only_its_config_sections(workdir):
    """Changing PPO's hyperparameters changes no DQN job's params (so Snakemake reruns no DQN job)."""
    import json

    base = shell_commands(workdir)
    changed = shell_commands(workdir, "--config", "training={hyperparams: {ppo: {n_epochs: 3}}}")
    assert _train_config(base, "dqn", 1, workdir) == _train_config(changed, "dqn", 1, workdir)
    assert _train_config(base, "ppo", 1, workdir) != _train_config(changed, "ppo", 1, workdir)
    cfg = json.loads(_train_config(base, "dqn", 2, workdir))
    assert set(cfg) == {"ecm_table", "allow_implausible_tables", "env", "reward", "profiles", "training"}
    assert cfg["profiles"] == {"train": "discharge-rest-charge"}
    assert cfg["training"]["total_steps"] == {"dqn": 8_000_000}
    assert set(cfg["training"]["hyperparams"]) == {"dqn"}
    untuned = [c for c in base if "--policy rule_based_untuned " in c]
    others = [c for c in base if " bmsrl evaluate " in c and "--policy rule_based_untuned " not in c]
    assert untuned and all("rule_based" in json.loads(_config_of(c, workdir))["baselines"] for c in untuned)
    assert not any("baselines" in json.loads(_config_of(c, workdir)) for c in others)
    # one job per policy and seed covers every profile and scenario, and sees every scenario's overrides
    job = next(
        c
        for c in base
        if "--policy ppo --profile discharge-rest-charge charge-rest-discharge "
        f"--scenario {' '.join(SCENARIOS)} --seed 1 " in c
    )
    assert "--out 'results/eval/ppo/{profile}/{scenario}/seed1'" in job
    assert json.loads(_config_of(job, workdir))["evaluation"]["scenarios"]["current_1c"] == {"i_max_a": 3.4}
    assert not any('{"' in c for c in base), [c for c in base if '{"' in c][:1]  # readable: no inline JSON


# ------------------------------------------------------------------------ bad input, lint
def test_lint_is_clean(workdir):
    result = run(workdir, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ("algos=[foo]", "algos[0]: 'foo' is not one of ['dqn', 'ppo', 'maskable_ppo', 'a2c', 'trpo', 'ars']"),
        ("seeds=[one]", "seeds[0]: 'one' is not of type 'integer'"),
        ("training={n_envs: many}", "training.n_envs: 'many' is not of type 'integer'"),
        (
            "trainig={n_envs: 8}",
            "trainig: unknown key; allowed keys: algos, allow_implausible_tables, baselines, ecm_table",
        ),
    ],
)
def test_bad_config_fails_before_any_job(workdir, override, message):
    result = run(workdir, "--cores", "1", "--config", override)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output
    assert "invalid config" in output
    assert not (workdir / "results").exists()


def test_bad_configfile_value_fails(workdir):
    path = workdir / "config" / "bad.yaml"
    path.write_text((workdir / "config" / "test.yaml").read_text().replace("n_epochs: 2", "n_epochs: two"))
    result = run(workdir, "-n", "--configfile", "config/bad.yaml")
    assert result.returncode != 0
    assert "training.hyperparams.ppo.n_epochs: 'two' is not of type 'integer'" in result.stdout + result.stderr


def test_ocv_stage_runs_with_the_default_profile(workdir):
    """No --cores: the workflow profile (workflow/profiles/default) provides it."""
    result = run(workdir, "results/plots/ocv.pdf")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "workflow specific profile" in result.stderr
    assert (workdir / "results/plots/ocv.pdf").read_bytes().startswith(b"%PDF")
    processed = pd.read_csv(workdir / "results/ocv/ocv_processed.csv")
    assert list(processed.columns) == ["soc", "ocv_v"]
    assert (workdir / "results/logs/ocv.log").exists()
    assert (workdir / "results/benchmarks/ocv.tsv").exists()


def test_bad_ocv_table_fails_with_its_message(workdir):
    (workdir / "bad_ocv.csv").write_text("soc,ocv_v\n0.0,3.2\n0.5,abc\n1.0,4.2\n")
    # targets go before --config, which takes every following word as a key=value pair
    result = run(workdir, "results/ocv/ocv_processed.csv", "--cores", "1", "--config", "ocv_table=bad_ocv.csv")
    assert result.returncode != 0
    log = (workdir / "results/logs/ocv.log").read_text()
    assert "bad_ocv.csv" in log and "line 3" in log, log
    assert log in result.stdout + result.stderr  # show-failed-logs: the message reaches the terminal
    assert not (workdir / "results/ocv/ocv_processed.csv").exists()


# ---------------------------------------------------------------------------- full DAG run
def _check_numeric_finite(frame: pd.DataFrame, path: Path, allow_nan=()) -> None:
    numeric = frame.select_dtypes("number")
    assert not numeric.empty, path
    for column in numeric:
        if any(a in column for a in allow_nan):
            continue
        assert np.isfinite(numeric[column].to_numpy(dtype=float)).all(), f"{path}: column {column}"


@pytest.mark.workflow
def test_full_dag_on_the_test_config(workdir):
    """Needs every verb (train, evaluate, aggregate, plot) implemented: the whole DAG on 2 cores."""
    result = run(workdir, "--configfile", "config/test.yaml", "--cores", "2", timeout=900)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    r = workdir / "results"
    cfg = load_config(workdir / "config" / "test.yaml")
    seeds, n_cells = cfg["seeds"], cfg["env"]["n_cells"]

    check_pdf(r / "plots" / "ocv.pdf")
    assert list(pd.read_csv(r / "ocv" / "ocv_processed.csv").columns) == ["soc", "ocv_v"]

    for algo in cfg["algos"]:
        for seed in seeds:
            folder = r / "checkpoints" / f"{algo}_seed{seed}"
            for name in ("best_model.zip", "final_model.zip"):
                assert (folder / name).read_bytes()[:2] == b"PK", folder / name  # a zip archive
            with np.load(folder / "evaluations.npz") as npz:
                assert {"timesteps", "results"} <= set(npz.files)
                assert len(npz["timesteps"]) >= 1 and np.isfinite(npz["results"]).all()
            assert (r / "runs" / f"{algo}_seed{seed}").is_dir()  # TensorBoard logs

    scenarios = list(cfg["evaluation"]["scenarios"])
    assert scenarios == ["default", "current_1c", "realistic"]
    # the realistic scenario's drive cycle has regenerative currents: no share of the bound there (bound.validity)
    bound_scenarios = [s for s in scenarios if s != "realistic"]
    for baseline in ("rule_based", "top_balancing"):
        settings = load_yaml((r / "baselines" / f"{baseline}.yaml").read_text())["settings"]
        assert 0 <= settings["hysteresis"] <= settings["threshold"] and settings["threshold"] in (0.01, 0.03)
    for policy, profile, scenario, seed in itertools.product(POLICIES, PROFILES, scenarios, seeds):
        folder = r / "eval" / policy / profile / scenario / f"seed{seed}"
        traces = pd.read_csv(folder / "traces.csv")
        assert len(traces) > 10
        columns = " ".join(traces.columns).lower()
        assert "time" in columns and "phase" in columns
        for quantity in ("soc", "volt", "current", "switch", "shunt"):
            assert sum(quantity in c.lower() for c in traces.columns) >= n_cells, (folder, quantity)
        _check_numeric_finite(traces, folder / "traces.csv")
        metrics = pd.read_csv(folder / "metrics.csv")
        episodes = cfg["evaluation"]["best_known_episodes" if policy == "best_known" else "episodes"]
        assert len(metrics) == episodes, folder
        metric_columns = " ".join(metrics.columns).lower()
        for quantity in ("capacity", "soc_var", "switch", "energy", "balance"):
            assert quantity in metric_columns, (folder, quantity)
        # the optional metrics may be empty: never balanced, never settled, nothing recoverable
        _check_numeric_finite(metrics, folder / "metrics.csv", allow_nan=tuple(m.name for m in METRICS if m.optional))
        if profile == "charge-rest-discharge" and scenario in bound_scenarios:  # capacity to recover
            assert np.isfinite(metrics["recovered_share"]).all(), folder
        if scenario == "realistic":  # two cycles: each one's delivered charge in the traces
            assert set(traces["cycle"]) == {0, 1}, folder
            if profile == "charge-rest-discharge":
                assert metrics["recovered_share"].isna().all(), folder
            assert metrics["invalid_actions"].eq(0).all() or policy not in BASELINES, folder  # within the chip's limit

    summary = pd.read_csv(r / "tables" / "summary.csv")
    assert {"policy", "profile"} <= set(summary.columns)
    assert set(itertools.product(POLICIES, PROFILES, scenarios)) == set(
        zip(summary["policy"], summary["profile"], summary["scenario"])
    )
    paired = pd.read_csv(r / "tables" / "paired.csv")
    undefined = paired["mean_diff"].isna()  # the shares of recoverable capacity where nothing was recoverable
    shares = {"recovered_share", "recovered_share_of_sums"}
    assert set(paired.loc[undefined, "metric"]) <= shares
    assert (
        not paired.loc[
            paired["metric"].isin(shares)
            & (paired["profile"] == "charge-rest-discharge")
            & paired["scenario"].isin(bound_scenarios),
            "mean_diff",
        ]
        .isna()
        .any()
    )
    defined = paired[~undefined & paired["ci_low"].notna()]  # t interval over seeds: none from a single seed
    assert (paired.loc[~undefined & paired["ci_low"].isna(), "interval_over"] == "one seed").all()
    assert (defined["ci_low"] <= defined["mean_diff"] + 1e-9).all() and (
        defined["mean_diff"] <= defined["ci_high"] + 1e-9
    ).all()
    assert set(pd.read_csv(r / "tables" / "profiles.csv")["policy"]) == set(POLICIES)
    assert set(paired["baseline"]) == {*evaluated_baselines(True), "best_known"}
    assert set(pd.read_csv(r / "tables" / "robustness.csv")["scenario"]) == set(scenarios)
    summary_md = (r / "tables" / "summary.md").read_text()
    assert "Trained agents against the baselines" in summary_md and "## Verdict" in summary_md
    assert summary_md.splitlines()[2].startswith("**Smoke run")  # config/test.yaml: run_kind smoke
    assert "<table>" in (r / "tables" / "summary.html").read_text()
    claims = pd.read_csv(r / "tables" / "claims.csv")
    assert list(claims["claim"]) == ["capacity", "soc_variance", "switching", "trpo_best"]
    assert set(claims["verdict"]) <= {"reproduced", "not reproduced", "not comparable"}
    assert "Setting: the BMS default setting" in (r / "tables" / "claims.md").read_text()
    for kind in TRACE_PLOTS + ["training_curves", "metrics", "robustness", "profiles", "paired"]:
        check_pdf(r / "plots" / f"{kind}.pdf")
    assert any((r / "logs").rglob("*.log")) and any((r / "benchmarks").rglob("*.tsv"))

    again = run(workdir, "--configfile", "config/test.yaml", "-n")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout + again.stderr

    # The report of the run, asked for without its config: built from results/run/config.yaml.
    assert load_config(r / "run" / "config.yaml") == cfg
    report = run(workdir, "--report", "results/report.html", timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "Missing metadata" not in report.stdout + report.stderr
    html = (r / "report.html").read_text(encoding="utf-8")
    assert "training seeds 1, 2 on the profiles" in html.replace("\\n", " ")  # the test run's seeds, not 1, 2, 3
    assert "stable-baselines3" in html  # the recorded package versions are in the report


@pytest.mark.workflow
def test_two_trial_search_then_tuned_training_on_the_test_config(workdir):
    """`snakemake search` on the test config (two trials side by side), then one train job that takes its result."""
    result = run(workdir, "search", "--configfile", "config/test.yaml", "--cores", "2", "--config", "algos=[ppo]")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    r = workdir / "results"
    summary = load_yaml((r / "tuning" / "ppo.yaml").read_text())
    assert summary["algo"] == "ppo" and len(summary["trials"]) == 2 and summary["hyperparams"]
    assert (r / "tuning" / "ppo" / "study.journal").stat().st_size > 0
    assert all((r / "logs" / "search" / "ppo" / f"trial{k}.log").exists() for k in (0, 1))
    target = "results/checkpoints/ppo_seed1/run_config.json"
    trained = run(
        workdir,
        target,
        "--configfile",
        "config/test.yaml",
        "--cores",
        "2",
        "--config",
        "algos=[ppo]",
        "training={tuned_hyperparams: true}",
    )
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    assert "search_trial" not in trained.stdout + trained.stderr  # the search was done already
    import json

    settings = json.loads((workdir / target).read_text())["settings"]
    assert settings["tuned_hyperparams"]["hyperparams"] == summary["hyperparams"]
    assert {k: settings["hyperparams"][k] for k in summary["hyperparams"]} == summary["hyperparams"]


def _planned_outputs(workdir: Path, *args: str) -> set[str]:
    """The top folders of every output path a dry run's jobs would write (``output:`` lines)."""
    result = run(workdir, "-n", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = re.findall(r"^\s*output: (.+)$", result.stdout + result.stderr, re.MULTILINE)
    assert outputs
    return {path.split("/")[0] for line in outputs for path in line.split(", ")}


def test_quick_and_study_runs_write_disjoint_results_roots(workdir):
    """The quick run's outputs all land in results-quick/ (config results_root), the study's in results/,
    so neither run plans (nor deletes and remakes) a file of the other; a figure of the quick run is asked
    for under its own root."""
    assert _planned_outputs(workdir, "--configfile", "config/quick.yaml") == {"results-quick"}
    assert _planned_outputs(workdir) == {"results"}
    counts = dry_run(workdir, "results-quick/plots/soc.pdf", "--configfile", "config/quick.yaml")
    assert counts["train"] == 2 and counts["plot_traces"] == 1
    bad = run(workdir, "-n", "--config", "results_root=../elsewhere")
    assert bad.returncode != 0 and "results_root" in bad.stdout + bad.stderr


def test_the_profiles_placeholders_are_refused_before_any_job(workdir):
    """The Slurm profile's CHANGE_ME partition and account stop the run before its first job (here run
    locally, so no Slurm is needed), with a message saying where the real values come from."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    args = ["results/plots/ocv.pdf", "--profile", "workflow/profiles/slurm-noconda", "--executor", "local"]
    result = run(workdir, *args, "--cores", "1")
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "slurm_partition=CHANGE_ME_partition" in out and "sinfo -s" in out, out[-3000:]
    assert not (workdir / "results" / "ocv").exists()
    given = ["--default-resources", "slurm_partition=debug", "slurm_account=local"]
    assert run(workdir, *args, "--cores", "1", *given).returncode == 0
    assert (workdir / "results" / "plots" / "ocv.pdf").is_file()
