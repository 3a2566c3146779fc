"""Tests of the statistics: the t interval over seeds (known answers and coverage by simulation at small
numbers of seeds) and the performance profile."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from bmsrl.errors import UserError
from bmsrl.stats import performance_profile, t_interval


def test_t_interval_known_answers():
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    half = scipy.stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # s = 1
    assert mean == 2.0 and (low, high) == pytest.approx((2.0 - half, 2.0 + half))
    assert half == pytest.approx(2.484, abs=1e-3)
    # NaN left out; a single value: no interval; none: NaN; all equal: zero width
    assert t_interval([np.nan, 1.0, 2.0, 3.0]) == t_interval([1.0, 2.0, 3.0])
    single = t_interval([2.5])
    assert single[0] == 2.5 and math.isnan(single[1]) and math.isnan(single[2])
    assert all(math.isnan(v) for v in t_interval([]))
    assert t_interval([4.0, 4.0, 4.0]) == (4.0, 4.0, 4.0)
    # several columns at once, each its own interval; 90 % is narrower than 95 %
    table = np.array([[1.0, 10.0], [2.0, np.nan], [3.0, 30.0]])
    m, lo, hi = t_interval(table)
    assert m[0] == 2.0 and lo[0] == pytest.approx(2.0 - half) and m[1] == 20.0
    assert hi[1] - lo[1] == pytest.approx(2 * scipy.stats.t.ppf(0.975, 1) * np.std([10.0, 30.0], ddof=1) / math.sqrt(2))
    assert t_interval([1.0, 2.0, 3.0], 0.90)[2] < high
    with pytest.raises(UserError, match="confidence"):
        t_interval([1.0, 2.0], 1.0)


def _population(rng, n_sims: int, n_seeds: int, n_packs: int, seed_sd: float) -> tuple[np.ndarray, float]:
    """Per-seed means of a hierarchical population ``(n_sims, n_seeds)`` and its true mean: a seed effect
    N(0, seed_sd) and skewed per-pack values (a share-like 1 - Gamma(2, 0.05): mean 0.9, long left tail)."""
    true_mean = 0.9
    seed_effect = rng.normal(0.0, seed_sd, size=(n_sims, n_seeds, 1))
    packs = 1.0 - rng.gamma(2.0, 0.05, size=(n_sims, n_seeds, n_packs)) + seed_effect
    return packs.mean(axis=2), true_mean


#: Monte-Carlo margin of a coverage estimate over N simulations: 4 standard errors of 0.95.
N_SIMS = 4000
MARGIN = 4 * math.sqrt(0.95 * 0.05 / N_SIMS)  # 0.014


@pytest.mark.parametrize("n_seeds", [3, 5, 10])
@pytest.mark.parametrize("seed_sd", [0.0, 0.02, 0.1])  # 0: a deterministic controller, pack sampling only
@pytest.mark.parametrize("n_packs", [10, 100])  # the default config's 10 evaluation episodes, the headline 100
def test_t_interval_over_seed_means_covers_at_small_n(n_seeds, seed_sd, n_packs):
    """The nominal 95 % interval covers the true mean in 95 % of the simulated studies."""
    rng = np.random.default_rng(1000 * n_seeds + int(1000 * seed_sd) + n_packs)
    means, truth = _population(rng, N_SIMS, n_seeds, n_packs=n_packs, seed_sd=seed_sd)
    _, low, high = t_interval(means.T)  # seeds on axis 0, one column per simulated study
    coverage = np.mean((low <= truth) & (truth <= high))
    assert abs(coverage - 0.95) < MARGIN, coverage


def test_percentile_bootstrap_of_three_seed_means_under_covers():
    """The interval this replaced (percentile bootstrap of the seed means, resampled with replacement)
    covers far less than 95 % at 3 seeds: 3 values have only 10 distinct resample means."""
    rng = np.random.default_rng(7)
    n_sims, n_boot = 2000, 1000
    means, truth = _population(rng, n_sims, 3, n_packs=100, seed_sd=0.02)
    picks = rng.integers(0, 3, size=(n_sims, n_boot, 3))
    replicates = np.take_along_axis(means[:, None, :], picks, axis=2).mean(axis=2)
    low, high = np.quantile(replicates, [0.025, 0.975], axis=1)
    coverage = np.mean((low <= truth) & (truth <= high))
    assert coverage < 0.85, coverage
    _, t_low, t_high = t_interval(means.T)
    assert np.mean((t_low <= truth) & (truth <= t_high)) > coverage + 0.1


def test_performance_profile_known_answer():
    shares = np.array([[0.2, 0.5, 0.9, 1.0], [0.95, np.nan, 1.0, 0.1]])
    taus = np.array([0.0, 0.5, 0.95, 1.0, 1.01])
    fractions = performance_profile(shares, taus)
    np.testing.assert_allclose(fractions[0], [1.0, 0.75, 0.25, 0.25, 0.0])
    np.testing.assert_allclose(fractions[1], [1.0, 2 / 3, 2 / 3, 1 / 3, 0.0])  # the NaN pack left out
    assert np.isnan(performance_profile(np.full((1, 3), np.nan), taus)).all()
    assert np.all(np.diff(performance_profile(np.random.default_rng(0).random((3, 50)), np.linspace(0, 1, 21))) <= 0)
    with pytest.raises(UserError, match="seeds, packs"):
        performance_profile(np.ones(3), taus)
