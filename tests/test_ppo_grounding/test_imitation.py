import json
import math

import gymnasium as gym
import pytest
import torch
from llm_policy import ENGLISH_ACTION_NAMES
from ppo_grounding import PPOTrainer, WarmStartConfig
from ppo_grounding.checkpoint import latest_checkpoint
from ppo_grounding.history import EpisodeHistory
from ppo_grounding.imitation import WARM_START_FILE, collect_demonstrations
from ppo_grounding.metrics import read_metrics

from .helpers import tiny_config

ACTIONS = list(ENGLISH_ACTION_NAMES)
ENV_ID = "BabyAI-Text-GoToRedBallNoDists-v0"


def make_envs(num_envs):
    return gym.make_vec(
        ENV_ID,
        num_envs=num_envs,
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
    )


def expert_episode(seed):
    """The expert's actions and rewards in one episode of a single env with this seed."""
    import babyai_text

    env = gym.make(ENV_ID)
    env.reset(seed=seed)
    actions, rewards, done = [], [], False
    while not done:
        action = babyai_text.expert_action(env)
        _, reward, terminated, truncated, _ = env.step(action)
        actions.append(action)
        rewards.append(reward)
        done = terminated or truncated
    return actions, rewards


def test_demonstrations_hold_the_experts_actions_and_discounted_returns():
    envs = make_envs(1)
    try:
        demos = collect_demonstrations(
            envs,
            EpisodeHistory(1, 1),
            ACTIONS,
            frames=40,
            gamma=0.5,
            reward_scale=20.0,
            seed=11,
        )
    finally:
        envs.close()
    actions, rewards = expert_episode(seed=11)
    n = len(actions)
    assert 0 < n <= len(demos) <= 40  # only finished episodes are kept
    assert demos.actions[:n].tolist() == actions
    expected = [20.0 * rewards[-1] * 0.5 ** (n - 1 - t) for t in range(n)]
    torch.testing.assert_close(demos.returns[:n], torch.tensor(expected))
    assert rewards[-1] > 0  # the expert solves the level
    assert demos.prompts[0].startswith("Possible action of the agent:")
    assert "go to the red ball" in demos.prompts[0]


@pytest.mark.slow
def test_warm_start_fits_the_expert_then_ppo_continues(tmp_path):
    config = tiny_config(tmp_path / "run", total_frames=16, minibatch_size=16)
    config.warm_start = WarmStartConfig(demo_frames=128, epochs=3, learning_rate=3e-3)
    trainer = PPOTrainer(config)
    state = trainer.train()
    summary = json.loads((tmp_path / "run" / WARM_START_FILE).read_text())
    accuracy = [epoch["warm_start/accuracy"] for epoch in summary["epochs"]]
    losses = [epoch["warm_start/loss"] for epoch in summary["epochs"]]
    assert len(accuracy) == 3
    # The cross-entropy falls below a uniform guess's, and the policy learns at least the
    # expert's most frequent action ("go forward", about 2/3 of its steps on this level).
    assert losses[-1] < losses[0] and losses[-1] < math.log(len(ACTIONS))
    assert accuracy[-1] > 0.5
    assert summary["demo_frames"] == state.demo_frames == 128
    assert (tmp_path / "run" / "checkpoints" / "update_000000" / "policy").is_dir()
    assert state.update == 1 and read_metrics(tmp_path / "run")[0]["update"] == 1
    # the warm start's time is part of the run's time
    assert state.elapsed_s >= summary["epochs"][-1]["time/elapsed_s"]


def test_a_resumed_run_does_not_repeat_the_warm_start(tmp_path):
    config = tiny_config(tmp_path / "run", total_frames=16)
    config.warm_start = WarmStartConfig(demo_frames=64, epochs=1)
    PPOTrainer(config).train()
    written = (tmp_path / "run" / WARM_START_FILE).stat().st_mtime_ns
    config.ppo.total_frames = 32
    config.run.resume = True
    state = PPOTrainer(config).train()
    assert state.update == 2 and state.demo_frames == 64
    assert (tmp_path / "run" / WARM_START_FILE).stat().st_mtime_ns == written
    assert latest_checkpoint(tmp_path / "run").name == "update_000002"


@pytest.mark.parametrize(
    "field, value", [("demo_frames", -1), ("epochs", 0), ("learning_rate", 0.0)]
)
def test_invalid_warm_start_is_rejected_with_a_fix(tmp_path, field, value):
    config = tiny_config(tmp_path / "run")
    config.warm_start = WarmStartConfig(demo_frames=64)
    setattr(config.warm_start, field, value)
    with pytest.raises(ValueError, match=f"warm_start.{field}="):
        config.validate()


def test_too_few_demo_frames_for_one_episode_is_an_error(tmp_path):
    config = tiny_config(tmp_path / "run")
    config.warm_start = WarmStartConfig(demo_frames=2)
    with pytest.raises(ValueError, match="warm_start.demo_frames=2: no expert episode finished"):
        PPOTrainer(config).train()
    assert not (tmp_path / "run" / "checkpoints").exists()
