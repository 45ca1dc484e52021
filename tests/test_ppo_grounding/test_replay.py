"""Episode replays: the steps recorded are the episode played, and the files are valid animated
GIFs (or MP4 videos) with one frame per step plus the end state."""

import csv
import re
from types import SimpleNamespace

import babyai_text  # noqa: F401
import gymnasium as gym
import numpy as np
import pytest
import torch
from llm_policy import LLMPolicy, PolicyConfig, build_prompt
from PIL import Image
from ppo_grounding.cli import main
from ppo_grounding.evaluate import make_env
from ppo_grounding.replay import play_episode, render_episode, replay, write_gif, write_mp4
from ppo_grounding.substitutions import NEW_NOUNS, SubstituteWords

ENV = "BabyAI-Text-GoToRedBallNoDists-v0"


class ExpertPolicy:
    """Puts 0.9 of the probability on the expert's action (the env's bot)."""

    def __init__(self, env):
        self.env, self.prompts = env, []

    def __call__(self, prompts, candidates):
        self.prompts.extend(prompts)
        probs = torch.full((len(prompts), len(candidates[0])), 0.02)
        probs[:, self.env.unwrapped.expert_action()] = 0.9
        return SimpleNamespace(logits=probs.log())


def gif_frames(path):
    with Image.open(path) as image:
        assert image.format == "GIF" and image.info.get("loop") == 0
        return image.n_frames, image.size


def mp4_frames(path):
    """(frame count, (width, height)) of a video, as ffmpeg decodes it."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert meta["codec"].startswith("h264")
    return sum(1 for _ in reader), tuple(meta["size"])


def test_a_whole_episode_becomes_one_frame_per_step_and_an_end_frame(tmp_path):
    env = gym.make(ENV, render_mode="rgb_array")
    policy = ExpertPolicy(env)
    episode = play_episode(policy, env, seed=1_000_000, num_observations=3, greedy=True)
    assert episode.ended and episode.success and 1 <= len(episode.steps) < 64
    assert episode.mission == "go to the red ball"
    names = list(babyai_text.ACTION_NAMES["en"])
    obs, info = env.reset(seed=1_000_000)
    assert episode.steps[0].prompt == build_prompt(
        obs["mission"], [info["descriptions"]], [], names
    )
    assert [s.prompt for s in episode.steps] == policy.prompts
    assert (
        episode.total_return == pytest.approx(episode.steps[-1].reward) and episode.total_return > 0
    )
    for step in episode.steps:
        assert step.picture.dtype == np.uint8 and step.picture.ndim == 3
        assert step.probs.sum() == pytest.approx(1.0) and step.probs[step.action] == pytest.approx(
            0.9
        )

    frames = render_episode(episode, title="test")
    assert len(frames) == len(episode.steps) + 1
    assert {f.shape for f in frames} == {frames[0].shape} and frames[0].dtype == np.uint8
    path = write_gif(frames, tmp_path / "episode.gif", fps=4)
    n, size = gif_frames(path)
    assert n == len(episode.steps) + 1 and size == (frames[0].shape[1], frames[0].shape[0])
    with Image.open(path) as image:
        assert image.info["duration"] == 250


def test_the_replay_shows_the_substituted_text_and_the_real_mission():
    env = SubstituteWords(
        gym.make("BabyAI-Text-MixedTrainLocal-v0", render_mode="rgb_array"), NEW_NOUNS
    )
    policy = ExpertPolicy(env)
    episode = play_episode(
        policy, env, seed=1_000_001, num_observations=1, greedy=True, max_steps=3
    )
    assert not episode.ended and len(episode.steps) == 3
    assert episode.mission == "put a green box next to a grey key"
    for step in episode.steps:
        assert "Goal of the agent: put a green car next to a grey chair" in step.prompt
        assert not re.search(r"\b(key|ball|box)\b", step.prompt)
    assert not re.search(r"\b(key|ball|box)\b", episode.final_text)


@pytest.fixture(scope="module")
def offline_policy():
    return LLMPolicy(PolicyConfig(model="offline-gpt2", normalization="token"))


@pytest.mark.slow
def test_replay_writes_a_gif_per_episode_and_a_summary(offline_policy, tmp_path):
    paths = replay(
        offline_policy, ENV, tmp_path / "out", episodes=2, max_steps=2, num_observations=1
    )
    assert [p.name for p in paths] == [
        "episode_000_seed_1000000.gif",
        "episode_001_seed_1000001.gif",
    ]
    assert [gif_frames(p)[0] for p in paths] == [3, 3]
    rows = list(csv.DictReader(open(tmp_path / "out" / "episodes.csv")))
    assert [(r["seed"], r["ended"], r["steps"], r["file"]) for r in rows] == [
        ("1000000", "False", "2", paths[0].name),
        ("1000001", "False", "2", paths[1].name),
    ]


def test_replay_rejects_bad_counts_before_playing(tmp_path):
    with pytest.raises(ValueError, match="at least 1 episode"):
        replay(None, ENV, tmp_path, episodes=0)
    with pytest.raises(ValueError, match="max_steps=0"):
        replay(None, ENV, tmp_path, max_steps=0)


def test_cli_replay_checks_its_input_first(tmp_path):
    missing = str(tmp_path / "no-such-run")
    with pytest.raises(SystemExit, match=r"unknown test \['nouns'\]; choose from: baseline"):
        main(["replay", "--checkpoint", missing, "--test", "nouns"])
    with pytest.raises(SystemExit, match="did you mean"):
        main(["replay", "--checkpoint", missing, "--env-id", "BabyAI-Text-GoToLocl-v0"])
    with pytest.raises(SystemExit, match="no-such-run does not exist"):
        main(["replay", "--checkpoint", missing])


def test_cli_replay_under_a_test(tmp_path, capsys):
    out = tmp_path / "replays"
    main(["replay", "--checkpoint", "offline-gpt2", "--test", "new_nouns", "--env-id", ENV,
          "--episodes", "1", "--max-steps", "2", "--out", str(out)])  # fmt: skip
    gif = out / "episode_000_seed_1000000.gif"
    assert gif_frames(gif)[0] == 3
    assert f"wrote {gif}" in capsys.readouterr().out


def test_replay_charts_the_extra_actions_too():
    env = make_env(ENV, extra_actions=("sleep", "dance"), render_mode="rgb_array")
    episode = play_episode(ExpertPolicy(env), env, seed=1_000_000, greedy=True, max_steps=2)
    assert episode.action_names == [*babyai_text.ACTION_NAMES["en"], "sleep", "dance"]
    assert all(step.probs.shape == (8,) for step in episode.steps)
    assert len(render_episode(episode)) == 3


def test_an_mp4_holds_one_video_frame_per_frame_and_pads_odd_sizes(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (33, 50, 3), dtype=np.uint8) for _ in range(5)]
    path = write_mp4(frames, tmp_path / "episode.mp4", fps=4)
    assert mp4_frames(path) == (5, (50, 34))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode.mp4"]


def test_a_failed_mp4_write_leaves_no_file_behind(tmp_path):
    good = np.zeros((32, 48, 3), np.uint8)
    with pytest.raises(ValueError, match=r"every frame must be uint8 of shape \(32, 48, 3\)"):
        write_mp4([good, good[:16]], tmp_path / "episode.mp4")
    assert list(tmp_path.iterdir()) == []


def test_mp4_without_imageio_ffmpeg_is_refused_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "imageio_ffmpeg", None)
    with pytest.raises(ImportError, match=r"pip install imageio-ffmpeg \(the video extra\)"):
        write_mp4([np.zeros((8, 8, 3), np.uint8)], tmp_path / "episode.mp4")
    with pytest.raises(SystemExit, match=r"ppo-grounding replay: .*pip install imageio-ffmpeg"):
        main(["replay", "--checkpoint", str(tmp_path / "no-such-run"), "--format", "mp4"])
    with pytest.raises(ValueError, match="video_format='webm': choose from gif, mp4"):
        replay(None, ENV, tmp_path, video_format="webm")


def test_cli_replay_writes_mp4s(tmp_path, capsys):
    out = tmp_path / "replays"
    main(["replay", "--checkpoint", "offline-gpt2", "--env-id", ENV, "--format", "mp4",
          "--episodes", "2", "--max-steps", "3", "--out", str(out)])  # fmt: skip
    videos = sorted(out.glob("*.mp4"))
    assert [v.name for v in videos] == [
        "episode_000_seed_1000000.mp4",
        "episode_001_seed_1000001.mp4",
    ]
    assert [mp4_frames(v)[0] for v in videos] == [4, 4]
    rows = list(csv.DictReader(open(out / "episodes.csv")))
    assert [r["file"] for r in rows] == [v.name for v in videos]
    assert sorted(p.name for p in out.iterdir()) == [*(v.name for v in videos), "episodes.csv"]
    assert f"wrote {videos[0]}" in capsys.readouterr().out
