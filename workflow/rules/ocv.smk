rule ocv:
    """Validate the raw OCV table, resample it onto a uniform SoC grid, plot it."""
    input:
        config["ocv_table"],
    output:
        csv=OCV_PROCESSED,
        pdf=report(
            OCV_PLOT,
            caption="../report/ocv.rst",
            category="1. Cell model",
            labels={"figure": "open-circuit voltage"},
        ),
    params:
        soc_window=lambda wildcards: " ".join(str(x) for x in config["env"]["soc_limits"]),
    log:
        f"{LOGS}/ocv.log",
    benchmark:
        f"{BENCHMARKS}/ocv.tsv"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=5,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl ocv {input:q} {output.csv:q} --plot {output.pdf:q} --soc-window {params.soc_window}"
        " > {log:q} 2>&1"
