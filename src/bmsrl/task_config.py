"""The config → task adapter: the keyword arguments of :class:`bmsrl.env.BalancingTask` (and so of
``PassiveBalancing-v0`` and :class:`bmsrl.vec_env.BatchedBalancingVecEnv`) from a validated config,
and the table files a stage uses.

The ``env`` keys are the fields of :class:`bmsrl.pack.PackParameters` (passed as ``pack``) and of
:class:`bmsrl.env.TaskParameters` (passed as they are): the dataclasses name them, not this module.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from bmsrl.config import defaults
from bmsrl.env import TaskParameters
from bmsrl.errors import UserError
from bmsrl.pack import PackParameters

#: keys of ``cfg["env"]`` that are :class:`bmsrl.pack.PackParameters` fields
PACK_KEYS = tuple(f.name for f in dataclasses.fields(PackParameters))
#: keys of ``cfg["env"]`` passed to :class:`bmsrl.env.BalancingTask` directly
TASK_KEYS = tuple(f.name for f in dataclasses.fields(TaskParameters))


def _as_argument(value: Any) -> Any:
    """A config list ([lo, hi], rule names) as the tuple the dataclasses hold."""
    return tuple(value) if isinstance(value, list) else value


def _default_ecm_table() -> str:
    return defaults()["ecm_table"]


def resolve_ocv_table(cli_value: str | None, cfg: dict) -> str | None:
    """The OCV table a stage uses: ``--ocv-table``, else the config's ``ocv_table``; ``None`` (the
    package's shipped table) when the config names the default file and it is not here."""
    path = cli_value or cfg["ocv_table"]
    if Path(path).is_file():
        return path
    if Path(path).exists():
        raise UserError(f"OCV table {path} is a directory, not a CSV file")
    if cli_value is None and path == defaults()["ocv_table"]:
        return None
    raise UserError(f"OCV table {path} does not exist (run `bmsrl ocv`, or set --ocv-table / ocv_table)")


def task_kwargs(cfg: dict[str, Any], profile: str, ocv_table: str | Path | None = None) -> dict[str, Any]:
    """Keyword arguments of :class:`bmsrl.env.BalancingTask` (all but ``n_packs`` and ``tables``).

    ``ocv_table`` is the *processed* OCV table (``results/ocv/ocv_processed.csv`` in the workflow;
    ``None``: the package's shipped table). The ECM table is ``cfg["ecm_table"]``; when that is the
    default ``data/ecm_params.csv`` and no such file exists here (a stage run outside the repository),
    the package's shipped copy is used.
    """
    env, reward = cfg["env"], copy.deepcopy(cfg["reward"])
    ecm_table = cfg.get("ecm_table")
    if ecm_table is not None and ecm_table == _default_ecm_table() and not Path(ecm_table).exists():
        ecm_table = None
    pack = {k: _as_argument(env[k]) for k in PACK_KEYS}
    kwargs: dict[str, Any] = {
        "profile": profile,
        "ocv_table": None if ocv_table is None else str(ocv_table),
        "ecm_table": None if ecm_table is None else str(ecm_table),
        "pack": pack,
        "reward": reward,
        "allow_implausible_tables": bool(cfg.get("allow_implausible_tables", False)),
    }
    for key in TASK_KEYS:
        kwargs[key] = _as_argument(env[key])
    return kwargs
