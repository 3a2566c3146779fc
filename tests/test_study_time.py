"""Tests of scripts/study_time.py on a synthetic run: benchmark files and Snakemake metadata records."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("study_time", ROOT / "scripts" / "study_time.py")
study_time = importlib.util.module_from_spec(_spec)
sys.modules["study_time"] = study_time  # dataclasses look their module up while the class is made
_spec.loader.exec_module(study_time)

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
T0 = 1_800_000_000.0  # start of the synthetic run [Unix s]

#: rule, log/benchmark name, outputs, inputs, start and end [s after T0], cpu_time [s] ("NA": not sampled)
JOBS = [
    ("ocv", "ocv", ["results/ocv/ocv.csv"], ["data/ocv_table.csv"], 0, 10, 9.0),
    (
        "train",
        "train/a_seed1",
        ["results/checkpoints/a/best.zip", "results/checkpoints/a/run.json"],
        ["results/ocv/ocv.csv"],
        10,
        110,
        95.0,
    ),
    ("train", "train/b_seed1", ["results/checkpoints/b/best.zip"], ["results/ocv/ocv.csv"], 10, 60, 48.0),
    (
        "evaluate",
        "evaluate/a/seed1",
        ["results/eval/a/metrics.csv"],
        ["results/checkpoints/a/best.zip", "results/ocv/ocv.csv"],
        110,
        130,
        15.0,
    ),
    (
        "evaluate",
        "evaluate/b/seed1",
        ["results/eval/b/metrics.csv"],
        ["results/checkpoints/b/best.zip", "results/ocv/ocv.csv"],
        60,
        90,
        "NA",
    ),
    (
        "aggregate",
        "aggregate",
        ["results/tables/summary.csv"],
        ["results/eval/a/metrics.csv", "results/eval/b/metrics.csv"],
        130,
        135,
        4.0,
    ),
]


def record_path(folder: Path, output: str, max_len: int = 40) -> Path:
    """Where Snakemake keeps an output's metadata record: its urlsafe base64, cut into folders when long
    (``@``-prefixed, as snakemake.persistence does; a short max_len here so the test meets the cutting)."""
    b64 = base64.urlsafe_b64encode(output.encode()).decode()
    parts = [b64[i : i + max_len - 1] for i in range(0, len(b64), max_len - 1)]
    return folder.joinpath(*["@" + p for p in parts[:-1]], parts[-1])


def make_run(root: Path, metadata: bool = True) -> None:
    bench, meta = root / "results" / "benchmarks", root / ".snakemake" / "metadata"
    for i, (rule, name, outputs, inputs, start, end, cpu) in enumerate(JOBS):
        path = bench / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + f"{end - start:.2f}\t0:00:00\t100.5\t0\t0\t0\t0\t0\t0.9\t{cpu}\n")
        os.utime(path, (T0 + end, T0 + end))
        if not metadata:
            continue
        for k, output in enumerate(outputs):
            rec = record_path(meta, output)
            rec.parent.mkdir(parents=True, exist_ok=True)
            rec.write_text(
                json.dumps(
                    {
                        "rule": rule,
                        "input": inputs,
                        "log": [f"results/logs/{name}.log"],
                        "job_hash": 1000 + i,
                        "starttime": T0 + start + 1e-6 * k,
                        "endtime": T0 + end + 4e-4 * k,  # Snakemake stamps each output's record in turn
                        "incomplete": False,
                    }
                )
            )
    rec = record_path(meta, "results/half.csv")  # a job still running: no end time yet
    if metadata:
        rec.parent.mkdir(parents=True, exist_ok=True)
        rec.write_text(
            json.dumps({"rule": "train", "input": [], "log": [], "starttime": T0, "endtime": None, "incomplete": True})
        )


def test_metadata_jobs_group_outputs_and_decode_long_names(tmp_path: Path):
    make_run(tmp_path)
    jobs = study_time.read_metadata(tmp_path / ".snakemake" / "metadata")
    assert len(jobs) == len(JOBS)  # one job per rule, hash, log and end (within ms), the incomplete left out
    train_a = next(j for j in jobs if "results/checkpoints/a/best.zip" in j.outputs)
    assert train_a.outputs == {"results/checkpoints/a/best.zip", "results/checkpoints/a/run.json"}
    assert train_a.start == pytest.approx(T0 + 10)


def test_core_hours_by_rule_and_critical_path(tmp_path: Path):
    make_run(tmp_path)
    jobs = study_time.read_metadata(tmp_path / ".snakemake" / "metadata")
    benchmarks = study_time.read_benchmarks(tmp_path / "results" / "benchmarks")
    assert study_time.attach_benchmarks(jobs, benchmarks, "results/logs") == []
    rows = {r["rule"]: r for r in study_time.by_rule(jobs)}
    assert rows["train"]["jobs"] == 2
    assert rows["train"]["core_hours"] == pytest.approx(150 / 3600)
    assert rows["train"]["cpu_hours"] == pytest.approx(143 / 3600)
    assert rows["evaluate"]["no_cpu"] == 1 and rows["evaluate"]["cpu_hours"] == pytest.approx(15 / 3600)
    assert list(rows) == ["train", "evaluate", "ocv", "aggregate"]  # most core-hours first
    length, chain = study_time.critical_path(jobs)
    assert length == pytest.approx(10 + 100 + 20 + 5)
    assert [j.benchmark for j in chain] == ["ocv.tsv", "train/a_seed1.tsv", "evaluate/a/seed1.tsv", "aggregate.tsv"]


def test_a_producer_from_a_later_sitting_is_not_a_dependency():
    early = study_time.Job("evaluate", 0.0, 10.0, outputs={"m.csv"}, inputs={"model"})
    model = study_time.Job("train", 100.0, 500.0, outputs={"model"})  # rerun after the evaluation
    length, chain = study_time.critical_path([early, model])
    assert length == pytest.approx(400.0) and chain == [model]


def test_report_prints_rules_wall_time_and_path(tmp_path: Path, monkeypatch, capsys):
    make_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert study_time.main(["--threads", "train=2"]) == 0
    out = capsys.readouterr().out
    assert "Wall time: 0:02:15 (135 s)" in out
    assert "Critical path: 0:02:15 (135 s, 4 jobs)" in out and "100 % of this run" in out
    train = next(line for line in out.splitlines() if line.startswith("train "))
    assert train.split()[1:3] == ["2", f"{300 / 3600:.3f}"]  # 2 jobs, 150 s x 2 threads
    assert "1 without CPU time" in out


def test_since_keeps_the_later_jobs(tmp_path: Path, monkeypatch, capsys):
    make_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    from datetime import datetime, timezone

    since = datetime.fromtimestamp(T0 + 60, tz=timezone.utc).replace(tzinfo=None).isoformat()
    assert study_time.main(["--since", since]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Jobs: 3 ") and "Wall time: 0:01:15 (75 s)" in out


def test_without_metadata_the_benchmark_files_time_the_run(tmp_path: Path, monkeypatch, capsys):
    make_run(tmp_path, metadata=False)
    monkeypatch.chdir(tmp_path)
    assert study_time.main([]) == 0
    out = capsys.readouterr().out
    assert "Jobs: 6 (benchmark files" in out and "Wall time: 0:02:15 (135 s)" in out
    assert any(line.startswith("[train] ") and line.split()[1] == "2" for line in out.splitlines())
    assert "Critical path: n/a" in out


def test_bad_arguments_are_one_error(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert study_time.main([]) == 2
    assert "is not a folder" in capsys.readouterr().err
    make_run(tmp_path)
    assert study_time.main(["--threads", "train=0"]) == 2
    assert "RULE=N" in capsys.readouterr().err


def test_csv_holds_the_printed_figures(tmp_path: Path, monkeypatch, capsys):
    """--csv writes what the report prints, as rows a docs template can quote (rule snapshot)."""
    import csv

    make_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "results" / "study_time.csv"
    assert study_time.main(["--csv", str(out)]) == 0
    with out.open() as f:
        rows = {(r["rule"], r["quantity"]): (float(r["value"]), r["unit"]) for r in csv.DictReader(f)}
    assert rows[("train", "core_hours")] == (pytest.approx(150 / 3600), "h")
    assert rows[("train", "jobs")] == (2.0, "-")
    assert rows[("all", "critical_path")] == (pytest.approx(10 + 100 + 20 + 5), "s")
    assert rows[("all", "jobs")][0] == len(JOBS)
    first = min(j[4] for j in JOBS)
    last = max(j[5] for j in JOBS)
    assert rows[("all", "wall_time")] == (pytest.approx(last - first), "s")
    core_s = 3600 * rows[("all", "core_hours")][0]
    assert rows[("all", "least_wall_time_2_cores")][0] == pytest.approx(max(135, core_s / 2), rel=1e-5)
    assert rows[("all", "least_wall_time_64_cores")][0] == pytest.approx(135)  # the critical path bounds it
    assert study_time.main(["--csv", str(tmp_path / "nowhere" / "x.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
