"""Pictures of one pack state: an RGB frame, a one-screen text view, and an episode animation.

:class:`PackRenderer` draws pack ``k`` of a :class:`~bmsrl.env.BalancingTask` as it is now:

* ``"rgb_array"``: an ``(H, W, 3)`` ``uint8`` image (640 x 400 px by default): one SoC bar per
  cell with the SoC window, the shunt of each cell (filled marker: closed, hollow: open; a bleeding
  cell's bar is orange), the terminal voltage of each cell with the voltage window, and a header
  with the time, the load-profile phase, the pack current and the SoC spread;
* ``"ansi"``: the same as text, one line per cell.

The image comes from one matplotlib Agg figure per renderer, built once: the axes, ticks, labels and
windows are drawn once into a background, and each frame restores it and redraws only the artists
that change (bars, markers, numbers; matplotlib's blitting). A frame takes ~12 ms (80 frames/s on
the 2-core reference machine), so a ~200-step episode renders in 2-3 s; ``python -m bmsrl.render
--benchmark`` measures the rate.

:func:`write_episode_animation` plays one deterministic episode of a policy and writes it as a GIF
(Pillow, which matplotlib needs anyway) or an MP4 (only where an ``ffmpeg`` executable is on
``PATH``), atomically.

The pack current shown is the current of the phase the pack is in, i.e. the current of the coming
decision interval (as in the observation); > 0 discharges the pack.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bmsrl.errors import UserError
from bmsrl.pack import PackParameters

if TYPE_CHECKING:  # bmsrl.env imports this module (light at import time: matplotlib loads on first use)
    from bmsrl.env import BalancingTask

RENDER_MODES = ("rgb_array", "ansi")
#: frames per second of recorded videos and animations: one frame per 30 s decision, so a
#: ~200-decision episode plays in ~20 s
RENDER_FPS = 10

OPEN_COLOR = "#4c72b0"  #: SoC bar of a cell whose shunt is open
CLOSED_COLOR = "#dd8452"  #: SoC bar and shunt marker of a cell whose shunt is closed (bleeding)
WINDOW_COLOR = "#555555"  #: SoC and voltage window lines
ALERT_COLOR = "#c44e52"  #: a value outside its window

ANIMATION_SUFFIXES = (".gif", ".mp4")


@dataclass(frozen=True)
class PackView:
    """What a frame shows: one pack's state now (per-cell arrays of length ``n_cells``)."""

    time_s: float  #: time since reset [s]
    phase: str  #: name of the load-profile phase ("done" after the last one)
    pack_current_a: float  #: current of the phase the pack is in (the coming interval) [A], > 0 discharging
    soc: np.ndarray  #: state of charge [-]
    switches: np.ndarray  #: shunt closed (bool)
    terminal_v: np.ndarray  #: terminal voltage [V]

    @classmethod
    def of(cls, task: BalancingTask, k: int = 0) -> PackView:
        s = task.sim.state
        return cls(
            time_s=float(s.time_s[k]),
            phase=task.profile.phase_name(int(s.phase[k])),
            pack_current_a=float(task.sim.pack_current_now_a()[k]),
            soc=s.soc[k].copy(),
            switches=s.switches[k].astype(bool),
            terminal_v=s.terminal_v[k].copy(),
        )


def format_time(time_s: float) -> str:
    """``"12.5 min"`` below two hours, ``"2.25 h"`` from then on."""
    return f"{time_s / 60.0:.1f} min" if time_s < 7200.0 else f"{time_s / 3600.0:.2f} h"


def format_current(current_a: float) -> str:
    """Pack current with its sign and meaning: ``"+2.35 A (discharging)"``."""
    if current_a > 0.0:
        return f"{current_a:+.2f} A (discharging)"
    if current_a < 0.0:
        return f"{current_a:+.2f} A (charging)"
    return "0.00 A (rest)"


def header_lines(view: PackView) -> tuple[str, str]:
    """The two header lines of a frame: time, phase, pack current; SoC spread, closed shunts."""
    spread = 100.0 * float(view.soc.max() - view.soc.min())
    return (
        f"t = {format_time(view.time_s)}   phase: {view.phase}   I_pack = {format_current(view.pack_current_a)}",
        f"SoC spread (max - min) = {spread:.2f} %   shunts closed: {int(view.switches.sum())}/{view.soc.size}",
    )


# ------------------------------------------------------------------------------------- text
def render_ansi(view: PackView, params: PackParameters, bar_width: int = 40) -> str:
    """A one-screen text view: two header lines, a column header, then one line per cell.

    The SoC bar spans 0-100 % in ``bar_width`` characters (``#`` filled); ``|`` marks the SoC
    window. A ``!`` after a value flags it outside its window.
    """
    soc_lo, soc_hi = params.soc_limits
    v_lo, v_hi = params.voltage_limits_v
    marks = {min(int(round(x * bar_width)), bar_width - 1) for x in (soc_lo, soc_hi)}
    head1, head2 = header_lines(view)
    lines = [
        head1,
        head2 + f"   SoC window {100 * soc_lo:g}-{100 * soc_hi:g} % (|)   V window {v_lo:.2f}-{v_hi:.2f} V",
        f"cell  SoC 0-100 % {' ' * (bar_width - 16)}  SoC [%]  shunt   V_term [V]",
    ]
    for i, (soc, closed, v) in enumerate(zip(view.soc, view.switches, view.terminal_v), start=1):
        filled = int(round(min(max(float(soc), 0.0), 1.0) * bar_width))
        bar = "".join("|" if j in marks else ("#" if j < filled else ".") for j in range(bar_width))
        soc_flag = "!" if not soc_lo <= soc <= soc_hi else " "
        v_flag = "!" if not v_lo <= v <= v_hi else " "
        lines.append(
            f"{i:>4}  [{bar}]  {100 * soc:6.2f}{soc_flag}  {'closed' if closed else 'open  '}  {v:7.3f}{v_flag}"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ image
#: text rendered without font hinting: a frame takes ~9 ms instead of ~13 ms (text is most of it)
_FAST_TEXT = {"text.hinting": "none"}


class PackImage:
    """A reusable matplotlib Agg figure drawing :class:`PackView` frames by blitting."""

    def __init__(self, params: PackParameters, width_px: int = 640, height_px: int = 400, dpi: int = 100):
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if width_px % 2 or height_px % 2:
            raise ValueError("width_px and height_px must be even (H.264 video needs even sizes)")
        self.params = params
        n = params.n_cells
        x = np.arange(1, n + 1)
        soc_lo, soc_hi = params.soc_limits
        v_lo, v_hi = params.voltage_limits_v
        margin = 0.15 * (v_hi - v_lo)
        self._v_bottom = v_lo - margin
        style = {"font.size": 8, "axes.spines.top": False, "axes.spines.right": False, **_FAST_TEXT}
        with matplotlib.rc_context(style):
            fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, facecolor="white")
            self.canvas = FigureCanvasAgg(fig)
            self.fig = fig
            head = fig.add_axes((0.0, 0.86, 1.0, 0.14))
            head.set_axis_off()
            ax_soc = fig.add_axes((0.09, 0.25, 0.52, 0.56))
            ax_sh = fig.add_axes((0.09, 0.08, 0.52, 0.10), sharex=ax_soc)
            ax_v = fig.add_axes((0.71, 0.25, 0.27, 0.56))

            # SoC [%]: bars, window, values
            ax_soc.set_xlim(0.4, n + 0.6)
            ax_soc.set_ylim(0.0, 100.0)
            ax_soc.set_ylabel("SoC [%]")
            ax_soc.tick_params(axis="x", labelbottom=False)
            ax_soc.grid(axis="y", alpha=0.3)
            self._soc_bars = list(ax_soc.bar(x, np.zeros(n), width=0.6, color=OPEN_COLOR))
            self._soc_window = [
                ax_soc.axhline(100.0 * y, color=WINDOW_COLOR, ls="--", lw=0.9) for y in (soc_lo, soc_hi)
            ]
            ax_soc.text(
                1.0,
                100.0 * soc_hi,
                "SoC window ",
                transform=ax_soc.get_yaxis_transform(),
                ha="right",
                va="bottom",
                fontsize=7,
                color=WINDOW_COLOR,
            )
            self._soc_text = [ax_soc.text(xi, 0.0, "", ha="center", va="bottom", fontsize=7) for xi in x]

            # shunts: filled marker closed, hollow open
            ax_sh.set_ylim(-1.0, 1.0)
            ax_sh.set_yticks([])
            ax_sh.set_ylabel("shunt", rotation=0, ha="right", va="center")
            ax_sh.spines["left"].set_visible(False)
            ax_sh.set_xticks(x, [f"cell {i}" for i in x])
            self._shunt_markers = ax_sh.scatter(
                x, np.full(n, 0.35), s=70, marker="s", linewidths=1.2, edgecolors=CLOSED_COLOR, facecolors="white"
            )
            self._shunt_text = [ax_sh.text(xi, -0.55, "", ha="center", va="center", fontsize=7) for xi in x]

            # terminal voltage [V]: bars from below the window, window, values
            ax_v.set_xlim(0.4, n + 0.6)
            ax_v.set_ylim(self._v_bottom, v_hi + margin)
            ax_v.set_ylabel("terminal voltage [V]")
            ax_v.set_xticks(x, [str(i) for i in x])
            ax_v.set_xlabel("cell")
            ax_v.grid(axis="y", alpha=0.3)
            self._v_bars = list(ax_v.bar(x, np.zeros(n), bottom=self._v_bottom, width=0.6, color="#8172b3"))
            self._v_window = [ax_v.axhline(y, color=WINDOW_COLOR, ls="--", lw=0.9) for y in (v_lo, v_hi)]
            ax_v.text(
                1.0,
                v_hi,
                "V window ",
                transform=ax_v.get_yaxis_transform(),
                ha="right",
                va="bottom",
                fontsize=7,
                color=WINDOW_COLOR,
            )
            self._v_text = [ax_v.text(xi, 0.0, "", ha="center", va="bottom", fontsize=6) for xi in x]

            self._header = [
                head.text(0.02, 0.68, "", fontsize=9, fontweight="bold", va="center"),
                head.text(0.02, 0.22, "", fontsize=8, va="center"),
            ]
        # artists drawn every frame, in this order (window lines on top of the bars)
        self._dynamic = [
            *self._soc_bars,
            *self._soc_window,
            *self._soc_text,
            self._shunt_markers,
            *self._shunt_text,
            *self._v_bars,
            *self._v_window,
            *self._v_text,
            *self._header,
        ]
        for artist in self._dynamic:
            artist.set_animated(True)
        with matplotlib.rc_context(_FAST_TEXT):
            self.canvas.draw()  # the static part, once
        self._background = self.canvas.copy_from_bbox(fig.bbox)
        self.shape = (height_px, width_px, 3)

    def __call__(self, view: PackView) -> np.ndarray:
        """The frame of ``view``: a fresh ``(H, W, 3)`` uint8 array."""
        import matplotlib

        soc_lo, soc_hi = self.params.soc_limits
        v_lo, v_hi = self.params.voltage_limits_v
        for bar, text, soc, closed in zip(self._soc_bars, self._soc_text, view.soc, view.switches):
            pct = 100.0 * float(soc)
            bar.set_height(pct)
            bar.set_facecolor(CLOSED_COLOR if closed else OPEN_COLOR)
            text.set_position((text.get_position()[0], min(max(pct, 0.0), 92.0) + 1.0))
            text.set_text(f"{pct:.1f}")
            text.set_color("black" if soc_lo <= soc <= soc_hi else ALERT_COLOR)
        self._shunt_markers.set_facecolors([CLOSED_COLOR if c else "white" for c in view.switches])
        for text, closed in zip(self._shunt_text, view.switches):
            text.set_text("closed" if closed else "open")
            text.set_color(CLOSED_COLOR if closed else "black")
        top = self._v_bars[0].axes.get_ylim()[1]
        for bar, text, v in zip(self._v_bars, self._v_text, view.terminal_v):
            v = float(v)
            bar.set_height(min(max(v, self._v_bottom), top) - self._v_bottom)
            text.set_position((text.get_position()[0], min(max(v, self._v_bottom), top - 0.1) + 0.01))
            text.set_text(f"{v:.3f}")
            text.set_color("black" if v_lo <= v <= v_hi else ALERT_COLOR)
        for artist, line in zip(self._header, header_lines(view)):
            artist.set_text(line)

        self.canvas.restore_region(self._background)
        with matplotlib.rc_context(_FAST_TEXT):
            for artist in self._dynamic:
                self.fig.draw_artist(artist)
        return np.asarray(self.canvas.buffer_rgba())[:, :, :3].copy()  # C-contiguous, not a view

    def palette_sample(self) -> np.ndarray:
        """A frame plus a synthetic one with every colour the frames use (shunts both ways, alerts)."""
        n = self.params.n_cells
        soc_lo, soc_hi = self.params.soc_limits
        v_lo, v_hi = self.params.voltage_limits_v
        views = [
            PackView(
                0.0,
                "discharge",
                1.0,
                np.linspace(0.5 * soc_lo, 0.5 * (1 + soc_hi), n),
                np.arange(n) % 2 == 0,
                np.linspace(v_lo - 0.1, v_hi + 0.1, n),
            ),
            PackView(
                0.0, "charge", -1.0, np.linspace(soc_lo, soc_hi, n), np.arange(n) % 2 == 1, np.linspace(v_lo, v_hi, n)
            ),
        ]
        return np.vstack([self(v) for v in views])


class PackRenderer:
    """Renders pack ``k`` of a task in one of :data:`RENDER_MODES` (the figure is built on first use)."""

    def __init__(self, params: PackParameters, render_mode: str) -> None:
        if render_mode not in RENDER_MODES:
            raise ValueError(f"unknown render_mode {render_mode!r}; choose one of {list(RENDER_MODES)} or None")
        self.params = params
        self.render_mode = render_mode
        self._image: PackImage | None = None

    def __call__(self, task: BalancingTask, k: int = 0) -> np.ndarray | str:
        view = PackView.of(task, k)
        if self.render_mode == "ansi":
            return render_ansi(view, self.params)
        if self._image is None:
            self._image = PackImage(self.params)
        return self._image(view)


# -------------------------------------------------------------------------------- animation
class _GifFrames:
    """Collects palette frames; Pillow writes a GIF only from the complete list.

    Every frame maps onto one palette (taken from ``palette_sample``, an image holding every colour
    the renderer uses), so unchanged pixels keep their index and Pillow stores only the changed
    region of each frame: ~3 kB per frame, ~1 ms to quantize one.
    """

    def __init__(self, path: Path, fps: float, palette_sample: np.ndarray) -> None:
        from PIL import Image

        self.path, self.fps, self.frames = path, fps, []
        self.palette = Image.fromarray(palette_sample).quantize(colors=128, method=Image.Quantize.MEDIANCUT)

    def add(self, frame: np.ndarray) -> None:
        from PIL import Image

        self.frames.append(Image.fromarray(frame).quantize(palette=self.palette, dither=Image.Dither.NONE))

    def close(self, ok: bool) -> None:
        if ok:
            first, *rest = self.frames
            first.save(
                self.path, format="GIF", save_all=True, append_images=rest, duration=round(1000.0 / self.fps), loop=0
            )


class _Mp4Frames:
    """Pipes raw RGB frames into ``ffmpeg`` (H.264, yuv420p)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps, self.proc = path, fps, None
        self.exe = shutil.which("ffmpeg")
        assert self.exe is not None, "write_episode_animation checks for ffmpeg first"

    def add(self, frame: np.ndarray) -> None:
        if self.proc is None:
            h, w, _ = frame.shape
            cmd = [
                self.exe,
                "-y",
                "-loglevel",
                "error",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-s",
                f"{w}x{h}",
                "-r",
                f"{self.fps:g}",
                "-i",
                "-",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-f",
                "mp4",
                str(self.path),
            ]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.proc.stdin.write(np.ascontiguousarray(frame).tobytes())

    def close(self, ok: bool) -> None:
        if self.proc is None:
            return
        if not ok:
            self.proc.kill()
            self.proc.wait()
            return
        _, err = self.proc.communicate()
        if self.proc.returncode != 0:
            raise UserError(f"ffmpeg failed (exit code {self.proc.returncode}): {err.decode(errors='replace').strip()}")


def check_animation_path(path: str | Path) -> Path:
    """``path`` if an animation can be written there (a .gif, or an .mp4 with ffmpeg on PATH)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise UserError(f"animation {path} must end in one of {list(ANIMATION_SUFFIXES)}")
    if suffix == ".mp4" and shutil.which("ffmpeg") is None:
        raise UserError(f"writing {path} needs an ffmpeg executable on PATH; write a .gif instead")
    return path


def write_episode_animation(
    env: Any,
    policy: Any,
    seed: int | None,
    path: str | Path,
    fps: float = RENDER_FPS,
    max_steps: int | None = None,
) -> int:
    """Play one deterministic episode of ``policy`` on ``env`` and write it as an animation.

    ``env`` is a :class:`~bmsrl.env.PassiveBalancingEnv` (or a wrapper of one; its own
    ``render_mode`` does not matter), reset with ``seed``. ``policy`` has SB3's ``predict``.
    One frame per state: the reset state, then one per decision (at most ``max_steps`` decisions).
    ``path`` ends in ``.gif`` or ``.mp4``; it is written through a temporary sibling, so a failure
    leaves no file (and an existing one untouched). Returns the number of frames.
    """
    from bmsrl.io import atomic_output
    from bmsrl.rollout import rollout

    path = check_animation_path(path)
    suffix = path.suffix.lower()
    if not fps > 0:
        raise ValueError("fps must be positive")
    base = env.unwrapped
    image = PackImage(base.task.params)
    with atomic_output(path) as tmp:
        sink = _GifFrames(tmp, fps, image.palette_sample()) if suffix == ".gif" else _Mp4Frames(tmp, fps)
        ok = False
        try:
            env.reset(seed=seed)
            episode = rollout(
                base.task, policy, max_decisions=max_steps, on_step=lambda task: sink.add(image(PackView.of(task)))
            )
            steps = int(episode.steps[0])
            ok = True
        finally:
            sink.close(ok)
    return steps + 1


# ------------------------------------------------------------------------------------ speed
def benchmark(n_frames: int = 200) -> dict[str, float]:
    """Frames per second (wall clock, and per CPU second: robust to a busy machine) of
    ``env.step`` + ``env.render()`` in rgb_array mode, and of a whole GIF of a rule-based episode."""
    import tempfile

    from bmsrl.baselines import RuleBased
    from bmsrl.config import defaults
    from bmsrl.env import PassiveBalancingEnv

    env = PassiveBalancingEnv(render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    env.render()  # builds the figure
    policy = RuleBased(**defaults()["baselines"]["rule_based"])
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_frames):
        obs, _, terminated, truncated, _ = env.step(int(policy.predict(obs)[0]))
        env.render()
        if terminated or truncated:
            obs, _ = env.reset()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    with tempfile.TemporaryDirectory() as folder:
        t0, c0 = time.perf_counter(), time.process_time()
        frames = write_episode_animation(PassiveBalancingEnv(), policy, 0, Path(folder) / "episode.gif")
        gif_wall, gif_cpu = time.perf_counter() - t0, time.process_time() - c0
        size_kb = (Path(folder) / "episode.gif").stat().st_size / 1000.0
    return {
        "render_frames_per_s": n_frames / wall,
        "render_frames_per_cpu_s": n_frames / cpu,
        "gif_frames": frames,
        "gif_s": gif_wall,
        "gif_frames_per_s": frames / gif_wall,
        "gif_frames_per_cpu_s": frames / gif_cpu,
        "gif_size_kb": size_kb,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="measure the renderer's speed")
    parser.add_argument("--benchmark", action="store_true", required=True)
    parser.add_argument("--frames", type=int, default=200, help="steps rendered with env.render()")
    result = benchmark(parser.parse_args().frames)
    print(", ".join(f"{k} {v:.4g}" for k, v in result.items()))
