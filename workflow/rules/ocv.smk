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
        allow=lambda wildcards: "--allow-implausible" if config["allow_implausible_tables"] else "",
        # The processed table's path does not depend on the raw table's: its path and content are
        # params, so a changed ocv_table (even an older file, or one of the same mtime) reruns this job.
        source=lambda wildcards: f"{config['ocv_table']} sha256:{file_sha256(config['ocv_table'])}",
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
        "bmsrl ocv {input:q} {output.csv:q} --plot {output.pdf:q} --soc-window {params.soc_window} {params.allow}"
        " > {log:q} 2>&1"
