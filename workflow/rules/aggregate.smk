rule aggregate:
    """Mean and 95 % t interval over seeds per policy x profile x scenario; paired comparisons against
    the baselines (t interval over seeds); the robustness rows of every scenario; performance profiles."""
    input:
        eval_files("metrics.csv"),
    output:
        csv=SUMMARY_CSV,
        md=SUMMARY_MD,
        html=report(
            SUMMARY_HTML,
            caption="../report/summary.rst",
            category="3. Summary",
            labels={"table": "summary and verdict"},
        ),
        paired=PAIRED_CSV,
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
    params:
        run_kind=config["run_kind"],  # opens the summary: study or smoke run
    shell:
        "bmsrl aggregate {input:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " --out-paired {output.paired:q} --out-robustness {output.robustness:q}"
        " --out-profiles {output.profiles:q} --out-html {output.html:q} --run-kind {params.run_kind}"
        " > {log:q} 2>&1"
