"""BabyAI-Text-<L> with seed s plays exactly minigrid's BabyAI-<L> with seed s; same seed, same
run."""

from __future__ import annotations

import contextlib
import io

import gymnasium as gym
import numpy as np
import pytest

from .conftest import ALL_IDS, MINIGRID_IDS, source_id

# turns, moves, a pick-up, a drop and a toggle: enough to change every kind of state
ACTIONS = [2, 2, 0, 2, 3, 1, 2, 5, 2, 4, 1, 1, 2, 3, 0, 2, 5, 2]
SEEDS = [0, 1, 7]


def _state(level) -> tuple:
    carrying = level.carrying.encode() if level.carrying is not None else None
    return (
        level.grid.encode().tobytes(),
        tuple(int(x) for x in level.agent_pos),
        int(level.agent_dir),
        carrying,
        level.step_count,
    )


@pytest.mark.parametrize("env_id", MINIGRID_IDS)
def test_text_level_equals_minigrid_level(env_id):
    raw = gym.make(source_id(env_id)).unwrapped
    text = gym.make(env_id, symbolic=True).unwrapped
    for seed in SEEDS:
        with contextlib.redirect_stdout(io.StringIO()):  # minigrid's rejection chatter
            raw_obs, _ = raw.reset(seed=seed)
        obs, _ = text.reset(seed=seed)
        level = text.level
        assert type(level) is type(raw)
        assert obs["mission"] == raw.mission == raw_obs["mission"]
        assert level.max_steps == raw.max_steps
        assert _state(level) == _state(raw)
        np.testing.assert_array_equal(obs["image"], raw_obs["image"])
        for action in ACTIONS:
            raw_obs, raw_r, raw_term, raw_trunc, _ = raw.step(action)
            obs, r, term, trunc, _ = text.step(action)
            assert (r, term, trunc) == (raw_r, raw_term, raw_trunc)
            assert _state(level) == _state(raw)
            np.testing.assert_array_equal(obs["image"], raw_obs["image"])
            assert obs["direction"] == raw_obs["direction"]
            if term or trunc:
                break
    raw.close()
    text.close()


def _rollout(env, seed: int, actions=ACTIONS):
    obs, info = env.reset(seed=seed)
    trace = [(obs["mission"], tuple(info["descriptions"]), obs["text"])]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append(
            (
                obs["mission"],
                tuple(info["descriptions"]),
                obs["text"],
                reward,
                terminated,
                truncated,
                info.get("task"),
            )
        )
        if terminated or truncated:
            obs, info = env.reset()  # unseeded: continues the seeded RNG
            trace.append((obs["mission"], tuple(info["descriptions"])))
    return trace


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_same_seed_same_missions_descriptions_rewards(env_id):
    a, b = gym.make(env_id), gym.make(env_id)
    for seed in (3, 11):
        assert _rollout(a, seed) == _rollout(b, seed)
    assert _rollout(a, 5) == _rollout(a, 5)  # and the same env replays it
    assert _rollout(a, 5) != _rollout(a, 6) or env_id.endswith("NoDists-v0")
    a.close()
    b.close()


@pytest.mark.parametrize("env_id", ["BabyAI-Text-MixedTrainLocal-v0", "BabyAI-Text-GoToSeq-v0"])
def test_same_seed_same_run_in_french(env_id):
    a, b = gym.make(env_id, language="fr"), gym.make(env_id, language="fr")
    assert _rollout(a, 42) == _rollout(b, 42)
