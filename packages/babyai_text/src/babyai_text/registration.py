"""Registration of every BabyAI-Text ID, generated from minigrid's registry and our level table."""

from __future__ import annotations

import gymnasium as gym
import minigrid  # noqa: F401 - importing minigrid registers its BabyAI-* IDs

__all__ = ["PAPER_LEVELS", "register_envs", "registered_ids", "minigrid_ids", "TEXT_PREFIX"]

ENTRY_POINT = "babyai_text.env:BabyAITextEnv"
SOURCE_PREFIX = "BabyAI-"
TEXT_PREFIX = "BabyAI-Text-"

PAPER_LEVELS: dict[str, dict] = {
    # ID suffix -> kwargs of BabyAITextEnv (SPEC 1.1); num_dists=8 as in the paper, kept in the
    # kwargs so that `env.spec.kwargs` records it
    "PickupLocal-v0": {"level": "babyai_text.levels:PickupLocal", "num_dists": 8},
    "PickUpSeqGoToLocal-v0": {"level": "babyai_text.levels:PickUpSeqGoToLocal", "num_dists": 8},
    "PickUpThenGoToLocal-v0": {"level": "babyai_text.levels:PickUpThenGoToLocal", "num_dists": 8},
    "GoToAfterPickUpLocal-v0": {
        "level": "babyai_text.levels:GoToAfterPickUpLocal",
        "num_dists": 8,
    },
    "PickUpSeqPickUpLocal-v0": {
        "level": "babyai_text.levels:PickUpSeqPickUpLocal",
        "num_dists": 8,
    },
    "MixedTrainLocal-v0": {"level": "babyai_text.levels:MixedTrainLocal", "num_dists": 8},
    "MixedTestLocal-v0": {"level": "babyai_text.levels:MixedTestLocal", "num_dists": 8},
}
"""The paper's own levels, which minigrid lacks."""


def minigrid_ids() -> list[str]:
    """minigrid's `BabyAI-*` IDs, in registry order (96 in minigrid 3.2)."""
    return [
        env_id
        for env_id in gym.registry
        if env_id.startswith(SOURCE_PREFIX) and not env_id.startswith(TEXT_PREFIX)
    ]


def register_envs() -> list[str]:
    """Register `BabyAI-Text-<Level>-v<N>` for every minigrid `BabyAI-<Level>-v<N>`, and ours.

    Idempotent; called by `import babyai_text`. Returns the IDs it registered now.
    """
    added = []
    for env_id in minigrid_ids():
        spec = gym.registry[env_id]
        if not isinstance(spec.entry_point, str):
            continue  # a callable entry point from some other plugin: nothing to rebuild from
        text_id = TEXT_PREFIX + env_id[len(SOURCE_PREFIX) :]
        if text_id in gym.registry:
            continue
        gym.register(
            id=text_id,
            entry_point=ENTRY_POINT,
            kwargs={"level": spec.entry_point, **spec.kwargs},
            max_episode_steps=spec.max_episode_steps,
        )
        added.append(text_id)
    for suffix, kwargs in PAPER_LEVELS.items():
        text_id = TEXT_PREFIX + suffix
        if text_id in gym.registry:
            continue
        gym.register(id=text_id, entry_point=ENTRY_POINT, kwargs=dict(kwargs))
        added.append(text_id)
    return added


def registered_ids() -> list[str]:
    """Every BabyAI-Text ID: minigrid's levels first (registry order), then the paper's."""
    return [env_id for env_id in gym.registry if env_id.startswith(TEXT_PREFIX)]
