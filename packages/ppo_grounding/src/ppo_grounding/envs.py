"""The vector env of a run (or of one process of it): any BabyAI-Text ID, sync or async, with
SAME_STEP autoreset, offering env.extra_actions useless phrases after the real actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import babyai_text  # noqa: F401  (registers the BabyAI-Text-* IDs)
import gymnasium as gym

from .evaluate import extra_action_phrases

if TYPE_CHECKING:
    from .config import TrainConfig


def make_envs(config: TrainConfig, num_envs: int | None = None) -> gym.vector.VectorEnv:
    """The vector env of a run. Autoreset is SAME_STEP: the step that ends an episode returns the
    first observation of the next one (the final one is in info["final_obs"][i]), so the prompt
    history can be cleared right there.

    `num_envs` is this process's share of config.env.num_envs under a launcher (None: all).
    With env.extra_actions = N, every env offers the first N of evaluate.EXTRA_ACTION_PHRASES
    after its real actions (babyai_text's `extra_actions=`): they execute minigrid's no-op."""
    return gym.make_vec(
        config.env.env_id,
        num_envs=config.env.num_envs if num_envs is None else num_envs,
        vectorization_mode=config.env.vectorization,
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
        language=config.env.language,
        extra_actions=extra_action_phrases(config.env.extra_actions),
    )
