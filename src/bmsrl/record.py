"""Record stage (CLI verb ``bmsrl record``): what a workflow run used, kept with its results.

    bmsrl record --config-json JSON --out-config results/run/config.yaml --out-versions results/run/versions.tsv

Writes the run's complete, validated configuration (every default filled in) and the versions of
the Python packages it ran with, with the commit the workflow was started with
(row ``commit``; `bmsrl snapshot` quotes it as the run's provenance). The workflow's report is built from this record: ``snakemake
--report`` after a run reads ``results/run/config.yaml`` (workflow/rules/common.smk), so captions
and settings describe the run that made the figures, whatever config the report is asked with.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from bmsrl.config import add_config_arguments, config_from_args
from bmsrl.errors import UserError
from bmsrl.io import atomic_output
from bmsrl.versions import package_versions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--out-config", type=Path, required=True, help="YAML file for the complete config")
    parser.add_argument("--out-versions", type=Path, required=True, help="TSV file for the package versions")
    parser.add_argument("--commit", help="the commit the run is made with (recorded as the versions' row 'commit')")


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    with atomic_output(args.out_config) as config_tmp, atomic_output(args.out_versions) as versions_tmp:
        config_tmp.write_text(
            "# the complete configuration of this run (written by `bmsrl record`)\n"
            + yaml.safe_dump(cfg, sort_keys=False),
            encoding="utf-8",
        )
        run = {"commit": args.commit}
        for key, value in run.items():
            if value is not None and ("\t" in value or "\n" in value):
                raise UserError(f"--{key}: a tab or a line break cannot be recorded")
        rows = (
            ["package\tversion"]
            + [f"{k}\t{v}" for k, v in package_versions().items()]
            + [f"{k}\t{v}" for k, v in run.items() if v is not None]
        )
        versions_tmp.write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"record: {args.out_config} and {args.out_versions}")
    return 0
