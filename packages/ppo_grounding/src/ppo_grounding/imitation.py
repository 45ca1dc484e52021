"""Optional warm start before PPO: behaviour cloning of babyai-text's expert bot.

A model trained from scratch learns to read the observation slowly from reward alone. With
`--warm-start.demo-frames N`, the trainer first lets the expert (minigrid's BabyAIBot, through
`envs.call("expert_action")`) play N steps in the run's level, records the prompts the policy would
have seen, and fits the policy to the expert's actions: cross-entropy over the same softmax over
action scores that PPO samples from, plus a regression of the value head onto the demonstrations'
discounted returns. Then PPO starts from that policy. The expert is given nothing the policy lacks
but its own memory of the room, so its choices are not always predictable from the prompt.

`warm_start` is the whole procedure as the trainer runs it; `collect_demonstrations` and
`clone_epoch` are its two halves. Under a launcher every process plays its share of the envs on
its own seeds and clones on its own demonstrations (cut to the fewest any process has, so that
all take the same number of steps), with minibatches of minibatch_size / N: the policy it is
given is then DDP's wrapper, which averages the gradients.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from llm_policy.atomic import atomic_write_text

from .distributed import ONE_PROCESS, Distributed
from .envs import make_envs
from .history import EpisodeHistory

if TYPE_CHECKING:
    from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv
    from llm_policy import LLMPolicy

    from .config import TrainConfig

DEMO_SEED_OFFSET = 500_000
"""The warm start's demonstrations are played on seeds run.seed + 500,000 + k: apart from the
training envs' (run.seed + small numbers) and the evaluation's (1,000,000 + k)."""
WARM_START_FILE = "warm_start.json"
"""<output_dir>/warm_start.json: the warm start's demo_frames, transitions and per-epoch stats."""


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
    envs: SyncVectorEnv | AsyncVectorEnv,
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
    policy: LLMPolicy | torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    demos: Demonstrations,
    action_names: Sequence[str],
    *,
    minibatch_size: int,
    value_coef: float,
    max_grad_norm: float,
    generator: torch.Generator,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, float]:
    """One pass of behaviour cloning over `demos` in shuffled minibatches; returns the epoch's
    mean cross-entropy, value loss and accuracy (argmax of the policy == expert action).
    `scaler`: fp16 mixed precision's gradient scaler (as in update.py), else None."""
    # (not policy.trainable_parameters(): under a launcher `policy` is DDP's wrapper of it)
    params = [p for p in policy.parameters() if p.requires_grad]
    policy.train()
    totals = {"warm_start/loss": 0.0, "warm_start/value_loss": 0.0, "warm_start/accuracy": 0.0}
    order = torch.randperm(len(demos), generator=generator)
    for start in range(0, len(demos), minibatch_size):
        idx = order[start : start + minibatch_size]
        optimizer.zero_grad(set_to_none=True)  # before the forward: less memory at the peak
        out = policy([demos.prompts[i] for i in idx.tolist()], [action_names] * len(idx))
        cross_entropy = torch.nn.functional.cross_entropy(out.logits, demos.actions[idx])
        value_loss = 0.5 * ((out.values.float() - demos.returns[idx]) ** 2).mean()
        loss = cross_entropy + value_coef * value_loss
        if scaler is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            scaler.step(optimizer)  # skipped when the fp16 gradient overflowed
            scaler.update()
        n = len(idx)
        totals["warm_start/loss"] += float(cross_entropy.detach()) * n
        totals["warm_start/value_loss"] += float(value_loss.detach()) * n
        correct = (out.logits.detach().argmax(-1) == demos.actions[idx]).sum()
        totals["warm_start/accuracy"] += float(correct)
    return {name: total / len(demos) for name, total in totals.items()}


@dataclass
class WarmStart:
    """What a warm start did."""

    demo_frames: int
    """Expert steps played, summed over envs."""
    transitions: int
    """Expert transitions imitated (those of finished episodes)."""
    epochs: list[dict[str, float]]
    """Per epoch: warm_start/epoch, warm_start/loss, warm_start/value_loss, warm_start/accuracy,
    time/elapsed_s (the run's time so far, this warm start included)."""
    seconds: float
    """Wall-clock seconds the warm start took."""


def warm_start(
    policy: LLMPolicy | torch.nn.Module,
    config: TrainConfig,
    action_names: Sequence[str],
    generator: torch.Generator,
    *,
    output_dir: str | os.PathLike,
    elapsed_s: float = 0.0,
    report: Callable[[str], None] | None = None,
    processes: Distributed = ONE_PROCESS,
    scaler: torch.amp.GradScaler | None = None,
) -> WarmStart:
    """Behaviour cloning of the expert on config.warm_start.demo_frames steps of the run's level.

    The expert plays in fresh envs seeded run.seed + DEMO_SEED_OFFSET; the policy is fitted for
    warm_start.epochs passes with its own Adam (not carried into PPO), in minibatches of
    ppo.minibatch_size shuffled by `generator` (the trainer's minibatch shuffler, so the run stays
    one seeded sequence). `elapsed_s` is the run's time before it, for time/elapsed_s. Writes
    <output_dir>/warm_start.json; `report` receives one line per epoch.

    `processes` (the trainer's Distributed) shares the work out under a launcher: process r plays
    num_envs / N envs (seeds after those of the processes before it) for demo_frames / N steps,
    and `policy` must then be the DDP-wrapped policy. Only the main process writes the file;
    the statistics are over every process's demonstrations. `scaler`: fp16 mixed precision's
    gradient scaler (the trainer's), else None.
    """
    cfg, w = config, config.warm_start
    start = time.perf_counter()
    world, rank = processes.world_size, processes.rank
    num_envs = cfg.env.num_envs // world
    envs = make_envs(cfg, num_envs)
    try:
        history = EpisodeHistory(num_envs, cfg.env.num_observations, cfg.env.language)
        demos = collect_demonstrations(
            envs,
            history,
            action_names,
            -(-w.demo_frames // world),
            gamma=cfg.ppo.gamma,
            reward_scale=cfg.ppo.reward_scale,
            seed=cfg.run.seed + DEMO_SEED_OFFSET + rank * num_envs,
        )
    finally:
        envs.close()
    if processes.enabled:  # every process takes the same number of steps: as many transitions each
        keep = int(processes.min([len(demos)])[0])
        demos = Demonstrations(
            demos.prompts[:keep],
            demos.actions[:keep],
            demos.returns[:keep],
            int(processes.sum([demos.frames])[0]),
        )
    if not len(demos):
        raise ValueError(
            f"warm_start.demo_frames={w.demo_frames}: no expert episode finished in that many "
            f"steps of {cfg.env.num_envs} envs; raise it to a few episodes per env."
        )
    optimizer = torch.optim.Adam(
        [p for p in policy.parameters() if p.requires_grad],  # policy may be DDP's wrapper
        lr=w.learning_rate,
        eps=cfg.ppo.adam_eps,
    )
    epochs = []
    for epoch in range(1, w.epochs + 1):
        stats = clone_epoch(
            policy,
            optimizer,
            demos,
            action_names,
            minibatch_size=cfg.ppo.minibatch_size // world,
            value_coef=w.value_coef,
            max_grad_norm=cfg.ppo.max_grad_norm,
            generator=generator,
            scaler=scaler,
        )
        # equal shares: the mean over the processes is the union's (one process: its own)
        stats = dict(zip(stats, processes.mean(list(stats.values())), strict=True))
        stats = {"warm_start/epoch": epoch, **stats}
        stats["time/elapsed_s"] = elapsed_s + time.perf_counter() - start
        epochs.append(stats)
        if report is not None:
            report(
                f"warm start epoch {epoch}/{w.epochs}: imitation accuracy "
                f"{stats['warm_start/accuracy']:.3f}, loss {stats['warm_start/loss']:.3f} "
                f"({len(demos)} expert steps, {stats['time/elapsed_s']:.0f} s)"
            )
    # the slowest process's time, so that all agree on the time budget
    seconds = processes.max([time.perf_counter() - start])[0]
    transitions = int(processes.sum([len(demos)])[0])
    done = WarmStart(demos.frames, transitions, epochs, seconds)
    if rank == 0:
        summary = {"demo_frames": done.demo_frames, "transitions": transitions, "epochs": epochs}
        atomic_write_text(Path(output_dir) / WARM_START_FILE, json.dumps(summary, indent=1) + "\n")
    return done
