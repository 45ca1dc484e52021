"""Shared helpers: the registry drives the tests (every BabyAI-Text ID)."""

from __future__ import annotations

import babyai_text
import gymnasium as gym
import pytest
from babyai_text.registration import TEXT_PREFIX

ALL_IDS = babyai_text.registered_ids()
PAPER_IDS = [TEXT_PREFIX + suffix for suffix in babyai_text.PAPER_LEVELS]
MINIGRID_IDS = [i for i in ALL_IDS if i not in PAPER_IDS]


def source_id(text_id: str) -> str:
    """minigrid's ID for a BabyAI-Text ID built from one."""
    return "BabyAI-" + text_id[len(TEXT_PREFIX) :]


@pytest.fixture
def make():
    """gym.make that closes what it made."""
    made = []

    def _make(env_id, **kwargs):
        env = gym.make(env_id, **kwargs)
        made.append(env)
        return env

    yield _make
    for env in made:
        env.close()
