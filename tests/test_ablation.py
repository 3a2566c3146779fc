"""benchmarks/ablation.py: its arms are the issue-19 changes that apply to the algorithm, each a valid config."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from workflow_support import ROOT


def ablation():
    spec = importlib.util.spec_from_file_location("ablation", ROOT / "benchmarks" / "ablation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ablation"] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("algo", "expected"),
    [
        ("ppo", ["none", "per_cell", "cell_set", "test_profiles", "all"]),
        ("dqn", ["none", "cell_set", "test_profiles", "double_q", "all"]),
        ("ars", ["none", "test_profiles"]),
    ],
)
def test_each_change_alone_and_all_together_as_valid_configs(algo, expected):
    module = ablation()
    arms = module.arms(algo, list(module.CHANGES))
    assert list(arms) == expected
    for overrides in arms.values():
        cfg = module.arm_config({}, algo, 4096, 3, overrides)
        assert cfg["algos"] == [algo] and cfg["training"]["total_steps"][algo] == 4096
        assert cfg["evaluation"]["episodes"] == 3
    if "all" in arms:  # every applicable change at once
        assert len(arms["all"]) == sum(len(arms[n]) for n in expected[1:-1])
