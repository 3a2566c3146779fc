#!/usr/bin/env bash
# Snakemake runs this inside the freshly created conda environment (core.yaml): install the bmsrl
# package from the repository the workflow lives in. The workflow exports BMSRL_SOURCE (the
# repository root, workflow/rules/common.smk); --no-deps because the environment file provides them.
set -euo pipefail
src="${BMSRL_SOURCE:-$PWD}"
if [ ! -f "$src/pyproject.toml" ]; then
    echo "post-deploy: no pyproject.toml in $src; set BMSRL_SOURCE to the bmsrl repository" >&2
    exit 1
fi
python -m pip install --no-deps --no-build-isolation -e "$src"
