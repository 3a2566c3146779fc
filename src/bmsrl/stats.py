"""Statistics shared by the stages: bootstrap intervals over seeds and training-curve averages."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from bmsrl.errors import UserError


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values``.

    ``n_boot`` resamples of ``len(values)`` values drawn with replacement (vectorized: one
    ``(n_boot, n)`` index array from ``numpy.random.default_rng(seed)``); the interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means.
    A fresh generator per call makes every interval reproducible whatever the order of the groups.

    NaN values are ignored. One value gives the degenerate interval ``(value, value)``; no value
    gives ``(nan, nan)``. With several values the interval lies within ``[min, max]``.
    """
    if not 0.0 < confidence < 1.0:
        raise UserError(f"confidence must lie in (0, 1), got {confidence:g}")
    if n_boot < 1:
        raise UserError(f"n_boot must be >= 1, got {n_boot}")
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def training_curve(runs: Sequence[Mapping[str, np.ndarray]], confidence: float = 0.95):
    """Mean over seeds of the mean evaluation return, on the union grid of the seeds' timesteps.

    Each seed's curve (mean over its evaluation episodes) is linearly interpolated onto the
    union of all seeds' timesteps inside their common range ``[max first, min last]``. The band
    is a Student-t interval over seeds (``None`` with one seed).

    Returns ``(grid, mean, low, high)`` with ``low``/``high`` ``None`` for a single seed; raises a
    :class:`UserError` if the seeds' timestep ranges do not overlap.
    """
    import scipy.stats

    curves = [(r["timesteps"], r["results"].mean(axis=1)) for r in runs]
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
    n = len(curves)
    half = scipy.stats.t.ppf(0.5 + confidence / 2.0, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return grid, mean, mean - half, mean + half
