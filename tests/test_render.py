"""Rendering: the rgb_array and ansi render modes, video recording, SB3's make_vec_env, animations."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from PIL import Image

import bmsrl  # noqa: F401  (registers PassiveBalancing-v0)
from bmsrl.baselines import NoBalancing, RuleBased
from bmsrl.env import PassiveBalancingEnv
from bmsrl.errors import UserError
from bmsrl.profiles import LoadProfile, Phase
from bmsrl.render import CLOSED_COLOR, OPEN_COLOR, PackImage, PackView, render_ansi, write_episode_animation

#: a 10-decision episode (30 s decisions): discharge 180 s, rest 60 s, charge 60 s
SHORT = LoadProfile(
    "short",
    (Phase("discharge", 2.35, 180.0, "lower"), Phase("rest", 0.0, 60.0, None), Phase("charge", -2.35, 60.0, "upper")),
)
SHORT_STEPS = 10


def first_closable_action(env) -> int:
    """An action closing one shunt that the invalid-action rules allow now."""
    allowed = np.flatnonzero(env.unwrapped.action_masks())
    single = [a for a in allowed if a and not a & (a - 1)]  # one bit set
    return int(single[0])


# --------------------------------------------------------------------------------- rgb_array
def test_rgb_array_is_an_image_that_follows_the_state():
    env = gym.make("PassiveBalancing-v0", render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert isinstance(first, np.ndarray) and first.dtype == np.uint8
    assert first.ndim == 3 and first.shape[2] == 3 and first.shape[0] >= 200 and first.shape[1] >= 300
    assert first.std() > 10  # a picture, not a blank canvas
    np.testing.assert_array_equal(env.render(), first)  # same state, same frame
    assert env.render() is not env.render()  # a fresh array each time

    action = first_closable_action(env)
    env.step(action)
    closed = env.render()
    assert closed.shape == first.shape
    changed = np.any(closed != first, axis=-1)
    assert changed.mean() > 0.002  # bars, shunt marker, numbers and header moved

    # the closed shunt shows: the frame differs from one where the same step left all shunts open
    other = gym.make("PassiveBalancing-v0", render_mode="rgb_array")
    other.reset(seed=0)
    other.step(0)
    assert np.any(other.render() != closed)
    cell = int(np.log2(action))
    assert env.unwrapped.task.sim.state.switches[0, cell]


def bar_height_px(frame: np.ndarray, col: int, color: str) -> int:
    """Pixels of ``color`` (a bar) in column ``col``."""
    rgb = np.array([int(color[k : k + 2], 16) for k in (1, 3, 5)])
    return int(np.all(frame[:, col] == rgb, axis=-1).sum())


def test_frame_draws_each_cell_soc_and_shunt():
    """Pixel checks on a synthetic state: bar heights follow SoC, a closed shunt changes its cell."""
    env = PassiveBalancingEnv()
    image = PackImage(env.task.params)
    n = env.task.params.n_cells
    half, volts, open_ = np.full(n, 0.5), np.full(n, 3.6), np.zeros(n, bool)
    f0 = image(PackView(600.0, "discharge", 2.35, half, open_, volts))
    f1 = image(PackView(600.0, "discharge", 2.35, np.r_[0.8, half[1:]], open_, volts))
    top = int(0.15 * f0.shape[0])  # below the header (whose SoC spread changes too)
    cols = np.flatnonzero(np.any(f0[top:] != f1[top:], axis=(0, 2)))
    assert cols.size and cols.max() < f0.shape[1] * 0.2  # cell 1 only (left end of the SoC axes)
    mid = int(np.median(cols))
    h0, h1 = bar_height_px(f0, mid, OPEN_COLOR), bar_height_px(f1, mid, OPEN_COLOR)
    assert h0 > 50 and h1 / h0 == pytest.approx(0.8 / 0.5, rel=0.05)  # bar height proportional to SoC

    f2 = image(PackView(600.0, "discharge", 2.35, half, np.r_[open_[1:], True], volts))
    cols = np.flatnonzero(np.any(f0[top:] != f2[top:], axis=(0, 2)))
    assert cols.size and f0.shape[1] * 0.45 < cols.min() and cols.max() < f0.shape[1] * 0.65  # cell 5 only
    mid = int(np.median(cols))
    assert bar_height_px(f2, mid, OPEN_COLOR) == 0  # the bar turned to the bleeding colour ...
    # ... and the shunt marker is filled: more of that colour than the bar plus a hollow marker
    assert bar_height_px(f2, mid, CLOSED_COLOR) > bar_height_px(f0, mid, OPEN_COLOR) + bar_height_px(
        f0, mid, CLOSED_COLOR
    )
    np.testing.assert_array_equal(image(PackView(600.0, "discharge", 2.35, half, open_, volts)), f0)


def test_render_without_mode_returns_none():
    env = gym.make("PassiveBalancing-v0")
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert env.render() is None


@pytest.mark.parametrize("mode", ["human", "rgb", "ANSI", "depth_array"])
def test_unknown_render_mode_is_refused(mode):
    with pytest.raises(ValueError, match=r"render_mode.*rgb_array.*ansi"):
        PassiveBalancingEnv(render_mode=mode)


# -------------------------------------------------------------------------------------- ansi
def test_ansi_is_one_line_per_cell():
    env = gym.make("PassiveBalancing-v0", render_mode="ansi")
    env.reset(seed=1)
    action = first_closable_action(env)
    env.step(action)
    text = env.render()
    assert isinstance(text, str)
    lines = text.rstrip("\n").splitlines()
    state = env.unwrapped.task.sim.state
    n = env.unwrapped.task.params.n_cells
    cell_lines = lines[-n:]
    assert len(lines) <= 24 and max(map(len, lines)) <= 120  # one screen
    assert "t = 0.5 min" in lines[0] and "phase: discharge" in lines[0] and "+2.35 A" in lines[0]
    for i, line in enumerate(cell_lines):
        assert line.split()[0] == str(i + 1)
        assert f"{100 * state.soc[0, i]:.2f}" in line
        assert f"{state.terminal_v[0, i]:.3f}" in line
        assert ("closed" in line) == bool(state.switches[0, i])
    assert sum("closed" in line for line in cell_lines) == 1


def test_ansi_bar_length_follows_soc_and_flags_values_outside_the_windows():
    params = PassiveBalancingEnv().task.params
    view = PackView(
        7300.0,
        "charge",
        -2.35,
        np.array([0.05, 0.25, 0.5, 0.75, 0.95]),
        np.zeros(5, bool),
        np.array([3.0, 3.5, 3.7, 4.0, 4.3]),
    )
    lines = render_ansi(view, params).splitlines()
    assert "2.03 h" in lines[0] and "charging" in lines[0]
    bars = [line[line.index("[") + 1 : line.index("]")] for line in lines[-5:]]
    filled = [bar.count("#") for bar in bars]
    assert filled == sorted(filled) and filled[0] < filled[-1]
    flagged = ["!" in line for line in lines[-5:]]
    assert flagged == [True, False, False, False, True]


# ------------------------------------------------------------------------- Gymnasium and SB3
def test_gymnasium_check_env_with_render_modes():
    env = gym.make("PassiveBalancing-v0", render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a render-mode warning fails the test
        gym_check_env(env.unwrapped)  # also makes the env once per declared render mode and renders


def test_record_video_writes_an_mp4(tmp_path):
    pytest.importorskip("moviepy")
    from gymnasium.wrappers import RecordVideo

    env = gym.make("PassiveBalancing-v0", render_mode="rgb_array", profile=SHORT)
    env = RecordVideo(env, str(tmp_path / "videos"), episode_trigger=lambda episode: True, name_prefix="pack")
    obs, _ = env.reset(seed=0)
    policy, done, steps = RuleBased(0.01, 0.005), False, 0
    while not done:
        obs, _, terminated, truncated, _ = env.step(int(policy.predict(obs)[0]))
        done, steps = terminated or truncated, steps + 1
    env.close()
    assert steps == SHORT_STEPS
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert [v.name for v in videos] == ["pack-episode-0.mp4"]
    assert videos[0].stat().st_size > 1000


def test_sb3_make_vec_env():
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env("PassiveBalancing-v0", n_envs=2, seed=0)
    assert venv.render_mode == "rgb_array"  # make_vec_env asks for rgb_array by default
    obs = venv.reset()
    assert obs.shape == (2, 48)
    obs, reward, done, info = venv.step(np.zeros(2, dtype=np.int64))
    frames = venv.get_images()
    assert len(frames) == 2 and all(f.ndim == 3 and f.dtype == np.uint8 for f in frames)
    assert np.any(frames[0] != frames[1])  # two different packs
    venv.close()


# ------------------------------------------------------------------------------- animations
def test_gif_of_an_episode(tmp_path):
    env = PassiveBalancingEnv(profile=SHORT)
    path = tmp_path / "out" / "episode.gif"
    n = write_episode_animation(env, RuleBased(0.01, 0.005), 3, path, fps=5)
    assert n == SHORT_STEPS + 1  # the reset state and every decision
    assert path.read_bytes()[:6] == b"GIF89a"
    with Image.open(path) as gif:
        assert gif.n_frames == n
        assert gif.info["duration"] == 200  # ms per frame at 5 fps
        frames = []
        for k in range(gif.n_frames):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("RGB")))
    assert frames[0].shape == (400, 640, 3)
    assert all(np.any(a != b) for a, b in zip(frames, frames[1:]))  # the time changes every frame
    assert sorted(p.name for p in path.parent.iterdir()) == ["episode.gif"]  # no temporary left


def test_gif_frame_matches_the_rendered_state(tmp_path):
    """Frame k of the animation is env.render() after k decisions of the same episode (palette aside)."""
    path = tmp_path / "episode.gif"
    write_episode_animation(PassiveBalancingEnv(profile=SHORT), NoBalancing(), 4, path, max_steps=3)
    env = PassiveBalancingEnv(profile=SHORT, render_mode="rgb_array")
    env.reset(seed=4)
    for _ in range(3):
        env.step(0)
    with Image.open(path) as gif:
        assert gif.n_frames == 4
        gif.seek(3)
        last = np.asarray(gif.convert("RGB")).astype(int)
    rendered = env.render().astype(int)
    assert np.abs(last - rendered).max() < 60  # nearest palette colour
    assert (np.abs(last - rendered).max(axis=-1) < 12).mean() > 0.99


class MaskedPolicy:
    """Records the masks it is given (MaskablePPO's predict signature)."""

    def __init__(self):
        self.masks = []

    def predict(self, observation, state=None, episode_start=None, deterministic=False, action_masks=None):
        assert deterministic
        self.masks.append(action_masks)
        return np.int64(np.flatnonzero(action_masks)[-1]), state


def test_animation_passes_action_masks(tmp_path):
    policy = MaskedPolicy()
    write_episode_animation(PassiveBalancingEnv(profile=SHORT), policy, 0, tmp_path / "a.gif", max_steps=4)
    assert len(policy.masks) == 4 and all(m is not None and m.dtype == bool for m in policy.masks)


class FailingPolicy:
    def __init__(self, after: int):
        self.after, self.calls = after, 0

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("policy failed")
        return np.int64(0), state


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_failed_animation_leaves_no_file(tmp_path, suffix, monkeypatch):
    if suffix == ".mp4":
        _ffmpeg_on_path(tmp_path, monkeypatch)
    path = tmp_path / "out" / f"episode{suffix}"
    with pytest.raises(RuntimeError, match="policy failed"):
        write_episode_animation(PassiveBalancingEnv(profile=SHORT), FailingPolicy(after=3), 0, path)
    assert not path.parent.exists() or list(path.parent.iterdir()) == []
    path.write_bytes(b"old")  # an earlier animation stays as it was
    with pytest.raises(RuntimeError):
        write_episode_animation(PassiveBalancingEnv(profile=SHORT), FailingPolicy(after=3), 0, path)
    assert path.read_bytes() == b"old" and list(path.parent.iterdir()) == [path]


def test_gif_interrupted_while_written_leaves_no_file(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"GIF89a")  # a partial file, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    path = tmp_path / "episode.gif"
    with pytest.raises(UserError, match="episode.gif"):
        write_episode_animation(PassiveBalancingEnv(profile=SHORT), RuleBased(0.01, 0.005), 0, path, max_steps=2)
    assert list(tmp_path.iterdir()) == []


def test_animation_refuses_other_formats(tmp_path, monkeypatch):
    with pytest.raises(UserError, match=r"\.gif"):
        write_episode_animation(PassiveBalancingEnv(profile=SHORT), RuleBased(0.01, 0.005), 0, tmp_path / "a.avi")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(UserError, match="ffmpeg"):
        write_episode_animation(PassiveBalancingEnv(profile=SHORT), RuleBased(0.01, 0.005), 0, tmp_path / "a.mp4")
    assert list(tmp_path.iterdir()) == []


def _ffmpeg_on_path(tmp_path: Path, monkeypatch) -> None:
    """Put an ffmpeg on PATH: the system's, or imageio-ffmpeg's binary (installed with moviepy)."""
    if shutil.which("ffmpeg"):
        return
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ffmpeg").symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_mp4_of_an_episode(tmp_path, monkeypatch):
    _ffmpeg_on_path(tmp_path, monkeypatch)
    path = tmp_path / "out" / "episode.mp4"
    n = write_episode_animation(PassiveBalancingEnv(profile=SHORT), RuleBased(0.01, 0.005), 0, path)
    assert n == SHORT_STEPS + 1
    data = path.read_bytes()
    assert data[4:8] == b"ftyp" and len(data) > 1000  # an MP4 container
    assert list(path.parent.iterdir()) == [path]


def test_evaluate_cli_writes_episode_0_as_an_animation(tmp_path):
    """``bmsrl evaluate --animation``: the GIF is episode 0 of the traces, frame by frame."""
    import json

    import pandas as pd

    from bmsrl import cli

    out, gif = tmp_path / "eval", tmp_path / "anim" / "rule_based.gif"
    cfg = {
        "env": {"decision_interval_s": 150.0},
        "evaluation": {"episodes": 1, "seed_offset": 100},
        "baselines": {"tuned": False},  # rule_based with its configured settings
    }  # ~40 steps
    argv = [
        "evaluate",
        "--config-json",
        json.dumps(cfg),
        "--policy",
        "rule_based",
        "--profile",
        "charge-rest-discharge",
        "--seed",
        "0",
        "--out",
        str(out),
        "--animation",
        str(gif),
    ]
    assert cli.main(argv) == 0
    traces = pd.read_csv(out / "traces.csv")
    assert traces["step"].iloc[-1] > 20 and traces["phase"].iloc[-1] == "done"  # a whole episode
    with Image.open(gif) as image:
        assert image.n_frames == (traces["episode"] == 0).sum()
    argv[argv.index("--out") + 1] = str(tmp_path / "eval2")
    assert cli.main([*argv[:-1], str(tmp_path / "anim.avi")]) == 2  # a UserError, reported ...
    assert not (tmp_path / "eval2").exists() and not (tmp_path / "anim.avi").exists()  # ... before evaluating
