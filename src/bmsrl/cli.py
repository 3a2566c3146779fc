"""The ``bmsrl`` command line: one verb per pipeline stage.

Every Snakemake rule calls one of these verbs, so a stage run by hand and a stage run by the
workflow take the same path through the code. Each stage module exposes
``add_arguments(parser)`` and ``main(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys

from bmsrl.errors import UserError

#: verb -> (module, one-line help, as printed: argparse's %-formatting of help texts is escaped below)
VERBS: dict[str, tuple[str, str]] = {
    "ocv": ("bmsrl.ocv", "validate and resample an OCV table; write the processed CSV and a plot"),
    "train": ("bmsrl.train", "train one agent (algorithm x seed) with checkpoints and TensorBoard logs"),
    "tune-baselines": (
        "bmsrl.tune_baselines",
        "grid-search a baseline's settings (e.g. threshold and hysteresis) on the training profile",
    ),
    "reference": (
        "bmsrl.reference",
        "each baseline's return on the training-evaluation packs: the training curves' reference lines",
    ),
    "search": ("bmsrl.search", "hyperparameter search (Optuna): run one trial, or summarise the trials"),
    "evaluate": ("bmsrl.evaluate", "run a policy deterministically on a load profile; write traces and metrics"),
    "aggregate": ("bmsrl.aggregate", "summarise metrics over seeds: mean and 95 % t interval"),
    "plot": ("bmsrl.plots", "draw the publication figures from traces, metrics and training logs"),
    "claims": ("bmsrl.claims", "check the paper's claims against the evaluation metrics: claims.csv and claims.md"),
    "record": ("bmsrl.record", "record the run's complete config and package versions beside its results"),
    "snapshot": ("bmsrl.snapshot", "copy a run's tables and figures with their provenance into docs/results/"),
}

#: packages of pyproject.toml's extras a verb may need, by import name -> the extra (the core,
#: ``pip install -e .``, has neither; tests/test_layers.py checks this against pyproject.toml)
EXTRA_OF_IMPORT: dict[str, str] = {
    "yaml": "workflow",
    "jsonschema": "workflow",
    "snakemake": "workflow",
    "torch": "rl",
    "stable_baselines3": "rl",
    "sb3_contrib": "rl",
    "tensorboard": "rl",
    "optuna": "rl",
}


def missing_extra(verb: str, exc: ModuleNotFoundError) -> UserError | None:
    """The one-line error for a verb that needs a package of an extra that is not installed."""
    package = (exc.name or "").split(".")[0]
    extra = EXTRA_OF_IMPORT.get(package)
    if extra is None:
        return None
    return UserError(
        f"needs {package}, which is not installed: it comes with the extra {extra!r} "
        f"(pip install -e '.[{extra}]'; `make setup` installs every extra)"
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, import just that verb's module (training pulls in torch)."""
    parser = argparse.ArgumentParser(prog="bmsrl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, (module_name, help_text) in VERBS.items():
        help_arg = help_text.replace("%", "%%")  # a help is %-formatted, a description printed as is
        if only is not None and verb != only:
            sub.add_parser(verb, help=help_arg)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            error = missing_extra(verb, exc)
            if error is None:
                raise
            raise error from None
        p = sub.add_parser(verb, help=help_arg, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_main=module.main)
    return parser


def _log_to_stderr() -> None:
    """The package's log lines (``bmsrl.*`` loggers, INFO and up) on stderr, timestamped; other
    libraries' INFO chatter stays out of the job logs."""
    logger = logging.getLogger("bmsrl")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    only = argv[0] if argv and argv[0] in VERBS else None
    try:
        parser = build_parser(only)
    except UserError as exc:
        print(f"bmsrl {only}: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    _log_to_stderr()
    # Snakemake and Slurm stop a job with SIGTERM: unwind like Ctrl-C, so atomic writes remove their
    # temporary files and no output is left half-written.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args._main(args) or 0)
    except UserError as exc:
        print(f"bmsrl {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # a package of an extra, imported where it is used
        error = missing_extra(args.verb, exc)
        if error is None:
            raise
        print(f"bmsrl {args.verb}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bmsrl {args.verb}: interrupted; outputs not completed were not written", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
