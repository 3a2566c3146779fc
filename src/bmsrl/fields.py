"""Parameter fields of the physics and env dataclasses: each field's default, unit, description and
rules written once, next to the field.

:class:`bmsrl.pack.PackParameters`, :class:`bmsrl.env.TaskParameters` and the reward weights of
:mod:`bmsrl.reward` declare their fields with :func:`param`; they check themselves with
:func:`check` (no workflow, no jsonschema), and :func:`bmsrl.config.schema` copies their defaults,
descriptions and rules into the workflow's config schema (:func:`schema_properties`), so
``gym.make("PassiveBalancing-v0")`` and the workflow share one source.

A field's rules are a JSON Schema fragment (``type``, ``minimum``, ``enum``, ``items``, ...); the
checker here implements the keywords the fields use, with jsonschema's messages, so the env and the
config refuse a value with the same words (tests/test_bad_inputs.py compares them). An interval
field (``[lo, hi]``) also says whether ``lo == hi`` is allowed, and may have to lie inside another
interval field (``init_soc`` inside ``soc_limits``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

#: the JSON Schema keywords :func:`field_errors` understands (a fragment using another is a bug)
KEYWORDS = frozenset(
    {
        "type",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "enum",
        "const",
        "anyOf",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
        "description",
    }
)


#: what a NaN or an infinity is told, wherever it is given (an env argument, a config key, a scenario,
#: a command-line option): it passes every bound (``nan < 0`` and ``nan > 1`` are both false)
NOT_FINITE = "is not a finite number (NaN and infinities are refused)"


def param(
    default: Any, description: str, *, interval: str | None = None, inside: str | None = None, **rules: Any
) -> Any:
    """A dataclass field with its default, description and JSON Schema ``rules``.

    ``interval``: the value is ``[lo, hi]`` (``"strict"``: lo < hi; ``"closed"``: lo <= hi); the
    interval's items obey ``rules["items"]``. ``inside``: the name of an interval field of the same
    parameter set this interval must lie in.
    """
    unknown = set(rules) - KEYWORDS
    if unknown:
        raise TypeError(f"param: unsupported schema keywords {sorted(unknown)}")
    if interval is not None:
        if interval not in ("strict", "closed"):
            raise TypeError(f"param: interval must be 'strict' or 'closed', not {interval!r}")
        rules = {"type": "array", "minItems": 2, "maxItems": 2, **rules}
        rules.setdefault("items", {"type": "number"})
    metadata = {"description": description, "rules": rules, "interval": interval, "inside": inside}
    return dataclasses.field(default=default, metadata=metadata)


def section(cls: type, description: str) -> Any:
    """A dataclass field holding a nested parameter set ``cls`` (a config sub-section)."""
    return dataclasses.field(default_factory=cls, metadata={"description": description, "section": cls})


def plain(value: Any) -> Any:
    """``value`` with tuples and arrays as lists and NumPy scalars as Python numbers (as in a config)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return plain(value.tolist())
    return value


def _params(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if "rules" in f.metadata or "section" in f.metadata]


def interval_keys(classes: Iterable[type]) -> list[str]:
    """The names of the interval (``[lo, hi]``) fields of ``classes``."""
    return [f.name for cls in classes for f in _params(cls) if f.metadata.get("interval")]


def schema_properties(cls: type) -> dict[str, dict[str, Any]]:
    """The JSON Schema ``properties`` of a parameter set: per field its rules, description and default;
    a nested set (:func:`section`) as an object that forbids unknown keys."""
    props: dict[str, dict[str, Any]] = {}
    for f in _params(cls):
        if "section" in f.metadata:
            props[f.name] = {
                "description": f.metadata["description"],
                "type": "object",
                "additionalProperties": False,
                "default": {},
                "properties": schema_properties(f.metadata["section"]),
            }
        else:
            props[f.name] = {
                **plain(f.metadata["rules"]),
                "default": plain(f.default),
                "description": f.metadata["description"],
            }
    return props


# ----------------------------------------------------------------------------- the checker
def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)  # 8.0 is not an integer (config.py)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, {"string": str, "boolean": bool, "array": list, "object": dict}[kind])


def _path(prefix: str, path: list) -> str:
    text = prefix
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text and not text.endswith(".") else str(part))
    return text


def _errors(value: Any, rules: dict[str, Any], path: list) -> Iterable[tuple[list, str]]:
    """``(path, message)`` per violated rule, in jsonschema's words; the type first, then stop."""
    kinds = rules.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if isinstance(value, float) and not math.isfinite(value):
            yield path, f"{value!r} {NOT_FINITE}"
            return
        if not any(_is_type(value, k) for k in kinds):
            hint = ""  # the hints of bmsrl.config's messages
            if isinstance(value, str):
                try:
                    float(value)
                    hint = " (a quoted number is text: remove the quotes)"
                except ValueError:
                    pass
            if isinstance(value, float) and value.is_integer():
                hint = f" (write {int(value)})"
            yield path, f"{value!r} is not of type {', '.join(map(repr, kinds))}{hint}"
            return
    if "anyOf" in rules and not any(not list(_errors(value, alt, path)) for alt in rules["anyOf"]):
        expected = f": expected {rules['description']}" if "description" in rules else " under any of the given schemas"
        yield path, f"{value!r} is not valid{expected}"
    if "const" in rules and value != rules["const"]:
        yield path, f"{rules['const']!r} was expected"
    if "enum" in rules and value not in rules["enum"]:
        yield path, f"{value!r} is not one of {rules['enum']!r}"
    about = f" ({rules['description']})" if "description" in rules else ""
    if "minimum" in rules and value < rules["minimum"]:
        yield path, f"{value!r} is less than the minimum of {rules['minimum']!r}{about}"
    if "exclusiveMinimum" in rules and value <= rules["exclusiveMinimum"]:
        yield path, f"{value!r} is less than or equal to the minimum of {rules['exclusiveMinimum']!r}"
    if "maximum" in rules and value > rules["maximum"]:
        yield path, f"{value!r} is greater than the maximum of {rules['maximum']!r}{about}"
    if "exclusiveMaximum" in rules and value >= rules["exclusiveMaximum"]:
        yield path, f"{value!r} is greater than or equal to the maximum of {rules['exclusiveMaximum']!r}"
    if isinstance(value, list):
        if "minItems" in rules and len(value) < rules["minItems"]:
            yield path, f"{value!r} {'should be non-empty' if rules['minItems'] == 1 else 'is too short'}"
        if "maxItems" in rules and len(value) > rules["maxItems"]:
            yield path, f"{value!r} {'is expected to be empty' if rules['maxItems'] == 0 else 'is too long'}"
        if rules.get("uniqueItems") and len({repr(v) for v in value}) < len(value):
            yield path, f"{value!r} has non-unique elements"
        if "items" in rules:
            for i, item in enumerate(value):
                yield from _errors(item, rules["items"], [*path, i])


def _interval(value) -> tuple[float, float]:
    lo, hi = value
    return float(lo), float(hi)


def field_errors(values: dict[str, Any], classes: Iterable[type], prefix: str = "", *, rules: bool = True) -> list[str]:
    """``key.path: message`` for each given value that breaks its field's rules (``rules=False``:
    only the relations between fields: intervals in order, an interval inside another).

    ``values`` maps field names of ``classes`` to values (a config section or a part of one);
    nested sets are checked by their own dataclass, keys of no field are left to the caller.
    """
    values = plain(values)
    by_name = {f.name: f for cls in classes for f in _params(cls) if "rules" in f.metadata}
    errors = []
    if rules:
        for name, value in values.items():
            if name in by_name:
                description = by_name[name].metadata["description"]
                for path, message in _errors(
                    value, {**by_name[name].metadata["rules"], "description": description}, []
                ):
                    errors.append(f"{_path(prefix + name, path)}: {message}")
        if errors:
            return errors
    for name, value in values.items():
        kind = by_name[name].metadata["interval"] if name in by_name else None
        if kind is not None:
            lo, hi = _interval(value)
            if lo > hi or (kind == "strict" and lo == hi):
                need = "lo < hi" if kind == "strict" else "lo <= hi"
                errors.append(
                    f"{prefix}{name}: [{lo:g}, {hi:g}] is {'reversed' if lo > hi else 'empty'}; write [lo, hi] with {need}"
                )
    for name, value in values.items():
        outer = by_name[name].metadata["inside"] if name in by_name else None
        if outer is not None and outer in values and not errors:
            (lo, hi), (o_lo, o_hi) = _interval(value), _interval(values[outer])
            if lo < o_lo or hi > o_hi:
                errors.append(
                    f"{prefix}{name}: [{lo:g}, {hi:g}] is not inside {prefix}{outer} [{o_lo:g}, {o_hi:g}] "
                    "(a pack would start outside the window its phases end at)"
                )
    return errors


def check(values: dict[str, Any], classes: Iterable[type], prefix: str = "") -> None:
    """Raise :class:`ValueError` with the first of :func:`field_errors` (naming the field), if any."""
    errors = field_errors(values, classes, prefix)
    if errors:
        raise ValueError(errors[0])


def own_values(obj: Any) -> dict[str, Any]:
    """The parameter fields of dataclass instance ``obj`` (not its nested sets) by name."""
    return {f.name: getattr(obj, f.name) for f in _params(type(obj)) if "rules" in f.metadata}
