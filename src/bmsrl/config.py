"""The workflow configuration: load, validate against the schema, fill the defaults.

One schema, ``bmsrl/schemas/config.schema.yaml`` completed from the algorithm registry and from the
fields of the physics and env dataclasses (:func:`schema`), holds every default of the study. One
validator (:func:`validate`) serves the Snakefile, which validates ``config/*.yaml`` and ``--config``
at start-up (:func:`load_workflow_config`), and the ``bmsrl`` verbs, which take the part of the config
they need as ``--config FILE`` or ``--config-json JSON`` (the workflow passes JSON so that a rule's
parameters hold only the sections it depends on).

The config sits at the edge: the physics and the env own their defaults and rules
(:mod:`bmsrl.fields`) and import nothing from here. The seed policy is :mod:`bmsrl.seeds`, the
config → env adapter :mod:`bmsrl.task_config`, the typed views of the most-read sections
:mod:`bmsrl.settings`.

Validation fills every missing key with its default, nested objects included, so a partial config
(or none) is a complete one; :func:`defaults` is the config with nothing set. A bad value is a
:class:`~bmsrl.errors.UserError` with one line naming the file (or ``--config-json``) and the key
path, e.g.::

    config/config.yaml: training.hyperparams.ppo.n_steps: 'abc' is not of type 'integer'
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from bmsrl import seeds
from bmsrl.errors import UserError
from bmsrl.fields import NOT_FINITE, field_errors, schema_properties

#: where ``--config-json`` errors say the config came from
JSON_SOURCE = "--config-json"


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return (resources.files("bmsrl") / "schemas" / "config.schema.yaml").read_text(encoding="utf-8")


def schema() -> dict[str, Any]:
    """A fresh copy of the config schema, completed from :data:`bmsrl.algos.ALGOS` and, for the
    ``env`` and ``reward`` sections, from the fields of :class:`bmsrl.pack.PackParameters`,
    :class:`bmsrl.env.TaskParameters` and :class:`bmsrl.reward.RewardWeights` (:mod:`bmsrl.fields`).

    Defaults are inserted by reference during validation, so never share the returned object.
    """
    from bmsrl.algos import ALGOS

    # built once per state of the algorithm registry (a test may add an algorithm)
    return copy.deepcopy(_built_schema(tuple((name, id(spec)) for name, spec in ALGOS.items())))


@lru_cache(maxsize=4)
def _built_schema(registry: tuple) -> dict[str, Any]:
    """The completed schema for the algorithm registry ``registry`` ((name, id) pairs, the cache
    key); :func:`schema` hands out copies."""
    from bmsrl.algos import ALGOS
    from bmsrl.env import TaskParameters
    from bmsrl.pack import PackParameters
    from bmsrl.results import RUN_KINDS
    from bmsrl.reward import RewardWeights

    result = load_yaml(_schema_text())
    defs = result["$defs"]
    defs["algo"]["enum"] = list(ALGOS)
    result["properties"]["run_kind"]["enum"] = list(RUN_KINDS)
    env_props = result["properties"]["env"]["properties"] = {
        **schema_properties(PackParameters),
        **schema_properties(TaskParameters),
    }
    result["properties"]["reward"]["properties"] = schema_properties(RewardWeights)
    defs["env_overrides"].update(
        additionalProperties=False,
        properties={
            key: {k: v for k, v in sub.items() if k != "default"} for key, sub in env_props.items() if key != "n_cells"
        },
    )
    constraints = defs["sb3_kwargs"]["properties"]
    training = result["properties"]["training"]["properties"]
    for name, spec in ALGOS.items():
        training["total_steps"].setdefault("properties", {})[name] = {
            "$ref": "#/$defs/steps",
            "default": spec.total_steps,
            "description": f"env steps of one {spec.label} run: {spec.description}",
        }
        training["hyperparams"].setdefault("properties", {})[name] = {
            "$ref": "#/$defs/sb3_kwargs",
            "default": {},
            "description": f"keyword arguments of {spec.module}.{spec.class_name}; any other keeps the library's default",
            "properties": {
                key: {**constraints.get(key, {}), "default": value} for key, value in spec.hyperparams.items()
            },
        }
    _baseline_schema(result["properties"]["baselines"])
    search = result["properties"]["search"]["properties"]
    for name, spec in ALGOS.items():
        search["total_steps"].setdefault("properties", {})[name] = {
            "$ref": "#/$defs/steps",
            "default": spec.search_steps,
            "description": f"env steps of one {spec.label} trial",
        }
        search["space"].setdefault("properties", {})[name] = {
            "$ref": "#/$defs/search_space",
            "default": spec.search_space,
            "description": f"the {spec.label} search space",
        }
    return result


def _baseline_schema(section: dict[str, Any]) -> None:
    """Complete the ``baselines`` section from :data:`bmsrl.baselines.BASELINES`: one settings
    section per baseline that has settings, and the tuning grids the tunable ones read."""
    from bmsrl.baselines import BASELINES, TUNABLE, TUNING_GRID_KEYS

    props = section["properties"]
    for name, spec in BASELINES.items():
        if spec.settings:
            props[name] = {
                "type": "object",
                "additionalProperties": False,
                "default": {},
                "description": f"settings of {name}, {spec.description}"
                + ("; these values apply when tuned is false" if spec.tunable else ""),
                "properties": spec.settings,
            }
    grid = props["tuning"]["properties"]
    for key in dict.fromkeys(k for name in TUNABLE for k in BASELINES[name].grid_keys):
        grid[key] = TUNING_GRID_KEYS[key]
    untuned = [n for n, spec in BASELINES.items() if spec.settings_of]
    props["tuned"]["description"] = (
        f"evaluate the tunable baselines ({', '.join(TUNABLE)}) with the settings the tune_baselines stage finds "
        f"(results/baselines/NAME.yaml), and "
        + ", ".join(f"{n} with baselines.{BASELINES[n].settings_of}" for n in untuned)
        + "; false: no tuning, every baseline runs its values below"
    )


@lru_cache(maxsize=1)
def _defaults_json() -> str:
    return json.dumps(validate({}, "default config"))


def defaults() -> dict[str, Any]:
    """The complete config with nothing set: every key at its schema default (a fresh copy)."""
    return json.loads(_defaults_json())


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML safe loader that rejects a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 floats: PyYAML (YAML 1.1) reads ``1e-4`` (no dot, no exponent sign) as text; the YAML 1.2
# core schema, JSON and Python read it as a number. Only plain (unquoted) scalars are resolved.
_YAML12_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)[eE][-+]?[0-9]+$")
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+.0123456789"))


def load_yaml(text: str):
    """Parse YAML text like ``yaml.safe_load``, but a duplicate key is an error and ``1e-4`` is a
    number (YAML 1.2), as for Snakemake's config files read by the Snakefile (workflow/rules/common.smk)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


def load_yaml_file(path: str | Path) -> Any:
    """The parsed YAML of a config file, or a one-line :class:`UserError` naming the file (unreadable,
    not UTF-8, not valid YAML, a duplicate key). The content is not validated (:func:`validate`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: the config file is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a config file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}{where}: not valid YAML: {problem}") from None


def _with_defaults(validator_class):
    """A validator that fills ``default`` values of missing properties before validating them.

    The recipe of the jsonschema FAQ, as used by Snakemake: an object left out entirely gets its
    ``default: {}`` and is then filled key by key, so nested defaults are applied too.
    """
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def _is_integer(checker, instance) -> bool:
    """An integer is an ``int``, not ``True`` nor ``8.0``: JSON Schema counts 8.0 as an integer, but
    ``n_envs: 8.0`` or ``total_steps: 1e6`` would reach numpy and torch as floats and fail there."""
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker, instance) -> bool:
    """A number is finite: NaN passes every bound (``nan < 0`` and ``nan > 1`` are both false) and
    infinities pass the lower ones, so ``.nan`` or ``.inf`` would reach the simulator, a training or
    a tuning grid; :func:`_describe` says "not a finite number"."""
    return isinstance(instance, (int, float)) and not isinstance(instance, bool) and math.isfinite(instance)


_StrictValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_number}),
)
_DefaultingValidator = _with_defaults(_StrictValidator)


def _key_path(path) -> str:
    """``training.hyperparams.ppo`` / ``algos[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _describe(error: ValidationError) -> str:
    """``key.path: message`` for one validation error, phrased for a config author."""
    path = list(error.absolute_path)
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in allowed)
        if unknown:
            path.append(unknown[0])
            more = f" (also {', '.join(map(repr, unknown[1:]))})" if len(unknown) > 1 else ""
            message = f"unknown key{more}; allowed keys: {', '.join(sorted(allowed))}"
    elif error.validator == "pattern" and "propertyNames" in error.relative_schema_path:
        path.append(error.instance)
        message = (
            f"not a valid name: use lower-case letters, digits and _, starting with a letter ({error.validator_value})"
        )
    elif error.validator == "pattern" and "description" in error.schema:  # e.g. results_root
        message = f"{error.instance!r} is not valid: {error.schema['description']}"
    elif error.validator in ("anyOf", "oneOf") and "description" in error.schema:
        message = f"{error.instance!r} is not valid: expected {error.schema['description']}"
    elif error.validator in ("maximum", "minimum") and "description" in error.schema:
        message += f" ({error.schema['description']})"
    if error.validator == "type" and isinstance(error.instance, str):
        try:
            float(error.instance)
            message += " (a quoted number is text: remove the quotes)"
        except ValueError:
            pass
    if isinstance(error.instance, float) and not math.isfinite(error.instance) and error.validator in ("type", "anyOf"):
        message = f"{error.instance!r} {NOT_FINITE}"
    elif error.validator == "type" and isinstance(error.instance, float) and error.instance.is_integer():
        message += f" (write {int(error.instance)})"
    where = _key_path(path) or "(top level)"
    return f"{where}: {message}"


def _coerce_cli_strings(value, subschema, root):
    """Turn the strings of Snakemake's ``--config key=value`` into the numbers the schema expects.

    Snakemake parses a ``--config`` value that is not a plain number with YAML's base loader, so
    ``seeds=[1,2]`` arrives as ``["1", "2"]``. Only strings that parse cleanly are converted.
    """
    while "$ref" in subschema and subschema["$ref"].startswith("#/$defs/"):
        target = root["$defs"][subschema["$ref"].removeprefix("#/$defs/")]
        subschema = {**target, **{k: v for k, v in subschema.items() if k != "$ref"}}
    kind = subschema.get("type")
    if isinstance(value, dict) and kind == "object":
        properties = subschema.get("properties", {})
        for key, sub in properties.items():
            if key in value:
                value[key] = _coerce_cli_strings(value[key], sub, root)
        extra = subschema.get("additionalProperties")
        if isinstance(extra, dict):  # e.g. evaluation.scenarios: name -> env overrides
            for key in value:
                if key not in properties:
                    value[key] = _coerce_cli_strings(value[key], extra, root)
    elif isinstance(value, list) and kind == "array" and isinstance(subschema.get("items"), dict):
        value[:] = [_coerce_cli_strings(v, subschema["items"], root) for v in value]
    elif isinstance(value, str):
        kinds = [kind] + [alt.get("type") for alt in subschema.get("anyOf", [])]
        if "boolean" in kinds and value.lower() in ("true", "false"):
            return value.lower() == "true"
        for want, parse in (("integer", int), ("number", float)):
            if want in kinds:
                try:
                    return parse(value)
                except ValueError:
                    pass
    return value


def _semantic_errors(cfg: dict[str, Any]) -> list[str]:
    """``key.path: message`` for what the schema cannot say: orderings, windows inside windows, the
    keyword arguments each algorithm's constructor takes. ``cfg`` has passed the schema."""
    errors: list[str] = []
    from bmsrl.env import TaskParameters
    from bmsrl.pack import PackParameters

    # intervals in order, init_soc inside soc_limits (the dataclasses' relations; the schema has their rules)
    errors += field_errors(cfg.get("env", {}), [PackParameters, TaskParameters], "env.", rules=False)
    if cfg.get("env", {}).get("discharge") == "drive_cycle":  # the cycle's file, read and checked now
        from bmsrl.tables import load_drive_cycle

        try:
            load_drive_cycle(cfg["env"]["drive_cycle"])
        except UserError as exc:
            errors.append(f"env.drive_cycle: {exc}")
    errors += _search_space_errors(cfg)
    hyperparams = cfg.get("training", {}).get("hyperparams", {})
    from bmsrl import algos

    features = cfg.get("training", {}).get("features", "raw")
    for algo in cfg.get("algos", []):
        if features != "raw" and algo in algos.ALGOS and not algos.ALGOS[algo].features_extractor:
            errors.append(
                f"training.features: {features} is not available for {algo}, whose policy takes no "
                f"features extractor; use raw, or leave {algo} out of algos"
            )
    mix = cfg.get("training", {}).get("profiles", [])
    for key in ("training.n_envs", "training.eval_episodes", "search.eval_episodes"):
        section, name = key.split(".")
        packs = cfg.get(section, {}).get(name)
        if mix and packs is not None and packs < len(mix):
            errors.append(
                f"{key}: {packs} packs cannot follow the {len(mix)} training.profiles {mix} (one pack each at least)"
            )
    action_space = cfg.get("env", {}).get("action_space", "discrete")
    for algo in cfg.get("algos", []):
        spec = algos.ALGOS.get(algo)
        if spec is not None and action_space not in spec.action_spaces:
            takes = [a for a, s in algos.ALGOS.items() if action_space in s.action_spaces]
            errors.append(
                f"env.action_space: {action_space} is not available for {algo} (it takes "
                f"{', '.join(spec.action_spaces)}); use {spec.action_spaces[0]}, or train only {', '.join(takes)}"
            )
    errors += _policy_errors(cfg)
    for algo, kwargs in hyperparams.items():
        spec = algos.ALGOS.get(algo)
        if spec is None or not spec.keywords:
            continue
        for key in kwargs:
            if key in algos.SET_BY_TRAIN:
                errors.append(f"training.hyperparams.{algo}.{key}: set by `bmsrl train` itself, not by the config")
            elif key not in spec.keywords:
                close = difflib.get_close_matches(key, spec.keywords, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                errors.append(
                    f"training.hyperparams.{algo}.{key}: not a keyword argument of {spec.module}."
                    f"{spec.class_name}; {hint}allowed: {', '.join(spec.keywords)}"
                )
    return errors


def validate(cfg: Any, source: str, *, cli_strings: bool = False, semantic: bool = True) -> dict[str, Any]:
    """Validate ``cfg`` in place, filling defaults; raise one-line :class:`UserError` naming ``source``.

    First the schema (types, ranges, unknown keys), then what it cannot say (:func:`_semantic_errors`).
    ``cli_strings``: first convert the number-like strings of Snakemake's ``--config`` (only for
    command-line values: a YAML or JSON file keeps its types). ``semantic=False``: the schema only
    (for one of several config files that are merged, where the orderings hold only for the merge).
    """
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise UserError(f"{source}: the config must be a mapping of keys to values, not {type(cfg).__name__}")
    full = schema()
    if cli_strings:
        _coerce_cli_strings(cfg, full, full)
    where = _non_finite(cfg, [])
    if where is not None:  # before the schema: inside a oneOf its message would name no value
        raise UserError(f"{source}: {_key_path(where[0])}: {where[1]!r} {NOT_FINITE}")
    errors = list(_DefaultingValidator(full).iter_errors(cfg))
    if errors:
        error = best_match(errors)
        while error.parent is not None and error.parent.validator in ("anyOf", "oneOf"):
            error = error.parent  # "x is not valid: expected <description>", not one alternative's complaint
        more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise UserError(f"{source}: {_describe(error)}{more}")
    found = _semantic_errors(cfg) if semantic else []
    if semantic and not found:
        problem = _semantic_problem(cfg)
        found = [problem] if problem else []
    if found:
        more = f" (and {len(found) - 1} more error{'s' if len(found) > 2 else ''})" if len(found) > 1 else ""
        raise UserError(f"{source}: {found[0]}{more}")
    return cfg


def _policy_errors(cfg: dict[str, Any]) -> list[str]:
    """``training.hyperparams.ALGO.policy_kwargs`` that do not build the policy network: each one set
    otherwise than the algorithm's default is built once (:func:`bmsrl.learning.policy_problem`).
    Where the ``rl`` extra is not installed (the Snakefile's own environment) the check is left to
    ``bmsrl train``, which validates the config before any work."""
    from bmsrl import algos

    changed = [
        algo
        for algo, kwargs in cfg.get("training", {}).get("hyperparams", {}).items()
        if algo in algos.ALGOS and kwargs.get("policy_kwargs") != algos.ALGOS[algo].hyperparams.get("policy_kwargs")
    ]
    if not changed:
        return []
    try:
        from bmsrl.learning import policy_problem  # needs the rl extra (torch, stable-baselines3)
    except ModuleNotFoundError:
        return []
    problems = (_cached_policy_problem(policy_problem, json.dumps(cfg, sort_keys=True), algo) for algo in changed)
    return [problem for problem in problems if problem]


@lru_cache(maxsize=32)
def _cached_policy_problem(policy_problem, cfg_json: str, algo: str) -> str | None:
    return policy_problem(json.loads(cfg_json), algo)


def _non_finite(value: Any, path: list) -> tuple[list, float] | None:
    """``(key path, value)`` of the first NaN or infinity in ``value`` (a config or a part), else ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, [*path, key])
        if found is not None:
            return found
    return None


def _search_space_errors(cfg: dict[str, Any]) -> list[str]:
    """A search space's dimensions: keyword arguments of the algorithm, ordered bounds, values the
    ``training.hyperparams`` constraints accept."""
    from bmsrl import algos

    errors = []
    full = schema()
    kwargs_validator = _StrictValidator({"$defs": full["$defs"], "$ref": "#/$defs/sb3_kwargs"})
    for algo, space in cfg.get("search", {}).get("space", {}).items():
        spec = algos.ALGOS[algo]
        if not space:
            errors.append(
                f"search.space.{algo}: empty, nothing to search; give at least one hyperparameter, "
                f"or leave search.space.{algo} out for {spec.label}'s default space"
            )
        for key, dim in space.items():
            where = f"search.space.{algo}.{key}"
            if key in algos.SET_BY_TRAIN or key not in spec.keywords:
                errors.append(
                    f"{where}: not a keyword argument the config may set for {spec.module}.{spec.class_name}; "
                    f"allowed: {', '.join(spec.keywords)}"
                )
                continue
            if dim["type"] == "categorical":
                values = dim["choices"]
            else:
                values = [dim["low"], dim["high"]]
                if dim["low"] >= dim["high"]:
                    errors.append(f"{where}: low {dim['low']} must be below high {dim['high']}")
                if dim.get("log") and dim["low"] <= 0:
                    errors.append(f"{where}: a log-uniform range needs low > 0, got {dim['low']}")
            for value in values:
                error = best_match(kwargs_validator.iter_errors({key: value}))
                if error is not None:
                    errors.append(f"{where}: {value!r} is not a valid {key}: {error.message}")
    return errors


def _semantic_problem(cfg: dict[str, Any]) -> str | None:
    """``key.path: message`` for the first rule the schema cannot express, or ``None``."""
    from bmsrl.baselines import BASELINES, settings_problem

    for name, spec in BASELINES.items():
        problem = settings_problem(name, cfg["baselines"][name]) if spec.settings else None
        if problem is not None:
            return f"baselines.{name}.{problem[0]}: {problem[1]}"
    scenarios = cfg["evaluation"]["scenarios"]
    if "default" not in scenarios:
        return (
            "evaluation.scenarios: no 'default' scenario; add `default: {}` "
            "(the training distribution, the study's main comparison)"
        )
    if scenarios["default"]:
        return (
            f"evaluation.scenarios.default: the default scenario is the training distribution and "
            f"takes no overrides (got {', '.join(sorted(scenarios['default']))}); name a shifted one otherwise"
        )
    from bmsrl.env import TaskParameters
    from bmsrl.pack import PackParameters

    for name, overrides in scenarios.items():
        if "action_space" in overrides:
            return (
                f"evaluation.scenarios.{name}.action_space: a scenario changes the packs, not the agents' "
                "action space (set env.action_space for the whole run)"
            )
        # the scenario's env is env merged with its overrides, checked as env is (intervals in order,
        # init_soc inside soc_limits), so that `snakemake -n` refuses it, not the evaluate jobs after training
        prefix = f"evaluation.scenarios.{name}."
        found = field_errors({**cfg["env"], **overrides}, [PackParameters, TaskParameters], prefix, rules=False)
        if found:
            key = found[0].split(":")[0].removeprefix(prefix)
            if key in overrides:
                return found[0]
            return f"{found[0]} ({key} is env's: the scenario overrides {', '.join(sorted(overrides))})"
    return seeds.seed_problem(cfg)


def scenario_config(cfg: dict[str, Any], scenario: str) -> dict[str, Any]:
    """A copy of ``cfg`` whose ``env`` carries the overrides of evaluation scenario ``scenario``."""
    scenarios = cfg["evaluation"]["scenarios"]
    if scenario not in scenarios:
        raise UserError(f"unknown scenario {scenario!r}; evaluation.scenarios has {', '.join(scenarios)}")
    out = copy.deepcopy(cfg)
    out["env"].update(copy.deepcopy(scenarios[scenario]))
    return out


def load_config(path: str | Path | None = None, *, json_text: str | None = None) -> dict[str, Any]:
    """The validated config with defaults filled, from a YAML file, a JSON string, or neither.

    With neither, every key takes its default. Raises :class:`UserError` (one line naming the file
    or ``--config-json`` and the key) on unreadable input or an invalid value.
    """
    if path is not None and json_text is not None:
        raise UserError("give either a config file or --config-json, not both")
    if json_text is not None:
        try:
            cfg = json.loads(json_text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{JSON_SOURCE}: not valid JSON: {exc}") from None
        return validate(cfg, JSON_SOURCE)
    if path is None:
        return validate({}, "default config")
    return validate(_read_config_file(path), str(path))


def _read_config_file(path: str | Path) -> Any:
    """The parsed content of a config file: a ``.json`` file (the per-job config files of the
    workflow, workflow/rules/common.smk) as JSON, any other as YAML (:func:`load_yaml_file`); an
    unreadable or malformed file is a :class:`UserError` naming it."""
    path = Path(path)
    if path.suffix != ".json":
        return load_yaml_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON: {exc}") from None


def set_dotted(raw: dict, key: str, value: Any) -> None:
    """Set ``raw``'s entry at the dotted ``key`` (``training.hyperparams.dqn.double_q``) to ``value``,
    creating the sections on the way."""
    *parents, last = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def read_raw_config(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The config of ``path`` as written, not yet validated, with each ``KEY=VALUE`` of ``overrides``
    set (a dotted key; the value read as YAML): the ``--config FILE --set KEY=VALUE`` of the scripts
    under benchmarks/. ``path`` is a YAML config or the workflow's JSON stage config, both read as
    :func:`load_config` reads them (``1e-06`` is a number, not text as for ``yaml.safe_load``)."""
    raw = _read_config_file(path) or {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: not a config mapping")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        set_dotted(raw, key, load_yaml(value))
    return raw


def _merge(config: dict, update: dict) -> dict:
    """``config`` updated recursively with ``update``, as Snakemake merges config files
    (``snakemake.utils.update_config``): nested mappings merge, any other value replaces."""
    for key, value in update.items():
        if isinstance(value, dict):
            sub = config.get(key)
            config[key] = _merge(sub if isinstance(sub, dict) else {}, value)
        else:
            config[key] = value
    return config


def load_workflow_config(files: Sequence[str | Path], cli_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config the Snakefile runs with (workflow/rules/common.smk), read as ``bmsrl VERB --config
    FILE`` reads it.

    ``files`` are the config files in Snakemake's order (the Snakefile's ``configfile``, then each
    ``--configfile``), ``cli_config`` the values of ``--config``. Every file is read again with
    :func:`load_yaml_file` (a duplicate key is an error, ``1e-4`` is a number, where Snakemake keeps
    the last duplicate and reads ``1e-4`` as text) and validated on its own so that an error names
    it; only the ``--config`` values have their number-like strings converted (Snakemake passes
    ``seeds=[1,2]`` as ``["1", "2"]``). Then they are merged like Snakemake merges them and the
    result is validated, defaults filled, as a whole.
    """
    merged: dict[str, Any] = {}
    for path in files:
        part = load_yaml_file(path)
        validate(
            json.loads(json.dumps(part)) if part is not None else {}, f"invalid config {path}", semantic=False
        )  # on a copy
        _merge(merged, part or {})
    overrides = json.loads(json.dumps(dict(cli_config or {}), default=str))
    full = schema()
    _coerce_cli_strings(overrides, full, full)
    validate(json.loads(json.dumps(overrides)), "invalid config (--config)", semantic=False)
    _merge(merged, overrides)
    sources = ", ".join(str(f) for f in files) or "no config file"
    return validate(merged, f"invalid config ({sources} and --config)")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` | ``--config-json JSON`` (mutually exclusive; neither: the defaults)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="workflow config YAML (e.g. config/config.yaml); missing keys take their defaults",
    )
    group.add_argument(
        "--config-json",
        metavar="JSON",
        help="the config (or the sections this stage needs) as a JSON string, as the workflow passes it",
    )


def schema_int_argument(*path: str, what: str):
    """An argparse ``type`` for a command-line integer bounded as the schema bounds the value at
    ``path`` (e.g. ``"$defs", "seed"``): a value outside them, or not an integer, is argparse's
    one-line error naming the option (``bmsrl train --seed 99999999999`` would reach numpy's seeding)."""
    rules = load_yaml(_schema_text())
    for key in path:
        rules = rules[key]
    low, high = rules.get("minimum"), rules.get("maximum")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{value} is outside {bounds} ({what})")
        return value

    parse.__name__ = what  # argparse names the type in "invalid <type> value"
    return parse


def seed_argument():
    """The argparse ``type`` of a training seed (``--seed``, ``--seeds``): the config's ``$defs.seed``."""
    return schema_int_argument("$defs", "seed", what="a training seed, as the config's seeds")


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The validated config named by :func:`add_config_arguments`' options."""
    return load_config(getattr(args, "config", None), json_text=getattr(args, "config_json", None))
