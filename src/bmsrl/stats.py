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


def hierarchical_bootstrap(values: np.ndarray, n_boot: int = 10_000, seed: int = 0) -> np.ndarray:
    """Two-stage bootstrap replicates of the grand mean of ``values`` shaped ``(seeds, episodes, ...)``.

    Each replicate draws ``seeds`` training seeds with replacement, then, within each drawn seed,
    ``episodes`` of its episodes with replacement, and averages them; trailing axes (several
    quantities of the same episodes, e.g. a difference and the baseline's value) share the indices,
    so ratios of replicates are consistent. Vectorized: one ``(n_boot, seeds)`` and one
    ``(n_boot, seeds, episodes)`` index array from ``numpy.random.default_rng(seed)``.

    Returns an array ``(n_boot, ...)``. The variance of the replicates is, in expectation,
    ``(sigma_b^2 + mean_i(s_i^2) / episodes) / seeds`` with ``sigma_b^2`` the (population) variance of
    the seed means and ``s_i^2`` the (population) variance within seed i (tests/test_stats.py).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim < 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise UserError(f"hierarchical_bootstrap needs values shaped (seeds, episodes, ...), got {x.shape}")
    if n_boot < 1:
        raise UserError(f"n_boot must be >= 1, got {n_boot}")
    n_seeds, n_eps = x.shape[:2]
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    episodes = rng.integers(0, n_eps, size=(n_boot, n_seeds, n_eps))
    return x[seeds[:, :, None], episodes].mean(axis=(1, 2))


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the replicates (axis 0)."""
    if not 0.0 < confidence < 1.0:
        raise UserError(f"confidence must lie in (0, 1), got {confidence:g}")
    alpha = 1.0 - confidence
    low, high = np.quantile(replicates, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
    return low, high


def iqm(values, axis=-1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50 % (``scipy.stats.trim_mean``, 25 % cut each side;
    with fewer than 4 values nothing is cut and it equals the mean)."""
    import scipy.stats

    return scipy.stats.trim_mean(values, 0.25, axis=axis)


def iqm_ci(values, confidence: float = 0.95, n_boot: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """IQM of ``values`` and its percentile-bootstrap interval (``scipy.stats.bootstrap``, seeded).

    One value, or all equal: the degenerate interval ``(v, v)``; no value: NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    point = float(iqm(x))
    if x.size == 1 or np.all(x == x[0]):
        return point, point, point
    import scipy.stats

    result = scipy.stats.bootstrap((x,), iqm, confidence_level=confidence, n_resamples=n_boot, method="percentile",
                                   vectorized=True, random_state=np.random.default_rng(seed))  # fmt: skip
    return point, float(result.confidence_interval.low), float(result.confidence_interval.high)
