"""gym.make_vec, sync and async, with an explicit autoreset mode (what the trainers use)."""

from __future__ import annotations

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest
from babyai_text.spaces import SharedTextBatch
from gymnasium.vector import AutoresetMode

ENV_ID = "BabyAI-Text-MixedTrainLocal-v0"
SEEDS = [10, 11, 12]


def make_vec(mode, autoreset=AutoresetMode.SAME_STEP, **kwargs):
    return gym.make_vec(
        ENV_ID,
        num_envs=len(SEEDS),
        vectorization_mode=mode,
        vector_kwargs={"autoreset_mode": autoreset, **kwargs},
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_same_step_autoreset_matches_single_envs(mode):
    envs = make_vec(mode)
    singles = [gym.make(ENV_ID) for _ in SEEDS]
    obs, info = envs.reset(seed=SEEDS)
    assert isinstance(info["descriptions"], np.ndarray) and info["descriptions"].dtype == object
    for i, (env, seed) in enumerate(zip(singles, SEEDS, strict=True)):
        o, inf = env.reset(seed=seed)
        assert (obs["mission"][i], obs["text"][i]) == (o["mission"], o["text"])
        assert list(info["descriptions"][i]) == inf["descriptions"]
        assert info["task"][i] == inf["task"]
    finished = 0
    for _ in range(150):
        actions = np.array(envs.call("expert_action"))  # the expert works through vector envs
        obs, rewards, terminated, truncated, info = envs.step(actions)
        assert isinstance(obs["text"], tuple) and all(isinstance(t, str) for t in obs["text"])
        for i, env in enumerate(singles):
            o, r, term, trunc, inf = env.step(int(actions[i]))
            assert (rewards[i], terminated[i], truncated[i]) == (r, term, trunc)
            if term or trunc:
                # SAME_STEP: the terminal transition is in info, the observation is the reset one
                assert info["final_obs"][i]["text"] == o["text"]
                assert info["final_info"]["descriptions"][i] == inf["descriptions"]
                o, inf = env.reset()
                finished += 1
            assert (obs["mission"][i], obs["text"][i]) == (o["mission"], o["text"])
            assert list(info["descriptions"][i]) == inf["descriptions"]
            assert obs["text"][i].splitlines() == inf["descriptions"]
    assert finished >= 2 * len(SEEDS)
    envs.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_next_step_autoreset_mode(mode):
    envs = make_vec(mode, autoreset=AutoresetMode.NEXT_STEP)
    obs, _ = envs.reset(seed=SEEDS)
    done_before = np.zeros(len(SEEDS), bool)
    ended = 0
    for _ in range(40):
        missions_before = obs["mission"]
        obs, rewards, terminated, truncated, _ = envs.step(np.array(envs.call("expert_action")))
        # NEXT_STEP: the step after an episode ends is a reset (reward 0, new mission allowed),
        # so the env never sees a step on an ended episode (which it refuses)
        assert np.all(rewards[done_before] == 0)
        assert len(obs["mission"]) == len(missions_before)
        done_before = terminated | truncated
        ended += int(done_before.sum())
    assert ended >= len(SEEDS)
    envs.close()


def test_async_without_shared_memory_too():
    envs = make_vec("async", shared_memory=False)
    obs, _ = envs.reset(seed=SEEDS)
    single = gym.make(ENV_ID)
    assert obs["text"][1] == single.reset(seed=SEEDS[1])[0]["text"]
    envs.close()


def test_async_observations_follow_the_steps():
    """gymnasium 1.4 froze Text observations in shared memory; our TextSpace does not."""
    envs = make_vec("async")
    obs0, _ = envs.reset(seed=SEEDS)
    obs1, *_ = envs.step(np.array([2, 2, 2]))
    single = gym.make(ENV_ID)
    single.reset(seed=SEEDS[0])
    assert obs1["text"][0] == single.step(2)[0]["text"]
    assert all(m.strip() for m in obs0["mission"])
    envs.close()


def test_shared_text_batch_copies_to_plain_tuples():
    import multiprocessing as mp

    from babyai_text.spaces import TextSpace
    from gymnasium.vector.utils import (
        create_shared_memory,
        read_from_shared_memory,
        write_to_shared_memory,
    )

    space = TextSpace(20, min_length=0, charset="abcé \n")
    memory = create_shared_memory(space, n=2, ctx=mp)
    batch = read_from_shared_memory(space, memory, n=2)
    assert isinstance(batch, SharedTextBatch)
    write_to_shared_memory(space, 0, "é a\nb", memory)
    write_to_shared_memory(space, 1, "", memory)
    assert batch == ("é a\nb", "")  # live
    assert copy.deepcopy(batch) == ("é a\nb", "") and type(copy.deepcopy(batch)) is tuple
    assert pickle.loads(pickle.dumps(batch)) == ("é a\nb", "")
    write_to_shared_memory(space, 1, "abc", memory)
    assert batch[1] == "abc" and batch[-1] == "abc" and list(batch) == ["é a\nb", "abc"]
    with pytest.raises(ValueError, match="max_length"):
        write_to_shared_memory(space, 0, "a" * 21, memory)
