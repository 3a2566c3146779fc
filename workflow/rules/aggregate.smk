rule aggregate:
    """Mean and 95 % bootstrap CI over seeds per policy x profile, changes against the baselines."""
    input:
        eval_files("metrics.csv"),
    output:
        csv=report(
            SUMMARY_CSV,
            caption="../report/summary.rst",
            category="3. Summary",
            labels={"table": "summary (CSV)"},
        ),
        md=SUMMARY_MD,
    log:
        f"{LOGS}/aggregate.log",
    benchmark:
        f"{BENCHMARKS}/aggregate.tsv"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl aggregate {input:q} --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"
