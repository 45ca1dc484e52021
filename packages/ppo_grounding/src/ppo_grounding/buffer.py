"""Storage for one rollout of T steps in N envs, and its flattening into PPO minibatches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch


class Rollout:
    """One rollout of num_steps steps in num_envs envs; tensors are (T, N) and prompts[t][n] is
    the prompt env n acted on at step t."""

    def __init__(self, num_steps: int, num_envs: int) -> None:
        shape = (num_steps, num_envs)
        self.num_steps, self.num_envs = num_steps, num_envs
        self.prompts = [[""] * num_envs for _ in range(num_steps)]
        self.actions = torch.zeros(shape, dtype=torch.long)
        self.logprobs = torch.zeros(shape)
        self.values = torch.zeros(shape)
        self.rewards = torch.zeros(shape)
        """Scaled rewards, as PPO sees them."""
        self.terminated = torch.zeros(shape, dtype=torch.bool)
        self.truncated = torch.zeros(shape, dtype=torch.bool)
        self.truncated_values = torch.zeros(shape)
        """Value of the final observation where an episode was truncated (0 elsewhere)."""
        self.next_value = torch.zeros(num_envs)
        """(N,) value of the observation after the last step."""


@dataclass
class Batch:
    """A rollout flattened to B = T * N transitions, with its advantages and returns: what
    `update.ppo_update` reads. The observations are the trainer's own (the LLM trainer's prompts
    are here; the symbolic baseline keeps its image, direction and mission tensors)."""

    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    prompts: list[str] = field(default_factory=list)

    @classmethod
    def from_rollout(
        cls, rollout: Rollout, advantages: torch.Tensor, returns: torch.Tensor
    ) -> Batch:
        return cls(
            prompts=[p for step in rollout.prompts for p in step],
            actions=rollout.actions.reshape(-1),
            logprobs=rollout.logprobs.reshape(-1),
            values=rollout.values.reshape(-1),
            advantages=advantages.reshape(-1),
            returns=returns.reshape(-1),
        )

    def __len__(self) -> int:
        return len(self.actions)

    def minibatches(self, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Shuffled index tensors of `size` transitions covering the batch once."""
        order = torch.randperm(len(self), generator=generator)
        for start in range(0, len(self), size):
            yield order[start : start + size]
