# Benchmarks whose tables docs/results.md quotes (not part of `all`): a script of benchmarks/ run with
# this run's config and processed OCV table, then copied with its provenance to docs/results/<name>/
# as `snakemake snapshot` copies the study's tables (the same `bmsrl snapshot`).
#
#   snakemake imitation_snapshot --cores 1      # docs/results/imitation/ (a few core-minutes)

import shlex

IMITATION_SCRIPT = str(Path(workflow.basedir).parent / "benchmarks" / "imitation.py")
IMITATION_TABLES = [out("imitation/imitation.csv"), out("imitation/imitation_seeds.csv")]


rule imitation:
    """Can each network option represent room_balancing? Supervised imitation of the rule, the clone run
    on the test packs, paired with the rule (benchmarks/imitation.py)."""
    input:
        ocv=OCV_PROCESSED,
        ecm=config["ecm_table"],
    output:
        IMITATION_TABLES,
    params:
        cfg=stage_config("ecm_table", "allow_implausible_tables", "env", "reward", "profiles", "evaluation", "baselines",
                         "training.hyperparams"),  # fmt: skip
        out=out("imitation"),
    log:
        f"{LOGS}/imitation.log",
    benchmark:
        f"{BENCHMARKS}/imitation.tsv"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=60,
    conda:
        "../../envs/rl.yaml"
    shell:
        # the script's path written out (not a param): tests/conda_envs.py reads its imports from it
        f"OMP_NUM_THREADS={{threads}} python {shlex.quote(IMITATION_SCRIPT)} --config {{params.cfg:q}}"
        " --ocv-table {input.ocv:q} --out {params.out:q} > {log:q} 2>&1"


rule imitation_snapshot:
    """The imitation tables, copied with their provenance to docs/results/imitation/ (committed to git)."""
    input:
        tables=IMITATION_TABLES,
        config=RUN_CONFIG,
        versions=RUN_VERSIONS,
    output:
        directory("docs/results/imitation"),
    params:
        commit=RUN_COMMIT,
        command=RUN_COMMAND,
    log:
        f"{LOGS}/imitation_snapshot.log",
    threads: 1
    resources:
        mem_mb=512,
        runtime=5,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl snapshot --out {output:q} --tables {input.tables:q} --run-config {input.config:q}"
        " --versions {input.versions:q} --commit {params.commit:q} --command {params.command:q} > {log:q} 2>&1"
