"""The workflow's conda environments (envs/*.yaml) against the code the rules run and pyproject.toml.

The checker is tests/conda_envs.py (its docstring says what it checks and how); these tests run it
on the repository, check that it sees the workflow, and that it fails on each kind of mistake.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from conda_envs import (
    NOT_IN_BASELINES,
    SKIPPED_IMPORTS,
    check_envs,
    check_post_deploy,
    conda_spec,
    job_requirements,
    load_workflow,
    read_pins,
    shell_verbs,
    third_party_imports,
    verbs,
)

ROOT = Path(__file__).resolve().parents[1]
#: constraints.txt's versions, which the environments pin (the edits below start from them)
PIN = {name: str(version) for name, version in read_pins(ROOT / "constraints.txt").items()}

#: the checker loads the workflow with Snakemake's API and runs jobs' commands (minutes): the Snakemake lane
pytestmark = pytest.mark.snakemake


@pytest.fixture(scope="module")
def workflow():
    return load_workflow(ROOT)


def test_conda_envs_match_the_code_and_pyproject(tmp_path, workflow):
    problems = check_envs(ROOT, tmp_path, workflow)
    assert not problems, "\n".join(["conda environment problems:", *problems])


def test_the_checker_sees_the_workflow(workflow):
    """Every rule, the environment Snakemake gives it and what its code imports (no vacuous pass)."""
    assert not workflow.problems
    envs = {(job.rule, tuple(job.wildcards.values())): job.env.name for job in workflow.jobs}
    from bmsrl.algos import ALGOS
    from bmsrl.baselines import BASELINES
    from bmsrl.policies import REFERENCES

    trained = list(ALGOS)
    assert len(trained) >= 2
    for rule in ("evaluate", "animate"):  # trained agents need torch; the baselines run in the light env
        assert {k[1][0]: v for k, v in envs.items() if k[0] == rule} == {
            **{algo: "rl.yaml" for algo in trained},
            **{name: "core.yaml" for name in (*BASELINES, *REFERENCES)},
        }
    assert {k[0]: v for k, v in envs.items() if k[0] not in ("evaluate", "animate")} == {
        "record": "core.yaml",
        "ocv": "core.yaml",
        "train": "rl.yaml",
        "aggregate": "core.yaml",
        "claims": "core.yaml",
        "plot_traces": "core.yaml",
        "plot_training": "core.yaml",
        "plot_metrics": "core.yaml",
        "plot_robustness": "core.yaml",
        "tune_baselines": "core.yaml",
        "search_trial": "rl.yaml",
        "search_summary": "rl.yaml",
        "snapshot": "core.yaml",
        "plot_profiles": "core.yaml",
        "plot_paired": "core.yaml",
        "training_references": "core.yaml",
        "imitation": "rl.yaml",
        "ablation": "rl.yaml",
        "curve_train": "rl.yaml",
        "curve": "rl.yaml",
        "benchmark_snapshot": "core.yaml",
    }
    jobs = {(job.rule, tuple(job.wildcards.values())): job for job in workflow.jobs}
    verb_modules = verbs(ROOT)

    def requirements(key):
        required, problems = job_requirements(ROOT, jobs[key], verb_modules)
        assert not problems
        return required.keys()

    assert {"torch", "stable-baselines3", "sb3-contrib", "tensorboard", "gymnasium", "numba"} <= requirements(
        ("train", ())
    )
    dqn, baseline = requirements(("evaluate", ("dqn",))), requirements(("evaluate", ("rule_based",)))
    assert dqn - baseline == {"torch", "stable-baselines3", "sb3-contrib"}  # agents.load_to_act imports torch itself
    assert {"scipy", "matplotlib", "pandas"} <= requirements(("plot_traces", ()))  # scipy: inside a function
    assert "torch" not in requirements(("aggregate", ()))
    assert {"optuna", "torch", "stable-baselines3"} <= requirements(("search_trial", ()))
    # a benchmark run by a rule: the script's own imports (torch, SB3), its bmsrl modules' (numba) and
    # those of the sibling script it imports (ablation.py: yaml), which is no distribution itself
    imitation = requirements(("imitation", ()))
    assert {"torch", "stable-baselines3", "numba", "pandas", "pyyaml"} <= imitation and "ablation" not in imitation


def test_the_workflow_exports_the_repository_and_loading_it_changes_nothing_here(monkeypatch, tmp_path):
    monkeypatch.delenv("BMSRL_SOURCE", raising=False)
    monkeypatch.chdir(tmp_path)
    before = dict(os.environ)
    loaded = load_workflow(ROOT)
    assert Path(loaded.exported["BMSRL_SOURCE"]).resolve() == ROOT
    assert dict(os.environ) == before and Path.cwd() == tmp_path


@pytest.mark.parametrize(
    "text, name, spec",
    [
        ("numpy >=1.26", "numpy", ">=1.26"),
        ("pytorch >=2.8 cpu_*", "pytorch", ">=2.8"),
        ("gymnasium >=1.0,<2", "gymnasium", "<2,>=1.0"),
        ("scipy=1.11", "scipy", "==1.11.*"),
        ("pip", "pip", ""),
        ("numba 0.60.0", "numba", "==0.60.0"),
    ],
)
def test_conda_match_specs(text, name, spec):
    assert conda_spec(text) == (name, SpecifierSet(spec))


@pytest.mark.parametrize("text", ["numpy >=1.26|<1", "numpy[version='>=1.26']", "numpy >=1 cpu_* extra", "numpy 1 >=2"])
def test_an_unreadable_conda_match_spec_is_one_error(text):
    with pytest.raises(ValueError, match="cannot read the conda match spec"):
        conda_spec(text)


def test_imports_are_followed_through_the_package(tmp_path):
    """A made-up bmsrl: a registry module names the SB3 modules in strings, another imports them by
    name; relative and function-local imports are followed, ``if TYPE_CHECKING:`` is not."""
    pkg = tmp_path / "src" / "bmsrl"
    pkg.mkdir(parents=True)
    files = {
        "__init__.py": "",
        "algos.py": 'ALGOS = {"dqn": ("stable_baselines3", "DQN"), "trpo": ("sb3_contrib", "TRPO")}\n',
        "train.py": "import importlib\nfrom typing import TYPE_CHECKING\n\nfrom .algos import ALGOS\n"
        "if TYPE_CHECKING:\n    import tensorboard\n\n\ndef algorithm_class(algo):\n"
        "    module, name = ALGOS[algo]\n    from . import plots\n"
        "    return getattr(importlib.import_module(module), name)\n",
        "plots.py": "import numpy\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    found, problems = third_party_imports(tmp_path, ["bmsrl.train"])
    assert not problems
    assert found == {
        "stable_baselines3": ["src/bmsrl/train.py:12"],
        "sb3_contrib": ["src/bmsrl/train.py:12"],
        "numpy": ["src/bmsrl/plots.py:1"],
    }
    eager, _ = third_party_imports(tmp_path, ["bmsrl.train"], eager_only=True)
    assert eager == {}


# ---------------------------------------------------------------------- the checker can fail
def _copy(to: Path) -> Path:
    for name in ("workflow", "envs", "src", "config", "benchmarks"):
        shutil.copytree(ROOT / name, to / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (to / "data").symlink_to(Path("src") / "bmsrl" / "data")  # as in the repository (the workflow checks its tables)
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy2(ROOT / name, to / name)
    return to


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    "file, old, new, expected",
    [
        pytest.param(
            "envs/core.yaml",
            f"  - numpy =={PIN['numpy']}\n",
            "  - numpy ==1.26.0\n",
            f"core.yaml: 'numpy ==1.26.0' is not constraints.txt's numpy=={PIN['numpy']}: pin the version the "
            f"results were produced with (numpy =={PIN['numpy']})",
            id="another-version",
        ),
        pytest.param(
            "envs/rl.yaml",
            f"  - gymnasium =={PIN['gymnasium']}\n",
            "  - gymnasium >=1.0,<2\n",
            f"rl.yaml: 'gymnasium >=1.0,<2' is not constraints.txt's gymnasium=={PIN['gymnasium']}",
            id="a-range-not-the-pin",
        ),
        pytest.param(
            "envs/rl.yaml",
            f"pytorch =={PIN['torch']} cpu_*",
            "pytorch ==2.8.0 cpu_*",
            f"rl.yaml: 'pytorch ==2.8.0 cpu_*' is not constraints.txt's torch=={PIN['torch']}: pin the version the "
            f"results were produced with (pytorch =={PIN['torch']})",
            id="conda-name-mapped",
        ),
        pytest.param(
            "pyproject.toml",
            '"gymnasium>=1.0,<2"',
            f'"gymnasium>=1.0,<{PIN["gymnasium"]}"',
            f"core.yaml: 'gymnasium =={PIN['gymnasium']}' pins {PIN['gymnasium']}, outside pyproject.toml's "
            f"gymnasium<{PIN['gymnasium']},>=1.0",
            id="pin-outside-pyproject",
        ),
        pytest.param(
            "envs/core.yaml",
            "  - wheel\n",
            "  - wheel >=0.40\n",
            "core.yaml: 'wheel >=0.40' allows >=0.40 but pyproject.toml declares wheel ((any version)); "
            "the ranges must be the same",
            id="unpinned-package-range",
        ),
        pytest.param(
            "envs/core.yaml",
            f"  - scipy =={PIN['scipy']}\n",
            "",
            "rule plot_training: runs in core.yaml, which lacks scipy (needed by src/bmsrl/stats.py:<N>",
            id="function-local-import-missing",
        ),
        pytest.param(
            "envs/rl.yaml",
            f"  - tensorboard =={PIN['tensorboard']}\n",
            "",
            "rule train: runs in rl.yaml, which lacks tensorboard (needed by `bmsrl train --tensorboard`)",
            id="tensorboard-missing",
        ),
        pytest.param(
            "envs/core.yaml",
            f"  - numba =={PIN['numba']}\n",
            "",
            "rule evaluate (policy=rule_based): runs in core.yaml, which lacks numba (needed by src/bmsrl/env.py:<N>, "
            "src/bmsrl/reward.py:<N>, src/bmsrl/pack.py:<N>, src/bmsrl/baselines.py:<N>)",
            id="baseline-dependency-missing",
        ),
        pytest.param(
            "envs/core.yaml",
            "  - wheel\n",
            "  - wheel\n  - requests >=2\n",
            "core.yaml: 'requests >=2' is not declared in pyproject.toml",
            id="undeclared-package",
        ),
        pytest.param(
            "envs/core.yaml",
            "python >=3.10,<3.14",
            "python >=3.9,<3.14",
            "core.yaml: 'python >=3.9,<3.14' lacks requires-python's >=3.10, so it admits Pythons bmsrl does "
            "not support",
            id="python-too-old",
        ),
        pytest.param(
            "envs/rl.yaml",
            "python >=3.10,<3.14",
            "python >=3.11,<3.14",
            "rl.yaml: 'python >=3.11,<3.14' excludes Python 3.10, the lowest requires-python (>=3.10) allows",
            id="python-floor-raised",
        ),
        pytest.param(
            "envs/rl.yaml",
            f"  - setuptools =={PIN['setuptools']}         # to install bmsrl (post-deploy)\n",
            "",
            "rl.yaml: lacks setuptools (setuptools>=68, [build-system] requires), needed by the post-deploy "
            "script's pip install --no-build-isolation",
            id="build-requirement-missing",
        ),
        pytest.param(
            "envs/core.yaml",
            "  - nodefaults\n",
            "  - defaults\n",
            "core.yaml: channels are ['conda-forge', 'defaults'], expected [conda-forge, nodefaults]",
            id="channels",
        ),
        pytest.param(
            "workflow/rules/evaluate.smk",
            "        evaluate_env\n",
            '        lambda wildcards: "../../envs/core.yaml" if wildcards.policy == "dqn" else evaluate_env(wildcards)\n',
            # agents.py imports SB3 by a module name from the registry (algos.py), and torch itself
            # (load_to_act: the agent loaded without its optimizer)
            "rule evaluate (policy=dqn): runs in core.yaml, which lacks pytorch (needed by src/bmsrl/agents.py:<N>)",
            id="trained-agent-in-core-env",
        ),
        pytest.param(
            "workflow/rules/evaluate.smk",
            "        evaluate_env\n",
            "        lambda wildcards: evaluate_env(wildcards) if wildcards.seed else None\n",
            "rule evaluate: its conda: function fails for {",
            id="conda-function-of-an-unlisted-wildcard",
        ),
        pytest.param(
            "workflow/rules/aggregate.smk",
            '    conda:\n        "../../envs/core.yaml"\n',
            "",
            "rule aggregate (aggregate.smk) has no conda: directive",
            id="no-conda-directive",
        ),
        pytest.param(
            "workflow/rules/aggregate.smk",
            '"../../envs/core.yaml"',
            '"../../envs/gone.yaml"',
            "envs/gone.yaml: used by ['aggregate'] but does not exist",
            id="env-file-missing",
        ),
        pytest.param(
            "workflow/rules/aggregate.smk",
            '"../../envs/core.yaml"',
            '"bmsrl-core"',
            "rule aggregate: its conda: fails: bmsrl-core is a named or directory environment, not an environment file",
            id="named-env",
        ),
        pytest.param(
            "config/config.yaml",
            "\n{}\n",
            "\nseeds: [x, 1]\n",
            "the workflow does not load with Snakemake: invalid config config/config.yaml: seeds[0]",
            id="workflow-does-not-load",
        ),
        pytest.param(
            "workflow/rules/common.smk",
            '"BMSRL_SOURCE"',
            '"BMSRL_ELSEWHERE"',
            "the workflow does not export BMSRL_SOURCE",
            id="source-not-exported",
        ),
        pytest.param(
            "src/bmsrl/policies.py",
            "def policy_order(",
            "def _unused():\n    import sklearn\n\n\ndef policy_order(",
            "rule aggregate: imports scikit-learn (src/bmsrl/policies.py:<N>), which pyproject.toml does not declare",
            id="undeclared-import",
        ),
        pytest.param(
            "src/bmsrl/aggregate.py",
            "def read_all_metrics(",
            'BACKEND = "requests"\n\n\ndef _unused():\n    import importlib\n\n    return importlib.import_module(BACKEND)'
            "\n\n\ndef read_all_metrics(",
            "rule aggregate: imports requests (src/bmsrl/aggregate.py:<N>), which pyproject.toml does not declare",
            id="computed-import-followed",
        ),
        pytest.param(
            # aggregate.py, not policies.py: policies.py imports algos.py, whose strings name the SB3
            # modules, so a computed import there is followed to them instead of being unknown
            "src/bmsrl/aggregate.py",
            "def read_all_metrics(",
            "def _unused(name):\n    import importlib\n\n    return importlib.import_module(name)\n\n\n"
            "def read_all_metrics(",
            "src/bmsrl/aggregate.py:<N>: imports a module whose name is computed, and neither",
            id="computed-import-unknown",
        ),
        pytest.param(
            "src/bmsrl/agents.py",
            "from pathlib import Path\n",
            "from pathlib import Path\n\nimport torch\n",
            "rule evaluate (policy=no_balancing): SKIPPED_IMPORTS lists torch, but it is imported at import time "
            "(src/bmsrl/agents.py:<N>)",
            id="skipped-import-made-eager",
        ),
        pytest.param(
            "src/bmsrl/policies.py",
            "from bmsrl import algos\n",
            "import stable_baselines3\n\nfrom bmsrl import algos\n",
            "rule animate (policy=rule_based): SKIPPED_IMPORTS lists stable_baselines3, but it is imported at import "
            "time (src/bmsrl/policies.py:<N>)",
            id="skipped-import-made-eager-animate",
        ),
    ],
)
def test_checker_reports_an_inconsistency(tmp_path, file, old, new, expected):
    root = _copy(tmp_path / "repo")
    _edit(root / file, old, new)
    problems = check_envs(root, tmp_path)
    pattern = re.escape(expected).replace("<N>", r"\d+")  # <N>: a line number
    assert any(re.match(pattern, p) for p in problems), "\n".join(problems)


@pytest.mark.parametrize(
    "change, expected",
    [
        pytest.param(
            lambda script: script.unlink(),
            "core.yaml: no core.post-deploy.sh next to it installs the bmsrl package",
            id="missing",
        ),
        pytest.param(lambda script: script.chmod(0o644), "core.post-deploy.sh: not executable", id="not-executable"),
        pytest.param(
            lambda script: _edit(script, '-e "$src"', '-e "$src/src"'),
            "core.post-deploy.sh: does not pip install the repository",
            id="installs-something-else",
        ),
        pytest.param(
            lambda script: _edit(script, "install --no-deps ", "install "),
            "core.post-deploy.sh: pip installs the repository without --no-deps",
            id="with-deps",
        ),
        pytest.param(
            lambda script: _edit(script, "set -euo pipefail\n", "set -euo pipefail\nexit 3\n"),
            "core.post-deploy.sh: exits with 3",
            id="fails",
        ),
    ],
)
def test_checker_reports_a_broken_post_deploy_script(tmp_path, change, expected):
    root = _copy(tmp_path / "repo")
    change(root / "envs" / "core.post-deploy.sh")
    problems = check_post_deploy(root / "envs" / "core.yaml", root, tmp_path)
    assert any(p.startswith(expected) for p in problems), problems


def test_command_line(tmp_path):
    """``python tests/conda_envs.py [REPOSITORY]``: exit 0 and OK, exit 1 and the problems, exit 2 for no repository."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    script = [sys.executable, str(ROOT / "tests" / "conda_envs.py")]
    ok = subprocess.run(script, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert (ok.returncode, ok.stdout, ok.stderr.strip().splitlines()[-1]) == (0, "", "conda environments: OK")
    root = _copy(tmp_path / "repo")
    _edit(root / "envs" / "core.yaml", f"  - numpy =={PIN['numpy']}\n", "")
    bad = subprocess.run([*script, str(root)], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert bad.returncode == 1 and "which lacks numpy" in bad.stdout, bad.stdout + bad.stderr
    none = subprocess.run([*script, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert none.returncode == 2 and "is not the bmsrl repository" in none.stderr


# ------------------------------------------------------------- baselines really run without torch
_BLOCKING_CLI = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: not in the environment)", name=name)
sys.meta_path.insert(0, Blocker())
from bmsrl.cli import main
code = main(sys.argv[2:])
assert not BLOCKED & set(sys.modules), BLOCKED & set(sys.modules)
sys.exit(code)
"""


#: what the test runs for each rule SKIPPED_IMPORTS may name: ``bmsrl evaluate`` plus the options the
#: rule's command adds to the ones every evaluation takes (``--animation``: animate draws episode 0)
_COMMON_OPTIONS = {"--config", "--policy", "--profile", "--scenario", "--seed", "--ocv-table", "--out", "--model"}
_RULE_OPTIONS = {"evaluate": {}, "animate": {"--animation": "episode0.gif"}}
_CONFIG_JSON = '{"evaluation": {"episodes": 1}, "baselines": {"tuned": false}}'  # the configured settings, no tuning


def _evaluate_blocking(tmp_path: Path, blocked: set[str], *args: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    )
    command = [
        sys.executable,
        "-c",
        _BLOCKING_CLI,
        ",".join(sorted(blocked)),
        "evaluate",
        "--config-json",
        _CONFIG_JSON,
        "--profile",
        "charge-rest-discharge",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "out"),
        *args,
    ]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)


def _rule_options(workflow, rule: str, tmp_path: Path) -> list[str]:
    """The options ``rule`` adds to ``bmsrl evaluate`` (checked against its shell command), files in ``tmp_path``."""
    assert rule in _RULE_OPTIONS, f"this test knows how to run the jobs of {sorted(_RULE_OPTIONS)} only"
    shells = {job.shell for job in workflow.jobs if job.rule == rule}
    assert len(shells) == 1, shells
    calls = shell_verbs(shells.pop())
    assert [verb for verb, _ in calls] == ["evaluate"], calls
    assert set(re.findall(r"--[\w-]+", calls[0][1])) - _COMMON_OPTIONS == set(_RULE_OPTIONS[rule]), calls[0][1]
    return [word for option, file in _RULE_OPTIONS[rule].items() for word in (option, str(tmp_path / file))]


@pytest.mark.parametrize("key", sorted(SKIPPED_IMPORTS), ids="-".join)
def test_baseline_evaluation_runs_without_torch_and_sb3(tmp_path, workflow, key):
    """The jobs SKIPPED_IMPORTS exempts (evaluate and animate) run (one episode) with those imports
    failing, as in core.yaml."""
    rule, wildcard, value = key
    assert wildcard == "policy", "this test knows how to run jobs keyed by their policy only"
    options = _rule_options(workflow, rule, tmp_path)
    result = _evaluate_blocking(tmp_path, SKIPPED_IMPORTS[key], "--policy", value, *options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out" / "metrics.csv").exists()
    if rule == "animate":
        assert (tmp_path / "episode0.gif").read_bytes()[:6] in (b"GIF87a", b"GIF89a")


@pytest.mark.parametrize("rule", sorted(_RULE_OPTIONS))
def test_trained_agent_evaluation_needs_them(tmp_path, workflow, rule):
    """The blocking is real: a trained agent's evaluation (or animation) fails at loading the model
    without SB3, after the checks of agents.load_policy (run_config.json beside the model) pass."""
    from bmsrl.config import load_config

    (tmp_path / "model.zip").write_bytes(b"PK not really")
    n_cells = load_config(json_text=_CONFIG_JSON)["env"]["n_cells"]
    (tmp_path / "run_config.json").write_text(json.dumps({"settings": {"algo": "dqn", "env": {"n_cells": n_cells}}}))
    options = _rule_options(workflow, rule, tmp_path)
    result = _evaluate_blocking(
        tmp_path, NOT_IN_BASELINES, "--policy", "dqn", "--model", str(tmp_path / "model.zip"), *options
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot load dqn model from" in result.stderr, result.stderr
    # the first rl-only import the DQN class needs (bmsrl.masked_dqn imports torch, then SB3)
    assert re.search(r"No module named '(torch|stable_baselines3)' \(blocked", result.stderr), result.stderr
