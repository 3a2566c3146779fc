"""benchmarks/imitation.py: the imitation data never touches a held-out seed, a network that is the rule
scores exactly the rule on the same packs, and its tables hold every budget, option and metric."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch as th

from bmsrl.agents import load_policy
from bmsrl.config import load_config
from workflow_support import ROOT, benchmark


def imitation():
    return benchmark("imitation")


def test_the_imitation_packs_are_never_held_out_ones():
    module = imitation()
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert len(module.data_seeds(cfg, 1, 256)) == 256
    # an evaluation seed range moved onto seed 1's imitation packs is refused
    cfg["evaluation"]["seed_offset"] = module.DATA_SEED_OFFSET + 10_000 - 1000
    with pytest.raises(SystemExit, match="held-out"):
        module.data_seeds(cfg, 1, 256)


class _RuleScores(th.nn.Module):
    """A "network" whose highest output is always the teacher's action: the perfect imitation."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.rule = load_policy("room_balancing", None, cfg)

    def forward(self, obs: th.Tensor) -> th.Tensor:
        actions, _ = self.rule.predict(obs.numpy())
        return th.nn.functional.one_hot(th.as_tensor(np.asarray(actions)), 32).float()


def test_a_network_that_is_the_rule_scores_the_rule_on_the_same_packs():
    from bmsrl.evaluate import evaluate

    module = imitation()
    cfg = load_config(ROOT / "config" / "config.yaml")
    cfg["evaluation"]["episodes"] = 3
    _, reference = evaluate(cfg, module.TEACHER, module.TEST_PROFILE, 1, None, None)
    _, metrics = evaluate(
        cfg, "imitation_rule", module.TEST_PROFILE, 1, None, None, policy=module.GreedyValid(_RuleScores(cfg))
    )
    got = module.stats(metrics, reference)
    assert got["d_mAh"] == 0.0
    assert got["changes"] == reference["switch_changes"].mean() > 0  # the rule does switch on these packs
    # the recorded teacher data: each decision is the rule's action for its observation
    obs, actions, pack = module.teacher_data(cfg, 1, 4)
    rule_actions, _ = load_policy("room_balancing", None, cfg).predict(obs)
    assert np.array_equal(rule_actions, actions) and set(np.unique(pack)) == set(range(8))


def test_the_tables_hold_every_budget_option_and_metric(tmp_path):
    module = imitation()
    out = tmp_path / "imitation"
    module.main(["--seeds", "1", "2", "--packs", "4", "--updates", "2", "3", "--test-packs", "2", "--out", str(out)])
    table = pd.read_csv(out / "imitation.csv")
    assert len(table) == (2 * 3 + 1) * len(module.COLUMNS)  # (budgets x features + the rule) x metrics
    assert set(table["updates"]) == {0, 2, 3} and (table["n_seeds"] == 2).all()
    rule = table[table["features"] == module.TEACHER].set_index("metric")["mean"]
    assert rule["d_mAh"] == 0.0 and rule["agreement"] == 1.0 and rule["changes"] > 0
    seeds = pd.read_csv(out / "imitation_seeds.csv")
    assert len(seeds) == (2 * 3 + 1) * 2 and seeds["agreement"].between(0.0, 1.0).all()
