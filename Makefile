# bmsrl: set up and run in one command each (README, "Quick start").
#
#   make quick        set up, then every table and figure with config/quick.yaml (into results-quick/)
#   make test         set up with the test extras, then every test but Slurm's, as CI runs them: the fast
#                     lane (a plain python -m pytest) and the Snakemake lanes (dry runs, conda envs, the
#                     test-config DAG)
#   make test-slurm   set up, then the Slurm integration test (as root; starts a local Slurm)
#   make setup        only the set-up: a virtual environment .venv with the pinned packages (no test extras)
#
# Variables (make quick VAR=value):
#   PYTHON           the Python that creates the venv (default python3; >= 3.10)
#   VENV             the venv directory (default .venv); empty (VENV=) installs into PYTHON itself
#   PYTEST_ARGS      arguments for pytest (make test PYTEST_ARGS=tests/test_env.py)
#   SNAKEMAKE_ARGS   arguments for snakemake (make quick SNAKEMAKE_ARGS=-n)
#   TORCH_INDEX_URL  the index torch is installed from. auto (default): on Linux the CPU-only build from
#                    https://download.pytorch.org/whl/cpu when that index can be reached, else PyPI
#                    (scripts/torch_index.py says which); empty: PyPI, which serves the CUDA build on
#                    Linux (several GB) and a CPU build on macOS and Windows; or any index URL
#
# Every version is pinned by constraints.txt (scripts/pin_constraints.py writes it).

PYTHON ?= python3
VENV ?= .venv
TORCH_INDEX_URL ?= auto
PYTEST_ARGS ?=
SNAKEMAKE_ARGS ?=

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CONSTRAINTS := constraints.txt
TORCH_PIN := $(shell sed -n 's/^torch==//p' $(CONSTRAINTS))
ifeq ($(TORCH_PIN),)
  $(error $(CONSTRAINTS) has no torch==VERSION line)
endif

ifeq ($(strip $(VENV)),)
  PY := $(PYTHON)
  STAMP := .setup-done
  TEST_STAMP := .setup-test-done
else
  PY := $(abspath $(VENV))/bin/python
  STAMP := $(VENV)/.setup-done
  TEST_STAMP := $(VENV)/.setup-test-done
  # snakemake, bmsrl and the tests' subprocesses must find the venv's commands first
  export PATH := $(abspath $(VENV))/bin:$(PATH)
  export VIRTUAL_ENV := $(abspath $(VENV))
endif
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup setup-test quick test test-slurm clean-venv

help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' Makefile

setup: $(STAMP)
setup-test: $(TEST_STAMP)

# torch first, alone (--no-deps) and pinned, from TORCH_INDEX_URL (auto: scripts/torch_index.py picks the
# CPU-only index where it can be reached), as PyTorch documents (pip install torch --index-url ...); then
# the package with the extras a run needs from PyPI, torch's own dependencies included. Both steps use
# the constraints: pip installs the versions they pin. The test extras come only with `make test`.
$(STAMP): pyproject.toml $(CONSTRAINTS)
ifneq ($(strip $(VENV)),)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
endif
ifeq ($(TORCH_INDEX_URL),auto)
	index="$$($(PY) scripts/torch_index.py)"; \
	$(PY) -m pip install -c $(CONSTRAINTS) --no-deps $${index:+--index-url "$$index"} "torch==$(TORCH_PIN)"
else
	$(PY) -m pip install -c $(CONSTRAINTS) --no-deps $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) "torch==$(TORCH_PIN)"
endif
	$(PY) -m pip install -c $(CONSTRAINTS) -e ".[rl,workflow]"
	$(PY) -c 'import torch, bmsrl; print("set up: torch", torch.__version__, "CUDA" if torch.version.cuda else "CPU-only")'
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -c $(CONSTRAINTS) -e ".[rl,workflow,test,slurm]"
	touch $@

quick: setup
	$(PY) -m snakemake --configfile config/quick.yaml $(SNAKEMAKE_ARGS)

# BMSRL_PINNED=1: tests/test_constraints.py also checks that the installed versions are the pinned ones.
# -m "not slurm" replaces pyproject.toml's default selection (which also skips the `snakemake` and
# `workflow` markers): both lanes in one run.
test: export BMSRL_PINNED := 1
test: setup-test
	$(PY) -m pytest -m "not slurm" $(PYTEST_ARGS)

test-slurm: setup-test
	$(PY) -m pytest -m slurm tests/test_slurm.py

clean-venv:
	rm -rf $(VENV)
