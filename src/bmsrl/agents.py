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
        return load_to_act(algorithm_class(policy), model_path)
    except Exception as exc:  # a truncated or foreign zip: name the file, not the traceback
        raise UserError(f"cannot load {policy} model from {model_path}: {exc}") from exc


class _NoOptimizer:
    """The optimizer of a model loaded only to act: none. Building a torch optimizer imports
    ``torch._dynamo``, about as long as importing torch itself (most of an agent's evaluate job
    after torch), and acting never reads it; the optimizer state saved in the zip is not read."""

    def __init__(self, params, *args, **kwargs) -> None:
        pass

    def load_state_dict(self, state_dict, *args, **kwargs) -> None:
        pass

    def state_dict(self) -> dict:
        return {}


def load_to_act(algorithm, model_path: Path):
    """``algorithm.load(model_path)`` on the CPU with the policy's optimizer left out
    (:class:`_NoOptimizer`) where the policy has one: the same network and weights, so the same
    ``predict`` (tests/test_agents_load.py); not for training on. Like training
    (:func:`bmsrl.learning.seed_everything`), it turns torch.distributions' argument checks off for
    the process: a policy's action distribution is built at every ``predict``, and the checks find
    nothing in logits of a linear layer."""
    import inspect

    import torch
    from stable_baselines3.common.save_util import load_from_zip_file

    torch.distributions.Distribution.set_default_validate_args(False)

    data, _, _ = load_from_zip_file(model_path, device="cpu")
    policy_class = data.get("policy_class")
    if not isinstance(policy_class, type) or "optimizer_class" not in inspect.signature(policy_class).parameters:
        return algorithm.load(model_path, device="cpu")  # a policy without an optimizer (ARS)
    policy_kwargs = {**(data.get("policy_kwargs") or {}), "optimizer_class": _NoOptimizer}
    return algorithm.load(model_path, device="cpu", custom_objects={"policy_kwargs": policy_kwargs})


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
