"""ppo-grounding: online PPO fine-tuning of an LLM policy in BabyAI-Text (GLAM).

Data path: env (envs.py) -> text -> prompt (history.py) -> action scores (llm_policy) -> action ->
env, then rollout (buffer.py) -> advantages (gae.py) -> PPO loss (losses.py) -> optimiser step ->
metrics (metrics.py, reporter.py) -> checkpoint (checkpoint.py), driven by PPOTrainer (trainer.py)
from a TrainConfig (config.py); optionally preceded by behaviour cloning of the expert bot
(imitation.py).
"""

from .config import (
    PRESETS,
    EnvConfig,
    PPOConfig,
    RunConfig,
    TrainConfig,
    WarmStartConfig,
    offline_preset,
    paper_preset,
)
from .evaluate import (
    EVAL_SEED_OFFSET,
    EvalResult,
    PolicyAgent,
    RandomAgent,
    evaluate,
    wilson_interval,
)
from .gae import compute_gae
from .losses import PPOLoss, explained_variance, ppo_loss
from .trainer import PPOTrainer

__version__ = "0.1.0"

__all__ = [
    "EVAL_SEED_OFFSET",
    "PRESETS",
    "EnvConfig",
    "EvalResult",
    "PPOConfig",
    "PPOLoss",
    "PPOTrainer",
    "PolicyAgent",
    "RandomAgent",
    "RunConfig",
    "TrainConfig",
    "WarmStartConfig",
    "compute_gae",
    "evaluate",
    "explained_variance",
    "offline_preset",
    "paper_preset",
    "ppo_loss",
    "wilson_interval",
]
