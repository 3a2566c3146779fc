"""The env's action spaces (``env.action_space``) and the one conversion between them.

* ``discrete`` (the study's): ``Discrete(2^n)``, one action index per decision whose bit ``i`` closes
  the shunt of cell ``i``. An action that closes a shunt the invalid-action rules forbid is not applied
  at all: the previous switch state is kept (less any shunt forbidden now).
* ``multi_binary``: ``MultiBinary(n)``, one bit per shunt (1: closed), a per-cell action head for the
  policy-gradient algorithms (which ones: :attr:`bmsrl.algos.AlgoSpec.action_spaces`).
  The rules apply per cell: a forbidden shunt stays open, every other bit is applied as requested,
  and the step still counts as invalid (the reward's penalty, ``info["invalid_action"]``).

Both spaces address the same switch states; :class:`bmsrl.env.BalancingTask` works on action indices
inside and converts here, so the baselines (which answer with indices) and an agent of either space
run on a task of either space (:func:`bmsrl.rollout.rollout` passes what a policy returns through
:func:`as_indices`). NumPy only: the config's schema reads :data:`ACTION_SPACES`.
"""

from __future__ import annotations

import numpy as np

#: ``env.action_space`` -> what it is (module docstring); the first is the default, the study's
ACTION_SPACES: dict[str, str] = {
    "discrete": "Discrete(2^n_cells): one index, bit i closes cell i's shunt; an invalid action keeps the previous switches",
    "multi_binary": "MultiBinary(n_cells): one bit per shunt; a forbidden shunt stays open, the other bits apply",
}
DISCRETE, MULTI_BINARY = ACTION_SPACES


def bit_weights(n_cells: int) -> np.ndarray:
    """``2^i`` for cell ``i``: an index is ``bits @ bit_weights``."""
    return (1 << np.arange(n_cells)).astype(np.int64)


def index_to_bits(indices, n_cells: int) -> np.ndarray:
    """Action indices ``(...)`` as shunt bits ``(..., n_cells)`` (bool, True: closed)."""
    return ((np.asarray(indices, dtype=np.int64)[..., None] >> np.arange(n_cells)) & 1).astype(bool)


def bits_to_index(bits) -> np.ndarray:
    """Shunt bits ``(..., n_cells)`` (0/1 or bool) as action indices ``(...)`` (int64)."""
    bits = np.asarray(bits)
    return (bits.astype(np.int64) * bit_weights(bits.shape[-1])).sum(axis=-1)


def check_indices(actions, n_packs: int, n_cells: int) -> np.ndarray:
    """``actions`` as an index array over ``n_packs`` packs, or a :class:`ValueError` naming the bad action.

    Accepted: integers in [0, 2^n_cells) (NumPy integer arrays of ``n_packs`` elements, as SB3 passes
    them), as Gymnasium's ``Discrete.contains``; refused: floats (3.5 is not 3), strings, booleans,
    NaN, negative (-1 is not the last action) or too-large values. One vectorized check.
    """
    n_actions = 2**n_cells
    array = np.asarray(actions)
    if array.dtype.kind not in "iu" or array.size != n_packs:
        raise ValueError(
            f"invalid action {actions!r}: expected {n_packs} integer action(s) in [0, {n_actions - 1}]"
            f" (Discrete({n_actions})), got {array.size} value(s) of type {array.dtype}"
        )
    array = array.reshape(n_packs)
    # one comparison: a negative action, seen as unsigned, is huge
    unsigned = array.view(np.uint64) if array.dtype == np.int64 else array.astype(np.uint64)
    if np.count_nonzero(unsigned >= n_actions):
        bad = array[(array < 0) | (array >= n_actions)]
        raise ValueError(
            f"invalid action {bad[0]}: actions are integers in [0, {n_actions - 1}] (Discrete({n_actions}))"
        )
    return array


def check_bits(actions, n_packs: int, n_cells: int) -> np.ndarray:
    """``actions`` (``(n_packs, n_cells)`` values 0 or 1: bool, integer or float, as SB3's Bernoulli
    samples are) as an index array over packs, or a :class:`ValueError` naming the bad action
    (as Gymnasium's ``MultiBinary.contains``: the shape, and every value exactly 0 or 1)."""
    array = np.asarray(actions)
    if array.dtype.kind not in "biuf" or array.shape != (n_packs, n_cells):
        raise ValueError(
            f"invalid action {actions!r}: expected {n_packs} x {n_cells} shunt bits (MultiBinary({n_cells})"
            f" per pack), got shape {array.shape} of type {array.dtype}"
        )
    if array.dtype.kind != "b" and not np.all((array == 0) | (array == 1)):
        bad = array[(array != 0) & (array != 1)]
        raise ValueError(
            f"invalid action bit {bad[0]!r}: shunt bits are 0 (open) or 1 (closed) (MultiBinary({n_cells}))"
        )
    return bits_to_index(array)


def as_indices(actions, n_packs: int, n_cells: int) -> np.ndarray:
    """What a policy returned for ``n_packs`` packs, in either space, as checked action indices: an
    ``(n_packs, n_cells)`` array is shunt bits (a ``multi_binary`` agent), anything else indices (a
    ``discrete`` agent, a baseline)."""
    array = np.asarray(actions)
    if array.ndim == 2 and array.shape == (n_packs, n_cells):
        return check_bits(array, n_packs, n_cells)
    return check_indices(array.astype(np.int64) if array.dtype.kind in "iu" else array, n_packs, n_cells)


def cell_masks(forbidden: np.ndarray) -> np.ndarray:
    """The valid ``multi_binary`` actions as sb3-contrib's maskable policies read them: from
    ``forbidden`` (packs, cells) closures, (packs, 2 n_cells), per cell [open allowed, close allowed]."""
    return np.stack([np.ones_like(forbidden), ~forbidden], axis=-1).reshape(forbidden.shape[0], -1)
