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

from bmsrl import algos as _algos  # noqa: E402
from bmsrl import baselines as _baselines  # noqa: E402
from bmsrl import policies as _policies  # noqa: E402
from bmsrl.config import validate as _validate  # noqa: E402
from bmsrl.errors import UserError as _UserError  # noqa: E402
from bmsrl.profiles import PROFILES as _PROFILES  # noqa: E402


def validate_config(config):
    """Validate ``config`` (config files and ``--config``) at start-up, before any job runs, with the
    same validator as the ``bmsrl`` verbs; every missing key gets its default, nested ones included."""
    try:
        _validate(config, "invalid config (config file and --config)", cli_strings=True)
    except _UserError as exc:
        raise WorkflowError(str(exc)) from None


def _use_the_run_record(config):
    """`snakemake --report` with no config on the command line reports the last run: its recorded
    config (results/run/config.yaml, rule record) replaces the default one, so the report's DAG,
    captions and settings are those of the run that made the results."""
    asked = any(a in ("--report",) or a.startswith("--report=") for a in sys.argv)
    configured = any(a in ("--configfile", "--configfiles", "--config", "-C") or a.startswith("--config")
                     for a in sys.argv)
    record = Path(RUN_CONFIG)
    if asked and not configured and record.exists():
        import yaml

        config.clear()
        config.update(yaml.safe_load(record.read_text(encoding="utf-8")))


RUN_CONFIG = "results/run/config.yaml"
RUN_VERSIONS = "results/run/versions.tsv"
_use_the_run_record(config)
validate_config(config)

# Conda envs install this package from its source tree in their post-deploy script
# (envs/*.post-deploy.sh), which reads the location from here.
os.environ.setdefault("BMSRL_SOURCE", str(Path(workflow.basedir).parent.resolve()))

ALGOS = list(_algos.ALGOS)
POLICY_NAMES = list(_policies.POLICIES)
TUNED = config["baselines"]["tuned"]
#: baselines evaluated: all, or without rule_based_untuned when nothing is tuned (it would duplicate rule_based)
BASELINES = _baselines.evaluated_baselines(TUNED)
TUNABLE = list(_baselines.TUNABLE)
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


# --------------------------------------------------------------------------------------- paths
# Every output lands under results/ (relative to the working directory).
OCV_PROCESSED = "results/ocv/ocv_processed.csv"
OCV_PLOT = "results/plots/ocv.pdf"
CHECKPOINT_DIR = "results/checkpoints/{algo}_seed{seed}"
RUN_DIR = "results/runs/{algo}_seed{seed}"
EVAL_DIR = "results/eval/{policy}/{profile}/{scenario}/seed{seed}"
TUNED_SETTINGS = "results/baselines/{baseline}.yaml"
TUNING_GRID = "results/baselines/{baseline}_grid.csv"
SUMMARY_CSV = "results/tables/summary.csv"
SUMMARY_MD = "results/tables/summary.md"
PAIRED_CSV = "results/tables/paired.csv"
ROBUSTNESS_CSV = "results/tables/robustness.csv"
ROBUSTNESS_PLOT = "results/plots/robustness.pdf"
LOGS = "results/logs"
CONFIGS = "results/configs"  # per-job config files (stage_config)
BENCHMARKS = "results/benchmarks"

#: policies evaluated: the trained algorithms, then the baselines
POLICIES = list(config["algos"]) + BASELINES


def trained_models():
    return expand(f"{CHECKPOINT_DIR}/best_model.zip", algo=config["algos"], seed=config["seeds"])


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
    PAIRED_CSV,
    ROBUSTNESS_CSV,
    expand("results/plots/{kind}.pdf", kind=TRACE_PLOTS),
    "results/plots/training_curves.pdf",
    "results/plots/metrics.pdf",
    ROBUSTNESS_PLOT,
]


# ------------------------------------------------------------------- per-rule config sections
def stage_config(*sections, algo=None):
    """The config sections a rule needs, as a small JSON file for ``bmsrl VERB --config FILE``.

    ``sections`` are top-level keys or dotted paths (``"profiles.train"``). With ``algo``, the
    ``training`` section keeps only that algorithm's ``total_steps`` and ``hyperparams``. The file
    (``results/configs/<hash of its content>.json``) is written when the DAG is built; its name is
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


def train_mem_mb(wildcards):
    """torch + SB3 (about 2 GB) plus the DQN replay buffer (obs and next obs, 48 float32 each)."""
    buffer = config["training"]["hyperparams"][wildcards.algo].get("buffer_size", 0)
    return 2048 + int(buffer * 2 * 48 * 4 / 1e6)


# ------------------------------------------------------------------- helpers of evaluate
def evaluate_inputs(wildcards):
    inputs = {"ocv": OCV_PROCESSED, "ecm": config["ecm_table"]}
    if wildcards.policy in ALGOS:
        run = CHECKPOINT_DIR.format(algo=wildcards.policy, seed=wildcards.seed)
        inputs["model"] = f"{run}/best_model.zip"
        inputs["record"] = f"{run}/run_config.json"  # what made the model; evaluate checks it
    elif TUNED and wildcards.policy in TUNABLE:
        inputs["settings"] = TUNED_SETTINGS.format(baseline=wildcards.policy)
    return inputs


def evaluate_config(wildcards):
    """env, reward, the evaluation episodes and seeds, this scenario (and the default one, which the
    validator requires) and, for a baseline run from the config, its own settings."""
    sections = ["ecm_table", "env", "reward", "evaluation.episodes", "evaluation.seed_offset",
                f"evaluation.scenarios.{DEFAULT_SCENARIO}", f"evaluation.scenarios.{wildcards.scenario}"]
    key = _baselines.settings_key(wildcards.policy)
    if key in config["baselines"] and not (TUNED and wildcards.policy in TUNABLE):
        sections.append(f"baselines.{key}")  # a baseline's own settings (none for no_balancing)
    return stage_config(*sections)


def evaluate_model_option(wildcards, input):
    if "model" in input.keys():
        return f"--model '{input.model}'"
    if "settings" in input.keys():
        return f"--baseline-settings '{input.settings}'"
    return ""


def tune_config(wildcards):
    """The tuner sees the env, the training profile and its grid; the evaluation seeds only so that it
    can refuse to tune on one (bmsrl.config.validate)."""
    return stage_config("ecm_table", "env", "profiles.train", "baselines.tuning", f"baselines.{wildcards.baseline}",
                      "seeds", "evaluation.episodes", "evaluation.seed_offset")


def evaluate_env(wildcards):
    """Trained agents need torch and SB3; the baselines run in the lighter core env."""
    return "../../envs/rl.yaml" if wildcards.policy in ALGOS else "../../envs/core.yaml"
