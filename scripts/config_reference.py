"""Write docs/configuration.md, the table of every config key with its default, from the schema.

    python scripts/config_reference.py

tests/test_config.py checks that docs/configuration.md is what this writes.
"""

from __future__ import annotations

import json
from pathlib import Path

from bmsrl.config import defaults, schema


def reference_markdown() -> str:
    """``docs/configuration.md``: every key of the schema with its default and description."""
    full = schema()
    defs = full["$defs"]
    values = defaults()
    lines = [
        "# Configuration reference",
        "",
        "Every key of the workflow configuration, its default (the study's setting) and its meaning.",
        "Generated from `src/bmsrl/schemas/config.schema.yaml`, `src/bmsrl/algos.py` and the fields of",
        "`PackParameters` (`pack.py`), `TaskParameters` (`env.py`) and `RewardWeights` (`reward.py`) by",
        "`python scripts/config_reference.py`; `tests/test_config.py` checks that it is current.",
        "Units are in the key names (`_s`, `_a`, `_ah`, `_ohm`, `_v`) or the descriptions.",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
    ]

    def resolve(sub):
        while "$ref" in sub:
            sub = {**defs[sub["$ref"].split("/")[-1]], **{k: v for k, v in sub.items() if k != "$ref"}}
        return sub

    def walk(sub, value, path):
        sub = resolve(sub)
        props = sub.get("properties")
        if sub.get("type") == "object" and props and not path.startswith("training.hyperparams."):
            for key, child in props.items():
                walk(child, value.get(key), f"{path}.{key}" if path else key)
            return
        text = sub.get("description", "")
        if "enum" in sub:
            text = (text + "; " if text else "") + "one of " + ", ".join(f"`{v}`" for v in sub["enum"])
        if sub.get("type") == "array" and "enum" in resolve(sub.get("items", {})):
            choices = resolve(sub["items"])["enum"]
            text = (text + "; " if text else "") + "each one of " + ", ".join(f"`{v}`" for v in choices)
        lines.append(f"| `{path}` | `{json.dumps(value)}` | {text} |")

    walk(full, values, "")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    path.write_text(reference_markdown(), encoding="utf-8")
    print(f"wrote {path}")
