"""The workflow through a real Slurm: a local single-node Slurm 22.05 (cluster/local-slurm/).

Not run by a plain ``pytest`` (``-m "not slurm"`` in pyproject.toml's addopts). Run it as root with

    pytest -m slurm tests/test_slurm.py

A session fixture starts the cluster with ``cluster/local-slurm/start.sh`` (installing the Debian
packages on first use) and stops it with ``stop.sh`` at the end. The tests reuse the temporary
workflow copy (the ``workdir`` fixture of conftest.py) and the snakemake runner of
workflow_support.py. No conda: the jobs run the ``bmsrl`` on PATH, on the same machine and with
the same Python.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest
import yaml

from bmsrl.config import load_config
from workflow_support import ROOT, SNAKEMAKE, TRACE_PLOTS, check_pdf, run, snakemake_env

CLUSTER = ROOT / "cluster" / "local-slurm"

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed"),
    pytest.mark.skipif(
        os.geteuid() != 0, reason="the local Slurm (cluster/local-slurm/start.sh) must be started as root"
    ),
]

#: the flags that work with snakemake-executor-plugin-slurm 2.8.0 on the local cluster (its README)
SLURM_ARGS = (
    "--executor",
    "slurm",
    "--jobs",
    "2",
    "--default-resources",
    "slurm_partition=debug",
    "slurm_account=local",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--slurm-status-command",
    "squeue",  # with sacct a scancel'ed job is never seen as failed
)


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start the local Slurm for the session; stop it (cancelling every job) afterwards."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -e .[slurm])")
    start = subprocess.run(["bash", str(CLUSTER / "start.sh")], capture_output=True, text=True, timeout=600)
    assert start.returncode == 0, start.stdout[-3000:] + start.stderr[-3000:]
    try:
        yield
    finally:
        subprocess.run(["bash", str(CLUSTER / "stop.sh")], capture_output=True, text=True, timeout=300)


def _slurm_jobs() -> list[tuple[str, str]]:
    """(job id, comment) of every job squeue knows; the plugin puts the rule name in the comment."""
    out = subprocess.run(["squeue", "-h", "-o", "%i|%T|%k"], capture_output=True, text=True, timeout=30).stdout
    jobs = []
    for line in out.splitlines():
        job_id, state, comment = (line.split("|", 2) + ["", ""])[:3]
        if state.strip() in ("RUNNING", "PENDING", "CONFIGURING"):
            jobs.append((job_id.strip(), comment))
    return jobs


def test_test_config_through_slurm(slurm_cluster, workdir):
    """The whole DAG of config/test.yaml, every job a Slurm job."""
    result = run(workdir, *SLURM_ARGS, "--configfile", "config/test.yaml", timeout=1800)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    output = result.stdout + result.stderr
    assert re.search(r"submitted with SLURM jobid \d+", output), output[-3000:]  # really through Slurm

    r = workdir / "results"
    for name in ["ocv", *TRACE_PLOTS, "training_curves", "metrics"]:  # rule all: every figure ...
        check_pdf(r / "plots" / f"{name}.pdf")
    assert (r / "tables" / "summary.csv").read_text().strip()  # ... and both tables
    assert (r / "tables" / "summary.md").read_text().strip()
    cfg = load_config(workdir / "config" / "test.yaml")
    for algo in cfg["algos"]:
        for seed in cfg["seeds"]:
            assert (r / "checkpoints" / f"{algo}_seed{seed}" / "final_model.zip").read_bytes()[:2] == b"PK"

    again = run(workdir, "--configfile", "config/test.yaml", "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_cancelled_training_job_resumes_from_its_checkpoint(slurm_cluster, workdir):
    """scancel a running train job after its first checkpoint; the rerun resumes from it."""
    cfg = load_config(workdir / "config" / "test.yaml")
    cfg["algos"], cfg["seeds"] = ["dqn"], [1]
    cfg["training"]["total_steps"]["dqn"] = 60_000  # long enough to be cancelled mid-run
    cfg["training"]["checkpoint_interval"] = 4_000
    (workdir / "config" / "long.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    target = "results/checkpoints/dqn_seed1/final_model.zip"
    args = [SNAKEMAKE, target, *SLURM_ARGS, "--configfile", "config/long.yaml"]
    checkpoints = workdir / "results" / "checkpoints" / "dqn_seed1" / "checkpoints"
    log = workdir / "results" / "logs" / "train" / "dqn_seed1.log"

    with open(workdir / "first_run.txt", "w") as out:
        proc = subprocess.Popen(
            args, cwd=workdir, env=snakemake_env(workdir), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 600
        while not any(checkpoints.glob("model_*_steps.zip")):
            assert proc.poll() is None, (
                "snakemake ended before the first checkpoint:\n" + (workdir / "first_run.txt").read_text()[-5000:]
            )
            assert time.monotonic() < deadline, "no checkpoint within 600 s"
            time.sleep(1)
        train_jobs = [job_id for job_id, comment in _slurm_jobs() if "train" in comment]
        assert len(train_jobs) == 1, _slurm_jobs()
        subprocess.run(["scancel", *train_jobs], check=True, timeout=30)
        try:
            returncode = proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            pytest.fail(
                "snakemake did not notice the cancelled job within 300 s:\n"
                + (workdir / "first_run.txt").read_text()[-5000:]
            )
        assert returncode != 0
        assert not (workdir / target).exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        leftover = [job_id for job_id, _ in _slurm_jobs()]
        if leftover:
            subprocess.run(["scancel", *leftover], timeout=30)
    saved = sorted(int(re.search(r"model_(\d+)_steps", p.name)[1]) for p in checkpoints.glob("model_*_steps.zip"))
    assert saved and saved[-1] < 60_000

    # rerun-incomplete comes from the workflow profile (workflow/profiles/default)
    result = run(workdir, target, *SLURM_ARGS, "--configfile", "config/long.yaml", timeout=1200)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    text = log.read_text()
    match = re.search(r"resuming from \S+model_(\d+)_steps\.zip \((\d+) env steps done\)", text)
    assert match, text[-3000:]
    assert int(match[2]) > 0 and int(match[2]) >= saved[0]
    assert (workdir / target).read_bytes()[:2] == b"PK"
    assert (workdir / "results" / "checkpoints" / "dqn_seed1" / "best_model.zip").exists()
