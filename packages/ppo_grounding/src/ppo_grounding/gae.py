"""Generalised advantage estimation over a rollout of shape (T, N): T steps of N envs."""

from __future__ import annotations

import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_value: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    gae_lambda: float,
    truncated_values: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns (both (T, N)) for one rollout.

    rewards, values, terminated, truncated: (T, N); step t's reward came from acting on the
    observation valued values[t]. next_value: (N,) value of the observation after the last step.
    An episode end at step t cuts the recursion. After `terminated` nothing follows (value 0).
    After `truncated` (a timeout) the episode could have gone on: its continuation is worth
    truncated_values[t] (the value of the final observation), or 0 when truncated_values is None,
    which treats timeouts as terminal like the paper does.
    """
    T = rewards.shape[0]
    terminated = terminated.bool()
    truncated = truncated.bool() & ~terminated
    if truncated_values is None:
        truncated_values = torch.zeros_like(values)
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        following_value = values[t + 1] if t + 1 < T else next_value
        # (N,): what the state after step t is worth, by how the episode went on.
        continuation = torch.where(
            terminated[t],
            torch.zeros_like(following_value),
            torch.where(truncated[t], truncated_values[t], following_value),
        )
        delta = rewards[t] + gamma * continuation - values[t]
        not_end = (~(terminated[t] | truncated[t])).to(rewards.dtype)
        last_gae = delta + gamma * gae_lambda * not_end * last_gae
        advantages[t] = last_gae
    return advantages, advantages + values
