"""Trained agents and baselines behind Stable-Baselines3's ``predict``: the one place that imports
an algorithm's class (torch and SB3; DQN's is :class:`bmsrl.masked_dqn.MaskedDQN`), for the train
and evaluate stages only."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from bmsrl import algos
from bmsrl.baselines import BASELINES, make_baseline, settings_key
from bmsrl.errors import UserError
from bmsrl.policies import BEST_KNOWN, BEST_KNOWN_BASE, POLICIES


def algorithm_class(name: str):
    """The Stable-Baselines3 / sb3-contrib class of ``name`` (imported on first use: torch is heavy)."""
    spec = algos.get(name)
    return getattr(importlib.import_module(spec.module), spec.class_name)


def constructor_keywords(name: str) -> tuple[str, ...]:
    """The keyword arguments of the installed class's constructor a config may set (imports torch):
    what :attr:`AlgoSpec.keywords` must equal."""
    import inspect

    parameters = inspect.signature(algorithm_class(name).__init__).parameters
    return tuple(k for k in parameters if k != "self" and k not in algos.SET_BY_TRAIN)


def load_policy(policy: str, model_path: str | Path | None, cfg: dict, settings: dict | None = None):
    """An object with SB3's ``predict``: a trained model from ``model_path`` or a baseline, with
    ``settings`` (e.g. a tuned threshold and hysteresis) or else its settings in ``cfg``."""
    if policy == BEST_KNOWN:  # reads the simulator (bmsrl.best_known): only bmsrl.rollout can run it
        from bmsrl.best_known import BestKnown

        return BestKnown(load_policy(BEST_KNOWN_BASE, model_path, cfg, settings))
    if policy in BASELINES:
        if model_path is not None:
            raise UserError(f"policy {policy!r} is a baseline and takes no --model (got {model_path})")
        if settings is None:
            settings = cfg["baselines"].get(settings_key(policy))
        try:
            return make_baseline(policy, cfg["env"]["n_cells"], settings, env=cfg["env"])
        except (TypeError, ValueError) as exc:
            raise UserError(f"baseline {policy!r} with settings {settings}: {exc}") from None
    if settings is not None:
        raise UserError(f"policy {policy!r} is a trained algorithm; baseline settings do not apply")
    if policy not in algos.ALGOS:
        raise UserError(f"unknown policy {policy!r}; choose one of {list(POLICIES)}")
    if model_path is None:
        raise UserError(f"policy {policy!r} needs --model (a trained checkpoint, e.g. best_model.zip)")
    model_path = Path(model_path)
    if model_path.is_dir():
        raise UserError(f"model checkpoint {model_path} is a directory, not a .zip file")
    if not model_path.is_file():
        raise UserError(f"model checkpoint {model_path} does not exist")
    check_run_record(model_path, policy, cfg["env"]["n_cells"])
    try:
        return algorithm_class(policy).load(model_path, device="cpu")
    except Exception as exc:  # a truncated or foreign zip: name the file, not the traceback
        raise UserError(f"cannot load {policy} model from {model_path}: {exc}") from exc


def check_run_record(model_path: Path, policy: str, n_cells: int) -> None:
    """Refuse a model that another algorithm or another pack shape made, by the ``run_config.json``
    the train stage publishes beside it (other env settings are allowed: robustness scenarios)."""
    record_path = model_path.parent / "run_config.json"
    try:
        settings = json.loads(record_path.read_text(encoding="utf-8"))["settings"]
        made_by, made_cells = settings["algo"], int(settings["env"]["n_cells"])
    except FileNotFoundError:
        raise UserError(
            f"model {model_path}: no run_config.json beside it, so nothing says which algorithm "
            f"and pack made it (train it with `bmsrl train`)"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"model {model_path}: its record {record_path} is unreadable ({exc})") from None
    if made_by != policy:
        raise UserError(f"model {model_path} was trained as {made_by!r}, not {policy!r} ({record_path})")
    if made_cells != n_cells:
        raise UserError(
            f"model {model_path} was trained on a {made_cells}-cell pack, not {n_cells} cells ({record_path})"
        )
