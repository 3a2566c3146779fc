rule aggregate:
    """Mean and 95 % t interval over seeds per policy x profile x scenario; paired comparisons against
    the baselines (t interval over seeds); the robustness rows of every scenario; performance profiles."""
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
        paired=report(
            PAIRED_CSV,
            caption="../report/paired.rst",
            category="3. Summary",
            labels={"table": "paired comparisons (CSV)"},
        ),
        robustness=ROBUSTNESS_CSV,
        profiles=PROFILES_CSV,
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
        "bmsrl aggregate {input:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " --out-paired {output.paired:q} --out-robustness {output.robustness:q}"
        " --out-profiles {output.profiles:q} > {log:q} 2>&1"
