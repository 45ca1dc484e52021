"""The expert (minigrid's BabyAIBot through our helper) as an oracle for the levels."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from babyai_text import BabyAITextEnv, Expert, expert_action
from babyai_text.expert import FALLBACK_ACTION

from .conftest import PAPER_IDS


def run_episode(env, seed, policy=None, max_steps=500):
    env.reset(seed=seed)
    for _ in range(max_steps):
        action = expert_action(env) if policy is None else policy(env)
        _, reward, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            return reward
    return 0.0


@pytest.mark.parametrize(
    "env_id", PAPER_IDS + ["BabyAI-Text-GoToLocal-v0", "BabyAI-Text-PutNextLocal-v0"]
)
def test_expert_solves_the_local_levels(env_id):
    env = gym.make(env_id)
    rewards = [run_episode(env, seed) for seed in range(25)]
    assert all(r > 0 for r in rewards), rewards


def test_expert_on_the_raw_env_and_through_wrappers():
    raw = BabyAITextEnv("babyai_text.levels:PickupLocal")
    wrapped = gym.wrappers.RecordEpisodeStatistics(gym.make("BabyAI-Text-PickupLocal-v0"))
    assert run_episode(raw, 3) > 0
    assert run_episode(wrapped, 3) > 0


def test_expert_class_and_repeated_queries():
    env = gym.make("BabyAI-Text-PickUpSeqGoToLocal-v0")
    env.reset(seed=5)
    expert = Expert(env)
    a = expert.act()
    assert a == expert.act()  # asking twice in one step changes nothing
    assert 0 <= a < 6
    env.step(a)
    env.step(expert.act())
    env.step(0)
    with pytest.raises(RuntimeError, match="once per step"):
        expert.act()  # it missed a step


def test_expert_follows_actions_it_did_not_choose():
    """DAgger-style labelling: random actions for a while, then the expert still succeeds."""
    env = gym.make("BabyAI-Text-PickupLocal-v0")
    rng = np.random.default_rng(0)
    wins = 0
    for seed in range(20):
        env.reset(seed=seed)
        reward = 0.0
        for t in range(64):
            label = expert_action(env)
            action = int(rng.integers(0, 3)) if t < 5 else label
            _, reward, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        wins += reward > 0
    assert wins >= 19


def test_expert_gives_up_cleanly_where_the_bot_cannot():
    # minigrid's bot fails when the episode starts with an object in hand (its own docstring)
    env = gym.make("BabyAI-Text-PutNextS5N2Carrying-v0")
    env.reset(seed=0)
    for _ in range(60):
        action = expert_action(env)
        assert 0 <= action < 6
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    expert = env.unwrapped._expert
    assert expert.gave_up and expert.error.startswith("AssertionError")
    assert expert_action(env) == FALLBACK_ACTION


def test_expert_never_hangs_where_the_bot_loops_forever():
    # minigrid 3.2's bot rewrites its plan forever on this state; the expert caps it
    env = gym.make("BabyAI-Text-GoToImpUnlock-v0")
    env.reset(seed=6)
    for _ in range(200):
        *_, terminated, truncated, _ = env.step(expert_action(env))
        if env.unwrapped._expert.gave_up or terminated or truncated:
            break
    expert = env.unwrapped._expert
    assert expert.gave_up and expert.error.startswith("BotStuck")
    env.reset(seed=7)  # a new episode, a new plan
    expert_action(env)
    assert not expert.gave_up and expert.error == ""


def test_expert_needs_one_of_our_envs():
    with pytest.raises(TypeError, match="BabyAI-Text env"):
        Expert(gym.make("BabyAI-GoToLocal-v0"))
