# The committed results snapshot: `snakemake snapshot` copies this run's tables and figures (PNG)
# into docs/results/<snapshot.name>/ with PROVENANCE.yaml (commit, command, versions, config).
# docs/results.md quotes numbers only from such folders (scripts/results_doc.py, tests/test_results_doc.py).

import shlex
import subprocess


def _git(*args):
    """Output of ``git ARGS`` in the working directory, or None outside a git checkout."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def snapshot_commit():
    """The checkout's commit, marked ``-dirty`` when tracked files differ from it."""
    commit = _git("rev-parse", "--short=12", "HEAD")
    if commit is None:
        return "unknown (not a git checkout)"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return commit + ("-dirty" if dirty else "")


# The command this Snakemake was started with, as the snapshot's provenance records it.
SNAPSHOT_COMMAND = shlex.join(["snakemake", *sys.argv[1:]]) if Path(sys.argv[0]).name.startswith("snakemake") else "snakemake (started from Python: " + shlex.join(sys.argv) + ")"
SNAPSHOT_TABLES = [SUMMARY_CSV, PAIRED_CSV, ROBUSTNESS_CSV, PROFILES_CSV, CLAIMS_CSV]


rule snapshot:
    """This run's tables and figures, copied with their provenance to docs/results/<snapshot.name>/
    (committed to git; not part of `all`)."""
    input:
        tables=SNAPSHOT_TABLES,
        figures=expand("results/plots/{figure}.png", figure=config["snapshot"]["figures"]),
        config=RUN_CONFIG,
        versions=RUN_VERSIONS,
    output:
        directory(f"docs/results/{config['snapshot']['name']}"),
    params:
        commit=snapshot_commit(),
        command=SNAPSHOT_COMMAND,
    log:
        f"{LOGS}/snapshot.log",
    threads: 1
    resources:
        mem_mb=512,
        runtime=5,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl snapshot --out {output:q} --tables {input.tables:q} --figures {input.figures:q}"
        " --run-config {input.config:q} --versions {input.versions:q}"
        " --commit {params.commit:q} --command {params.command:q} > {log:q} 2>&1"
