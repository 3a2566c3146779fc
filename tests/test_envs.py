"""The conda environments of the workflow (envs/*.yaml) against the code the rules run and pyproject.toml.

``check_envs(root, tmp)`` returns every inconsistency it finds, one message each; the main test
asserts that the list is empty, the others that it reports what it should:

1. Rule -> environment. The rules come from ``workflow/Snakefile`` and the files it includes.
   Every rule that runs a command needs a ``conda:`` directive: a path (relative to the rule's file,
   as Snakemake resolves it) or a function of the wildcards defined in the workflow's files, which
   is called with every value of the wildcards it reads (``evaluate_env``: trained agents -> rl.yaml,
   baselines -> core.yaml).
2. Rule -> code -> imports. A rule's ``shell:`` runs ``bmsrl VERB`` (or ``python -m bmsrl[.cli]
   VERB``); ``bmsrl.cli.VERBS`` names the verb's module. The third-party imports of that module and
   of ``bmsrl.cli`` are followed with ``ast`` through every bmsrl module they import, imports inside
   functions included (they run when the function does; an import guarded by ``try`` counts too),
   ``if TYPE_CHECKING:`` blocks excluded. Each one must be a dependency of pyproject.toml and be in
   the rule's environment, except the imports in ``SKIPPED_IMPORTS`` (checked to be function-local,
   and run without them in ``test_baseline_evaluation_runs_without_torch_and_sb3``);
   ``EXTRA_REQUIREMENTS`` adds what no import statement shows (TensorBoard for ``train``).
3. Versions. For a dependency that an environment and pyproject.toml both declare, the two version
   ranges must be *the same range*: the same set of (operator, version) clauses once versions are
   compared as versions (``>=6`` == ``>=6.0``), a conda build string (``pytorch >=2.8 cpu_*``) dropped.
   A wider environment range lets conda install versions bmsrl does not claim to support; a narrower
   one means the workflow never runs versions that pyproject.toml claims to support (or
   pyproject.toml is stale). Python is the one exception, because conda-forge lags new Pythons:
   the environment's ``python`` range must contain every clause of ``requires-python`` (so it is
   inside it, and pip will install bmsrl into it) and admit requires-python's lowest version (so it
   does not raise the floor); an extra upper cap is allowed. Build requirements ([build-system]
   requires) are checked like dependencies, because the post-deploy script builds bmsrl with
   ``--no-build-isolation`` from what the environment provides. Every other package an environment
   lists (except ``python`` and ``pip``) must be declared in pyproject.toml.
4. The package itself. Next to each ``envs/NAME.yaml`` an executable ``NAME.post-deploy.sh`` runs
   (with its shebang's interpreter, as Snakemake does) ``pip install --no-deps`` of the repository
   it is given in ``BMSRL_SOURCE``, which the workflow exports. The script is run with ``python``
   and ``pip`` stubs on PATH that record their arguments.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "bmsrl"

#: import name -> distribution name on PyPI, where the two differ beyond ``_`` vs ``-``
DIST_OF_IMPORT = {"yaml": "pyyaml", "sklearn": "scikit-learn", "PIL": "pillow", "skimage": "scikit-image"}
#: distribution name on PyPI -> its names on conda-forge, where they differ
CONDA_NAMES = {"torch": ("pytorch",), "matplotlib": ("matplotlib-base", "matplotlib")}
#: environment packages that pyproject.toml does not (and need not) declare
ENV_ONLY = {"python", "pip"}

#: Requirements that no import statement shows: (verb, command-line option) -> distributions.
#: Stable-Baselines3 imports TensorBoard (through torch.utils.tensorboard) only when a model has a
#: ``tensorboard_log``, which ``bmsrl train --tensorboard DIR`` sets.
EXTRA_REQUIREMENTS = {("train", "--tensorboard"): {"tensorboard"}}

#: Imports that the jobs of a rule with one wildcard value never execute: (rule, wildcard, value)
#: -> import names. The baseline evaluations run in core.yaml (``evaluate_env``, common.smk): their
#: path never calls ``bmsrl.train.algorithm_class``, which is how ``bmsrl evaluate`` reaches SB3 and
#: torch. check_envs reports an entry whose imports run at import time after all, and
#: test_baseline_evaluation_runs_without_torch_and_sb3 runs these jobs with the imports blocked.
_NOT_IN_BASELINES = frozenset({"torch", "stable_baselines3", "sb3_contrib"})
SKIPPED_IMPORTS = {
    ("evaluate", "policy", "no_balancing"): _NOT_IN_BASELINES,
    ("evaluate", "policy", "rule_based"): _NOT_IN_BASELINES,
}


# ------------------------------------------------------------------------------ the workflow's rules
@dataclass
class Rule:
    name: str
    file: Path
    directives: dict[str, str] = field(default_factory=dict)  # directive -> its source text


@dataclass
class Job:
    """The jobs of one rule that run in one environment (all of them, or those with these wildcards)."""

    rule: Rule
    env: Path
    wildcards: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.wildcards.items())
        return f"rule {self.rule.name}" + (f" ({where})" if where else "")


def _top_level_blocks(text: str) -> list[list[str]]:
    """The file's top-level statements: a line at column 0 and the indented lines after it."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line.strip() and not line[0].isspace() and line[0] not in "#)]}":  # closers continue a block
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    return blocks


def _directives(body: list[str]) -> dict[str, str]:
    """``name: value`` directives of a rule body (docstring skipped), value with its continuation lines."""
    lines = [line for line in body if line.strip() and not line.strip().startswith("#")]
    if not lines:
        return {}
    indent = len(lines[0]) - len(lines[0].lstrip())
    out: dict[str, str] = {}
    current = None
    in_doc = False
    for line in lines:
        stripped = line.strip()
        if in_doc:
            in_doc = not stripped.endswith(('"""', "'''"))
            continue
        here = len(line) - len(line.lstrip())
        if here == indent and stripped[:3] in ('"""', "'''"):
            in_doc = not (len(stripped) > 3 and stripped.endswith(stripped[:3]))
            continue
        match = re.fullmatch(r"(\w+):(.*)", stripped)
        if here == indent and match:
            current = match[1]
            out[current] = match[2].strip()
        elif current is not None and here > indent:
            out[current] += "\n" + stripped
    return out


def workflow_files(root: Path) -> list[Path]:
    """``workflow/Snakefile`` and the files it includes (recursively), in include order."""
    files, todo = [], [root / "workflow" / "Snakefile"]
    while todo:
        path = todo.pop(0)
        files.append(path)
        for match in re.finditer(r"^include:\s*(.+?)\s*$", path.read_text(), re.MULTILINE):
            todo.append((path.parent / ast.literal_eval(match[1])).resolve())
    return files


def parse_workflow(root: Path) -> tuple[list[Rule], dict, dict[str, ast.FunctionDef], dict[str, list[str]]]:
    """The rules; a namespace with the files' literal constants and functions; the functions' syntax
    trees; the wildcards whose values wildcard_constraints lists."""
    rules, namespace, defs, wildcards = [], {}, {}, {}
    constraint_blocks = []
    for path in workflow_files(root):
        for block in _top_level_blocks(path.read_text()):
            head = block[0]
            if match := re.match(r"(?:rule|checkpoint)\s+(\w+)\s*:", head):
                rules.append(Rule(match[1], path, _directives(block[1:])))
            elif head.startswith("def "):
                tree = ast.parse("\n".join(block))
                defs[tree.body[0].name] = tree.body[0]
                exec(compile(tree, str(path), "exec"), namespace)  # noqa: S102 (the workflow's own function definitions)
            elif head.startswith("wildcard_constraints:"):
                constraint_blocks.append("\n".join(block[1:]))
            elif match := re.match(r"([A-Za-z_]\w*)\s*=", head):
                try:  # constants such as ALGOS = [...]; anything that is not a literal is skipped
                    namespace[match[1]] = ast.literal_eval("\n".join(block).split("=", 1)[1].strip())
                except (ValueError, SyntaxError):
                    pass
    for body in constraint_blocks:
        try:
            constraints = eval(f"dict({body}\n)", {"__builtins__": {"dict": dict}}, dict(namespace))
        except (NameError, SyntaxError, TypeError, AttributeError):
            constraints = {}  # not computable from the literals: those wildcards stay unknown
        for name, pattern in constraints.items():
            if re.fullmatch(r"[\w.-]+(\|[\w.-]+)*", pattern):
                wildcards[name] = pattern.split("|")
    return rules, namespace, defs, wildcards


def _wildcards_read(function: ast.FunctionDef | ast.Lambda) -> list[str]:
    """Attributes of the function's first argument (the wildcards) that its body reads."""
    param = function.args.args[0].arg
    return sorted({node.attr for node in ast.walk(function) if isinstance(node, ast.Attribute)
                   and isinstance(node.value, ast.Name) and node.value.id == param})  # fmt: skip


class _Wildcards(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def jobs_of(root: Path) -> tuple[list[Job], list[str]]:
    """Every (rule, environment) pair of the workflow, and the rules whose environment is unknown."""
    rules, namespace, defs, wildcards = parse_workflow(root)
    jobs, problems = [], []
    for rule in rules:
        runs = [d for d in ("shell", "script", "run", "notebook", "wrapper", "cwl") if d in rule.directives]
        if not runs:
            continue  # a target rule such as `all`: no job code
        if "conda" not in rule.directives:
            problems.append(f"rule {rule.name} ({rule.file.name}) has no conda: directive")
            continue
        source = rule.directives["conda"].strip().rstrip(",")
        expression = ast.parse(source, mode="eval").body
        if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
            jobs.append(Job(rule, (rule.file.parent / expression.value).resolve()))
            continue
        function = defs.get(expression.id) if isinstance(expression, ast.Name) else expression
        if not isinstance(function, (ast.FunctionDef, ast.Lambda)) or len(function.args.args) != 1:
            problems.append(f"rule {rule.name}: cannot resolve `conda: {source}` (a path, or a function of the "
                            "wildcards defined in a workflow file)")  # fmt: skip
            continue
        read = _wildcards_read(function)
        unknown = [w for w in read if w not in wildcards]
        if unknown:
            problems.append(f"rule {rule.name}: conda: function reads wildcards {unknown} whose values are not a "
                            "list of alternatives in wildcard_constraints")  # fmt: skip
            continue
        for values in itertools.product(*(wildcards[w] for w in read)):
            chosen = dict(zip(read, values))
            try:
                env = eval(source, namespace)(_Wildcards(chosen))
            except Exception as exc:  # noqa: BLE001 (reported)
                problems.append(f"rule {rule.name}: `conda: {source}` fails for {chosen}: {exc!r}")
                continue
            if not isinstance(env, str):
                problems.append(f"rule {rule.name}: `conda: {source}` returns {env!r} for {chosen}, not a path")
                continue
            jobs.append(Job(rule, (rule.file.parent / env).resolve(), chosen))
    return jobs, problems


# ------------------------------------------------------------------------- the code a rule runs
def verbs(root: Path) -> dict[str, str]:
    """``bmsrl.cli.VERBS`` as verb -> module, read from the source."""
    tree = ast.parse((root / "src" / PACKAGE / "cli.py").read_text())
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign)
                                                                      else None)  # fmt: skip
        if isinstance(target, ast.Name) and target.id == "VERBS":
            return {verb: module for verb, (module, _help) in ast.literal_eval(node.value).items()}
    raise AssertionError("no VERBS table in cli.py")


def shell_verbs(shell: str) -> list[tuple[str, str]]:
    """(verb, rest of the command) of every bmsrl call in a rule's ``shell:`` command."""
    pattern = rf"(?:^|[\s;&|(])(?:{PACKAGE}|python3?\s+-m\s+{PACKAGE}(?:\.cli)?)\s+(\w+)([^;&|\n]*)"
    return [(m[1], m[2]) for m in re.finditer(pattern, shell)]


@dataclass(frozen=True)
class Import:
    name: str  # absolute, dotted
    where: str  # file:line
    eager: bool  # runs when the module is imported (not only inside a function)


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, where: str) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.where, self.depth, self.found = where, 0, []

    def _add(self, name: str, node: ast.AST) -> None:
        self.found.append(Import(name, f"{self.where}:{node.lineno}", self.depth == 0))

    def _function(self, node) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):  # fmt: skip
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module
        self._add(module, node)
        if module.split(".")[0] == PACKAGE:  # `from bmsrl import config` imports the submodule bmsrl.config
            for alias in node.names:
                self._add(f"{module}.{alias.name}", node)

    def visit_Call(self, node: ast.Call) -> None:  # importlib.import_module("x") / __import__("x")
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            self._add(str(node.args[0].value), node)
        self.generic_visit(node)


def _module_file(src: Path, module: str) -> Path | None:
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports(root: Path, modules: list[str], *, eager_only: bool = False) -> dict[str, list[str]]:
    """Top-level third-party import names reachable from ``modules`` -> where they are imported.

    Follows every bmsrl module imported on the way (importing ``bmsrl.x`` runs ``bmsrl/__init__.py``
    first); with ``eager_only``, only the imports that run when the modules are imported.
    """
    src = root / "src"
    found: dict[str, list[str]] = {}
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(src, module)
        if path is None:
            continue  # `from bmsrl.config import schema`: a name, not a module
        collector = _ImportCollector(module, path.name == "__init__.py", str(path.relative_to(root)))
        collector.visit(ast.parse(path.read_text(), str(path)))
        for imp in collector.found:
            if eager_only and not imp.eager:
                continue
            top = imp.name.split(".")[0]
            if top == PACKAGE:
                todo.append(imp.name)
            elif top not in sys.stdlib_module_names and top != "__future__" and _module_file(src, top) is None:
                found.setdefault(top, []).append(imp.where)
    return found


def job_requirements(root: Path, job: Job, verb_modules: dict[str, str]) -> tuple[dict[str, list[str]], list[str]]:
    """Distribution -> where the job's code imports it; and the problems in finding out."""
    rule = job.rule
    if "shell" not in rule.directives:
        runs = next(d for d in ("script", "run", "notebook", "wrapper", "cwl") if d in rule.directives)
        return {}, [f"rule {rule.name}: `{runs}:` is not understood by this check (only `shell: bmsrl VERB`)"]
    shell = "".join(ast.literal_eval(f"({rule.directives['shell'].rstrip(',')},)"))
    calls = shell_verbs(shell)
    if not calls:
        return {}, [f"rule {rule.name}: its shell command runs no `{PACKAGE} VERB`: {shell!r}"]
    required: dict[str, list[str]] = {}
    problems = []
    for verb, rest in calls:
        if verb not in verb_modules:
            problems.append(f"rule {rule.name}: `{PACKAGE} {verb}` is not a verb of cli.VERBS")
            continue
        roots = [f"{PACKAGE}.cli", verb_modules[verb]]
        imports = third_party_imports(root, roots)
        eager = third_party_imports(root, roots, eager_only=True)
        skipped = set().union(*(names for (r, w, v), names in SKIPPED_IMPORTS.items()
                                if r == rule.name and job.wildcards.get(w) == v))  # fmt: skip
        for name in sorted(skipped & eager.keys()):
            problems.append(f"{job}: SKIPPED_IMPORTS lists {name}, but it is imported at import time "
                            f"({', '.join(eager[name])})")  # fmt: skip
        for name, where in imports.items():
            if name not in skipped:
                required.setdefault(canonicalize_name(DIST_OF_IMPORT.get(name, name)), []).extend(where)
        for (extra_verb, option), dists in EXTRA_REQUIREMENTS.items():
            if verb == extra_verb and re.search(rf"(^|\s){re.escape(option)}(\s|=|$)", rest):
                for dist in dists:
                    required.setdefault(canonicalize_name(dist), []).append(f"`{PACKAGE} {verb} {option}`")
    return required, problems


# ---------------------------------------------------------------------------------- version ranges
def _clause(spec) -> tuple[str, object]:
    version = spec.version
    if version.endswith(".*") or spec.operator == "===":
        return spec.operator, version
    return spec.operator, Version(version)


def normalised(specifiers: SpecifierSet) -> frozenset:
    """The clauses of a range, versions compared as versions (``>=6`` and ``>=6.0`` are the same)."""
    return frozenset(_clause(s) for s in specifiers)


def conda_spec(text: str) -> tuple[str, SpecifierSet]:
    """Name and version range of a conda match spec such as ``numpy >=1.26`` or ``pytorch >=2.8 cpu_*``.

    The build string (the word after the version) is dropped. ``name=1.2`` means 1.2.*, a bare
    version after a space is exact. Raises ValueError for what it cannot read (``|``, brackets).
    """
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", text)
    if not match or any(c in text for c in "|[]"):
        raise ValueError(f"cannot read the conda match spec {text!r}")
    name, rest = match[1], match[2]
    if re.fullmatch(r"=[^=\s]+(=\S+)?", rest):  # name=1.2 or name=1.2=build
        rest = rest[1:].split("=")[0]
        rest = rest if rest.endswith("*") else rest + ".*"
    words = rest.split()
    if len(words) > 2 or (len(words) == 2 and words[1][0] in "<>=!~,"):  # a build string is not a version
        raise ValueError(f"cannot read the conda match spec {text!r}")
    clauses = []
    for part in (words[0].split(",") if words else []):
        if not re.match(r"(==|!=|<=|>=|<|>|~=)", part):
            part = "==" + (part[:-1] + ".*" if part.endswith("*") and not part.endswith(".*") else part)
        clauses.append(part)
    try:
        return canonicalize_name(name), SpecifierSet(",".join(clauses))
    except InvalidSpecifier as exc:
        raise ValueError(f"cannot read the conda match spec {text!r}: {exc}") from None


def pypi_name(conda_name: str) -> str:
    return next((pypi for pypi, names in CONDA_NAMES.items() if conda_name in names), conda_name)


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
        packages[pypi_name(name)] = (spec, str(entry))
    return Env(path, packages, data.get("channels") or []), problems


def _show(spec: SpecifierSet) -> str:
    return str(spec) or "(any version)"


def check_env_file(env: Env, pyproject: dict) -> list[str]:
    """Ranges of ``env`` against pyproject.toml (module docstring, point 3)."""
    name = env.path.name
    problems = []
    declared = {canonicalize_name(r.name): r for r in map(Requirement, pyproject["project"]["dependencies"])}
    build = {canonicalize_name(r.name): r for r in map(Requirement, pyproject["build-system"]["requires"])}
    if env.channels != ["conda-forge", "nodefaults"]:
        problems.append(f"{name}: channels are {env.channels}, expected [conda-forge, nodefaults] (the cpu_* "
                        "pytorch build and the ranges assume conda-forge only)")  # fmt: skip
    for dist, (spec, line) in sorted(env.packages.items()):
        if dist in ENV_ONLY:
            continue
        req = declared.get(dist) or build.get(dist)
        if req is None:
            problems.append(f"{name}: {line!r} is not declared in pyproject.toml")
        elif normalised(spec) != normalised(req.specifier):
            problems.append(f"{name}: {line!r} allows {_show(spec)} but pyproject.toml declares {req} "
                            f"({_show(req.specifier)}); the ranges must be the same")  # fmt: skip
    for dist, req in sorted(build.items()):
        if dist not in env.packages:
            problems.append(f"{name}: lacks {dist} ({req}, [build-system] requires), needed by the post-deploy "
                            "script's pip install --no-build-isolation")  # fmt: skip
    if "pip" not in env.packages:
        problems.append(f"{name}: lacks pip, which the post-deploy script runs")
    requires_python = SpecifierSet(pyproject["project"].get("requires-python", ""))
    if "python" not in env.packages:
        problems.append(f"{name}: does not pin python (requires-python is {requires_python})")
    else:
        spec, line = env.packages["python"]
        missing = normalised(requires_python) - normalised(spec)
        if missing:
            clauses = ",".join(sorted(f"{op}{version}" for op, version in missing))
            problems.append(f"{name}: {line!r} lacks requires-python's {clauses}, so it admits Pythons bmsrl "
                            "does not support")  # fmt: skip
        floors = [Version(s.version) for s in requires_python if s.operator in (">=", "==", "~=")]
        if floors and not spec.contains(max(floors), prereleases=True):
            problems.append(f"{name}: {line!r} excludes Python {max(floors)}, the lowest requires-python "
                            f"({requires_python}) allows")  # fmt: skip
    return problems


def check_post_deploy(env_yaml: Path, root: Path, tmp: Path) -> list[str]:
    """``<env>.post-deploy.sh`` exists, is executable and pip-installs ``root`` (module docstring, point 4)."""
    script = env_yaml.with_name(env_yaml.stem + ".post-deploy.sh")
    if not script.is_file():
        return [f"{env_yaml.name}: no {script.name} next to it installs the bmsrl package into the environment"]
    problems = []
    if not os.access(script, os.X_OK):
        problems.append(f"{script.name}: not executable")
    text = script.read_text()
    interpreter = text.splitlines()[0][2:].split() if text.startswith("#!") else ["sh"]
    scratch = Path(tempfile.mkdtemp(prefix=script.stem, dir=tmp))
    stubs, log, workdir = scratch / "bin", scratch / "calls.jsonl", scratch / "cwd"
    stubs.mkdir()
    workdir.mkdir()
    for tool in ("python", "python3", "pip", "pip3"):
        stub = stubs / tool
        stub.write_text(f'#!{sys.executable}\nimport json, sys\nwith open({str(log)!r}, "a") as f:\n'
                        f'    f.write(json.dumps([{tool!r}, *sys.argv[1:]]) + "\\n")\n')  # fmt: skip
        stub.chmod(0o755)
    env = dict(os.environ, BMSRL_SOURCE=str(root), PATH=f"{stubs}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run([*interpreter, str(script)], cwd=workdir, env=env, capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    if result.returncode != 0:
        return [*problems, f"{script.name}: exits with {result.returncode}: {result.stderr.strip()}"]
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    installs = []
    for call in calls:
        args = call[1:]
        if call[0].startswith("python") and args[:2] == ["-m", "pip"]:
            args = args[2:]
        elif not call[0].startswith("pip"):
            continue
        if args[:1] == ["install"]:
            installs.append(args[1:])
    targets = [Path(workdir, a).resolve() for args in installs for a in args if not a.startswith("-")]
    if Path(root).resolve() not in targets:
        problems.append(f"{script.name}: does not pip install the repository (BMSRL_SOURCE={root}); "
                        f"pip installs: {installs}")  # fmt: skip
    elif not any("--no-deps" in args for args in installs):
        problems.append(f"{script.name}: pip installs the repository without --no-deps, so pip may replace the "
                        "environment's conda packages")  # fmt: skip
    if "BMSRL_SOURCE" in text and not any("BMSRL_SOURCE" in f.read_text() for f in workflow_files(root)):
        problems.append(f"{script.name}: reads BMSRL_SOURCE, which no workflow file sets")
    return problems


# ------------------------------------------------------------------------------------- the checker
def check_envs(root: Path, tmp: Path) -> list[str]:
    """Every inconsistency between the rules, the code they run, envs/*.yaml and pyproject.toml."""
    root = root.resolve()
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    declared = {canonicalize_name(Requirement(d).name) for d in pyproject["project"]["dependencies"]}
    jobs, problems = jobs_of(root)
    env_files = sorted(set((root / "envs").glob("*.yaml")) | {job.env for job in jobs})
    envs = {}
    for path in env_files:
        used_by = sorted({job.rule.name for job in jobs if job.env == path})
        if not path.is_file():
            problems.append(f"{path.relative_to(root)}: used by {used_by} but does not exist")
            continue
        if not used_by:
            problems.append(f"{path.relative_to(root)}: no rule uses it")
        envs[path], env_problems = read_env(path)
        problems += env_problems + check_env_file(envs[path], pyproject)
        problems += check_post_deploy(path, root, tmp)
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


@pytest.fixture(scope="module")
def analysis():
    jobs, problems = jobs_of(ROOT)
    return {(job.rule.name, tuple(job.wildcards.items())): job for job in jobs}, problems


def test_conda_envs_match_the_code_and_pyproject(tmp_path):
    """Every rule's environment has what the rule's code imports (and pyproject.toml declares it); every
    range an environment and pyproject.toml both give is the same range (python: inside requires-python
    and admitting its floor); each environment's post-deploy script pip-installs the repository."""
    problems = check_envs(ROOT, tmp_path)
    assert not problems, "\n".join(["conda environment problems:", *problems])


def test_the_checker_sees_the_workflow(analysis):
    """The parse finds every rule and the environment Snakemake gives it (guards against a vacuous pass)."""
    jobs, problems = analysis
    assert not problems
    envs = {key: job.env.name for key, job in jobs.items()}
    policy = {f"{k[1][0][1]}": v for k, v in envs.items() if k[0] == "evaluate"}
    assert policy == {"dqn": "rl.yaml", "ppo": "rl.yaml", "maskable_ppo": "rl.yaml", "a2c": "rl.yaml", "trpo": "rl.yaml", "ars": "rl.yaml",
                      "no_balancing": "core.yaml", "rule_based": "core.yaml"}  # fmt: skip
    assert {k[0]: v for k, v in envs.items() if k[0] != "evaluate"} == {
        "ocv": "core.yaml", "train": "rl.yaml", "aggregate": "core.yaml",
        "plot_traces": "core.yaml", "plot_training": "core.yaml", "plot_metrics": "core.yaml",
    }  # fmt: skip
    verb_modules = verbs(ROOT)
    train, _ = job_requirements(ROOT, jobs[("train", ())], verb_modules)
    assert {"torch", "stable-baselines3", "sb3-contrib", "tensorboard", "gymnasium", "numba"} <= train.keys()
    dqn, _ = job_requirements(ROOT, jobs[("evaluate", (("policy", "dqn"),))], verb_modules)
    baseline, _ = job_requirements(ROOT, jobs[("evaluate", (("policy", "rule_based"),))], verb_modules)
    assert dqn.keys() - baseline.keys() == {"torch", "stable-baselines3", "sb3-contrib"}
    plots, _ = job_requirements(ROOT, jobs[("plot_traces", ())], verb_modules)
    assert {"scipy", "matplotlib", "pandas"} <= plots.keys()  # scipy: imported inside a function


# ---------------------------------------------------------------------- the checker can fail
def _copy(root: Path, to: Path) -> Path:
    for name in ("workflow", "envs", "src"):
        shutil.copytree(root / name, to / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy2(root / "pyproject.toml", to / "pyproject.toml")
    return to


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    "file, old, new, expected",
    [
        pytest.param(
            "envs/core.yaml", "  - numpy >=1.26\n", "  - numpy >=3.0\n",
            "core.yaml: 'numpy >=3.0' allows >=3.0 but pyproject.toml declares numpy>=1.26 (>=1.26); "
            "the ranges must be the same",
            id="numpy-range"),
        pytest.param(
            "envs/rl.yaml", "  - gymnasium >=1.0,<2\n", "  - gymnasium >=1.0\n",
            "rl.yaml: 'gymnasium >=1.0' allows >=1.0 but pyproject.toml declares gymnasium<2,>=1.0 (<2,>=1.0); "
            "the ranges must be the same",
            id="upper-bound-dropped"),
        pytest.param(
            "envs/rl.yaml", "pytorch >=2.8 cpu_*", "pytorch >=2.8,<3 cpu_*",
            "rl.yaml: 'pytorch >=2.8,<3 cpu_*' allows <3,>=2.8 but pyproject.toml declares torch>=2.8 (>=2.8); "
            "the ranges must be the same",
            id="upper-bound-added"),
        pytest.param(
            "envs/core.yaml", "  - scipy >=1.11\n", "",
            "rule plot_metrics: runs in core.yaml, which lacks scipy (needed by src/bmsrl/plots.py:<N>)",
            id="function-local-import-missing"),
        pytest.param(
            "envs/rl.yaml", "  - tensorboard >=2.15\n", "",
            "rule train: runs in rl.yaml, which lacks tensorboard (needed by `bmsrl train --tensorboard`)",
            id="tensorboard-missing"),
        pytest.param(
            "envs/core.yaml", "  - numba >=0.60\n", "",
            "rule evaluate (policy=rule_based): runs in core.yaml, which lacks numba "
            "(needed by src/bmsrl/pack.py:<N>)",
            id="baseline-dependency-missing"),
        pytest.param(
            "envs/core.yaml", "  - wheel\n", "  - wheel\n  - requests >=2\n",
            "core.yaml: 'requests >=2' is not declared in pyproject.toml",
            id="undeclared-package"),
        pytest.param(
            "envs/core.yaml", "python >=3.10,<3.14", "python >=3.9,<3.14",
            "core.yaml: 'python >=3.9,<3.14' lacks requires-python's >=3.10, so it admits Pythons bmsrl does "
            "not support",
            id="python-too-old"),
        pytest.param(
            "envs/rl.yaml", "python >=3.10,<3.14", "python >=3.11,<3.14",
            "rl.yaml: 'python >=3.11,<3.14' excludes Python 3.10, the lowest requires-python (>=3.10) allows",
            id="python-floor-raised"),
        pytest.param(
            "envs/rl.yaml", "  - setuptools >=68             # to install bmsrl (post-deploy)\n", "",
            "rl.yaml: lacks setuptools (setuptools>=68, [build-system] requires), needed by the post-deploy "
            "script's pip install --no-build-isolation",
            id="build-requirement-missing"),
        pytest.param(
            "workflow/rules/common.smk", '"../../envs/rl.yaml" if wildcards.policy in ALGOS',
            '"../../envs/rl.yaml" if wildcards.policy in BASELINES',
            "rule evaluate (policy=dqn): runs in core.yaml, which lacks pytorch (needed by src/bmsrl/train.py:<N>",
            id="trained-agents-in-core-env"),
        pytest.param(
            "src/bmsrl/aggregate.py", "def policy_order(", "def _unused():\n    import sklearn\n\n\ndef policy_order(",
            "rule aggregate: imports scikit-learn (src/bmsrl/aggregate.py:<N>), which pyproject.toml does not "
            "declare",
            id="undeclared-import"),
        pytest.param(
            "src/bmsrl/train.py", "import numpy as np\n", "import numpy as np\nimport torch\n",
            "rule evaluate (policy=no_balancing): SKIPPED_IMPORTS lists torch, but it is imported at import time "
            "(src/bmsrl/train.py:<N>)",
            id="skipped-import-made-eager"),
        pytest.param(
            "workflow/rules/aggregate.smk", '    conda:\n        "../../envs/core.yaml"\n', "",
            "rule aggregate (aggregate.smk) has no conda: directive",
            id="no-conda-directive"),
    ],
)  # fmt: skip
def test_checker_reports_an_inconsistency(tmp_path, file, old, new, expected):
    root = _copy(ROOT, tmp_path / "repo")
    _edit(root / file, old, new)
    problems = check_envs(root, tmp_path)
    pattern = re.escape(expected).replace("<N>", r"\d+")  # <N>: a line number
    assert any(re.match(pattern, p) for p in problems), "\n".join(problems)


@pytest.mark.parametrize(
    "change, expected",
    [
        pytest.param(lambda script: script.unlink(),
                     "core.yaml: no core.post-deploy.sh next to it installs the bmsrl package", id="missing"),
        pytest.param(lambda script: script.chmod(0o644), "core.post-deploy.sh: not executable", id="not-executable"),
        pytest.param(lambda script: _edit(script, '-e "$src"', '-e "$src/src"'),
                     "core.post-deploy.sh: does not pip install the repository", id="installs-something-else"),
        pytest.param(lambda script: _edit(script, "install --no-deps ", "install "),
                     "core.post-deploy.sh: pip installs the repository without --no-deps", id="with-deps"),
    ],
)  # fmt: skip
def test_checker_reports_a_broken_post_deploy_script(tmp_path, change, expected):
    root = _copy(ROOT, tmp_path / "repo")
    change(root / "envs" / "core.post-deploy.sh")
    problems = check_post_deploy(root / "envs" / "core.yaml", root, tmp_path)
    assert any(p.startswith(expected) for p in problems), problems


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


def _evaluate_blocking(tmp_path: Path, blocked: set[str], *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))  # fmt: skip
    command = [sys.executable, "-c", _BLOCKING_CLI, ",".join(sorted(blocked)), "evaluate",
               "--config-json", '{"evaluation": {"episodes": 1}}', "--profile", "charge-rest-discharge",
               "--seed", "1", "--out", str(tmp_path / "out"), *args]  # fmt: skip
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("key", sorted(SKIPPED_IMPORTS))
def test_baseline_evaluation_runs_without_torch_and_sb3(tmp_path, key):
    """The jobs SKIPPED_IMPORTS exempts run (one episode) with those imports failing, as in core.yaml."""
    rule, wildcard, value = key
    assert (rule, wildcard) == ("evaluate", "policy"), "this test knows how to run evaluate jobs only"
    result = _evaluate_blocking(tmp_path, SKIPPED_IMPORTS[key], "--policy", value)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out" / "metrics.csv").exists()


def test_trained_agent_evaluation_needs_them(tmp_path):
    """The blocking is real: a trained agent's evaluation fails at loading the model without SB3."""
    (tmp_path / "model.zip").write_bytes(b"PK not really")
    result = _evaluate_blocking(tmp_path, _NOT_IN_BASELINES, "--policy", "dqn", "--model", str(tmp_path / "model.zip"))
    assert result.returncode == 2
    assert "No module named 'stable_baselines3' (blocked" in result.stderr, result.stderr
