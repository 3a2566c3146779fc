"""Trained agents and baselines behind Stable-Baselines3's ``predict``: the one place that imports
an algorithm's class (torch and SB3; DQN's is :class:`bmsrl.masked_dqn.MaskedDQN`), for the train
and evaluate stages, and the trained agents shipped with the package (:func:`load_shipped`)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bmsrl import algos
from bmsrl.baselines import BASELINES, make_baseline, settings_key
from bmsrl.env import BalancingTask, TaskParameters
from bmsrl.errors import UserError
from bmsrl.pack import PackParameters
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

        base = load_policy(BEST_KNOWN_BASE, model_path, cfg, settings)
        return BestKnown(base, stride=cfg["evaluation"]["best_known_stride"])
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


# ------------------------------------------------------------------------ the shipped agents
#: the trained agents shipped with the package: one folder ``<algo>_seed<N>`` each, holding the
#: ``best_model.zip`` and the ``run_config.json`` the train stage wrote (README.md there: which run)
SHIPPED_AGENTS = Path(__file__).parent / "data" / "agents"
MODEL_FILE = "best_model.zip"
RECORD_FILE = "run_config.json"


def shipped_agents() -> dict[str, Path]:
    """Algorithm name -> the folder of its shipped agent."""
    found: dict[str, Path] = {}
    for folder in sorted(p for p in SHIPPED_AGENTS.iterdir() if p.is_dir()):
        match = re.fullmatch(r"(\w+?)_seed(\d+)", folder.name)
        if match is None or match[1] not in algos.ALGOS:
            raise UserError(f"{folder}: not an agent folder <algo>_seed<N> of a known algorithm ({list(algos.ALGOS)})")
        if match[1] in found:
            raise UserError(
                f"{SHIPPED_AGENTS}: two shipped agents of {match[1]} ({found[match[1]].name}, {folder.name})"
            )
        found[match[1]] = folder
    return found


@dataclass(frozen=True)
class ShippedAgent:
    """A trained agent shipped with the package: ``model`` has SB3's ``predict``; ``settings`` is its
    run record's ``settings`` (algorithm, env, reward, hyperparameters, seed); ``folder`` holds both."""

    algo: str
    model: Any
    settings: dict[str, Any]
    folder: Path

    def task_kwargs(self, profile: str = "charge-rest-discharge") -> dict[str, Any]:
        """Keyword arguments of :class:`bmsrl.env.BalancingTask` and ``PassiveBalancing-v0``: the pack,
        rules and reward the agent was trained with (a key the record lacks takes today's default), the
        package's cell tables, and ``profile`` (a built-in name or a :class:`bmsrl.profiles.LoadProfile`)."""
        return _task_kwargs(self.settings, self.folder / RECORD_FILE, profile)


def _task_kwargs(settings: dict[str, Any], record: Path, profile) -> dict[str, Any]:
    as_argument = lambda value: tuple(value) if isinstance(value, list) else value  # noqa: E731
    pack_keys = {f.name for f in dataclasses.fields(PackParameters)}
    task_keys = {f.name for f in dataclasses.fields(TaskParameters)}
    env = settings["env"]
    unknown = sorted(set(env) - pack_keys - task_keys)
    if unknown:
        raise UserError(
            f"{record}: env settings {unknown} are no parameters of today's pack or task: the agent was "
            "trained by another version of bmsrl (data/agents/README.md names its commit)"
        )
    return {
        "profile": profile,
        "pack": {k: as_argument(v) for k, v in env.items() if k in pack_keys},
        "reward": settings["reward"],
        **{k: as_argument(v) for k, v in env.items() if k in task_keys},
    }


def load_shipped(algo: str) -> ShippedAgent:
    """The shipped trained agent of ``algo`` (``"dqn"`` or ``"a2c"``: :func:`shipped_agents`), loaded
    on the CPU and checked against today's environment: the observation and action spaces of the env
    its run record describes must be the ones the model was trained on (a UserError naming the record
    otherwise: the layout changed since the agent was trained)."""
    agents = shipped_agents()
    if algo not in agents:
        raise UserError(f"no shipped agent of {algo!r}; the package ships {sorted(agents)} ({SHIPPED_AGENTS})")
    folder = agents[algo]
    record = folder / RECORD_FILE
    try:
        settings = json.loads(record.read_text(encoding="utf-8"))["settings"]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"shipped agent {folder}: its record {record} is unreadable ({exc})") from None
    model = load_policy(algo, folder / MODEL_FILE, {"env": settings["env"]})
    task = BalancingTask(n_packs=1, **_task_kwargs(settings, record, "charge-rest-discharge"))
    expected = {"observation": (task.obs_size,), "action": task.gym_action_space()}
    found = {"observation": model.observation_space.shape, "action": model.action_space}
    for what in expected:
        if found[what] != expected[what]:
            raise UserError(
                f"shipped agent {folder / MODEL_FILE} was trained with the {what} space {found[what]}, but today's "
                f"env built from {record} has {expected[what]}: the {what} layout changed since it was trained "
                "(retrain it, or use the commit data/agents/README.md names)"
            )
    return ShippedAgent(algo, model, settings, folder)
