"""What the three trainers' outer loops share: the budget, the optimiser and its learning rate.

PPOTrainer (trainer.py), SymbolicPPOTrainer and DRRNTrainer (baselines/) all run until
ppo.total_frames environment steps or run.max_minutes of training, whichever comes first, and
check it between two units of work (an update, or ppo.num_steps vector steps for DRRN), so the
last unit may overshoot either. The two PPO trainers build the same optimiser from config.ppo
and set the same learning-rate schedule (TrainConfig.learning_rate_at) before each update.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .config import PPOConfig, TrainConfig

__all__ = ["Budget", "make_optimizer", "set_learning_rate"]


@dataclass(frozen=True)
class Budget:
    """Train until `total_frames` environment steps or `max_minutes` (None: no time limit)."""

    total_frames: int
    max_minutes: float | None = None

    @classmethod
    def of(cls, config: TrainConfig) -> Budget:
        """The run's budget: ppo.total_frames and run.max_minutes."""
        return cls(config.ppo.total_frames, config.run.max_minutes)

    def allows_more(self, frames: int, elapsed_s: float) -> bool:
        """Whether another unit of work may start after `frames` steps and `elapsed_s` seconds."""
        out_of_time = self.max_minutes is not None and elapsed_s >= 60 * self.max_minutes
        return frames < self.total_frames and not out_of_time


def make_optimizer(
    parameters: Iterable[torch.nn.Parameter], ppo: PPOConfig
) -> torch.optim.Optimizer:
    """Adam, or AdamW with ppo.weight_decay, at ppo.learning_rate with ppo.adam_eps."""
    parameters = list(parameters)
    if ppo.optimizer == "adamw":
        return torch.optim.AdamW(
            parameters, lr=ppo.learning_rate, eps=ppo.adam_eps, weight_decay=ppo.weight_decay
        )
    return torch.optim.Adam(parameters, lr=ppo.learning_rate, eps=ppo.adam_eps)


def set_learning_rate(optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
