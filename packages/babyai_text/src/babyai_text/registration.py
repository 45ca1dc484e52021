"""Registration of every BabyAI-Text ID, generated from minigrid's registry and our level table."""

from __future__ import annotations

import gymnasium as gym
import minigrid  # noqa: F401 - importing minigrid registers its BabyAI-* IDs

__all__ = [
    "ORIGINAL_KWARGS",
    "PAPER_LEVELS",
    "TEXT_PREFIX",
    "minigrid_ids",
    "register_envs",
    "register_original_ids",
    "registered_ids",
]

ENTRY_POINT = "babyai_text.env:BabyAITextEnv"
SOURCE_PREFIX = "BabyAI-"
TEXT_PREFIX = "BabyAI-Text-"

PAPER_LEVELS: dict[str, dict] = {
    # ID suffix -> kwargs of BabyAITextEnv; num_dists=8 distractors as in the paper, kept in
    # the kwargs so that `env.spec.kwargs` records it
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

ORIGINAL_KWARGS: dict[str, dict] = {
    # the original drew a Mixed env's task kind once, unseeded, when it was built, and kept it:
    # harnesses (BALROG's task factory) make envs until `action_kinds[0]` is the kind they want
    "MixedTrainLocal-v0": {"task_draw": "construction"},
    "MixedTestLocal-v0": {"task_draw": "construction"},
}
"""Keywords by which an original ID (`register_original_ids`) differs from its Text ID."""


def minigrid_ids() -> list[str]:
    """minigrid's `BabyAI-*` IDs, in registry order (96 in minigrid 3.2)."""
    return [
        env_id
        for env_id, spec in gym.registry.items()
        if env_id.startswith(SOURCE_PREFIX)
        and not env_id.startswith(TEXT_PREFIX)
        and spec.entry_point != ENTRY_POINT  # our own aliases (`register_original_ids`)
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


def register_original_ids(override: bool = False) -> list[str]:
    """Register the paper's levels under the original's IDs, without `Text`: opt-in aliases.

    `BabyAI-MixedTrainLocal-v0`, `BabyAI-MixedTestLocal-v0`, `BabyAI-PickupLocal-v0`, ... make
    the same envs as their `BabyAI-Text-` IDs, so harnesses written for the original run
    unchanged, except that a Mixed env draws its task kind once, unseeded, when it is built and
    keeps it for every episode, as the original did (`ORIGINAL_KWARGS`: `task_draw=
    "construction"`), so `env.unwrapped.action_kinds[0]` is the kind of all its episodes. Never called at import: other packages (the original's, its forks) register the
    same IDs. An ID already registered by someone else raises a ValueError unless `override`;
    ours are left as they are (idempotent). Returns the IDs it registered now.
    """
    added = []
    for suffix, kwargs in PAPER_LEVELS.items():
        env_id = SOURCE_PREFIX + suffix
        spec = gym.registry.get(env_id)
        if spec is not None and spec.entry_point == ENTRY_POINT and not override:
            continue
        if spec is not None and not override:
            raise ValueError(
                f"{env_id} is already registered (entry point {spec.entry_point!r}); "
                "register_original_ids(override=True) replaces it with babyai-text's level"
            )
        if spec is not None:
            del gym.registry[env_id]
        gym.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            kwargs={**kwargs, **ORIGINAL_KWARGS.get(suffix, {})},
        )
        added.append(env_id)
    return added


def registered_ids() -> list[str]:
    """Every BabyAI-Text ID: minigrid's levels first (registry order), then the paper's."""
    return [env_id for env_id in gym.registry if env_id.startswith(TEXT_PREFIX)]
