# The committed results snapshot: `snakemake snapshot` copies this run's tables and figures (PNG)
# into docs/results/<snapshot.name>/ with PROVENANCE.yaml (commit, command, versions, config).
# docs/results.md quotes numbers only from such folders (scripts/results_doc.py, tests/test_results_doc.py).

SNAPSHOT_TABLES = [SUMMARY_CSV, PAIRED_CSV, ROBUSTNESS_CSV, PROFILES_CSV, CLAIMS_CSV]
#: what the run cost (scripts/study_time.py: core-hours by rule, critical path, wall time), written
#: when the snapshot is taken, from the run's benchmark files and Snakemake's metadata
STUDY_TIME_CSV = out("tables/study_time.csv")
STUDY_TIME_SCRIPT = str(Path(workflow.basedir).parent / "scripts" / "study_time.py")


rule snapshot:
    """This run's tables and figures, copied with their provenance to docs/results/<snapshot.name>/
    (committed to git; not part of `all`)."""
    input:
        tables=SNAPSHOT_TABLES,
        figures=expand(PLOT, name=config["snapshot"]["figures"], ext="png"),
        config=RUN_CONFIG,
        versions=RUN_VERSIONS,
    output:
        directory(f"docs/results/{config['snapshot']['name']}"),
    params:
        commit=RUN_COMMIT,
        command=RUN_COMMAND,
        study_time=STUDY_TIME_SCRIPT,
        study_time_csv=STUDY_TIME_CSV,
        benchmarks=BENCHMARKS,
        logs=LOGS,
    log:
        f"{LOGS}/snapshot.log",
    threads: 1
    resources:
        mem_mb=512,
        runtime=5,
    conda:
        "../../envs/core.yaml"
    shell:
        "python {params.study_time:q} --benchmarks {params.benchmarks:q} --logs {params.logs:q}"
        " --csv {params.study_time_csv:q} > {log:q} 2>&1 && "
        "bmsrl snapshot --out {output:q} --tables {input.tables:q} {params.study_time_csv:q} --figures {input.figures:q}"
        " --run-config {input.config:q} --versions {input.versions:q}"
        " --commit {params.commit:q} --command {params.command:q} >> {log:q} 2>&1"
