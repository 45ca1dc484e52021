"""Evaluation: success rate (return > 0) with a 95% confidence interval, and mean return.

Episodes are reset with explicit seeds starting at EVAL_SEED_OFFSET. Training seeds its envs
with run.seed + env index (small numbers) and lets their RNGs run on from there, so evaluation
episodes are laid out from seeds that training never reset with.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import babyai_text  # noqa: F401  (registers the BabyAI-Text-* IDs)
import gymnasium as gym
import numpy as np
import torch

from .history import EpisodeHistory, sentences_of

EVAL_SEED_OFFSET = 1_000_000

Agent = Callable[[list[str], Sequence[str]], np.ndarray]
"""An agent maps prompts (one per env) and the action names to action indices, shape (N,)."""


@dataclass
class EvalResult:
    episodes: int
    successes: int
    mean_return: float
    mean_length: float

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes

    @property
    def confidence_interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.episodes)

    def summary(self) -> str:
        low, high = self.confidence_interval
        return (
            f"success {self.success_rate:.3f} (95% CI {low:.3f}-{high:.3f}) over {self.episodes} episodes, "
            f"mean return {self.mean_return:.3f}, mean length {self.mean_length:.1f}"
        )


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (sound at 0 and 1, unlike the normal one)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


class PolicyAgent:
    """Acts with an LLMPolicy: samples from its distribution (the paper), or takes the argmax."""

    def __init__(self, policy, *, greedy: bool = False, generator: torch.Generator | None = None):
        self.policy, self.greedy, self.generator = policy, greedy, generator

    @torch.no_grad()
    def __call__(self, prompts: list[str], action_names: Sequence[str]) -> np.ndarray:
        logits = self.policy(prompts, [list(action_names)] * len(prompts)).logits
        if self.greedy:
            return logits.argmax(-1).numpy()
        probs = torch.softmax(logits.float(), -1)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1).numpy()


class RandomAgent:
    """Uniform over the actions; `weights` gives a blind walk with fixed action frequencies."""

    def __init__(self, seed: int = 0, weights: Sequence[float] | None = None):
        self.rng = np.random.default_rng(seed)
        self.weights = (
            None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
        )

    def __call__(self, prompts: list[str], action_names: Sequence[str]) -> np.ndarray:
        return self.rng.choice(len(action_names), size=len(prompts), p=self.weights)


def evaluate(
    agent: Agent,
    env_id: str,
    *,
    episodes: int = 100,
    seed_offset: int = EVAL_SEED_OFFSET,
    num_envs: int = 16,
    num_observations: int = 3,
    language: str = "en",
    progress: bool = False,
) -> EvalResult:
    """Play `episodes` episodes, seeds seed_offset .. seed_offset + episodes - 1, num_envs at a time."""
    if episodes < 1:
        raise ValueError(f"episodes={episodes}: evaluate at least 1 episode.")
    num_envs = min(num_envs, episodes)
    envs = [gym.make(env_id, language=language) for _ in range(num_envs)]
    action_names = list(envs[0].unwrapped.action_names)
    history = EpisodeHistory(num_envs, num_observations, language)
    seeds = iter(range(seed_offset, seed_offset + episodes))
    active = [True] * num_envs
    returns, lengths = [0.0] * num_envs, [0] * num_envs
    finished_returns, finished_lengths = [], []

    def start(i: int) -> None:
        seed = next(seeds, None)
        if seed is None:
            active[i] = False
            return
        obs, _ = envs[i].reset(seed=seed)
        history.start(i, obs["mission"], sentences_of(obs["text"]))
        returns[i], lengths[i] = 0.0, 0

    for i in range(num_envs):
        start(i)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=episodes, desc="evaluate", unit="ep")
    while any(active):
        live = [i for i in range(num_envs) if active[i]]
        actions = agent([history.prompt(i, action_names) for i in live], action_names)
        for i, action in zip(live, actions, strict=False):
            obs, reward, terminated, truncated, _ = envs[i].step(int(action))
            returns[i] += float(reward)
            lengths[i] += 1
            if terminated or truncated:
                finished_returns.append(returns[i])
                finished_lengths.append(lengths[i])
                if bar is not None:
                    bar.update(1)
                start(i)
            else:
                history.record(i, action_names[int(action)], sentences_of(obs["text"]))
    if bar is not None:
        bar.close()
    for env in envs:
        env.close()
    return EvalResult(
        episodes=len(finished_returns),
        successes=sum(r > 0 for r in finished_returns),
        mean_return=float(np.mean(finished_returns)),
        mean_length=float(np.mean(finished_lengths)),
    )
