# Benchmarks whose tables docs/results.md quotes (not part of `all`): a script of benchmarks/ run with
# this run's config and processed OCV table, then copied with its provenance to docs/results/<name>/
# as `snakemake snapshot` copies the study's tables (the same `bmsrl snapshot`).
#
#   snakemake imitation_snapshot --cores 1      # docs/results/imitation/ (a few core-minutes)
#   snakemake ablation_snapshot --cores 2       # docs/results/ablation_<algo>/ (about 2 core-hours)
#   snakemake docs/results/ablation_a2c --cores 1   # one algorithm's
#   snakemake confirm_snapshot --cores 2        # docs/results/confirm_<algo>/ (about 2 core-hours)
#   snakemake tuned_snapshot --cores 2 --configfile config/tuned.yaml   # docs/results/tuned_a2c/
#   snakemake tuned_snapshot --cores 2 --configfile config/tuned_dqn.yaml   # docs/results/tuned_dqn/
#   snakemake curve_snapshot --cores 2          # docs/results/curve_<algo>/ (about 2 core-hours)

import shlex

IMITATION_SCRIPT = str(Path(workflow.basedir).parent / "benchmarks" / "imitation.py")
IMITATION_TABLES = [out("imitation/imitation.csv"), out("imitation/imitation_seeds.csv")]
ABLATION_SCRIPT = str(Path(workflow.basedir).parent / "benchmarks" / "ablation.py")
#: the ablation's algorithms, each at its budget [env steps] with its changes (benchmarks/ablation.py's
#: CHANGES): the verdict run's two agents at its budgets (config/verdict.yaml), three seeds, 100 test
#: packs per seed. DQN runs test_profiles only: its cell_set arm cuts DQN's env-steps/s to about a
#: quarter (docs/performance.md, "What mattered"), 40 minutes or more per run, and double_q (a second
#: forward pass per gradient step) to half or less; A2C's arms test the network. Add them here on a
#: machine with the hours (results/ablation/dqn_runs.csv keeps the finished runs).
ABLATION = {
    "dqn": {"steps": 1_000_000, "changes": ["test_profiles"]},
    "a2c": {"steps": 5_000_000, "changes": ["per_cell", "cell_set", "test_profiles"]},
}
#: the confirmation: per algorithm, the ablation's arm with the highest mean paired capacity
#: difference against room_balancing on the ablation's seeds 1-3 (docs/results.md, "What mattered"),
#: trained and evaluated again on ten fresh seeds (fresh training seeds and test packs), so that the
#: arm is not judged on the seeds it was chosen on
CONFIRM = {
    "a2c": {"arm": "cell_set", "seeds": list(range(4, 14))},
    "dqn": {"arm": "test_profiles", "seeds": list(range(4, 14))},
}
#: benchmark -> algorithm -> the arms to run (None: every arm), the seeds and the committed per-seed
#: table and arm it pairs with. Bench tuned is the searched agents (issue 19 item 7; config/tuned.yaml
#: and config/tuned_dqn.yaml, each with its algorithm's confirmed arm): the config as it is, with the
#: search's hyperparameters, on the confirmation's seeds, paired with the confirmation (the same arm
#: with the registry's hyperparameters) on the same training seeds and test packs
ARM_RUNS = {
    "ablation": {algo: {"arms": None, "seeds": [1, 2, 3]} for algo in ABLATION},
    "confirm": {algo: {"arms": [c["arm"]], "seeds": c["seeds"]} for algo, c in CONFIRM.items()},
    "tuned": {
        algo: {"arms": ["none"], "seeds": c["seeds"], "compare": (f"docs/results/confirm_{algo}/{algo}_seeds.csv", c["arm"])}
        for algo, c in CONFIRM.items()
    },
}

ARM_TABLES = [
    out("{bench}/{algo}.csv"),
    out("{bench}/{algo}_seeds.csv"),
    out("{bench}/{algo}_hyperparams.csv"),
    out("{bench}/{algo}_compare.csv"),  # header only unless the bench names a run to pair with
]
CURVE_SCRIPT = str(Path(workflow.basedir).parent / "benchmarks" / "curve.py")
#: does the evaluation return fall after its peak? Per algorithm: the long runs' budget [env steps],
#: seeds, env steps between evaluations and packs per evaluation (benchmarks/curve.py). DQN: the
#: earlier study's DQN peaked at 0.8 M env steps and fell after (config/verdict.yaml), so 4 M
CURVE = {"dqn": {"steps": 4_000_000, "seeds": [1, 2, 3], "eval_interval": 100_000, "eval_episodes": 16}}
CURVE_RUN = out("curve/{algo}_runs/seed{seed}")  # the train verb's folder (its checkpoints resume a stopped job)
CURVE_TABLES = [out("curve/{algo}_curve.csv"), out("curve/{algo}_peak.csv"), out("curve/{algo}_peak_seeds.csv")]
CURVE_FIGURE = out("curve/{algo}_curve.png")
#: snapshot folder (docs/results/<name>) -> the tables it copies
BENCHMARK_SNAPSHOTS = {
    "imitation": IMITATION_TABLES,
    **{
        f"{bench}_{algo}": expand(ARM_TABLES, bench=bench, algo=algo)
        for bench, runs in ARM_RUNS.items()
        for algo in runs
    },
    **{f"curve_{algo}": expand(CURVE_TABLES, algo=algo) for algo in CURVE},
}
#: snapshot folder -> the figures (PNG) it copies
BENCHMARK_FIGURES = {f"curve_{algo}": expand(CURVE_FIGURE, algo=algo) for algo in CURVE}


rule imitation:
    """Can each network option represent room_balancing? Supervised imitation of the rule, the clone run
    on the test packs, paired with the rule (benchmarks/imitation.py)."""
    input:
        ocv=OCV_PROCESSED,
        ecm=config["ecm_table"],
    output:
        IMITATION_TABLES,
    params:
        cfg=stage_config("ecm_table", "allow_implausible_tables", "env", "reward", "profiles", "evaluation", "baselines",
                         "training.hyperparams"),  # fmt: skip
        out=lambda wildcards, output: str(Path(output[0]).parent),
    log:
        f"{LOGS}/imitation.log",
    benchmark:
        f"{BENCHMARKS}/imitation.tsv"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=60,
    conda:
        "../../envs/rl.yaml"
    shell:
        # the script's path written out (not a param): tests/conda_envs.py reads its imports from it
        f"OMP_NUM_THREADS={{threads}} python {shlex.quote(IMITATION_SCRIPT)} --config {{params.cfg:q}}"
        " --ocv-table {input.ocv:q} --out {params.out:q} > {log:q} 2>&1"


rule ablation:
    """What mattered (bench ablation): each learning change of issue 19 alone and together, one
    algorithm at its verdict budget, 3 seeds, against room_balancing on the same test packs; or (bench
    confirm) the chosen arm alone on fresh seeds (benchmarks/ablation.py). Its runs are appended to
    results/<bench>/{algo}_runs.csv as they end, not a declared output, so a stopped job resumes from
    them (a failed job does not delete them)."""
    input:
        unpack(arm_inputs),
    output:
        ARM_TABLES,
    wildcard_constraints:
        bench="|".join(ARM_RUNS),
        algo="|".join({algo for runs in ARM_RUNS.values() for algo in runs}),
    params:
        cfg=stage_config("ecm_table", "allow_implausible_tables", "env", "reward", "profiles", "evaluation", "baselines",
                         "training"),  # fmt: skip
        steps=lambda wildcards: ABLATION[wildcards.algo]["steps"],
        changes=lambda wildcards: " ".join(ABLATION[wildcards.algo]["changes"]),
        arms=lambda wildcards: "".join(
            f" --arms {arm}" for arm in ARM_RUNS[wildcards.bench][wildcards.algo]["arms"] or ()
        ),
        seeds=lambda wildcards: " ".join(map(str, ARM_RUNS[wildcards.bench][wildcards.algo]["seeds"])),
        runs=out("{bench}/{algo}_runs.csv"),
        tuned=train_tuned_option,
        compare=compare_option,
        out=lambda wildcards, output: str(Path(output[0]).parent),
    log:
        f"{LOGS}/{{bench}}/{{algo}}.log",
    benchmark:
        f"{BENCHMARKS}/{{bench}}/{{algo}}.tsv"
    threads: 2  # training runs side by side (--jobs), one thread each; fewer with --cores 1
    resources:
        mem_mb=lambda wildcards, threads: 2048 * threads,
        runtime=7 * 24 * 60,
    conda:
        "../../envs/rl.yaml"
    shell:
        f"OMP_NUM_THREADS=1 python {shlex.quote(ABLATION_SCRIPT)} --algo {{wildcards.algo}} --jobs {{threads}}"
        " --steps {params.steps} --changes {params.changes}{params.arms} --seeds {params.seeds} --packs 100"
        " --config {params.cfg:q} --ocv-table {input.ocv:q}{params.tuned}{params.compare} --csv {params.runs:q} --out {params.out:q}"
        " > {log:q} 2>&1"


rule curve_train:
    """One long training run of the curve benchmark (benchmarks/curve.py train): the algorithm at
    CURVE's budget, evaluated every CURVE eval_interval env steps."""
    input:
        ocv=OCV_PROCESSED,
        ecm=config["ecm_table"],
    output:
        evaluations=f"{CURVE_RUN}/evaluations.npz",
        record=f"{CURVE_RUN}/run_config.json",
    wildcard_constraints:
        algo="|".join(CURVE),
        seed=r"\d+",
    params:
        cfg=stage_config("ecm_table", "allow_implausible_tables", "env", "reward", "profiles", "evaluation", "baselines",
                         "training"),  # fmt: skip
        run=lambda wildcards: CURVE[wildcards.algo],
        out=lambda wildcards, output: str(Path(output.evaluations).parent),
    log:
        f"{LOGS}/curve/{{algo}}_seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/curve/{{algo}}_seed{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=4096,
        runtime=7 * 24 * 60,
    conda:
        "../../envs/rl.yaml"
    shell:
        f"OMP_NUM_THREADS={{threads}} python {shlex.quote(CURVE_SCRIPT)} train --algo {{wildcards.algo}}"
        " --seed {wildcards.seed} --steps {params.run[steps]} --eval-interval {params.run[eval_interval]}"
        " --eval-episodes {params.run[eval_episodes]} --config {params.cfg:q} --ocv-table {input.ocv:q}"
        " --out {params.out:q} > {log:q} 2>&1"


rule curve:
    """The curve benchmark's tables and figure (benchmarks/curve.py table): per seed the peak and the
    late evaluations, no_balancing and room_balancing on the same packs."""
    input:
        ocv=OCV_PROCESSED,
        ecm=config["ecm_table"],
        runs=lambda wildcards: expand(f"{CURVE_RUN}/evaluations.npz", algo=wildcards.algo, seed=CURVE[wildcards.algo]["seeds"]),
    output:
        CURVE_TABLES,
        CURVE_FIGURE,
    wildcard_constraints:
        algo="|".join(CURVE),
    params:
        cfg=stage_config("ecm_table", "allow_implausible_tables", "env", "reward", "profiles", "evaluation", "baselines",
                         "training"),  # fmt: skip
        runs=lambda wildcards, input: [str(Path(f).parent) for f in input.runs],
        out=lambda wildcards, output: str(Path(output[0]).parent),
    log:
        f"{LOGS}/curve/{{algo}}.log",
    benchmark:
        f"{BENCHMARKS}/curve/{{algo}}.tsv"
    threads: 1
    resources:
        mem_mb=2048,
        runtime=30,
    conda:
        "../../envs/rl.yaml"
    shell:
        f"OMP_NUM_THREADS={{threads}} python {shlex.quote(CURVE_SCRIPT)} table --algo {{wildcards.algo}}"
        " --runs {params.runs:q} --config {params.cfg:q} --ocv-table {input.ocv:q} --out {params.out:q} > {log:q} 2>&1"


rule benchmark_snapshot:
    """A benchmark's tables (and figures), copied with their provenance to docs/results/<name>/
    (committed to git)."""
    input:
        tables=lambda wildcards: BENCHMARK_SNAPSHOTS[wildcards.name],
        figures=lambda wildcards: BENCHMARK_FIGURES.get(wildcards.name, []),
        config=RUN_CONFIG,
        versions=RUN_VERSIONS,
    output:
        directory("docs/results/{name}"),
    wildcard_constraints:
        name="|".join(BENCHMARK_SNAPSHOTS),
    params:
        commit=RUN_COMMIT,
        command=RUN_COMMAND,
    log:
        f"{LOGS}/benchmark_snapshot/{{name}}.log",
    threads: 1
    resources:
        mem_mb=512,
        runtime=5,
    conda:
        "../../envs/core.yaml"
    shell:
        "bmsrl snapshot --out {output:q} --tables {input.tables:q} --figures {input.figures:q} --run-config {input.config:q}"
        " --versions {input.versions:q} --commit {params.commit:q} --command {params.command:q} > {log:q} 2>&1"


rule imitation_snapshot:
    """docs/results/imitation/."""
    input:
        "docs/results/imitation",


rule ablation_snapshot:
    """Every algorithm's ablation snapshot, docs/results/ablation_<algo>/."""
    input:
        expand("docs/results/ablation_{algo}", algo=ARM_RUNS["ablation"]),


rule confirm_snapshot:
    """Every confirmation snapshot, docs/results/confirm_<algo>/."""
    input:
        expand("docs/results/confirm_{algo}", algo=ARM_RUNS["confirm"]),


rule curve_snapshot:
    """Every curve benchmark's snapshot, docs/results/curve_<algo>/."""
    input:
        expand("docs/results/curve_{algo}", algo=CURVE),


rule tuned_snapshot:
    """The searched agents' snapshots, docs/results/tuned_<algo>/, of the config's algorithms (with
    --configfile config/tuned.yaml: A2C; config/tuned_dqn.yaml: DQN)."""
    input:
        expand("docs/results/tuned_{algo}", algo=[algo for algo in config["algos"] if algo in ARM_RUNS["tuned"]]),
