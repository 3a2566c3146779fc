# Benchmarks whose tables docs/results.md quotes (not part of `all`): a script of benchmarks/ run with
# this run's config and processed OCV table, then copied with its provenance to docs/results/<name>/
# as `snakemake snapshot` copies the study's tables (the same `bmsrl snapshot`).
#
#   snakemake imitation_snapshot --cores 1      # docs/results/imitation/ (a few core-minutes)
#   snakemake ablation_snapshot --cores 2       # docs/results/ablation_<algo>/ (about 3 core-hours)
#   snakemake docs/results/ablation_a2c --cores 1   # one algorithm's

import shlex

IMITATION_SCRIPT = str(Path(workflow.basedir).parent / "benchmarks" / "imitation.py")
IMITATION_TABLES = [out("imitation/imitation.csv"), out("imitation/imitation_seeds.csv")]
ABLATION_SCRIPT = str(Path(workflow.basedir).parent / "benchmarks" / "ablation.py")
#: the ablation's algorithms, each at its budget [env steps] with its changes (benchmarks/ablation.py's
#: CHANGES): the verdict run's two agents at its budgets (config/verdict.yaml), three seeds, 100 test
#: packs per seed. DQN leaves out cell_set (and so the arm of every change together): its per-cell
#: network makes each of DQN's 250 000 gradient steps about 4 times as costly (docs/performance.md,
#: "What mattered"), close to an hour per seed; A2C's arms test the network.
ABLATION = {
    "dqn": {"steps": 1_000_000, "changes": ["test_profiles", "double_q"]},
    "a2c": {"steps": 5_000_000, "changes": ["per_cell", "cell_set", "test_profiles"]},
}
ABLATION_TABLES = [out("ablation/{algo}.csv"), out("ablation/{algo}_seeds.csv")]


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
        out=lambda wildcards, output: str(Path(output[0]).parent),
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


rule ablation:
    """What mattered: each learning change of issue 19 alone and all together, one algorithm at its
    verdict budget, 3 seeds, against room_balancing on the same test packs (benchmarks/ablation.py).
    Its runs are appended to results/ablation/{algo}_runs.csv as they end, not a declared output, so a
    stopped job resumes from them (a failed job does not delete them)."""
    input:
        ocv=OCV_PROCESSED,
        ecm=config["ecm_table"],
    output:
        ABLATION_TABLES,
    wildcard_constraints:
        algo="|".join(ABLATION),
    params:
        cfg=stage_config("ecm_table", "allow_implausible_tables", "env", "reward", "profiles", "evaluation", "baselines",
                         "training"),  # fmt: skip
        steps=lambda wildcards: ABLATION[wildcards.algo]["steps"],
        changes=lambda wildcards: " ".join(ABLATION[wildcards.algo]["changes"]),
        runs=out("ablation/{algo}_runs.csv"),
        out=lambda wildcards, output: str(Path(output[0]).parent),
    log:
        f"{LOGS}/ablation/{{algo}}.log",
    benchmark:
        f"{BENCHMARKS}/ablation/{{algo}}.tsv"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=7 * 24 * 60,
    conda:
        "../../envs/rl.yaml"
    shell:
        f"OMP_NUM_THREADS={{threads}} python {shlex.quote(ABLATION_SCRIPT)} --algo {{wildcards.algo}}"
        " --steps {params.steps} --changes {params.changes} --seeds 1 2 3 --packs 100 --config {params.cfg:q}"
        " --ocv-table {input.ocv:q}"
        " --csv {params.runs:q} --out {params.out:q} > {log:q} 2>&1"


rule ablation_snapshot:
    """Every algorithm's ablation snapshot (docs/results/ablation_<algo>/)."""
    input:
        expand("docs/results/ablation_{algo}", algo=ABLATION),


rule ablation_algo_snapshot:
    """One algorithm's ablation tables, copied with their provenance to docs/results/ablation_<algo>/
    (committed to git)."""
    input:
        tables=ABLATION_TABLES,
        config=RUN_CONFIG,
        versions=RUN_VERSIONS,
    output:
        directory("docs/results/ablation_{algo}"),
    wildcard_constraints:
        algo="|".join(ABLATION),
    params:
        commit=RUN_COMMIT,
        command=RUN_COMMAND,
    log:
        f"{LOGS}/ablation_snapshot/{{algo}}.log",
    threads: 1
    resources:
        mem_mb=512,
        runtime=5,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl snapshot --out {output:q} --tables {input.tables:q} --run-config {input.config:q}"
        " --versions {input.versions:q} --commit {params.commit:q} --command {params.command:q} > {log:q} 2>&1"
