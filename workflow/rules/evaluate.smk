rule evaluate:
    """Run one policy deterministically on one load profile for the seed's evaluation episodes."""
    input:
        unpack(evaluate_inputs),
    output:
        traces=f"{EVAL_DIR}/traces.csv",
        metrics=f"{EVAL_DIR}/metrics.csv",
    params:
        cfg=evaluate_config,
        model=evaluate_model_option,
        out=EVAL_DIR,
    log:
        f"{LOGS}/evaluate/{{policy}}/{{profile}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{policy}}/{{profile}}/seed{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wildcards: 2048 if wildcards.policy in ALGOS else 1024,
        runtime=lambda wildcards: 10 + 2 * config["evaluation"]["episodes"],
    conda:
        evaluate_env
    shell:
        "OMP_NUM_THREADS={threads} "
        "bmsrl evaluate --config-json {params.cfg:q} --policy {wildcards.policy}"
        " --profile {wildcards.profile} --seed {wildcards.seed} --ocv-table {input.ocv:q}"
        " {params.model} --out {params.out:q} > {log:q} 2>&1"
