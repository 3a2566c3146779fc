"""Write docs/configuration.md, the table of every config key with its default, from the schema.

    python scripts/config_reference.py
"""

from pathlib import Path

from bmsrl.config import reference_markdown

if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    path.write_text(reference_markdown(), encoding="utf-8")
    print(f"wrote {path}")
