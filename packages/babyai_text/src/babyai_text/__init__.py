"""babyai-text: text-only BabyAI gridworlds (BabyAI-Text-*) as Gymnasium environments on minigrid.

import gymnasium as gym
import babyai_text  # registers every BabyAI-Text-* ID

env = gym.make("BabyAI-Text-GoToLocal-v0")             # or "babyai_text:BabyAI-Text-..."
obs, info = env.reset(seed=0)
obs["mission"], obs["text"], info["descriptions"]
obs, reward, terminated, truncated, info = env.step(babyai_text.expert_action(env))
"""

from babyai_text.describe import describe_grid, describe_view
from babyai_text.env import BabyAITextEnv
from babyai_text.expert import Expert, expert_action
from babyai_text.levels import HELD_OUT_PAIRS, MIXED_TASKS, ORIGINAL_TASK_NAMES
from babyai_text.lexicon import ACTION_NAMES, EXTRA_ACTION_PHRASES, LANGUAGES, vocabulary
from babyai_text.missions import render_mission
from babyai_text.registration import (
    PAPER_LEVELS,
    register_envs,
    register_original_ids,
    registered_ids,
)

__version__ = "0.1.0"

__all__ = [
    "ACTION_NAMES",
    "EXTRA_ACTION_PHRASES",
    "LANGUAGES",
    "HELD_OUT_PAIRS",
    "MIXED_TASKS",
    "ORIGINAL_TASK_NAMES",
    "PAPER_LEVELS",
    "BabyAITextEnv",
    "Expert",
    "expert_action",
    "describe_view",
    "describe_grid",
    "render_mission",
    "vocabulary",
    "register_envs",
    "register_original_ids",
    "registered_ids",
]

register_envs()
