"""Check the workflow's conda environments (envs/*.yaml) against the code the rules run and pyproject.toml.

    python tests/conda_envs.py [REPOSITORY]     # prints every problem; exit status 1 if there is one

No conda needed. ``check_envs(root, tmp)`` returns one message per inconsistency:

1. Rule -> environment, asked from Snakemake. The workflow is loaded with Snakemake's Python API
   (``snakemake.api``; it runs the Snakefiles as ``snakemake`` does, config validation included).
   Every rule with a command needs a ``conda:`` directive. A static path is resolved by Snakemake
   (``Rule.expand_conda_env``); a function of the wildcards is called by Snakemake for every
   combination of the rule's wildcards whose ``wildcard_constraints`` pattern is a list of
   alternatives (``policy="dqn|ppo|..."``); the jobs are keyed by the wildcards that change the
   environment (``evaluate``: policy). A function that needs any other wildcard is reported.
   Snakemake's *public* API has no call that lists rules with their conda environment without
   conda (``--list-conda-envs`` runs ``conda info``, and lists files, not rules), so this reads
   ``WorkflowApi._workflow.rules``: private, pinned by pyproject's ``snakemake>=9,<10``.
2. Rule -> code -> imports. ``bmsrl VERB`` in the rule's shell command; ``bmsrl.cli.VERBS`` (read
   with ``ast``) names the verb's module. From that module and ``bmsrl.cli``, every ``bmsrl`` module
   they import is followed through the package's source with ``ast`` (no module list: whatever
   ``src/bmsrl/`` holds), imports inside functions included, ``if TYPE_CHECKING:`` and the body of a
   ``try`` whose ``except`` catches ImportError or ModuleNotFoundError (an optional import) excluded.
   ``importlib.import_module(name)`` with a computed name imports the string constants of its
   module and of the bmsrl modules that module imports that name a top-level module of an installed
   distribution (agents.py's ``import_module(spec.module)`` finds ``"stable_baselines3"`` and
   ``"sb3_contrib"`` in the registry algos.py); if there is none, it is reported. The computed
   import in ``bmsrl.cli`` is the VERBS dispatch (point 2 starts there).
   Every third-party import must be declared in pyproject.toml (its dependencies or the ``rl`` and
   ``workflow`` extras, ``RUNTIME_EXTRAS``) and be in the rule's environment,
   except ``SKIPPED_IMPORTS`` (checked to run only inside functions); ``EXTRA_REQUIREMENTS`` adds
   what no import shows (TensorBoard for ``train --tensorboard``).
   A rule may also run a script of the repository, its path written out in the command
   (``python .../benchmarks/imitation.py``): the script's own imports count, those of the scripts
   beside it that it imports, and the bmsrl modules on the way are followed as a verb's module is.
3. Versions. A package that an environment and constraints.txt both name (conda-forge names read
   through ``CONDA_NAMES``: pytorch is torch, matplotlib-base is matplotlib) must be pinned to
   *constraints.txt's version*: the versions the results were produced with (``numpy ==2.4.6``,
   ``pytorch ==2.13.0 cpu_*``; a conda build string is dropped), and that version must lie in
   pyproject.toml's range. A package constraints.txt does not pin (``wheel``) must have
   *pyproject.toml's range*: the same (operator, version) clauses, versions compared as versions.
   pyproject.toml here means its dependencies, the extras ``RUNTIME_EXTRAS`` and [build-system]
   requires (the post-deploy script builds bmsrl with --no-build-isolation). ``python`` must lie
   inside requires-python and admit its floor (an extra upper cap is allowed: conda-forge lags new
   Pythons). Any other package of an environment, except python and pip, must be declared in
   pyproject.toml.
4. The package itself. The workflow must export BMSRL_SOURCE = the repository (observed while
   Snakemake loads it). ``envs/NAME.post-deploy.sh`` must exist, be executable and, run with its
   shebang's interpreter and stub ``python``/``pip`` commands that record their arguments, run
   ``pip install --no-deps`` of that directory.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from bmsrl.baselines import BASELINES
from bmsrl.policies import REFERENCES

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "bmsrl"

#: import name -> distribution name, where the two differ beyond ``_`` vs ``-``
DIST_OF_IMPORT = {"yaml": "pyyaml", "sklearn": "scikit-learn", "PIL": "pillow", "skimage": "scikit-image"}
#: distribution name -> its names on conda-forge, where they differ
CONDA_NAMES = {"torch": ("pytorch",), "matplotlib": ("matplotlib-base", "matplotlib")}
#: pyproject.toml extras whose packages a rule's code may import (besides the core dependencies)
RUNTIME_EXTRAS = ("rl", "workflow")
#: environment packages that pyproject.toml does not (and need not) declare
ENV_ONLY = {"python", "pip"}
#: (verb, command-line option) -> distributions no import statement shows. SB3 imports TensorBoard
#: (through torch.utils.tensorboard) only for a model with a ``tensorboard_log``: ``train --tensorboard``.
EXTRA_REQUIREMENTS = {("train", "--tensorboard"): {"tensorboard"}}
#: (rule, wildcard, value) -> imports those jobs never execute. The evaluations and animations of the
#: baselines and of the model-based reference (best_known, which looks ahead with a baseline) run in
#: core.yaml; their path never calls agents.algorithm_class, which imports SB3 (and with it torch).
#: tests/test_conda_envs.py runs these jobs with the imports blocked.
NOT_IN_BASELINES = frozenset({"torch", "stable_baselines3", "sb3_contrib"})
SKIPPED_IMPORTS = {
    (rule, "policy", name): NOT_IN_BASELINES for rule in ("evaluate", "animate") for name in (*BASELINES, *REFERENCES)
}


# ----------------------------------------------------------------- 1. rules and environments
@dataclass
class Job:
    """The jobs of one rule that run in one environment (all of them, or those with these wildcards)."""

    rule: str
    shell: str | None  # the rule's shell command as written (None: run/script/notebook/wrapper/cwl)
    env: Path
    wildcards: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.wildcards.items())
        return f"rule {self.rule}" + (f" ({where})" if where else "")


@dataclass
class Workflow:
    jobs: list[Job]
    problems: list[str]
    exported: dict[str, str]  # environment variables the workflow sets while it loads
    loaded: bool = True


def _alternatives(pattern: str) -> list[str] | None:
    return pattern.split("|") if re.fullmatch(r"[\w.-]+(\|[\w.-]+)*", pattern) else None


def load_workflow(root: Path) -> Workflow:
    """The rules' environments, as Snakemake resolves them (module docstring, point 1)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    jobs, problems = [], []
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.pop("BMSRL_SOURCE", None)
    loaded = True
    try:
        with SnakemakeApi(OutputSettings()) as api:
            workflow_api = api.workflow(
                resource_settings=ResourceSettings(cores=1), snakefile=root / "workflow" / "Snakefile", workdir=root
            )
            workflow = workflow_api._workflow  # private: see the module docstring
            exported = {k: v for k, v in os.environ.items() if saved_env.get(k) != v}
            for rule in workflow.rules:
                code = [d for d in ("script", "notebook", "wrapper", "cwl") if getattr(rule, d, None)]
                if rule.shellcmd is None and not rule.is_run and not code:
                    continue  # a target rule such as `all`: no job code
                if rule.conda_env is None:
                    problems.append(f"rule {rule.name} ({Path(rule.snakefile).name}) has no conda: directive")
                    continue
                jobs += _rule_jobs(rule, {**workflow.wildcard_constraints, **rule.wildcard_constraints}, problems)
    except Exception as exc:  # noqa: BLE001 (a syntax error, an invalid config, ...: one message)
        loaded, exported = False, {}
        problems.append(f"the workflow does not load with Snakemake: {_cause(exc)}")
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return Workflow(jobs, problems, exported, loaded)


def _cause(exc: Exception) -> str:
    """The line of Snakemake's (multi-line) message that names the exception."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return next((line.strip() for line in lines if re.match(r"\s*\w+(Error|Exception):", line)), lines[0])


def _rule_jobs(rule, constraints: dict[str, str], problems: list[str]) -> list[Job]:
    def env_of(wildcards: dict[str, str]) -> Path:
        spec = rule.expand_conda_env(wildcards)
        if not hasattr(spec, "file"):
            raise ValueError(
                f"{getattr(spec, 'name', getattr(spec, 'path', spec))} is a named or directory environment, "
                "not an environment file"
            )
        return Path(spec.file.get_path_or_uri(secret_free=True)).resolve()

    names = (
        []
        if not callable(rule.conda_env)
        else sorted(w for w in rule.wildcard_names if _alternatives(constraints.get(w, "")))
    )
    envs = {}
    for values in itertools.product(*(_alternatives(constraints[w]) for w in names)):
        try:
            envs[values] = env_of(dict(zip(names, values)))
        except Exception as exc:  # noqa: BLE001 (reported)
            given = (
                f" for {dict(zip(names, values))} (only wildcards listed as alternatives in "
                "wildcard_constraints are given)"
                if callable(rule.conda_env)
                else ""
            )
            problems.append(
                f"rule {rule.name}: its conda: {'function fails' if given else 'fails'}{given}: {_cause(exc)}"
            )
            return []

    def decides(i: int) -> bool:
        return any(
            envs[a] != envs[b]
            for a, b in itertools.combinations(envs, 2)
            if all(a[j] == b[j] for j in range(len(names)) if j != i)
        )

    deciding = [i for i in range(len(names)) if decides(i)]
    jobs = {}
    for values, env in envs.items():
        key = tuple((names[i], values[i]) for i in deciding)
        jobs[key] = Job(rule.name, rule.shellcmd, env, dict(key))
    return list(jobs.values())


# ------------------------------------------------------------------- 2. the code a rule runs
def verbs(root: Path) -> dict[str, str]:
    """``bmsrl.cli.VERBS`` as verb -> module, read from the source."""
    for node in ast.parse((root / "src" / PACKAGE / "cli.py").read_text()).body:
        target = node.target if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [None])[0]
        if isinstance(target, ast.Name) and target.id == "VERBS":
            return {verb: module for verb, (module, _help) in ast.literal_eval(node.value).items()}
    raise ValueError(f"{root / 'src' / PACKAGE / 'cli.py'}: no VERBS table")


def shell_scripts(shell: str) -> list[str]:
    """The Python scripts (``python PATH.py``, a path written out) a shell command runs."""
    return re.findall(r"(?:^|[\s;&|(])python3?\s+['\"]?([^\s'\";&|{}]+\.py)\b", shell)


def script_imports(root: Path, script: str) -> tuple[dict[str, list[str]], list[str]]:
    """Top-level third-party import names of a repository script -> where (its own imports, those of the
    scripts beside it that it imports, ``from ablation import ...``: Python puts the script's folder
    on sys.path, and those of every bmsrl module on the way, followed as a verb's are); and what
    cannot be followed."""
    path = Path(script) if Path(script).is_absolute() else root / script
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return {}, [f"{script}: a script outside the repository {root}"]
    if not path.is_file():
        return {}, [f"{script}: no such script in the repository"]
    found: dict[str, list[str]] = {}
    ours: list[str] = []
    todo, seen = [path.resolve()], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        where = str(current.relative_to(root.resolve()))
        for imp in _collect(current.stem, current, where, current.read_text()).found:
            top = imp.name.split(".")[0]
            if top == PACKAGE:
                ours.append(imp.name)
            elif (current.parent / f"{top}.py").is_file():
                todo.append(current.parent / f"{top}.py")
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, []).append(imp.where)
    followed, problems = third_party_imports(root, ours)
    for name, places in followed.items():
        found.setdefault(name, []).extend(places)
    return found, problems


def shell_verbs(shell: str) -> list[tuple[str, str]]:
    """(verb, rest of the command) of every bmsrl call in a shell command."""
    pattern = rf"(?:^|[\s;&|(])(?:{PACKAGE}|python3?\s+-m\s+{PACKAGE}(?:\.cli)?)\s+([\w-]+)([^;&|\n]*)"
    return [(m[1], m[2]) for m in re.finditer(pattern, shell)]


@dataclass(frozen=True)
class Import:
    name: str  # absolute, dotted
    where: str  # file:line
    eager: bool  # runs when the module is imported (not only inside a function)


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, where: str) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.where, self.depth = where, 0
        self.found: list[Import] = []
        self.computed: list[Import] = []  # import_module(<not a string constant>)
        self.strings: set[str] = set()

    def _add(self, name: str, node: ast.AST, into=None) -> None:
        (self.found if into is None else into).append(Import(name, f"{self.where}:{node.lineno}", self.depth == 0))

    def _function(self, node) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        if getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> None:
        """An import inside ``try: ... except ImportError`` (or ModuleNotFoundError) is optional: the code
        handles its absence (config.py's policy_kwargs check without the rl extra), so it is not followed."""
        caught = {getattr(h.type, "id", None) for h in node.handlers} | {
            getattr(e, "id", None) for h in node.handlers if isinstance(h.type, ast.Tuple) for e in h.type.elts
        }
        if caught & {"ImportError", "ModuleNotFoundError"}:
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", node.value):
            self.strings.add(node.value)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            base = self.package.split(".")
            module = ".".join(base[: len(base) - (node.level - 1)] + ([node.module] if node.module else []))
        self._add(module, node)
        if module.split(".")[0] == PACKAGE:  # `from bmsrl import config` imports the submodule bmsrl.config
            for alias in node.names:
                self._add(f"{module}.{alias.name}", node)

    def visit_Call(self, node: ast.Call) -> None:  # importlib.import_module("x") / __import__("x")
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name in ("import_module", "__import__") and node.args:
            if isinstance(node.args[0], ast.Constant):
                self._add(str(node.args[0].value), node)
            else:
                self._add("", node, into=self.computed)
        self.generic_visit(node)


@functools.cache
def _installed_modules() -> frozenset[str]:
    """Top-level module names that installed distributions provide."""
    return frozenset(importlib.metadata.packages_distributions()) - {PACKAGE}


def _module_file(src: Path, module: str) -> Path | None:
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parse(root: Path, module: str) -> _ImportCollector | None:
    path = _module_file(root / "src", module)
    if path is None:
        return None  # `from bmsrl.config import schema`: a name, not a module
    return _collect(module, path, str(path.relative_to(root)), path.read_text())


@functools.lru_cache(maxsize=1024)
def _collect(module: str, path: Path, where: str, text: str) -> _ImportCollector:
    collector = _ImportCollector(module, path.name == "__init__.py", where)
    collector.visit(ast.parse(text, str(path)))
    return collector


def third_party_imports(
    root: Path, modules: list[str], *, eager_only: bool = False
) -> tuple[dict[str, list[str]], list[str]]:
    """Top-level third-party import names reachable from ``modules`` -> where; and what cannot be followed.

    Follows every bmsrl module imported on the way (importing ``bmsrl.x`` runs ``bmsrl/__init__.py``
    first); with ``eager_only``, only the imports that run when the modules are imported.
    """
    installed = _installed_modules()
    found: dict[str, list[str]] = {}
    problems: list[str] = []
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        if module in seen or (parsed := _parse(root, module)) is None:
            continue
        seen.add(module)
        imports = list(parsed.found)
        if parsed.computed and module != f"{PACKAGE}.cli":  # cli: the VERBS dispatch
            strings = set(parsed.strings)
            for imp in parsed.found:
                if imp.name.split(".")[0] == PACKAGE and (other := _parse(root, imp.name)):
                    strings |= other.strings
            names = sorted(s for s in strings if s.split(".")[0] in installed)
            for call in parsed.computed:
                if not names:
                    problems.append(
                        f"{call.where}: imports a module whose name is computed, and neither its module "
                        "nor the bmsrl modules it imports name an installed module in a string"
                    )
                imports += [Import(name, call.where, call.eager) for name in names]
        for imp in imports:
            if eager_only and not imp.eager:
                continue
            top = imp.name.split(".")[0]
            if top == PACKAGE:
                todo.append(imp.name)
            elif top not in sys.stdlib_module_names and top != "__future__" and _module_file(root / "src", top) is None:
                found.setdefault(top, []).append(imp.where)
    return found, problems


def job_requirements(root: Path, job: Job, verb_modules: dict[str, str]) -> tuple[dict[str, list[str]], list[str]]:
    """Distribution -> where the job's code imports it; and the problems in finding out."""
    if job.shell is None:
        return {}, [f"rule {job.rule}: only `shell: {PACKAGE} VERB ...` rules are understood by this check"]
    calls = shell_verbs(job.shell)
    scripts = shell_scripts(job.shell)
    if not calls and not scripts:
        return {}, [f"rule {job.rule}: its shell command runs no `{PACKAGE} VERB` and no script: {job.shell!r}"]
    required: dict[str, list[str]] = {}
    problems = []
    for script in scripts:  # a benchmark run by a rule (workflow/rules/benchmarks.smk)
        imports, cannot = script_imports(root, script)
        problems += [f"rule {job.rule}: {problem}" for problem in cannot]
        for name, where in imports.items():
            required.setdefault(canonicalize_name(DIST_OF_IMPORT.get(name, name)), []).extend(where)
    skipped = set().union(
        *(
            names
            for (rule, wildcard, value), names in SKIPPED_IMPORTS.items()
            if rule == job.rule and job.wildcards.get(wildcard) == value
        )
    )
    for verb, rest in calls:
        if verb not in verb_modules:
            problems.append(f"rule {job.rule}: `{PACKAGE} {verb}` is not a verb of cli.VERBS")
            continue
        roots = [f"{PACKAGE}.cli", verb_modules[verb]]
        imports, cannot = third_party_imports(root, roots)
        eager, _ = third_party_imports(root, roots, eager_only=True)
        problems += cannot
        for name in sorted(skipped & eager.keys()):
            problems.append(
                f"{job}: SKIPPED_IMPORTS lists {name}, but it is imported at import time ({', '.join(eager[name])})"
            )
        for name, where in imports.items():
            if name not in skipped:
                required.setdefault(canonicalize_name(DIST_OF_IMPORT.get(name, name)), []).extend(where)
        for (extra_verb, option), dists in EXTRA_REQUIREMENTS.items():
            if verb == extra_verb and re.search(rf"(^|\s){re.escape(option)}(\s|=|$)", rest):
                for dist in dists:
                    required.setdefault(canonicalize_name(dist), []).append(f"`{PACKAGE} {verb} {option}`")
    return required, problems


# ------------------------------------------------------------------------ 3. version ranges
def normalised(specifiers: SpecifierSet) -> frozenset:
    """The clauses of a range, versions compared as versions (``>=6`` and ``>=6.0`` are the same)."""
    return frozenset(
        (s.operator, s.version if s.version.endswith(".*") or s.operator == "===" else Version(s.version))
        for s in specifiers
    )


def conda_spec(text: str) -> tuple[str, SpecifierSet]:
    """Name and range of a conda match spec: ``numpy >=1.26``, ``pytorch >=2.8 cpu_*`` (build string
    dropped), ``name=1.2`` (1.2.*), ``name 1.2`` (exactly 1.2). ValueError for anything else (``|``, ``[]``)."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", text)
    if not match or any(c in text for c in "|[]"):
        raise ValueError(f"cannot read the conda match spec {text!r}")
    name, rest = match[1], match[2]
    if re.fullmatch(r"=[^=\s]+(=\S+)?", rest):  # name=1.2 or name=1.2=build
        rest = rest[1:].split("=")[0]
        rest = rest if rest.endswith("*") else rest + ".*"
    words = rest.split()
    if len(words) > 2 or (len(words) == 2 and words[1][0] in "<>=!~,"):
        raise ValueError(f"cannot read the conda match spec {text!r}")
    clauses = []
    for part in words[0].split(",") if words else []:
        if not re.match(r"(==|!=|<=|>=|<|>|~=)", part):
            part = "==" + (part[:-1] + ".*" if part.endswith("*") and not part.endswith(".*") else part)
        clauses.append(part)
    try:
        return canonicalize_name(name), SpecifierSet(",".join(clauses))
    except InvalidSpecifier as exc:
        raise ValueError(f"cannot read the conda match spec {text!r}: {exc}") from None


@dataclass
class Env:
    path: Path
    packages: dict[str, tuple[SpecifierSet, str]]  # PyPI name -> (range, the line as written)
    channels: list


def read_env(path: Path) -> tuple[Env, list[str]]:
    data = yaml.safe_load(path.read_text()) or {}
    packages, problems = {}, []
    for entry in data.get("dependencies") or []:
        if isinstance(entry, dict) and set(entry) == {"pip"}:
            for line in entry["pip"]:
                req = Requirement(line)
                packages[canonicalize_name(req.name)] = (req.specifier, f"pip: {line}")
            continue
        try:
            name, spec = conda_spec(str(entry))
        except ValueError as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        name = next((pypi for pypi, names in CONDA_NAMES.items() if name in names), name)
        packages[name] = (spec, str(entry))
    return Env(path, packages, data.get("channels") or []), problems


def declared_requirements(pyproject: dict) -> dict[str, Requirement]:
    """Canonical name -> requirement, of what the rules' code may need: pyproject.toml's
    dependencies and its RUNTIME_EXTRAS (the workflow's jobs run the config-reading ``bmsrl`` verbs
    and, in rl.yaml, the learning stack)."""
    project = pyproject["project"]
    lines = [
        *project["dependencies"],
        *(r for extra in RUNTIME_EXTRAS for r in project["optional-dependencies"][extra]),
    ]
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def read_pins(path: Path) -> dict[str, Version]:
    """Canonical name -> version of every ``name==version`` line of constraints.txt (``path``)."""
    pins = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", line)
        if match is None:
            raise ValueError(f"{path.name}:{number}: {line!r} is not name==version")
        pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def check_env_file(env: Env, pyproject: dict, pins: dict[str, Version] | None = None) -> list[str]:
    """Pins and ranges of ``env`` against constraints.txt (``pins``) and pyproject.toml (module
    docstring, point 3)."""
    name, problems, pins = env.path.name, [], pins or {}
    declared = declared_requirements(pyproject)
    build = {canonicalize_name(r.name): r for r in map(Requirement, pyproject["build-system"]["requires"])}
    show = lambda spec: str(spec) or "(any version)"  # noqa: E731
    if env.channels != ["conda-forge", "nodefaults"]:
        problems.append(
            f"{name}: channels are {env.channels}, expected [conda-forge, nodefaults] (the cpu_* "
            "pytorch build and the ranges assume conda-forge only)"
        )
    for dist, (spec, line) in sorted(env.packages.items()):
        if dist in ENV_ONLY:
            continue
        req = declared.get(dist) or build.get(dist)
        if req is None:
            problems.append(f"{name}: {line!r} is not declared in pyproject.toml")
        elif dist in pins:
            pinned = pins[dist]
            if normalised(spec) != {("==", pinned)}:
                problems.append(
                    f"{name}: {line!r} is not constraints.txt's {dist}=={pinned}: pin the version the results "
                    f"were produced with ({line.split()[0]} =={pinned})"
                )
            elif not req.specifier.contains(pinned, prereleases=True):
                problems.append(
                    f"{name}: {line!r} pins {pinned}, outside pyproject.toml's {req} ({show(req.specifier)})"
                )
        elif normalised(spec) != normalised(req.specifier):
            problems.append(
                f"{name}: {line!r} allows {show(spec)} but pyproject.toml declares {req} "
                f"({show(req.specifier)}); the ranges must be the same"
            )
    for dist, req in sorted(build.items()):
        if dist not in env.packages:
            problems.append(
                f"{name}: lacks {dist} ({req}, [build-system] requires), needed by the post-deploy "
                "script's pip install --no-build-isolation"
            )
    if "pip" not in env.packages:
        problems.append(f"{name}: lacks pip, which the post-deploy script runs")
    requires_python = SpecifierSet(pyproject["project"].get("requires-python", ""))
    if "python" not in env.packages:
        return [*problems, f"{name}: does not pin python (requires-python is {requires_python})"]
    spec, line = env.packages["python"]
    missing = normalised(requires_python) - normalised(spec)
    if missing:
        clauses = ",".join(sorted(f"{op}{version}" for op, version in missing))
        problems.append(
            f"{name}: {line!r} lacks requires-python's {clauses}, so it admits Pythons bmsrl does not support"
        )
    floors = [Version(s.version) for s in requires_python if s.operator in (">=", "==", "~=")]
    if floors and not spec.contains(max(floors), prereleases=True):
        problems.append(
            f"{name}: {line!r} excludes Python {max(floors)}, the lowest requires-python ({requires_python}) allows"
        )
    return problems


# ------------------------------------------------------------------------- 4. the package itself
def check_post_deploy(env_yaml: Path, source: Path, tmp: Path) -> list[str]:
    """``<env>.post-deploy.sh`` exists, is executable and pip-installs ``source`` with --no-deps."""
    script = env_yaml.with_name(env_yaml.stem + ".post-deploy.sh")
    if not script.is_file():
        return [f"{env_yaml.name}: no {script.name} next to it installs the bmsrl package into the environment"]
    problems = [] if os.access(script, os.X_OK) else [f"{script.name}: not executable"]
    text = script.read_text()
    interpreter = text.splitlines()[0][2:].split() if text.startswith("#!") else ["sh"]
    scratch = Path(tempfile.mkdtemp(prefix=script.stem, dir=tmp))
    stubs, log, workdir = scratch / "bin", scratch / "calls.jsonl", scratch / "cwd"
    stubs.mkdir()
    workdir.mkdir()
    for tool in ("python", "python3", "pip", "pip3"):
        (stubs / tool).write_text(
            f'#!{sys.executable}\nimport json, sys\nwith open({str(log)!r}, "a") as f:\n'
            f'    f.write(json.dumps([{tool!r}, *sys.argv[1:]]) + "\\n")\n'
        )
        (stubs / tool).chmod(0o755)
    env = dict(os.environ, BMSRL_SOURCE=str(source), PATH=f"{stubs}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        [*interpreter, str(script)], cwd=workdir, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        return [*problems, f"{script.name}: exits with {result.returncode}: {result.stderr.strip()}"]
    installs = []
    for call in (json.loads(line) for line in log.read_text().splitlines()) if log.exists() else []:
        args = call[1:]
        if call[0].startswith("python") and args[:2] == ["-m", "pip"]:
            args = args[2:]
        elif not call[0].startswith("pip"):
            continue
        if args[:1] == ["install"]:
            installs.append(args[1:])
    targets = [Path(workdir, a).resolve() for args in installs for a in args if not a.startswith("-")]
    if source.resolve() not in targets:
        problems.append(
            f"{script.name}: does not pip install the repository (BMSRL_SOURCE={source}); pip installs: {installs}"
        )
    elif not any("--no-deps" in args for args in installs):
        problems.append(
            f"{script.name}: pip installs the repository without --no-deps, so pip may replace the "
            "environment's conda packages"
        )
    return problems


# ------------------------------------------------------------------------------------ the checker
def check_envs(root: Path, tmp: Path, workflow: Workflow | None = None) -> list[str]:
    """Every inconsistency between the rules, the code they run, envs/*.yaml and pyproject.toml."""
    root = root.resolve()
    workflow = workflow or load_workflow(root)
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    declared = set(declared_requirements(pyproject))
    jobs, problems = workflow.jobs, list(workflow.problems)
    try:
        pins = read_pins(root / "constraints.txt")
    except (OSError, ValueError) as exc:
        pins = {}
        problems.append(f"constraints.txt: unreadable ({exc}); the environments' pins are not checked")
    if not workflow.loaded:
        return problems
    source = workflow.exported.get("BMSRL_SOURCE")
    if source is None:
        problems.append("the workflow does not export BMSRL_SOURCE, from which the post-deploy scripts install bmsrl")
    elif Path(source).resolve() != root:
        problems.append(f"the workflow exports BMSRL_SOURCE={source}, not the repository {root}")
    envs = {}
    for path in sorted(set((root / "envs").glob("*.yaml")) | {job.env for job in jobs}):
        used_by = sorted({job.rule for job in jobs if job.env == path})
        if not path.is_file():
            problems.append(f"{path.relative_to(root)}: used by {used_by} but does not exist")
            continue
        if not used_by:
            problems.append(f"{path.relative_to(root)}: no rule uses it")
        envs[path], env_problems = read_env(path)
        problems += env_problems + check_env_file(envs[path], pyproject, pins)
        problems += check_post_deploy(path, Path(source or root), tmp)
    verb_modules = verbs(root)
    for job in jobs:
        if job.env not in envs:
            continue
        required, job_problems = job_requirements(root, job, verb_modules)
        problems += job_problems
        for dist, where in sorted(required.items()):
            if dist not in declared:
                problems.append(f"{job}: imports {dist} ({', '.join(where)}), which pyproject.toml does not declare")
            if dist not in envs[job.env].packages:
                conda = CONDA_NAMES.get(dist, (dist,))[0]
                problems.append(f"{job}: runs in {job.env.name}, which lacks {conda} (needed by {', '.join(where)})")
    return list(dict.fromkeys(problems))  # one message per problem, in order


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else ROOT)
    if not (root / "workflow" / "Snakefile").is_file():
        print(f"conda_envs: {root} is not the bmsrl repository (no workflow/Snakefile)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        problems = check_envs(root, Path(tmp))
    for problem in problems:
        print(problem)
    print(f"{len(problems)} conda environment problem(s)" if problems else "conda environments: OK", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
