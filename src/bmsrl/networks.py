"""Policy networks that fit the pack's structure: one set of weights for every cell.

:class:`CellSetExtractor` is a Stable-Baselines3 features extractor (``policy_kwargs``'s
``features_extractor_class``) for the env's observation (:class:`bmsrl.env.PassiveBalancingEnv`:
``k`` frames, each ``n`` SoCs, ``n`` shunt states, ``n`` SoHs and the pack current). For every cell it
forms one input vector,

* the cell's own fields in every frame (SoC, shunt state, SoH: ``3 k`` values),
* the pack's context: the minimum, maximum and mean over cells of each of those fields, and the pack
  current of every frame (``3 * 3 k + k`` values),
* with ``physics=True``, what a BMS computes from the same fields (per frame, in units of the
  nominal capacity, so the same for any cell size): the cell's charge above the lower SoC limit
  ``q_i = (SoC_i - SoC_lo) SoH_i`` and room below the upper limit ``h_i = (SoC_hi - SoC_i) SoH_i``,
  each relative to the pack's smallest, and the room of the *emptiest* cell (least ``q``) less the
  cell's own, ``h_e - h_i``: the quantity the capacity-aware rule (``room_balancing``) thresholds,

and passes each through the same MLP (``cell_net_arch``, tanh). The features are the cell embeddings
in cell order, then their mean and maximum over cells: permuting the cells of the observation
permutes the embeddings and leaves the pooled part unchanged (``tests/test_networks.py``). The
policy's or Q-network's head (``net_arch``) sits on top, so an action bit ``i`` can read cell ``i``'s
embedding, which holds everything the capacity-aware rule needs about that cell.

Select it with ``training.features: cell_set`` or ``cell_set_physics`` (docs/model.md); ``raw``
(the default, and the study's) is SB3's flat MLP on the observation as it is.
"""

from __future__ import annotations

import gymnasium as gym
import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from bmsrl.observation import SOH_OBS_SCALE

#: ``training.features`` -> ``physics`` option of the extractor; "raw" means no extractor of ours
FEATURES: dict[str, bool | None] = {"raw": None, "cell_set": False, "cell_set_physics": True}


class CellSetExtractor(BaseFeaturesExtractor):
    """Shared per-cell MLP over the observation's cells, with pooled pack context (module docstring).

    :param observation_space: the env's ``Box`` of ``k * (3 n_cells + 1)`` values
    :param n_cells: cells per pack
    :param soc_limits: the SoC window ``(lo, hi)`` [-] (for ``physics``)
    :param physics: add the charge/room features
    :param cell_net_arch: hidden sizes of the per-cell MLP; its last size is the embedding size
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        n_cells: int,
        soc_limits: tuple[float, float] = (0.1, 0.9),
        physics: bool = False,
        cell_net_arch: tuple[int, ...] = (64, 32),
    ) -> None:
        size = int(observation_space.shape[0])
        per_frame = 3 * n_cells + 1
        if size % per_frame:
            raise ValueError(f"an observation of {size} values is not a whole number of {n_cells}-cell frames")
        if not cell_net_arch:
            raise ValueError("cell_net_arch needs at least one layer")
        frames = size // per_frame
        own = 3 * frames
        n_physics = 3 * frames if physics else 0
        inputs = own + 3 * own + frames + n_physics
        embed = int(cell_net_arch[-1])
        super().__init__(observation_space, features_dim=(n_cells + 2) * embed)
        self.n_cells, self.frames, self.physics = n_cells, frames, physics
        self.soc_lo, self.soc_hi = float(soc_limits[0]), float(soc_limits[1])
        layers: list[nn.Module] = []
        width = inputs
        for hidden in cell_net_arch:
            layers += [nn.Linear(width, int(hidden)), nn.Tanh()]
            width = int(hidden)
        self.cell_net = nn.Sequential(*layers)

    def cell_inputs(self, observations: th.Tensor) -> th.Tensor:
        """The per-cell input vectors, shape (batch, cells, inputs) (module docstring)."""
        n, k = self.n_cells, self.frames
        x = observations.reshape(-1, k, 3 * n + 1)
        cells = x[:, :, : 3 * n].reshape(-1, k, 3, n)  # (batch, frame, field, cell)
        own = cells.permute(0, 3, 1, 2).reshape(-1, n, 3 * k)  # (batch, cell, frame*field)
        context = th.cat([own.min(dim=1).values, own.max(dim=1).values, own.mean(dim=1), x[:, :, 3 * n]], dim=1)
        parts = [own, context.unsqueeze(1).expand(-1, n, -1)]
        if self.physics:
            soc = (cells[:, :, 0, :] + 1.0) / 2.0  # (batch, frame, cell)
            soh = 1.0 + cells[:, :, 2, :] / SOH_OBS_SCALE
            q = (soc - self.soc_lo) * soh  # charge above the lower limit [nominal capacities]
            h = (self.soc_hi - soc) * soh  # room below the upper limit [nominal capacities]
            # the emptiest cell's room; among cells tied for the least charge, the largest room, so
            # the feature does not depend on the cells' order
            q_min = q.min(dim=2, keepdim=True).values
            h_e = th.where(q == q_min, h, th.full_like(h, -th.inf)).max(dim=2, keepdim=True).values
            physics = th.stack(
                [q - q_min, h - h.min(dim=2, keepdim=True).values, h_e - h], dim=2
            )  # (batch, frame, 3, cell)
            parts.append(physics.permute(0, 3, 1, 2).reshape(-1, n, 3 * k))
        return th.cat(parts, dim=2)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        embedded = self.cell_net(self.cell_inputs(observations))  # (batch, cell, embed)
        pooled = th.cat([embedded.mean(dim=1), embedded.max(dim=1).values], dim=1)
        return th.cat([embedded.flatten(1), pooled], dim=1)


def features_policy_kwargs(features: str, n_cells: int, soc_limits) -> dict:
    """The ``policy_kwargs`` entries that select ``training.features`` (empty for ``raw``)."""
    if features not in FEATURES:
        raise ValueError(f"unknown features {features!r}; choose one of {list(FEATURES)}")
    physics = FEATURES[features]
    if physics is None:
        return {}
    return {
        "features_extractor_class": CellSetExtractor,
        "features_extractor_kwargs": {"n_cells": int(n_cells), "soc_limits": tuple(soc_limits), "physics": physics},
    }
