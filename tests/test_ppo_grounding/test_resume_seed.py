"""distributed.resume_seed (issue 20): a multi-process resume reseeds every process from run.seed,
the update count and its rank, wrapped into the range numpy, torch and gymnasium all accept."""

import numpy as np
import pytest
import torch
from ppo_grounding.distributed import SEED_RANGE, resume_seed

LARGEST = 2**32 - 1 - 2  # the largest run.seed validate() accepts with 2 envs


@pytest.mark.parametrize("seed", [0, 3, 4294967293, LARGEST])
@pytest.mark.parametrize("update", [0, 1, 10, 10**6])
def test_every_resume_seed_is_accepted_by_numpy_and_torch(seed, update):
    for rank in range(4):
        value = resume_seed(seed, update, rank)
        assert 0 <= value < SEED_RANGE
        np.random.seed(value)  # raised ValueError for 4294967293 + 7919 before
        torch.manual_seed(value)


def test_the_seed_is_unchanged_where_it_was_already_in_range():
    assert resume_seed(3, 5, 1) == 3 + 7919 * 5 + 1  # resumed runs draw as they did


def test_processes_get_distinct_seeds_even_across_the_wrap():
    seeds = [resume_seed(4294967293, 1, rank) for rank in range(8)]
    assert len(set(seeds)) == 8
    assert seeds[0] == (4294967293 + 7919) % 2**32


def test_gymnasium_accepts_it():
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    env.reset(seed=resume_seed(4294967293, 3, 1))
    env.close()
