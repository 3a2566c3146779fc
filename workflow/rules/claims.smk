# The paper's claims checked against this run (bmsrl claims, docs/claims.md): one row per claim, read by
# the stage on the test profile's default scenario (a run that does not evaluate that profile gets a
# table of "not comparable" rows saying so). Cheap (it reads the metrics files), so always part of
# `all`; with config/study.yaml the table is that of the study's setting.

rule claims:
    """The paper's claims (capacity, SoC variance, switching, TRPO best; figures in bmsrl.claims.CLAIMS)
    against this run's metrics, with the bound or ceiling of each and a verdict (docs/claims.md)."""
    input:
        metrics=eval_files("metrics.csv", scenarios=[DEFAULT_SCENARIO]),
        config=RUN_CONFIG,
    output:
        csv=CLAIMS_CSV,
        md=CLAIMS_MD,
    log:
        f"{LOGS}/claims.log",
    benchmark:
        f"{BENCHMARKS}/claims.tsv"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl claims {input.metrics:q} --config {input.config:q} --out-csv {output.csv:q}"
        " --out-md {output.md:q} > {log:q} 2>&1"
