# The paper's claims checked against this run (bmsrl claims, docs/claims.md): one row per claim, read on
# the test profile's default scenario. Cheap (reads the metrics files), so part of `all` whenever that
# profile is evaluated; with config/study.yaml the table is the study's setting's.

from bmsrl.claims import CLAIMS_PROFILE as _CLAIMS_PROFILE  # noqa: E402

CLAIMS_CSV = "results/tables/claims.csv"
CLAIMS_MD = "results/tables/claims.md"
#: the claims tables, or nothing when the claims' profile is not evaluated (no rows to read)
CLAIMS_OUTPUTS = [CLAIMS_CSV, CLAIMS_MD] if _CLAIMS_PROFILE in config["profiles"]["evaluate"] else []


rule claims:
    """The paper's claims (+16.8 % capacity, -69.4 % SoC variance, -40.4 % switching, TRPO best) against
    this run's metrics, with the bound or ceiling of each and a verdict (docs/claims.md)."""
    input:
        metrics=expand(f"{EVAL_DIR}/metrics.csv", policy=POLICIES, profile=[_CLAIMS_PROFILE],
                       scenario=[DEFAULT_SCENARIO], seed=config["seeds"]),
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
