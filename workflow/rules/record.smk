rule record:
    """The run's complete config and package versions (results/run/), shown in the report; the
    report of `snakemake --report` is built from this config (common.smk)."""
    output:
        config=report(
            RUN_CONFIG,
            caption="../report/record.rst",
            category="0. Run",
            labels={"record": "configuration"},
        ),
        versions=report(
            RUN_VERSIONS,
            caption="../report/record.rst",
            category="0. Run",
            labels={"record": "package versions"},
        ),
    params:
        cfg=lambda wildcards: stage_config(*config),
    log:
        f"{LOGS}/record.log",
    benchmark:
        f"{BENCHMARKS}/record.tsv"
    threads: 1
    resources:
        mem_mb=512,
        runtime=5,
    conda:
        "../../envs/core.yaml"
    shell:
        # the checkout's commit when the run starts, read by the job (a param would rerun it at every commit)
        "bmsrl record --config {params.cfg:q} --out-config {output.config:q} --out-versions {output.versions:q}"
        " --commit \"$(git describe --always --dirty --abbrev=12 --exclude='*' 2>/dev/null || echo unknown)\""
        " > {log:q} 2>&1"
