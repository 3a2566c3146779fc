"""Snapshot stage (CLI verb ``bmsrl snapshot``): a run's results as a small, committed artefact.

    bmsrl snapshot --out docs/results/default --tables results/tables/summary.csv ... \\
        --figures results/plots/metrics.png ... --run-config results/run/config.yaml \\
        --versions results/run/versions.tsv --commit 1a2b3c4 --command "snakemake snapshot"

Copies the run's tables (CSV) and figures (PNG) into one folder under ``docs/results/`` and writes
``PROVENANCE.yaml`` beside them: the commit the run was made with (as `bmsrl record` wrote it when
the run started), the commit and command of the snapshot itself (the command names the config
files, and the complete config is recorded too), when, and the package versions. ``docs/results.md`` quotes numbers only through lookups into
such folders (``scripts/results_doc.py`` renders it from ``docs/results.md.in``;
``tests/test_results_doc.py`` checks the rendering), so every number the docs quote has a file, a
commit and a command behind it.

The folder is replaced as a whole (written beside it, then renamed): a snapshot is never a mix of
two runs, and an interrupted run leaves the previous snapshot as it was.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shutil
import uuid
from pathlib import Path

import yaml

from bmsrl.errors import UserError

#: the provenance file of a snapshot folder
PROVENANCE = "PROVENANCE.yaml"
#: largest file a snapshot copies [bytes]: a snapshot is committed to git, so it stays small
MAX_FILE_BYTES = 2_000_000


def _read_versions(path: Path) -> dict[str, str]:
    rows = path.read_text(encoding="utf-8").splitlines()
    if not rows or rows[0].split("\t") != ["package", "version"]:
        raise UserError(f"versions file {path}: expected a 'package<TAB>version' header (written by `bmsrl record`)")
    versions = {}
    for number, row in enumerate(rows[1:], start=2):
        parts = row.split("\t")
        if len(parts) != 2:
            raise UserError(f"versions file {path}, line {number}: expected 'package<TAB>version'")
        versions[parts[0]] = parts[1]
    return versions


def _check_inputs(files: list[Path], kind: str, suffix: str) -> None:
    names = [f.name for f in files]
    for f in files:
        if f.suffix.lower() != suffix:
            raise UserError(f"--{kind} {f}: expected a {suffix} file")
        if not f.is_file():
            raise UserError(f"--{kind} {f}: no such file")
        if f.stat().st_size > MAX_FILE_BYTES:
            raise UserError(
                f"--{kind} {f}: {f.stat().st_size} bytes is more than a snapshot keeps "
                f"({MAX_FILE_BYTES} bytes); snapshots are committed to git"
            )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"--{kind}: two files named {twice[0]!r}; a snapshot keeps files by name")


def provenance(commit: str, command: str, run_config: dict, versions: dict[str, str], files: list[str]) -> dict:
    """The provenance record of a snapshot (``PROVENANCE.yaml``): ``commit`` is the run's (recorded by
    `bmsrl record` when the run started; the snapshot's own if the record has none),
    ``snapshot_commit`` and ``command`` the snapshot's."""
    versions = dict(versions)
    run_commit = versions.pop("commit", None) or commit
    return {
        "commit": run_commit,
        "snapshot_commit": commit,
        "command": command,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": sorted(files),
        "versions": versions,
        "config": run_config,
    }


def write_snapshot(
    out: Path, tables: list[Path], figures: list[Path], run_config: Path, versions: Path, commit: str, command: str
) -> Path:
    """Write the snapshot folder ``out`` (module docstring); returns ``out``."""
    _check_inputs(tables, "tables", ".csv")
    _check_inputs(figures, "figures", ".png")
    if not commit.strip():
        raise UserError("--commit is empty: a snapshot names the commit its run was made with")
    if not command.strip():
        raise UserError("--command is empty: a snapshot names the command that made its run")
    try:
        cfg = yaml.safe_load(run_config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"run config {run_config}: cannot read it ({exc})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"run config {run_config}: not a config mapping (written by `bmsrl record`)")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    record = provenance(
        commit.strip(), command.strip(), cfg, _read_versions(versions), [f.name for f in [*tables, *figures]]
    )
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir(parents=True)
        for f in [*tables, *figures]:
            shutil.copyfile(f, tmp / f.name)
        (tmp / PROVENANCE).write_text(
            "# written by `bmsrl snapshot`: what made the files in this folder\n"
            + yaml.safe_dump(record, sort_keys=False, allow_unicode=True),
            encoding="utf-8",
        )
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    except OSError as exc:
        raise UserError(f"cannot write snapshot {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FOLDER", help="the snapshot folder (replaced whole)"
    )
    parser.add_argument("--tables", type=Path, nargs="*", default=[], metavar="CSV", help="tables to keep")
    parser.add_argument("--figures", type=Path, nargs="*", default=[], metavar="PNG", help="figures to keep")
    parser.add_argument("--run-config", type=Path, required=True, help="the run's complete config (bmsrl record)")
    parser.add_argument("--versions", type=Path, required=True, help="the run's package versions (bmsrl record)")
    parser.add_argument("--commit", required=True, help="the commit the run was made with")
    parser.add_argument("--command", required=True, help="the command that made the run")


def main(args: argparse.Namespace) -> int:
    out = write_snapshot(args.out, args.tables, args.figures, args.run_config, args.versions, args.commit, args.command)
    print(f"snapshot: {out} ({len(args.tables)} tables, {len(args.figures)} figures)")
    return 0
