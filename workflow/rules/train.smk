rule train:
    """Train one agent (algorithm x seed) on the training profile.

    Declared outputs are only best_model.zip, final_model.zip, evaluations.npz and run_config.json. The periodic
    checkpoints (<out>/checkpoints/) and the TensorBoard run (results/runs/) are deliberately not
    outputs: Snakemake deletes the declared outputs of a failed or incomplete job before rerunning
    it, and a restarted job must find its newest checkpoint to resume from.
    """
    input:
        unpack(train_inputs),
    output:
        best=f"{CHECKPOINT_DIR}/best_model.zip",
        final=f"{CHECKPOINT_DIR}/final_model.zip",
        evaluations=f"{CHECKPOINT_DIR}/evaluations.npz",
        record=f"{CHECKPOINT_DIR}/run_config.json",
    params:
        cfg=lambda wildcards: stage_config(
            "ecm_table", "allow_implausible_tables", "env", "reward", "profiles.train", "training", algo=wildcards.algo
        ),
        out=CHECKPOINT_DIR,
        tensorboard=RUN_DIR,
        tuned=train_tuned_option,
    log:
        f"{LOGS}/train/{{algo}}_seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{algo}}_seed{{seed}}.tsv"
    threads: config["training"]["torch_threads"]
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime_min,
    conda:
        "../../envs/rl.yaml"
    shell:
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        "bmsrl train --config {params.cfg:q} --algo {wildcards.algo} --seed {wildcards.seed}"
        " --ocv-table {input.ocv:q} --out {params.out:q} --tensorboard {params.tensorboard:q}{params.tuned}"
        " > {log:q} 2>&1"
