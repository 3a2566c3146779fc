rule plot_traces:
    """SoC, switching, voltage or current traces of every policy on both evaluation profiles (default scenario)."""
    input:
        eval_files("traces.csv", scenarios=[DEFAULT_SCENARIO]),
    output:
        report(
            PLOT.format(name="{kind}", ext="{ext}"),
            caption="../report/traces.rst",
            category="2. Evaluation traces",
            labels={"figure": "{kind}", "format": "{ext}"},
        ),
    params:
        cfg=lambda wildcards: stage_config("env"),  # the voltage window drawn on the voltage figure
    log:
        f"{LOGS}/plots/{{kind}}.{{ext}}.log",
    benchmark:
        f"{BENCHMARKS}/plots/{{kind}}.{{ext}}.tsv"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=15,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl plot {wildcards.kind} --config {params.cfg:q} --traces {input:q} --out {output:q}"
        " > {log:q} 2>&1"


rule training_references:
    """Each baseline's return and next-discharge capacity on the packs the train stage evaluates on
    (the same seeds, env, profile and reward): the reference lines of the training curves, as numbers."""
    input:
        ocv=OCV_PROCESSED,
        ecm=config["ecm_table"],
        settings=tuned_settings_files(),
    output:
        TRAINING_REFERENCES,
    params:
        # the env, reward, training profile, evaluation packs, seeds and baselines the references use
        cfg=lambda wildcards: stage_config("ecm_table", "allow_implausible_tables", "env", "reward", "profiles.train",
                                           "training.eval_episodes", "training.profiles", "evaluation.seed_offset",
                                           "baselines", "seeds"),
        settings=lambda wildcards, input: (
            "--baseline-settings " + " ".join(f"'{f}'" for f in input.settings) if input.settings else ""
        ),
    log:
        f"{LOGS}/training_references.log",
    benchmark:
        f"{BENCHMARKS}/training_references.tsv"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl reference --config {params.cfg:q} --ocv-table {input.ocv:q} {params.settings} --out {output:q}"
        " > {log:q} 2>&1"


rule plot_training:
    """Evaluation return and next-discharge capacity during training, mean and CI over seeds, per
    algorithm, with each baseline's return and capacity on the same evaluation packs as reference
    lines (drawn, not simulated)."""
    input:
        evaluations=training_evaluations(),
        references=TRAINING_REFERENCES,
    output:
        report(
            PLOT.format(name="training_curves", ext="{ext}"),
            caption="../report/training_curves.rst",
            category="4. Training",
            labels={"figure": "training curves", "format": "{ext}"},
        ),
    params:
        baselines=BASELINE_CAPTION,  # for the caption
    log:
        f"{LOGS}/plots/training_curves.{{ext}}.log",
    benchmark:
        f"{BENCHMARKS}/plots/training_curves.{{ext}}.tsv"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl plot training --evaluations {input.evaluations:q} --references {input.references:q} --out {output:q}"
        " > {log:q} 2>&1"


rule plot_metrics:
    """The summary table as bars with 95 % t intervals over seeds."""
    input:
        SUMMARY_CSV,
    output:
        report(
            PLOT.format(name="metrics", ext="{ext}"),
            caption="../report/metrics.rst",
            category="3. Summary",
            labels={"figure": "metrics", "format": "{ext}"},
        ),
    log:
        f"{LOGS}/plots/metrics.{{ext}}.log",
    benchmark:
        f"{BENCHMARKS}/plots/metrics.{{ext}}.tsv"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl plot metrics --summary {input:q} --out {output:q} > {log:q} 2>&1"


rule plot_robustness:
    """Usable capacity and switch changes per evaluation scenario, with 95 % confidence intervals."""
    input:
        ROBUSTNESS_CSV,
    output:
        report(
            PLOT.format(name="robustness", ext="{ext}"),
            caption="../report/robustness.rst",
            category="3. Summary",
            labels={"figure": "robustness", "format": "{ext}"},
        ),
    log:
        f"{LOGS}/plots/robustness.{{ext}}.log",
    benchmark:
        f"{BENCHMARKS}/plots/robustness.{{ext}}.tsv"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl plot robustness --summary {input:q} --out {output:q} > {log:q} 2>&1"


rule plot_profiles:
    """Performance profiles: the fraction of packs with a share of the recoverable capacity >= tau, per policy."""
    input:
        PROFILES_CSV,
    output:
        report(
            PLOT.format(name="profiles", ext="{ext}"),
            caption="../report/profiles.rst",
            category="3. Summary",
            labels={"figure": "performance profiles", "format": "{ext}"},
        ),
    log:
        f"{LOGS}/plots/profiles.{{ext}}.log",
    benchmark:
        f"{BENCHMARKS}/plots/profiles.{{ext}}.tsv"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl plot profiles --profiles {input:q} --out {output:q} > {log:q} 2>&1"


rule plot_paired:
    """Every policy against the best controller of each scenario, paired on the same packs (usable capacity)."""
    input:
        PAIRED_CSV,
    output:
        report(
            PLOT.format(name="paired", ext="{ext}"),
            caption="../report/paired.rst",
            category="3. Summary",
            labels={"figure": "paired against the best controller", "format": "{ext}"},
        ),
    log:
        f"{LOGS}/plots/paired.{{ext}}.log",
    benchmark:
        f"{BENCHMARKS}/plots/paired.{{ext}}.tsv"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl plot paired --paired {input:q} --out {output:q} > {log:q} 2>&1"
