# The hyperparameter search (docs/search.md): optional, not part of `all`. Run it with
#     snakemake search --config 'algos=[ppo]'
# Every trial is a job (so trials run side by side, on the workstation or as Slurm jobs); the jobs
# of one algorithm share one Optuna study in results/tuning/{algo}/study.journal, which is not a
# declared output: Snakemake would delete it with a failed job's outputs, and every trial writes it.
# With training.tuned_hyperparams, the train jobs take the search's result as an input.


rule search_trial:
    """One trial of an algorithm's hyperparameter search: sample, train the trial's budget on the
    training profile, report to the pruner, record the outcome."""
    input:
        ocv=OCV_PROCESSED,
        ecm=config["ecm_table"],
    output:
        f"{SEARCH_DIR}/trial{{trial}}.json",
    params:
        cfg=search_config,
        storage=f"{SEARCH_DIR}/study.journal",
    log:
        f"{LOGS}/search/{{algo}}/trial{{trial}}.log",
    benchmark:
        f"{BENCHMARKS}/search/{{algo}}/trial{{trial}}.tsv"
    threads: config["training"]["torch_threads"]
    resources:
        mem_mb=train_mem_mb,
        runtime=search_runtime_min,
    conda:
        "../../envs/rl.yaml"
    shell:
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        "bmsrl search trial --config {params.cfg:q} --algo {wildcards.algo} --trial {wildcards.trial}"
        " --ocv-table {input.ocv:q} --storage {params.storage:q} --out {output:q} > {log:q} 2>&1"


rule search_summary:
    """The best trial of an algorithm's search: its hyperparameters, the budget and every trial."""
    input:
        ocv=OCV_PROCESSED,
        trials=search_trials,
    output:
        TUNED_HYPERPARAMS,
    params:
        cfg=search_config,
    log:
        f"{LOGS}/search/{{algo}}/summary.log",
    benchmark:
        f"{BENCHMARKS}/search/{{algo}}/summary.tsv"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        "../../envs/rl.yaml"
    shell:
        "bmsrl search summary --config {params.cfg:q} --algo {wildcards.algo} --ocv-table {input.ocv:q}"
        " --out {output:q} {input.trials:q} > {log:q} 2>&1"


rule search:
    """Target: the hyperparameter search of every configured algorithm (results/tuning/{algo}.yaml)."""
    input:
        expand(TUNED_HYPERPARAMS, algo=config["algos"]),
