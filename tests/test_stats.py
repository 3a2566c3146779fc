"""Known-answer tests of the paired statistics: the hierarchical bootstrap and the IQM interval."""

from __future__ import annotations

import numpy as np
import pytest

from bmsrl.errors import UserError
from bmsrl.stats import hierarchical_bootstrap, iqm, iqm_ci, percentile_interval


def test_hierarchical_bootstrap_matches_the_two_stage_variance():
    """E[replicate] = grand mean; Var[replicate] = (sigma_b^2 + mean_i s_i^2 / m) / n (population variances)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 6)) + np.array([0.0, 1.0, 3.0, 7.0])[:, None]
    n, m = x.shape
    reps = hierarchical_bootstrap(x, n_boot=200_000, seed=1)
    expected = (x.mean(axis=1).var() + x.var(axis=1).mean() / m) / n
    assert reps.mean() == pytest.approx(x.mean(), abs=4 * np.sqrt(expected / 200_000))
    assert reps.var() == pytest.approx(expected, rel=0.02)
    # a one-level bootstrap over the seed means alone would miss the within-seed term
    assert expected > x.mean(axis=1).var() / n


def test_hierarchical_bootstrap_degenerate_and_shared_indices():
    # episodes identical within each seed: only the seed level varies; two seeds 0 and 1 -> means 0, 1/2, 1
    x = np.repeat(np.array([[0.0], [1.0]]), 5, axis=1)
    reps = hierarchical_bootstrap(x, n_boot=40_000, seed=0)
    values, counts = np.unique(reps, return_counts=True)
    assert list(values) == [0.0, 0.5, 1.0]
    assert counts / counts.sum() == pytest.approx([0.25, 0.5, 0.25], abs=0.01)
    assert percentile_interval(reps, 0.95) == (0.0, 1.0)
    # trailing axes share the resampling: a quantity and its double stay exactly proportional
    y = np.random.default_rng(0).normal(size=(3, 4))
    both = hierarchical_bootstrap(np.stack([y, 2 * y], axis=-1), n_boot=500, seed=2)
    np.testing.assert_allclose(both[:, 1], 2 * both[:, 0])
    np.testing.assert_allclose(hierarchical_bootstrap(y, 500, 2), both[:, 0], rtol=1e-12)  # seeded, reproducible
    with pytest.raises(UserError):
        hierarchical_bootstrap(np.ones(3))


def test_iqm_and_its_interval():
    assert iqm(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0])) == pytest.approx(4.5)  # 3, 4, 5, 6
    assert iqm(np.array([1.0, 2.0, 9.0])) == pytest.approx(4.0)  # < 4 values: the mean
    point, low, high = iqm_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0], n_boot=2000)
    assert point == pytest.approx(4.5) and low < point < high < 100.0
    assert iqm_ci([2.0]) == (2.0, 2.0, 2.0) and iqm_ci([3.0, 3.0]) == (3.0, 3.0, 3.0)
    assert all(np.isnan(iqm_ci([])))
