"""Episode replays: what the policy saw, what it preferred and what it did, step by step, as
animated GIFs or MP4 videos.

    ppo-grounding replay --checkpoint runs/my-run --env-id BabyAI-Text-GoToLocal-v0 \\
        --episodes 3 --out replays/ [--format mp4]

Each episode becomes `<out>/episode_<k>_seed_<seed>.gif` (or `.mp4`): one frame per step, with minigrid's
picture of the room (the agent is the red triangle, its view highlighted), the prompt the
policy read, and a bar chart of the policy's probability of each action phrase with the chosen
one highlighted, the step's reward and the return so far; then a last frame with the end state
and the outcome. `<out>/episodes.csv` lists seed, success, return, length and file of each.
The episodes are those of `evaluate` (seeds seed_offset + k), played one at a time.
MP4 needs the `video` extra (imageio-ffmpeg, which ships its own ffmpeg): `pip install
imageio-ffmpeg`, or `pip install "./packages/ppo_grounding[video]"` from a clone. Every file is published atomically (llm_policy.atomic), so an
interrupted replay leaves complete files only.
"""

from __future__ import annotations

import csv
import io
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import gymnasium as gym
import numpy as np
import torch
from llm_policy import PromptTemplate
from llm_policy.atomic import atomic_write_bytes, atomic_write_text
from tqdm.auto import tqdm

from .envs import make_env
from .evaluate import EVAL_SEED_OFFSET
from .history import EpisodeHistory, sentences_of
from .reporter import stderr_is_terminal

if TYPE_CHECKING:
    from babyai_text import BabyAITextEnv

__all__ = [
    "VIDEO_FORMATS",
    "EpisodeReplay",
    "ReplayStep",
    "play_episode",
    "render_episode",
    "replay",
    "require_ffmpeg",
    "write_gif",
    "write_mp4",
]

VIDEO_FORMATS = ("gif", "mp4")


@dataclass
class ReplayStep:
    picture: np.ndarray
    """(H, W, 3) uint8: minigrid's picture of the room before the action."""
    prompt: str
    """The prompt the policy read."""
    probs: np.ndarray
    """(A,) the policy's probability of each action name."""
    action: int
    """The action taken (sampled, or the argmax when greedy)."""
    reward: float
    """The reward that action earned."""


@dataclass
class EpisodeReplay:
    seed: int
    mission: str
    """The env's own mission (what the reward checks), before any word substitution."""
    action_names: list[str]
    steps: list[ReplayStep] = field(default_factory=list)
    final_picture: np.ndarray | None = None
    final_text: str = ""
    ended: bool = False
    """False when the replay stopped at max_steps before the episode ended."""

    @property
    def total_return(self) -> float:
        return float(sum(s.reward for s in self.steps))

    @property
    def success(self) -> bool:
        return self.total_return > 0


@torch.no_grad()
def play_episode(
    policy,
    env: gym.Env,
    seed: int,
    *,
    num_observations: int = 3,
    template: PromptTemplate | str = "en",
    greedy: bool = False,
    generator: torch.Generator | None = None,
    max_steps: int | None = None,
) -> EpisodeReplay:
    """Play one episode of `env` (made with render_mode="rgb_array") with `policy`, recording
    each step; stop after `max_steps` steps if given."""
    obs, _ = env.reset(seed=seed)
    game = cast("BabyAITextEnv", env.unwrapped)
    names = list(game.action_names)
    history = EpisodeHistory(1, num_observations, template)
    history.start(0, obs["mission"], sentences_of(obs["text"]))
    replay = EpisodeReplay(seed=seed, mission=game.mission, action_names=names)
    while max_steps is None or len(replay.steps) < max_steps:
        picture = cast(np.ndarray, env.render())  # render_mode="rgb_array": one (H, W, 3) frame
        prompt = history.prompt(0, names)
        logits = policy([prompt], [names]).logits[0].float().cpu()
        probs = torch.softmax(logits, -1)
        if greedy:
            action = int(probs.argmax())
        else:
            action = int(torch.multinomial(probs, 1, generator=generator))
        obs, reward, terminated, truncated, _ = env.step(action)
        replay.steps.append(ReplayStep(picture, prompt, probs.numpy(), action, float(reward)))
        if terminated or truncated:
            replay.ended = True
            break
        history.record(0, names[action], sentences_of(obs["text"]))
    replay.final_picture = cast(np.ndarray, env.render())
    replay.final_text = obs["text"]
    return replay


def _wrap(text: str, width: int) -> str:
    return "\n".join(
        textwrap.fill(line, width, subsequent_indent="  ") if line else ""
        for line in text.split("\n")
    )


def render_episode(
    replay: EpisodeReplay, *, title: str = "", dpi: int = 100, size=(11.0, 5.5)
) -> list[np.ndarray]:
    """The frames of a replay, (H, W, 3) uint8 each: one per step, then the end state."""
    # matplotlib is the optional `plot` extra: imported only when a replay is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(
        2, 2, width_ratios=(1, 1.6), height_ratios=(1.4, 1), left=0.02, right=0.97,
        top=0.86, bottom=0.09, wspace=0.22,
    )  # fmt: skip
    ax_room = fig.add_subplot(grid[:, 0])
    ax_text = fig.add_subplot(grid[0, 1])
    ax_bars = fig.add_subplot(grid[1, 1])
    names = replay.action_names
    frames = []
    cumulative = 0.0

    def draw(picture, text, probs, chosen, headline):
        for ax in (ax_room, ax_text, ax_bars):
            ax.clear()
        ax_room.imshow(picture)
        ax_room.set_axis_off()
        ax_room.set_title(f"env mission: {replay.mission}", fontsize=8, wrap=True)
        ax_text.set_axis_off()
        # the largest font (7 pt down to 3 pt) at which the wrapped prompt fits the panel
        for size in np.arange(7.0, 2.9, -0.5):
            wrapped = _wrap(text, int(82 * 7 / size))
            if (wrapped.count("\n") + 1) * size <= 16 * 7:
                break
        ax_text.text(
            0, 1, wrapped, va="top", ha="left", family="monospace", fontsize=size,
            transform=ax_text.transAxes, clip_on=True,
        )  # fmt: skip
        y = np.arange(len(names))
        if probs is None:
            ax_bars.set_axis_off()
        else:
            colors = ["tab:orange" if i == chosen else "tab:gray" for i in range(len(names))]
            ax_bars.barh(y, probs, color=colors)
            for i, p in enumerate(probs):
                ax_bars.text(min(p, 0.85) + 0.01, i, f"{p:.2f}", va="center", fontsize=7)
            ax_bars.set_yticks(y, names, fontsize=8)
            ax_bars.invert_yaxis()
            ax_bars.set_xlim(0, 1)
            ax_bars.set_xlabel("policy probability (orange: the action taken)", fontsize=8)
            ax_bars.tick_params(axis="x", labelsize=7)
        fig.suptitle(f"{title}\n{headline}" if title else headline, fontsize=10)
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())

    total = len(replay.steps)
    for t, step in enumerate(replay.steps):
        cumulative += step.reward
        headline = (
            f"step {t + 1}/{total}: {names[step.action]!r} (p={step.probs[step.action]:.2f}), "
            f"reward {step.reward:.2f}, return {cumulative:.2f}"
        )
        draw(step.picture, step.prompt, step.probs, step.action, headline)
    if replay.ended:
        outcome = "success" if replay.success else "failure"
        headline = f"episode over after {total} steps: {outcome}, return {replay.total_return:.2f}"
    else:
        headline = f"replay stopped after {total} steps (episode not over), return {cumulative:.2f}"
    last = "What the agent sees now:\n" + replay.final_text
    draw(replay.final_picture, last, None, None, headline)
    return frames


def write_gif(frames: Sequence[np.ndarray], path: str | Path, *, fps: float = 2.0) -> Path:
    """An animated GIF that loops, one `frames` entry per GIF frame."""
    from PIL import Image  # Pillow comes with matplotlib (the `plot` extra), not with us

    if not frames:
        raise ValueError("write_gif needs at least one frame")
    images = [Image.fromarray(f) for f in frames]
    gif = io.BytesIO()
    images[0].save(
        gif,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=int(1000 / fps),
        loop=0,
        optimize=False,
    )
    atomic_write_bytes(path, gif.getvalue())
    return Path(path)


def require_ffmpeg():
    """imageio_ffmpeg, or an ImportError that says how to install it."""
    try:  # the optional `video` extra, needed for MP4 only
        import imageio_ffmpeg
    except ImportError:
        raise ImportError(
            "MP4 replays need imageio-ffmpeg: pip install imageio-ffmpeg (the video extra) "
            "(or write GIFs, the default format)"
        ) from None
    return imageio_ffmpeg


def write_mp4(frames: Sequence[np.ndarray], path: str | Path, *, fps: float = 2.0) -> Path:
    """An H.264 MP4 (yuv420p, which every player reads), one `frames` entry per video frame.
    Odd frame sizes are padded with white to even ones, as yuv420p needs."""
    imageio_ffmpeg = require_ffmpeg()
    if not frames:
        raise ValueError("write_mp4 needs at least one frame")
    height, width = frames[0].shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # ffmpeg writes a file by name: into a temporary folder beside `path`, removed on any error.
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as tmp:
        video = Path(tmp) / path.name
        writer = imageio_ffmpeg.write_frames(
            str(video),
            (width + width % 2, height + height % 2),
            fps=fps,
            codec="libx264",
            macro_block_size=1,
        )
        writer.send(None)  # starts ffmpeg
        try:
            for frame in frames:
                if frame.shape != frames[0].shape or frame.dtype != np.uint8:
                    raise ValueError(
                        f"write_mp4: every frame must be uint8 of shape {frames[0].shape}, "
                        f"got {frame.dtype} {frame.shape}"
                    )
                writer.send(np.ascontiguousarray(np.pad(frame, pad, constant_values=255)))
        finally:
            writer.close()  # waits for ffmpeg to finish the file
        atomic_write_bytes(path, video.read_bytes())
    return path


def replay(
    policy,
    env_id: str,
    out: str | Path,
    *,
    episodes: int = 3,
    seed_offset: int = EVAL_SEED_OFFSET,
    num_observations: int = 3,
    language: str = "en",
    action_names: str | None = None,
    extra_actions: Sequence[str] = (),
    template: PromptTemplate | str | None = None,
    env_wrapper: Callable[[gym.Env], gym.Env] | None = None,
    greedy: bool = False,
    max_steps: int | None = None,
    fps: float = 2.0,
    video_format: str = "gif",
    title: str = "",
    progress: bool = False,
) -> list[Path]:
    """Play `episodes` episodes (seeds seed_offset + k) and write one GIF (or MP4, with
    video_format="mp4") each under `out`, plus `episodes.csv`. The other keywords are
    `evaluate`'s; returns the paths of the files."""
    if video_format not in VIDEO_FORMATS:
        raise ValueError(f"video_format={video_format!r}: choose from {', '.join(VIDEO_FORMATS)}")
    write = write_gif if video_format == "gif" else write_mp4
    if video_format == "mp4":
        require_ffmpeg()
    if episodes < 1:
        raise ValueError(f"episodes={episodes}: replay at least 1 episode.")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps={max_steps}: must be at least 1 (or None: the whole episode)")
    env = make_env(
        env_id,
        language=language,
        action_names=action_names,
        extra_actions=extra_actions,
        env_wrapper=env_wrapper,
        render_mode="rgb_array",
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed_offset)
    paths, summary = [], []
    seeds = range(seed_offset, seed_offset + episodes)
    if progress and stderr_is_terminal():  # no redraws in logs
        seeds = tqdm(seeds, desc="replay", unit="ep")
    for k, seed in enumerate(seeds):
        episode = play_episode(
            policy,
            env,
            seed,
            num_observations=num_observations,
            template=language if template is None else template,
            greedy=greedy,
            generator=generator,
            max_steps=max_steps,
        )
        heading = f"{title + ' - ' if title else ''}{env_id}, episode {k} (seed {seed})"
        path = write(
            render_episode(episode, title=heading),
            out / f"episode_{k:03d}_seed_{seed}.{video_format}",
            fps=fps,
        )
        paths.append(path)
        summary.append(
            (
                k,
                seed,
                episode.ended,
                episode.success,
                episode.total_return,
                len(episode.steps),
                path.name,
            )
        )
    env.close()
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["episode", "seed", "ended", "success", "return", "steps", "file"])
    for k, seed, ended, success, ret, steps, name in summary:
        writer.writerow([k, seed, ended, success, f"{ret:.4f}", steps, name])
    atomic_write_text(out / "episodes.csv", table.getvalue())
    return paths
