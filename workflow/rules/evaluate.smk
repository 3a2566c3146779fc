rule evaluate:
    """Run one policy deterministically on every evaluation profile and scenario for the seed's
    evaluation episodes (one job per policy and seed: its load is paid once)."""
    input:
        unpack(evaluate_inputs),
    output:
        traces=EVAL_GROUP["traces"],
        metrics=EVAL_GROUP["metrics"],
    params:
        cfg=evaluate_config,
        model=evaluate_model_option,
        out=evaluate_out,
        profiles=config["profiles"]["evaluate"],
        scenarios=SCENARIOS,
    log:
        f"{LOGS}/evaluate/{{policy}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{policy}}/seed{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wildcards: 2048 if wildcards.policy in ALGOS else 1024,
        runtime=evaluate_runtime_min,
    conda:
        evaluate_env
    shell:
        "OMP_NUM_THREADS={threads} "
        "bmsrl evaluate --config {params.cfg:q} --policy {wildcards.policy}"
        " --profile {params.profiles:q} --scenario {params.scenarios:q} --seed {wildcards.seed} --ocv-table {input.ocv:q}"
        " {params.model} --out {params.out:q} > {log:q} 2>&1"


rule tune_baselines:
    """Grid-search a baseline's settings (e.g. threshold and hysteresis) on the training profile, on tuning seeds only."""
    input:
        ocv=OCV_PROCESSED,
        ecm=config["ecm_table"],
    output:
        settings=report(
            TUNED_SETTINGS,
            caption="../report/tuning.rst",
            category="3. Summary",
            labels={"table": "tuned {baseline}"},
        ),
        grid=TUNING_GRID,
    params:
        cfg=tune_config,
        tuned=lambda wildcards: " and ".join(_baselines.setting_names(wildcards.baseline)),  # for the caption
    log:
        f"{LOGS}/tune_baselines/{{baseline}}.log",
    benchmark:
        f"{BENCHMARKS}/tune_baselines/{{baseline}}.tsv"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=15,
    conda:
        "../../envs/core.yaml"
    shell:
        "OMP_NUM_THREADS={threads} "
        "bmsrl tune-baselines --config {params.cfg:q} --baseline {wildcards.baseline}"
        " --ocv-table {input.ocv:q} --out {output.settings:q} --grid-out {output.grid:q} > {log:q} 2>&1"


rule animate:
    """Episode 0 of one policy x profile x seed as an animated GIF next to its traces (optional
    target, not part of `all`): snakemake results/eval/ppo/charge-rest-discharge/default/seed1/episode0.gif"""
    input:
        unpack(evaluate_inputs),
        traces=f"{EVAL_DIR}/traces.csv",
    output:
        f"{EVAL_DIR}/episode0.gif",
    params:
        cfg=evaluate_config,
        model=evaluate_model_option,
    log:
        f"{LOGS}/animate/{{policy}}/{{profile}}/{{scenario}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/animate/{{policy}}/{{profile}}/{{scenario}}/seed{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=15,
    conda:
        evaluate_env
    shell:
        # evaluate again into a scratch folder (the episodes are deterministic, so its episode 0 is
        # the traces' episode 0) and keep only the animation
        "scratch=$(mktemp -d) && OMP_NUM_THREADS={threads} "
        "bmsrl evaluate --config {params.cfg:q} --policy {wildcards.policy}"
        " --profile {wildcards.profile} --scenario {wildcards.scenario} --seed {wildcards.seed}"
        " --ocv-table {input.ocv:q} {params.model} --out $scratch --animation {output:q} > {log:q} 2>&1; "
        "status=$?; rm -rf $scratch; exit $status"
