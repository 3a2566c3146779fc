"""Regenerate the shipped OCV table ``src/bmsrl/data/ocv_table.csv`` from the Keil et al. fit.

The table samples :func:`bmsrl.ocv.keil_nca_ocv` (Keil et al., J. Electrochem. Soc. 163(9) A1872,
2016, doi:10.1149/2.0411609jes; Panasonic NCR18650, NCA) at SoC 0.00, 0.01, ..., 1.00 (101 rows),
with SoC [-] written to 2 decimals and OCV [V] rounded to 0.1 mV (4 decimals).

Usage, from the repository root (with the package installed, or ``PYTHONPATH=src``)::

    python scripts/make_ocv_table.py                 # rewrite the shipped table
    python scripts/make_ocv_table.py --output x.csv  # write elsewhere
    python scripts/make_ocv_table.py --check         # exit 1 if the shipped table differs

A test (``tests/test_ocv.py``) checks that the shipped file equals this script's output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bmsrl.ocv import keil_nca_ocv

#: The shipped table, relative to the repository root.
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "src" / "bmsrl" / "data" / "ocv_table.csv"
#: SoC steps: SoC = i / STEPS for i = 0..STEPS.
STEPS = 100


def render_table(steps: int = STEPS) -> str:
    """The CSV text: header ``soc,ocv_v`` and one row per SoC i/steps, i = 0..steps."""
    lines = ["soc,ocv_v"]
    for i in range(steps + 1):
        soc = i / steps
        lines.append(f"{soc:.2f},{float(keil_nca_ocv(soc)):.4f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="CSV to write (default: the shipped table)")
    parser.add_argument("--check", action="store_true", help="only compare with --output; exit 1 if it differs")
    args = parser.parse_args(argv)
    text = render_table()
    if args.check:
        same = args.output.is_file() and args.output.read_text(encoding="utf-8") == text
        print(f"{args.output}: {'up to date' if same else 'differs from the Keil et al. fit'}")
        return 0 if same else 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {args.output} ({text.count(chr(10)) - 1} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
