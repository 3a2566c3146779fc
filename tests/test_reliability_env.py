"""The env's Gymnasium contract (issue 23, item 10): reset options, stepping and rendering before
``reset()`` and after the episode's end, and ``render_mode`` validated with a clear message; for the
env from ``gym.make`` and for the unwrapped one.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded

import bmsrl  # noqa: F401  (registers PassiveBalancing-v0)
from bmsrl.env import PassiveBalancingEnv

#: a short episode (about 20 decisions of 300 s)
SHORT = {"decision_interval_s": 300}


def run_to_the_end(env) -> tuple[int, bool, bool]:
    """Step ``env`` (reset) with action 0 until the episode ends; (steps, terminated, truncated)."""
    for steps in range(1, 10_000):
        _, _, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            return steps, terminated, truncated
    raise AssertionError("the episode did not end")


@pytest.mark.parametrize("options", [{"init_soc": [0.1, 0.2]}, {"anything": 1}, 5, "soc", [("a", 1)]])
@pytest.mark.parametrize("wrapped", [True, False])
def test_reset_refuses_options_it_does_not_document(options, wrapped):
    env = gym.make("PassiveBalancing-v0") if wrapped else PassiveBalancingEnv()
    with pytest.raises(ValueError, match=r"takes no reset options \(None or \{\}\)"):
        env.reset(seed=0, options=options)


def test_reset_accepts_no_options_or_an_empty_mapping_and_draws_the_same_pack():
    env = PassiveBalancingEnv()
    first, _ = env.reset(seed=3)
    again, _ = env.reset(seed=3, options={})
    third, _ = env.reset(seed=3, options=None)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, third)


@pytest.mark.parametrize("wrapped", [True, False])
def test_step_after_the_episode_end_raises_until_reset(wrapped):
    env = gym.make("PassiveBalancing-v0", **SHORT) if wrapped else PassiveBalancingEnv(**SHORT)
    env.reset(seed=0)
    steps, terminated, truncated = run_to_the_end(env)
    assert steps > 1 and (terminated or truncated)
    state = env.unwrapped.task.sim.state
    time_s = state.time_s.copy()
    with pytest.raises(ResetNeeded, match="after the episode ended"):
        env.step(0)
    np.testing.assert_array_equal(env.unwrapped.task.sim.state.time_s, time_s)  # nothing integrated
    env.reset(seed=1)
    env.step(0)  # a new episode steps again


def test_the_unwrapped_env_neither_steps_nor_renders_before_reset():
    env = PassiveBalancingEnv(render_mode="ansi")
    with pytest.raises(ResetNeeded, match=r"Cannot call env\.step\(\) before calling env\.reset\(\)"):
        env.step(0)
    with pytest.raises(ResetNeeded, match=r"Cannot call env\.render\(\) before calling env\.reset\(\)"):
        env.render()
    env.reset(seed=0)
    assert isinstance(env.render(), str)  # renders once reset
    env.step(0)


def test_the_last_state_still_renders_after_the_end():
    env = PassiveBalancingEnv(render_mode="ansi", **SHORT)
    env.reset(seed=0)
    run_to_the_end(env)
    assert isinstance(env.render(), str)


@pytest.mark.parametrize("mode", [1, 1.5, ["rgb_array"], b"ansi"])
@pytest.mark.parametrize("wrapped", [True, False])
def test_a_render_mode_that_is_not_a_string_is_a_clear_error(mode, wrapped):
    with pytest.raises(ValueError, match=r"render_mode must be one of \['rgb_array', 'ansi'\] or None, not "):
        if wrapped:
            gym.make("PassiveBalancing-v0", render_mode=mode)
        else:
            PassiveBalancingEnv(render_mode=mode)


def test_an_unknown_render_mode_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown render_mode 'video'; choose one of"):
        gym.make("PassiveBalancing-v0", render_mode="video")


def test_the_documented_render_modes_still_work_through_gym_make():
    env = gym.make("PassiveBalancing-v0", render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape[-1] == 3
    frames = gym.make("PassiveBalancing-v0", render_mode="rgb_array_list")  # Gymnasium's RenderCollection
    frames.reset(seed=0)
    frames.step(0)
    assert len(frames.render()) >= 1
