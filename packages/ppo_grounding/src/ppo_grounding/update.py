"""One PPO update: epochs over shuffled minibatches of a rollout, the loss, the optimiser steps.

`ppo_update` is the update of both PPO trainers, the LLM policy's (`PPOTrainer`) and the symbolic
baseline's (`baselines.symbolic.SymbolicPPOTrainer`). Each trainer computes the advantages
(gae.py), flattens its rollout into a `Batch` (buffer.py) and hands over a `forward(indices)`
that runs its network on those transitions' observations; everything after that is here:

    for each of ppo.update_epochs epochs, for each shuffled minibatch (Batch.minibatches):
        zero_grad -> forward -> distribution, values -> ppo_loss (losses.py) -> backward
        -> clip_grad_norm_ (the norm before clipping is logged) -> check_step (finite.py)
        -> optimizer.step -> metrics; stop the update if approx_kl > ppo.target_kl

With fp16 mixed precision a `torch.amp.GradScaler` scales the loss before the backward and
unscales the gradients before clipping; a step whose gradients overflowed is skipped by the
scaler (which then lowers its scale) rather than reported as a divergence.

Under several processes (distributed.py) each takes its share of every minibatch, advantages are
normalised over the union of the shares, the backward averages the gradients (DDP) and the
metrics are means over the processes, so every process takes the same target-KL decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from . import distributed
from .finite import check_step
from .losses import explained_variance, ppo_loss

if TYPE_CHECKING:
    from .buffer import Batch
    from .config import PPOConfig

__all__ = ["Forward", "ppo_update"]

Forward = Callable[[torch.Tensor], tuple[torch.distributions.Distribution, torch.Tensor]]
"""indices (M,) into the batch -> (the policy's action distribution, values (M,), float32) on
those transitions' observations, with gradients (the network in train mode)."""


def ppo_update(
    batch: Batch,
    forward: Forward,
    optimizer: torch.optim.Optimizer,
    params: Sequence[torch.nn.Parameter],
    p: PPOConfig,
    shuffle: torch.Generator,
    *,
    update: int,
    processes: distributed.Distributed = distributed.ONE_PROCESS,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, float]:
    """PPO epochs over `batch`; returns the losses/* metrics of the update.

    `params` are the trainable parameters (a list: clip_grad_norm_ must see every gradient),
    `shuffle` orders the minibatches, `update` (1-based) names the update in a NonFiniteError.
    `processes` is the trainer's Distributed (default: one process, as the symbolic baseline runs).
    `scaler`: the gradient scaler of fp16 mixed precision (None for fp32 and bf16).
    """
    minibatch_size = p.minibatch_size // processes.world_size  # this process's share
    sums: dict[str, float] = {}
    steps = 0
    kl_exceeded = False
    for _epoch in range(p.update_epochs):
        for idx in batch.minibatches(minibatch_size, shuffle):
            # Free the last step's gradients before this forward, not after it: a model's worth
            # of memory less at the peak (same step: the backward finds no gradient either way).
            optimizer.zero_grad(set_to_none=True)
            dist, new_values = forward(idx)
            mb_advantages, norm_adv = batch.advantages[idx], p.norm_adv
            if processes.enabled and norm_adv:
                # Normalise over the union of the processes' minibatches, as one process
                # holding all of it would (ppo_loss would use this process's share alone).
                mean, std = distributed.global_mean_std(processes, mb_advantages)
                if p.minibatch_size > 1:
                    mb_advantages = (mb_advantages - mean) / (std + 1e-8)
                norm_adv = False
            loss = ppo_loss(
                dist.log_prob(batch.actions[idx]),
                batch.logprobs[idx],
                mb_advantages,
                dist.entropy(),
                new_values,
                batch.values[idx],
                batch.returns[idx],
                clip_coef=p.clip_coef,
                clip_vloss=p.clip_vloss,
                vf_coef=p.vf_coef,
                ent_coef=p.ent_coef,
                norm_adv=norm_adv,
            )
            # under DDP: gradients averaged across processes
            processes.backward(loss.loss if scaler is None else scaler.scale(loss.loss))
            if scaler is not None:
                scaler.unscale_(optimizer)  # clip the true gradient, not the scaled one
            # Under DDP every process holds the averaged gradient: this norm is the global one.
            grad_norm = torch.nn.utils.clip_grad_norm_(params, p.max_grad_norm)
            if hasattr(grad_norm, "full_tensor"):  # sharded gradients: a DTensor, the global norm
                grad_norm = grad_norm.full_tensor()
            if scaler is None:
                check_step(update, loss=loss.loss, grad_norm=grad_norm)
                optimizer.step()
            else:
                # an overflowing fp16 gradient is the scaler's cue to lower its scale and skip
                # this step (every process sees the same averaged gradient, so all skip it)
                check_step(update, loss=loss.loss)
                scaler.step(optimizer)
                scaler.update()

            steps += 1
            values = [
                float(v.detach())
                for v in (
                    loss.policy_loss,
                    loss.value_loss,
                    loss.entropy,
                    loss.clipfrac,
                    loss.approx_kl,
                    loss.old_approx_kl,
                )
            ]
            # Means over the processes (equal shares: the union's means), one collective;
            # every process then takes the same target-KL decision.
            values = processes.mean(values)
            for name, value in (
                ("losses/policy_loss", values[0]),
                ("losses/value_loss", values[1]),
                ("losses/entropy", values[2]),
                ("losses/clipfrac", values[3]),
                ("losses/grad_norm", float(grad_norm)),
            ):
                sums[name] = sums.get(name, 0.0) + value
            last_kl, last_old_kl = values[4], values[5]
            # Per minibatch, not per epoch as in CleanRL: stop as soon as the policy moved too
            # far (trainer.py's module docstring lists this with the other differences).
            kl_exceeded = p.target_kl is not None and last_kl > p.target_kl
            if kl_exceeded:
                break
        if kl_exceeded:
            break
    optimizer.zero_grad(set_to_none=True)  # no gradients held through the rollout and the save
    metrics = {name: total / steps for name, total in sums.items()}
    metrics["losses/approx_kl"] = last_kl
    metrics["losses/old_approx_kl"] = last_old_kl
    metrics["losses/explained_variance"] = explained_variance(
        processes.gather(batch.values), processes.gather(batch.returns)
    )
    metrics["losses/minibatch_steps"] = steps
    return metrics
