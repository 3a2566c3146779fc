# Shared definitions: config validation, output paths, per-rule config sections.

import hashlib
import json
import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# The workflow reads its config, algorithms and policies from the bmsrl package: the checkout's own
# src/ when Snakemake runs from the repository, else the installed package.
_SRC = Path(workflow.basedir).parent / "src"
if (_SRC / "bmsrl").is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

import hashlib  # noqa: E402

from bmsrl import algos as _algos  # noqa: E402
from bmsrl import baselines as _baselines  # noqa: E402
from bmsrl import policies as _policies  # noqa: E402
from bmsrl.config import load_workflow_config as _load_workflow_config  # noqa: E402
from bmsrl.config import load_yaml_file as _load_yaml_file, validate as _validate  # noqa: E402
from bmsrl.errors import UserError as _UserError  # noqa: E402
from bmsrl.profiles import PROFILES as _PROFILES  # noqa: E402


def reread_config():
    """The config as ``bmsrl VERB --config FILE`` reads it (bmsrl.config.load_workflow_config): the
    config files Snakemake read (the Snakefile's ``configfile`` unless replaced, then each
    ``--configfile``) and ``--config``, merged as Snakemake merges them."""
    settings = workflow.config_settings
    cli_files = [Path(f).absolute() for f in settings.configfiles]
    directive = [Path(f) for f in workflow.configfiles if Path(f).absolute() not in cli_files]
    files = ([] if settings.replace_workflow_config else directive) + cli_files
    return _load_workflow_config(files, settings.config)


def _run_record_config():
    """`snakemake --report` with no config on the command line reports the last run of the default
    results root: its recorded config (results/run/config.yaml, rule record), so the report's DAG,
    captions and settings are those of the run that made the results. ``None`` in every other case
    (a run with its own results_root, e.g. the quick run, names its config: --configfile)."""
    settings = workflow.config_settings
    asked = any(a == "--report" or a.startswith("--report=") for a in sys.argv)
    recorded = Path(_DEFAULT_ROOT, "run", "config.yaml")
    if asked and not settings.configfiles and not settings.config and recorded.is_file():
        return _validate(_load_yaml_file(recorded), f"invalid config {recorded}")
    return None


_DEFAULT_ROOT = "results"  # the schema's default of results_root


import shlex
import subprocess


def _git(*args):
    """Output of ``git ARGS`` in the working directory, or None outside a git checkout."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def checkout_commit():
    """The checkout's commit, marked ``-dirty`` when tracked files differ from it."""
    commit = _git("rev-parse", "--short=12", "HEAD")
    if commit is None:
        return "unknown (not a git checkout)"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return commit + ("-dirty" if dirty else "")


# The commit and the command this Snakemake was started with (rule snapshot records them)
RUN_COMMIT = checkout_commit()
RUN_COMMAND = (
    shlex.join(["snakemake", *sys.argv[1:]])
    if Path(sys.argv[0]).name.startswith("snakemake")
    else f"snakemake (started from Python: {shlex.join(sys.argv)})"
)
try:
    _config = _run_record_config() or reread_config()
except _UserError as exc:
    raise WorkflowError(str(exc)) from None
config.clear()
config.update(_config)

#: the folder every output of this run goes to (config results_root: the quick run's is results-quick,
#: so a quick run and a study never delete each other's outputs)
RESULTS = config["results_root"].rstrip("/")


def out(path):
    """``path`` (relative) under the run's results root: every output path is composed here."""
    return f"{RESULTS}/{path}"


RUN_CONFIG = out("run/config.yaml")
RUN_VERSIONS = out("run/versions.tsv")

if not Path(config["ocv_table"]).is_file():
    _what = "is a directory, not a CSV file" if Path(config["ocv_table"]).is_dir() else "does not exist"
    raise WorkflowError(f"ocv_table: {config['ocv_table']} {_what} (the raw OCV table, columns soc, ocv_v)")
if not Path(config["ecm_table"]).is_file():
    _what = "is a directory, not a CSV file" if Path(config["ecm_table"]).is_dir() else "does not exist"
    raise WorkflowError(f"ecm_table: {config['ecm_table']} {_what} (the ECM table, columns {', '.join(('soc', 'r0_ohm', 'r1_ohm', 'c1_f', 'r2_ohm', 'c2_f'))})")


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

# Conda envs install this package from its source tree in their post-deploy script
# (envs/*.post-deploy.sh), which reads the location from here.
os.environ.setdefault("BMSRL_SOURCE", str(Path(workflow.basedir).parent.resolve()))

ALGOS = list(_algos.ALGOS)
POLICY_NAMES = list(_policies.POLICIES)
TUNED = config["baselines"]["tuned"]
#: baselines evaluated: all, or without rule_based_untuned when nothing is tuned (it would duplicate rule_based)
BASELINES = _baselines.evaluated_baselines(TUNED)
TUNABLE = list(_baselines.TUNABLE)
#: the evaluated baselines and what each does, for the report captions (from the registry)
BASELINE_CAPTION = _baselines.caption_list(BASELINES)
PROFILES = list(_PROFILES)
SCENARIOS = list(config["evaluation"]["scenarios"])
DEFAULT_SCENARIO = "default"
TRACE_PLOTS = ["soc", "switching", "voltage", "current"]


wildcard_constraints:
    algo="|".join(ALGOS),
    policy="|".join(POLICY_NAMES),
    profile="|".join(PROFILES),
    scenario="|".join(SCENARIOS),
    baseline="|".join(TUNABLE),
    seed=r"\d+",
    kind="|".join(TRACE_PLOTS),
    ext="pdf|png",  # a figure as PDF (the study's outputs) or PNG (the snapshot, rule snapshot)
    trial=r"\d+",


# --------------------------------------------------------------------------------------- paths
# Every output lands under the results root (config results_root, relative to the working directory).
OCV_PROCESSED = out("ocv/ocv_processed.csv")
OCV_PLOT = out("plots/ocv.pdf")
PLOT = out("plots/{name}.{ext}")  # a figure: .format(name=..., ext=...) or the rules' wildcards
CHECKPOINT_DIR = out("checkpoints/{algo}_seed{seed}")
RUN_DIR = out("runs/{algo}_seed{seed}")
EVAL_DIR = out("eval/{policy}/{profile}/{scenario}/seed{seed}")
TUNED_SETTINGS = out("baselines/{baseline}.yaml")
TUNING_GRID = out("baselines/{baseline}_grid.csv")
SEARCH_DIR = out("tuning/{algo}")  # trial records and the study's journal (rules/search.smk)
TUNED_HYPERPARAMS = out("tuning/{algo}.yaml")
SUMMARY_CSV = out("tables/summary.csv")
TRAINING_REFERENCES = out("tables/training_references.csv")
SUMMARY_MD = out("tables/summary.md")
SUMMARY_HTML = out("tables/summary.html")
PAIRED_CSV = out("tables/paired.csv")
ROBUSTNESS_CSV = out("tables/robustness.csv")
ROBUSTNESS_PLOT = out("plots/robustness.pdf")
PROFILES_CSV = out("tables/profiles.csv")
PROFILES_PLOT = out("plots/profiles.pdf")
PAIRED_PLOT = out("plots/paired.pdf")
CLAIMS_CSV = out("tables/claims.csv")
CLAIMS_MD = out("tables/claims.md")
LOGS = out("logs")
CONFIGS = out("configs")  # per-job config files (stage_config)
BENCHMARKS = out("benchmarks")

#: policies evaluated: the trained algorithms, the baselines, then the model-based reference on its
#: first evaluation.best_known_episodes packs (none when 0)
BEST_KNOWN = _policies.BEST_KNOWN
POLICIES = list(config["algos"]) + BASELINES + ([BEST_KNOWN] if config["evaluation"]["best_known_episodes"] else [])


def tuned_settings_files():
    """The tuned settings of every tunable baseline (empty when baselines.tuned is off)."""
    return [TUNED_SETTINGS.format(baseline=b) for b in TUNABLE] if TUNED else []


def training_evaluations():
    return expand(f"{CHECKPOINT_DIR}/evaluations.npz", algo=config["algos"], seed=config["seeds"])


def eval_files(name, scenarios=None):
    """``name`` (traces.csv or metrics.csv) of every policy x evaluation profile x scenario x seed
    (``scenarios``: only those, e.g. the default one for the trace figures)."""
    return expand(
        f"{EVAL_DIR}/{name}",
        policy=POLICIES,
        profile=config["profiles"]["evaluate"],
        scenario=SCENARIOS if scenarios is None else scenarios,
        seed=config["seeds"],
    )


ALL_OUTPUTS = [
    RUN_CONFIG,
    OCV_PLOT,
    SUMMARY_CSV,
    SUMMARY_MD,
    SUMMARY_HTML,
    PAIRED_CSV,
    ROBUSTNESS_CSV,
    expand(PLOT, name=TRACE_PLOTS, ext="pdf"),
    PLOT.format(name="training_curves", ext="pdf"),
    PLOT.format(name="metrics", ext="pdf"),
    ROBUSTNESS_PLOT,
    PROFILES_CSV,
    PROFILES_PLOT,
    PAIRED_PLOT,
]


# ------------------------------------------------------------------- per-rule config sections
def stage_config(*sections, algo=None):
    """The config sections a rule needs, as a small JSON file for ``bmsrl VERB --config FILE``.

    ``sections`` are top-level keys or dotted paths (``"profiles.train"``). With ``algo``, the
    ``training`` section keeps only that algorithm's ``total_steps`` and ``hyperparams``. The file
    (``<results root>/configs/<hash of its content>.json``) is written when the DAG is built; its name is
    the rule's param, so Snakemake reruns exactly the jobs whose sections changed: changing PPO's
    hyperparameters does not rerun DQN, changing the rule-based baseline reruns only its jobs. The
    job command stays short and readable; the verb fills every left-out key with its default.
    """
    out = {}
    for section in sections:
        keys = section.split(".")
        src, dst = config, out
        for key in keys[:-1]:
            src = src[key]
            dst = dst.setdefault(key, {})
        value = src[keys[-1]]
        if keys == ["training"] and algo is not None:
            value = dict(value)
            value["total_steps"] = {algo: value["total_steps"][algo]}
            value["hyperparams"] = {algo: value["hyperparams"][algo]}
        dst[keys[-1]] = value
    text = json.dumps(out, sort_keys=True, indent=1) + "\n"
    path = Path(CONFIGS) / f"{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return str(path)


def train_runtime_min(wildcards):
    """Minutes for one training job: total_steps at a worst-case 2000 env-steps/s, +25 %, +10 min."""
    steps = config["training"]["total_steps"][wildcards.algo]
    return int(steps / 2000 / 60 * 1.25) + 10


def search_runtime_min(wildcards):
    """Minutes for one search trial, as for training: its budget at 2000 env-steps/s, +25 %, +10 min."""
    steps = config["search"]["total_steps"][wildcards.algo]
    return int(steps / 2000 / 60 * 1.25) + 10


def train_inputs(wildcards):
    """The processed OCV table, the ECM table and, with training.tuned_hyperparams, the search's result."""
    inputs = {"ocv": OCV_PROCESSED, "ecm": config["ecm_table"]}
    if config["training"]["tuned_hyperparams"]:
        inputs["tuned"] = TUNED_HYPERPARAMS.format(algo=wildcards.algo)
    return inputs


def train_tuned_option(wildcards, input):
    """`` --tuned-hyperparams FILE`` (leading space) with training.tuned_hyperparams, else nothing."""
    return f" --tuned-hyperparams '{input.tuned}'" if "tuned" in input.keys() else ""


def search_config(wildcards):
    """What changes a trial of this algorithm: the task, its training settings and the search's, not
    the number of trials (more trials join the same study) nor training.total_steps; the evaluation
    seeds only so that a trial can refuse to use one (bmsrl.config.validate)."""
    algo = wildcards.algo
    return stage_config("ecm_table", "allow_implausible_tables", "env", "reward", "profiles.train",
                        "training.n_envs", "training.normalize_reward", "training.torch_threads",
                        "training.features", "training.profiles",
                        f"training.hyperparams.{algo}", "search.eval_interval", "search.eval_episodes",
                        "search.seed_offset", "search.sampler", "search.pruner", f"search.total_steps.{algo}",
                        f"search.space.{algo}", "seeds", "evaluation.episodes", "evaluation.seed_offset")


def search_trials(wildcards):
    return expand(f"{SEARCH_DIR}/trial{{trial}}.json", algo=wildcards.algo, trial=range(config["search"]["trials"]))


def train_mem_mb(wildcards):
    """torch + SB3 (about 2 GB) plus the DQN replay buffer (obs and next obs, 48 float32 each)."""
    buffer = config["training"]["hyperparams"][wildcards.algo].get("buffer_size", 0)
    return 2048 + int(buffer * 2 * 48 * 4 / 1e6)


# ------------------------------------------------------------------- helpers of evaluate
#: the outputs of one evaluate job: one policy and seed on every evaluation profile and scenario (the
#: policy's load, torch and SB3 for an agent, is most of a job's time, so it is paid once)
EVAL_GROUP = {
    name: expand(f"{EVAL_DIR}/{name}.csv", profile=config["profiles"]["evaluate"], scenario=SCENARIOS, allow_missing=True)
    for name in ("traces", "metrics")
}
def evaluate_out(wildcards):
    """``--out`` of an evaluate job: EVAL_DIR with its policy and seed, naming {profile} and {scenario}."""
    return EVAL_DIR.replace("{policy}", wildcards.policy).replace("{seed}", wildcards.seed)


def evaluate_inputs(wildcards):
    inputs = {"ocv": OCV_PROCESSED, "ecm": config["ecm_table"]}
    settings_of = _policies.settings_policy(wildcards.policy)
    if wildcards.policy in ALGOS:
        run = CHECKPOINT_DIR.format(algo=wildcards.policy, seed=wildcards.seed)
        inputs["model"] = f"{run}/best_model.zip"
        inputs["record"] = f"{run}/run_config.json"  # what made the model; evaluate checks it
    elif TUNED and settings_of in TUNABLE:
        inputs["settings"] = TUNED_SETTINGS.format(baseline=settings_of)
    return inputs


def evaluate_config(wildcards):
    """env, reward, the evaluation episodes and seeds, every scenario and, for a baseline run from the
    config, its own settings (best_known: its base controller's)."""
    sections = ["ecm_table", "allow_implausible_tables", "env", "reward", "evaluation.episodes", "evaluation.trace_episodes",
                "evaluation.seed_offset", "evaluation.scenarios"]
    if wildcards.policy == BEST_KNOWN:
        sections += ["evaluation.best_known_episodes", "evaluation.best_known_stride"]
    settings_of = _policies.settings_policy(wildcards.policy)
    key = _baselines.settings_key(settings_of) if settings_of in _baselines.BASELINES else None
    if key in config["baselines"] and not (TUNED and settings_of in TUNABLE):
        sections.append(f"baselines.{key}")  # a baseline's own settings (none for no_balancing)
    if not TUNED and settings_of in TUNABLE:
        # `bmsrl evaluate` refuses a tunable baseline (or best_known's base) without --baseline-settings while baselines.tuned
        # is true (its default): say it is false (left out when true, so those jobs' configs keep their names)
        sections.append("baselines.tuned")
    return stage_config(*sections)


def evaluate_runtime_min(wildcards):
    """Minutes for one evaluate job: 10 + 2 per 10 episodes of every profile x scenario (best_known:
    about 3 s per pack on one core, so 1 per pack)."""
    groups = len(config["profiles"]["evaluate"]) * len(SCENARIOS)
    if wildcards.policy == BEST_KNOWN:
        return 10 + groups * config["evaluation"]["best_known_episodes"]
    return 10 + groups * (2 + config["evaluation"]["episodes"] // 5)


def evaluate_model_option(wildcards, input):
    if "model" in input.keys():
        return f"--model '{input.model}'"
    if "settings" in input.keys():
        return f"--baseline-settings '{input.settings}'"
    return ""


def tune_config(wildcards):
    """The tuner sees the env, the training profile and its grid; the evaluation seeds only so that it
    can refuse to tune on one (bmsrl.config.validate)."""
    return stage_config("ecm_table", "allow_implausible_tables", "env", "profiles.train", "baselines.tuning",
                        f"baselines.{wildcards.baseline}",
                        "seeds", "evaluation.episodes", "evaluation.seed_offset")


def evaluate_env(wildcards):
    """Trained agents need torch and SB3; the baselines and best_known run in the lighter core env."""
    return "../../envs/rl.yaml" if wildcards.policy in ALGOS else "../../envs/core.yaml"


# ----------------------------------------------------------------------------------- run plan
from bmsrl.plan import run_plan as _run_plan  # noqa: E402


def unset_placeholders():
    """``resource=value`` of every rule resource still holding a ``CHANGE_ME`` placeholder (the Slurm
    profiles' partition and account), sorted."""
    found = set()
    for each in workflow.rules:
        for name, value in each.resources.items():
            text = str(getattr(value, "raw", value)).strip("\"'")  # a default resource: as written (an expression)
            if "CHANGE_ME" in text:
                found.add(f"{name}={text}")
    return sorted(found)


def before_the_first_job():
    """Snakemake's onstart (the Snakefile): before the first job, and before any Slurm submission, refuse
    the profiles' placeholders; then print where the outputs go, the run kind, the trainings this run
    will do and their estimated time (bmsrl.plan; the job counts are Snakemake's table above)."""
    unset = unset_placeholders()
    if unset:
        raise WorkflowError(
            "set your cluster's values first: " + ", ".join(unset) + " are placeholders (default-resources of "
            "the Slurm profile, workflow/profiles/slurm*/config.yaml: your partition from `sinfo -s`, your account "
            "from `sacctmgr show assoc user=$USER`; or --default-resources slurm_partition=P slurm_account=A)"
        )
    try:
        to_train = [(j.wildcards.algo, int(j.wildcards.seed)) for j in workflow.dag.needrun_jobs() if j.rule.name == "train"]
    except Exception:  # the DAG's API differs: plan every configured run
        to_train = [(a, s) for a in config["algos"] for s in config["seeds"]]
    print(_run_plan(config, to_train, workflow.cores), file=sys.stderr)


# the benchmark rules' (benchmarks.smk) input and option functions
def arm_inputs(wildcards):
    """The ablation rule's inputs: train_inputs' (the search's result with training.tuned_hyperparams).
    Only bench tuned runs with the search's hyperparameters, and it needs them: the snapshot folders are
    named by bench and algorithm alone, so another config must not write them."""
    tuned = config["training"]["tuned_hyperparams"]
    if tuned != (wildcards.bench == "tuned"):
        raise WorkflowError(
            f"benchmark {wildcards.bench}: "
            + ("runs with training.tuned_hyperparams: true (--configfile config/tuned.yaml or config/tuned_dqn.yaml)"
               if not tuned else "runs with the registry's hyperparameters (training.tuned_hyperparams: false), "
               "not config/tuned.yaml or config/tuned_dqn.yaml")
        )  # fmt: skip
    return train_inputs(wildcards)


def compare_option(wildcards):
    """`` --compare-with FILE --compare-arm ARM`` (leading space) for a bench paired with another run
    (ARM_RUNS, benchmarks.smk): the committed per-seed table of a snapshot, not a declared input (it
    lies inside another rule's directory output, docs/results/<name>/); the script checks it before
    any training."""
    compare = ARM_RUNS[wildcards.bench][wildcards.algo].get("compare")
    return f" --compare-with {shlex.quote(compare[0])} --compare-arm {compare[1]}" if compare else ""
