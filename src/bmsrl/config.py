"""The workflow configuration: load, validate against the schema, fill the defaults.

One schema (``bmsrl/schemas/config.schema.yaml``, symlinked as ``workflow/schemas/``) serves the
Snakefile, which validates ``config/*.yaml`` at start-up, and the ``train`` / ``evaluate`` verbs,
which take the part of the config they need as ``--config FILE`` or ``--config-json JSON`` (the
workflow passes JSON so that a rule's parameters hold only the sections it depends on).

Validation fills every missing key with its default, nested objects included, exactly as
``snakemake.utils.validate(config, schema, set_default=True)`` does, so a partial config (or none)
is a complete one. A bad value is a :class:`~bmsrl.errors.UserError` with one line naming the file
(or ``--config-json``) and the key path, e.g.::

    config/config.yaml: training.hyperparams.ppo.n_steps: 'abc' is not of type 'integer'
"""

from __future__ import annotations

import argparse
import copy
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from bmsrl.errors import UserError

#: where ``--config-json`` errors say the config came from
JSON_SOURCE = "--config-json"


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return (resources.files("bmsrl") / "schemas" / "config.schema.yaml").read_text(encoding="utf-8")


def schema() -> dict[str, Any]:
    """A fresh copy of the config schema (defaults are inserted by reference, so never share it)."""
    return load_yaml(_schema_text())


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML safe loader that rejects a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str):
    """Parse YAML text like ``yaml.safe_load``, but a duplicate key is an error."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


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


_DefaultingValidator = _with_defaults(Draft202012Validator)


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
    elif error.validator in ("anyOf", "oneOf") and "description" in error.schema:
        message = f"{error.instance!r} is not valid: expected {error.schema['description']}"
    if error.validator == "type" and isinstance(error.instance, str):
        try:
            float(error.instance)
            message += " (YAML reads numbers like 1e-4 as text: write 1.0e-4)"
        except ValueError:
            pass
    where = _key_path(path) or "(top level)"
    return f"{where}: {message}"


def validate(cfg: Any, source: str) -> dict[str, Any]:
    """Validate ``cfg`` in place, filling defaults; raise one-line :class:`UserError` naming ``source``."""
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise UserError(f"{source}: the config must be a mapping of keys to values, not {type(cfg).__name__}")
    errors = list(_DefaultingValidator(schema()).iter_errors(cfg))
    if errors:
        error = best_match(errors)
        while error.parent is not None and error.parent.validator in ("anyOf", "oneOf"):
            error = error.parent  # "x is not valid: expected <description>", not one alternative's complaint
        more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise UserError(f"{source}: {_describe(error)}{more}")
    return cfg


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
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    try:
        cfg = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}{where}: not valid YAML: {problem}") from None
    return validate(cfg, str(path))


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` | ``--config-json JSON`` (mutually exclusive; neither: the defaults)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", type=Path, metavar="FILE",
                       help="workflow config YAML (e.g. config/config.yaml); missing keys take their defaults")
    group.add_argument("--config-json", metavar="JSON",
                       help="the config (or the sections this stage needs) as a JSON string, as the workflow passes it")


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The validated config named by :func:`add_config_arguments`' options."""
    return load_config(getattr(args, "config", None), json_text=getattr(args, "config_json", None))


#: keys of ``cfg["env"]`` that are :class:`bmsrl.pack.PackParameters` fields
PACK_KEYS = (
    "n_cells", "capacity_ah", "shunt_resistance_ohm", "charge_efficiency", "discharge_efficiency",
    "soc_limits", "voltage_limits_v", "cutoff", "charging", "cv_taper_c_rate", "safety_margin_soc",
)
#: keys of ``cfg["env"]`` passed to :class:`bmsrl.env.BalancingTask` directly
TASK_KEYS = ("decision_interval_s", "substeps", "invalid_rules", "init_soc", "init_soh", "i_max_a")


def _default_ecm_table() -> str:
    return schema()["properties"]["ecm_table"]["default"]


def task_kwargs(cfg: dict[str, Any], profile: str, ocv_table: str | Path | None = None) -> dict[str, Any]:
    """Keyword arguments of :class:`bmsrl.env.BalancingTask` (all but ``n_packs`` and ``tables``).

    ``ocv_table`` is the *processed* OCV table (``results/ocv/ocv_processed.csv`` in the workflow;
    ``None``: the package's shipped table). The ECM table is ``cfg["ecm_table"]``; when that is the
    default ``data/ecm_params.csv`` and no such file exists here (a stage run outside the repository),
    the package's shipped copy is used. ``reward.switch_penalty: auto`` becomes ``None``.
    """
    env, reward = cfg["env"], dict(cfg["reward"])
    if reward.get("switch_penalty") == "auto":
        reward["switch_penalty"] = None
    ecm_table = cfg.get("ecm_table")
    if ecm_table is not None and ecm_table == _default_ecm_table() and not Path(ecm_table).exists():
        ecm_table = None
    pack = {k: (tuple(env[k]) if isinstance(env[k], list) else env[k]) for k in PACK_KEYS}
    kwargs: dict[str, Any] = {
        "profile": profile,
        "ocv_table": None if ocv_table is None else str(ocv_table),
        "ecm_table": None if ecm_table is None else str(ecm_table),
        "pack": pack,
        "reward": reward,
    }
    for key in TASK_KEYS:
        value = env[key]
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    return kwargs
