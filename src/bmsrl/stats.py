"""Statistics shared by the stages: Student-t intervals over training seeds, performance profiles and
training-curve averages.

Every interval in the tables and figures is a Student-t interval over per-seed statistics
(:func:`t_interval`): the seeds are the independent replicates (a trained agent, or for a
deterministic controller the seed's set of evaluation packs), and a seed's statistic averages many
packs, so it is close to normal while the number of seeds is small. ``tests/test_stats.py`` shows by
simulation that the interval covers at 3, 5 and 10 seeds, and that a percentile bootstrap of the seed
means, which this replaced, does not at 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bmsrl.errors import UserError


def t_interval(values, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 of ``values`` and its Student-t ``confidence`` interval, ``(mean, low, high)``.

    ``values`` holds one statistic per seed along axis 0 (a 1-d array gives scalars; further axes are
    separate quantities, e.g. the points of a curve). NaN values are left out (per column). The
    interval is ``mean ± t_{(1+confidence)/2, n-1} · s / sqrt(n)`` with ``s`` the sample standard
    deviation (ddof 1) of the ``n`` finite values; it is NaN with fewer than two values (a single seed
    says nothing about the spread over seeds), and the mean is NaN without any value.
    """
    import scipy.stats

    if not 0.0 < confidence < 1.0:
        raise UserError(f"confidence must lie in (0, 1), got {confidence:g}")
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    n = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.where(finite, x, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)
        squares = np.where(finite, (x - mean) ** 2, 0.0).sum(axis=0)
        sd = np.sqrt(squares / (n - 1))
        half = scipy.stats.t.ppf(0.5 + confidence / 2.0, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    half = np.where(n >= 2, half, np.nan)
    low, high = mean - half, mean + half
    if x.ndim <= 1:
        return float(mean), float(low), float(high)
    return mean, low, high


def performance_profile(shares: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of packs with a share ``>= tau``, per seed and tau (as ``rliable``'s score distributions).

    ``shares`` is ``(seeds, packs)``; NaN packs (no share defined) are left out of that seed's
    fraction. Returns ``(seeds, len(taus))``; a seed without any defined share gives NaN.
    """
    x = np.asarray(shares, dtype=np.float64)
    if x.ndim != 2:
        raise UserError(f"performance_profile needs shares shaped (seeds, packs), got {x.shape}")
    taus = np.asarray(taus, dtype=np.float64)
    defined = np.isfinite(x)
    count = defined.sum(axis=1)[:, None]
    above = (np.where(defined, x, -np.inf)[:, :, None] >= taus[None, None, :]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, above / np.maximum(count, 1), np.nan)


def training_curve(runs: Sequence[Mapping[str, np.ndarray]], confidence: float = 0.95, key: str = "results"):
    """Mean over seeds of the mean evaluation return (``key="results"``), or of another
    per-evaluation-episode array of evaluations.npz (``"capacity_mah"``), on the union grid of the
    seeds' timesteps.

    Each seed's curve (mean over its evaluation episodes; evaluations without a finite value, e.g.
    capacities carried over from a file without them, left out) is linearly interpolated onto the
    union of all seeds' timesteps inside their common range ``[max first, min last]``. The band
    is a Student-t interval over seeds (:func:`t_interval`; ``None`` with one seed).

    Returns ``(grid, mean, low, high)`` with ``low``/``high`` ``None`` for a single seed; raises a
    :class:`UserError` if a seed has no finite value or the seeds' timestep ranges do not overlap.
    """
    curves = []
    for r in runs:
        values = np.asarray(r[key], dtype=np.float64).mean(axis=1)
        finite = np.isfinite(values)
        if not finite.any():
            raise UserError(f"a seed's evaluations hold no finite {key!r}")
        curves.append((np.asarray(r["timesteps"])[finite], values[finite]))
    start = max(steps[0] for steps, _ in curves)
    stop = min(steps[-1] for steps, _ in curves)
    if start > stop:
        raise UserError("the seeds' evaluation timesteps do not overlap; cannot average them")
    grid = np.unique(np.concatenate([steps for steps, _ in curves]))
    grid = grid[(grid >= start) & (grid <= stop)]
    values = np.vstack([np.interp(grid, steps, ret) for steps, ret in curves])
    mean = values.mean(axis=0)
    if len(curves) < 2:
        return grid, mean, None, None
    _, low, high = t_interval(values, confidence)
    return grid, mean, low, high
