"""The vector env of a run (or of one process of it): any BabyAI-Text ID, sync or async, with
SAME_STEP autoreset."""

from __future__ import annotations

from typing import TYPE_CHECKING

import babyai_text  # noqa: F401  (registers the BabyAI-Text-* IDs)
import gymnasium as gym

if TYPE_CHECKING:
    from .config import TrainConfig


def make_envs(config: TrainConfig, num_envs: int | None = None) -> gym.vector.VectorEnv:
    """The vector env of a run. Autoreset is SAME_STEP: the step that ends an episode returns the
    first observation of the next one (the final one is in info["final_obs"][i]), so the prompt
    history can be cleared right there.

    `num_envs` is this process's share of config.env.num_envs under a launcher (None: all)."""
    return gym.make_vec(
        config.env.env_id,
        num_envs=config.env.num_envs if num_envs is None else num_envs,
        vectorization_mode=config.env.vectorization,
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
        language=config.env.language,
    )
