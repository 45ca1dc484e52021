"""The PPO loss of one minibatch, with the usual diagnostics (CleanRL's ppo.py, term by term)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PPOLoss:
    loss: torch.Tensor
    """The scalar to backpropagate: policy loss + vf_coef * value loss - ent_coef * entropy."""
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor
    approx_kl: torch.Tensor
    """The k3 estimator of KL(old || new), (ratio - 1) - log ratio: unbiased, low variance."""
    old_approx_kl: torch.Tensor
    """The naive estimator -log ratio, kept for comparison with other PPO logs."""
    clipfrac: torch.Tensor
    """Fraction of transitions whose ratio left [1 - clip, 1 + clip]."""


def ppo_loss(
    new_logprob: torch.Tensor,
    old_logprob: torch.Tensor,
    advantages: torch.Tensor,
    entropy: torch.Tensor,
    new_values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    *,
    clip_coef: float,
    clip_vloss: bool,
    vf_coef: float,
    ent_coef: float,
    norm_adv: bool,
) -> PPOLoss:
    """All inputs are (B,) for one minibatch; old_* and returns come from the rollout."""
    logratio = new_logprob - old_logprob
    ratio = logratio.exp()
    with torch.no_grad():
        old_approx_kl = (-logratio).mean()
        approx_kl = ((ratio - 1) - logratio).mean()
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean()

    if norm_adv and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

    # Clipped surrogate: the pessimistic of the unclipped and clipped objectives.
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
    policy_loss = torch.max(pg_loss1, pg_loss2).mean()

    if clip_vloss:
        v_loss_unclipped = (new_values - returns) ** 2
        v_clipped = old_values + torch.clamp(new_values - old_values, -clip_coef, clip_coef)
        v_loss_clipped = (v_clipped - returns) ** 2
        value_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
    else:
        value_loss = 0.5 * ((new_values - returns) ** 2).mean()

    entropy = entropy.mean()
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    return PPOLoss(loss, policy_loss, value_loss, entropy, approx_kl, old_approx_kl, clipfrac)


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var[target - predicted] / Var[target]; nan when the target does not vary."""
    var_target = target.var()
    if var_target == 0:
        return float("nan")
    return float(1 - (target - predicted).var() / var_target)
