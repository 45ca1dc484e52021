"""Optional warm start before PPO: behaviour cloning of babyai-text's expert bot.

A model trained from scratch learns to read the observation slowly from reward alone. With
`--warm-start.demo-frames N`, the trainer first lets the expert (minigrid's BabyAIBot, through
`envs.call("expert_action")`) play N steps in the run's level, records the prompts the policy would
have seen, and fits the policy to the expert's actions: cross-entropy over the same softmax over
action scores that PPO samples from, plus a regression of the value head onto the demonstrations'
discounted returns. Then PPO starts from that policy. The expert is given nothing the policy lacks
but its own memory of the room, so its choices are not always predictable from the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .history import EpisodeHistory


@dataclass
class Demonstrations:
    """Expert transitions of finished episodes: prompt, expert action, discounted return-to-go."""

    prompts: list[str]
    actions: torch.Tensor
    """(N,) action indices."""
    returns: torch.Tensor
    """(N,) discounted sum of the scaled rewards from this step to the episode's end."""
    frames: int
    """Expert steps played, summed over envs (unfinished episodes included)."""

    def __len__(self) -> int:
        return len(self.prompts)


def collect_demonstrations(
    envs,
    history: EpisodeHistory,
    action_names: Sequence[str],
    frames: int,
    *,
    gamma: float,
    reward_scale: float,
    seed: int,
) -> Demonstrations:
    """Let the expert act in `envs` (SAME_STEP autoreset) until `frames` steps are taken, summed
    over envs; keep the transitions of the episodes that finished (a timeout counts as an end)."""
    num_envs = envs.num_envs
    obs, _ = envs.reset(seed=seed)
    history.start_all(obs)
    episodes: list[list[tuple[str, int, float]]] = [[] for _ in range(num_envs)]
    prompts: list[str] = []
    actions: list[int] = []
    returns: list[float] = []
    steps = -(-frames // num_envs)
    for _ in range(steps):
        step_prompts = history.prompts(action_names)
        action = np.asarray(envs.call("expert_action"), dtype=np.int64)
        obs, reward, terminated, truncated, _ = envs.step(action)
        done = terminated | truncated
        for i in range(num_envs):
            episodes[i].append((step_prompts[i], int(action[i]), float(reward[i]) * reward_scale))
            if done[i]:
                to_go, tail = 0.0, []
                for prompt, act, scaled_reward in reversed(episodes[i]):
                    to_go = scaled_reward + gamma * to_go
                    tail.append((prompt, act, to_go))
                for prompt, act, ret in reversed(tail):
                    prompts.append(prompt)
                    actions.append(act)
                    returns.append(ret)
                episodes[i] = []
        history.advance(obs, [action_names[a] for a in action], done)
    return Demonstrations(prompts, torch.tensor(actions), torch.tensor(returns), steps * num_envs)


def clone_epoch(
    policy,
    optimizer: torch.optim.Optimizer,
    demos: Demonstrations,
    action_names: Sequence[str],
    *,
    minibatch_size: int,
    value_coef: float,
    max_grad_norm: float,
    generator: torch.Generator,
) -> dict[str, float]:
    """One pass of behaviour cloning over `demos` in shuffled minibatches; returns the epoch's
    mean cross-entropy, value loss and accuracy (argmax of the policy == expert action)."""
    params = policy.trainable_parameters()
    policy.train()
    totals = {"warm_start/loss": 0.0, "warm_start/value_loss": 0.0, "warm_start/accuracy": 0.0}
    order = torch.randperm(len(demos), generator=generator)
    for start in range(0, len(demos), minibatch_size):
        idx = order[start : start + minibatch_size]
        out = policy([demos.prompts[i] for i in idx.tolist()], [action_names] * len(idx))
        cross_entropy = torch.nn.functional.cross_entropy(out.logits, demos.actions[idx])
        value_loss = 0.5 * ((out.values.float() - demos.returns[idx]) ** 2).mean()
        loss = cross_entropy + value_coef * value_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
        n = len(idx)
        totals["warm_start/loss"] += float(cross_entropy.detach()) * n
        totals["warm_start/value_loss"] += float(value_loss.detach()) * n
        correct = (out.logits.detach().argmax(-1) == demos.actions[idx]).sum()
        totals["warm_start/accuracy"] += float(correct)
    return {name: total / len(demos) for name, total in totals.items()}
