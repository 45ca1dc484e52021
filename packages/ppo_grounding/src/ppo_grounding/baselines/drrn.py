"""DRRN: Q-learning over text actions, the paper's text baseline.

A Deep Reinforcement Relevance Network reads the same prompt as the LLM policy and scores each
action phrase with a Q-value. Network (`DRRNetwork`), one word embedding shared by three GRUs:

    prompt -> (mission, history): the goal line, and the observation lines with the actions
              between them (text.split_prompt; the list of possible actions is dropped)
    history words -> GRU (64)      mission words -> GRU (64)
    [history, mission] -> linear (128) -> ReLU -> linear (64)            = the state's code
    action phrase words -> GRU (64) -> linear (64) -> ReLU -> linear (64) = the action's code
    Q(state, action) = dot product of the two codes

so any set of phrases can be scored (the extra useless actions, synonyms) without a new head.

Training (`DRRNTrainer`) takes a `TrainConfig` and reads env (id, num_envs, language,
num_observations: the prompt is the LLM policy's), ppo.total_frames (the frame budget, the same
meaning as in PPO), ppo.gamma, and run (seed, max_minutes); the rest of its settings are a
`DRRNConfig`: epsilon-greedy exploration decayed linearly, a replay buffer of n-step transitions,
double Q-learning against a target network copied every few gradient steps, Huber loss. Timeouts
end the bootstrapping, as PPO's default does. One seed (run.seed) seeds torch, the exploration and
replay sampling, and the envs: the same seed gives the same run.

`DRRNAgent` plays in `evaluate` from the prompt alone (the plain agent protocol): the argmax of
Q, with a small `epsilon` of random actions (a deterministic policy can loop forever in the same
view).
"""

from __future__ import annotations

import copy
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from torch import nn

from ..envs import make_envs
from ..history import EpisodeHistory
from ..loop import Budget
from ..metrics import SUCCESS_WINDOW, running_success_rate
from .text import (
    GRUEncoder,
    WordVocabulary,
    load_network,
    pad,
    read_network_meta,
    save_network,
    split_prompt,
)

if TYPE_CHECKING:
    from ..config import TrainConfig


@dataclass
class DRRNConfig:
    word_dim: int = 32
    """Word embedding, shared by the three encoders."""
    hidden: int = 64
    """GRU state and code size."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    buffer_size: int = 50_000
    """Replay buffer capacity in transitions."""
    batch_size: int = 64
    """Transitions per gradient step."""
    n_step: int = 3
    """Rewards summed before bootstrapping (1: one-step TD)."""
    learning_starts: int = 1_000
    """Frames played (randomly) before the first gradient step."""
    gradient_steps: int = 1
    """Gradient steps after each step of the vector env (num_envs frames)."""
    target_update_every: int = 250
    """Gradient steps between copies of the online network into the target network."""
    epsilon_start: float = 1.0
    """Exploration: probability of a random action at the start..."""
    epsilon_end: float = 0.05
    """...decayed linearly to this..."""
    exploration_fraction: float = 0.5
    """...over this fraction of ppo.total_frames..."""
    exploration_frames: int | None = None
    """...or over this many frames (for a time budget, where total_frames is only a ceiling)."""
    max_grad_norm: float = 10.0
    """Gradient norm clip."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before the TD targets."""
    double_q: bool = True
    """Double Q-learning: the online network picks the next action, the target network values it."""


class DRRNetwork(nn.Module):
    """Q(state, action) = <state code, action code>; see the module docstring."""

    def __init__(self, vocab_size: int, word_dim: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.word_dim, self.hidden = word_dim, hidden
        self.embedding = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.history = GRUEncoder(self.embedding, hidden)
        self.mission = GRUEncoder(self.embedding, hidden)
        self.action = GRUEncoder(self.embedding, hidden)
        self.state_out = nn.Sequential(
            nn.Linear(2 * hidden, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, hidden)
        )
        self.action_out = nn.Sequential(
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )

    def state(self, history: torch.Tensor, mission: torch.Tensor) -> torch.Tensor:
        """(B, L) ids of the history and (B, M) of the mission -> (B, hidden)."""
        return self.state_out(torch.cat([self.history(history), self.mission(mission)], -1))

    def actions(self, actions: torch.Tensor) -> torch.Tensor:
        """(A, K) ids of the action phrases -> (A, hidden)."""
        return self.action_out(self.action(actions))

    def forward(
        self, history: torch.Tensor, mission: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """Q-values (B, A) of every action phrase in every state."""
        return self.state(history, mission) @ self.actions(actions).T


class DRRNPolicy:
    """The network with its vocabulary: prompts and phrases in, Q-values out."""

    def __init__(self, network: DRRNetwork, vocabulary: WordVocabulary) -> None:
        self.network, self.vocabulary = network, vocabulary

    def encode_prompts(self, prompts: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        """Word ids of each prompt's history and mission."""
        histories, missions = [], []
        for prompt in prompts:
            mission, history = split_prompt(prompt)
            histories.append(self.vocabulary.encode(history))
            missions.append(self.vocabulary.encode(mission))
        return histories, missions

    def q_values(self, prompts: Sequence[str], action_names: Sequence[str]) -> torch.Tensor:
        histories, missions = self.encode_prompts(prompts)
        return self.network(pad(histories), pad(missions), self.vocabulary.batch(action_names))

    def save(self, directory: str | os.PathLike) -> Path:
        """<directory>/drrn.safetensors (weights) and drrn.json (sizes and vocabulary)."""
        meta = {
            "word_dim": self.network.word_dim,
            "hidden": self.network.hidden,
            "vocabulary": self.vocabulary.words,
        }
        return save_network(directory, "drrn", self.network, meta)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> DRRNPolicy:
        vocabulary = WordVocabulary()
        meta = read_network_meta(directory, "drrn", vocabulary)
        network = DRRNetwork(len(vocabulary), meta["word_dim"], meta["hidden"])
        load_network(directory, "drrn", network)
        return cls(network, vocabulary)


class DRRNAgent:
    """Plays a `DRRNPolicy` in `evaluate` from the prompts: argmax Q, or with probability
    `epsilon` a uniformly random action."""

    def __init__(self, policy: DRRNPolicy, *, epsilon: float = 0.05, seed: int = 0) -> None:
        self.policy, self.epsilon = policy, epsilon
        self.rng = np.random.default_rng(seed)

    @torch.no_grad()
    def __call__(self, prompts: list[str], action_names: Sequence[str]) -> np.ndarray:
        self.policy.network.eval()
        greedy = self.policy.q_values(prompts, action_names).argmax(-1).numpy()
        explore = self.rng.random(len(prompts)) < self.epsilon
        random_actions = self.rng.integers(0, len(action_names), len(prompts))
        return np.where(explore, random_actions, greedy)


class ReplayBuffer:
    """A ring buffer of n-step transitions: (history, mission) ids, action, discounted reward
    sum, the (history, mission) ids n steps later, and the discount of its value (0: the
    episode ended before)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: list[tuple] = []
        self.position = 0

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: tuple) -> None:
        if len(self.items) < self.capacity:
            self.items.append(item)
        else:
            self.items[self.position] = item
        self.position = (self.position + 1) % self.capacity

    def sample(self, batch_size: int, rng: np.random.Generator) -> list[tuple]:
        return [self.items[i] for i in rng.integers(0, len(self.items), batch_size)]


class DRRNTrainer:
    """Q-learning of a `DRRNetwork` on the run's level, for ppo.total_frames frames (or
    run.max_minutes). `train()` returns one metrics dict per ppo.num_steps vector steps (the
    frames of one PPO update), with charts/frames, charts/success_rate over the last 100
    episodes, charts/epsilon, losses/td_loss and losses/q_mean. It closes the envs at the end:
    train once per trainer."""

    def __init__(self, config: TrainConfig, drrn: DRRNConfig | None = None) -> None:
        config.validate_if_changed()
        self.config, self.drrn = config, drrn or DRRNConfig()
        if config.run.torch_threads:
            torch.set_num_threads(config.run.torch_threads)
        torch.manual_seed(config.run.seed)
        self.rng = np.random.default_rng(config.run.seed)
        self.vocabulary = WordVocabulary()
        d = self.drrn
        self.policy = DRRNPolicy(
            DRRNetwork(len(self.vocabulary), d.word_dim, d.hidden), self.vocabulary
        )
        self.target = copy.deepcopy(self.network)
        self.target.eval()
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=d.learning_rate)
        self.replay = ReplayBuffer(d.buffer_size)
        envs = make_envs(config)
        self.action_names: list[str] = list(envs.get_attr("action_names")[0])
        self.action_ids = self.vocabulary.batch(self.action_names)
        self.envs = RecordEpisodeStatistics(envs, buffer_length=SUCCESS_WINDOW)
        self.history = EpisodeHistory(
            config.env.num_envs, config.env.num_observations, config.env.language
        )
        obs, _ = self.envs.reset(seed=config.run.seed)
        self.history.start_all(obs)
        self.frames = 0
        self.gradient_steps = 0
        self.elapsed_s = 0.0
        self.metrics: list[dict[str, float]] = []

    @property
    def network(self) -> DRRNetwork:
        return self.policy.network

    def agent(self, *, epsilon: float = 0.05, seed: int = 0) -> DRRNAgent:
        return DRRNAgent(self.policy, epsilon=epsilon, seed=seed)

    def epsilon(self) -> float:
        d = self.drrn
        span: float | None = d.exploration_frames
        if span is None:
            span = d.exploration_fraction * self.config.ppo.total_frames
        span = max(1.0, span)
        progress = min(1.0, self.frames / span)
        return d.epsilon_start + progress * (d.epsilon_end - d.epsilon_start)

    @torch.no_grad()
    def act(self, states: tuple[list[list[int]], list[list[int]]]) -> np.ndarray:
        n = self.config.env.num_envs
        random_actions = self.rng.integers(0, len(self.action_names), n)
        explore = self.rng.random(n) < self.epsilon()
        if self.frames < self.drrn.learning_starts or explore.all():
            return random_actions
        self.network.eval()
        histories, missions = states
        q = self.network(pad(histories), pad(missions), self.action_ids)
        return np.where(explore, random_actions, q.argmax(-1).numpy())

    def learn(self) -> tuple[float, float]:
        """One gradient step on a replay minibatch; (TD loss, mean Q of the taken actions)."""
        d = self.drrn
        batch = self.replay.sample(d.batch_size, self.rng)
        history, mission, taken, rewards, next_history, next_mission, discounts = zip(
            *batch, strict=True
        )
        action = torch.as_tensor(taken)
        returns = torch.as_tensor(rewards, dtype=torch.float32)
        discount = torch.as_tensor(discounts, dtype=torch.float32)
        with torch.no_grad():
            next_h, next_m = pad(next_history), pad(next_mission)
            target_q = self.target(next_h, next_m, self.action_ids)
            if d.double_q:
                self.network.eval()
                best = self.network(next_h, next_m, self.action_ids).argmax(-1)
            else:
                best = target_q.argmax(-1)
            target = returns + discount * target_q.gather(1, best[:, None]).squeeze(1)
        self.network.train()
        q = self.network(pad(history), pad(mission), self.action_ids)
        q_taken = q.gather(1, action[:, None]).squeeze(1)
        loss = nn.functional.smooth_l1_loss(q_taken, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(list(self.network.parameters()), d.max_grad_norm)
        self.optimizer.step()
        self.gradient_steps += 1
        if self.gradient_steps % d.target_update_every == 0:
            self.target.load_state_dict(self.network.state_dict())
        return float(loss.detach()), float(q_taken.detach().mean())

    def success_rate(self) -> float:
        return running_success_rate(self.envs.return_queue)

    def train(self) -> list[dict[str, float]]:
        cfg, d = self.config, self.drrn
        n, gamma = cfg.env.num_envs, cfg.ppo.gamma
        pending: list[deque] = [deque() for _ in range(n)]
        states = self.policy.encode_prompts(self.history.prompts(self.action_names))
        losses: list[tuple[float, float]] = []
        vector_steps = 0
        start = time.perf_counter()
        try:
            budget = Budget.of(cfg)  # the same frames and minutes as PPO's
            while budget.allows_more(self.frames, self.elapsed_s):
                action = self.act(states)
                obs, reward, terminated, truncated, _ = self.envs.step(action)
                done = terminated | truncated
                self.history.advance(obs, [self.action_names[a] for a in action], done)
                next_states = self.policy.encode_prompts(self.history.prompts(self.action_names))
                for i in range(n):
                    scaled = float(reward[i]) * d.reward_scale
                    pending[i].append((states[0][i], states[1][i], int(action[i]), scaled))
                    if done[i]:  # the episode ended: nothing to bootstrap from
                        while pending[i]:
                            self._store(pending[i], gamma, None, None)
                    elif len(pending[i]) == d.n_step:
                        self._store(pending[i], gamma, next_states[0][i], next_states[1][i])
                states = next_states
                self.frames += n
                vector_steps += 1
                if self.frames >= d.learning_starts and len(self.replay) >= d.batch_size:
                    for _ in range(d.gradient_steps):
                        losses.append(self.learn())
                if vector_steps % cfg.ppo.num_steps == 0:
                    self.elapsed_s += time.perf_counter() - start
                    start = time.perf_counter()
                    self._log(losses)
                    losses = []
            self.elapsed_s += time.perf_counter() - start
            if vector_steps % cfg.ppo.num_steps:
                self._log(losses)
        finally:
            self.envs.close()
        return self.metrics

    def _store(self, pending: deque, gamma: float, next_history, next_mission) -> None:
        """Pop the oldest pending step as an n-step transition (bootstrapped from the given next
        state, or not at all when it is None)."""
        history, mission, action, _ = pending[0]
        ret = sum(gamma**k * step[3] for k, step in enumerate(pending))
        if next_history is None:
            next_history, next_mission, discount = history, mission, 0.0
        else:
            discount = gamma ** len(pending)
        self.replay.add((history, mission, action, ret, next_history, next_mission, discount))
        pending.popleft()

    def _log(self, losses: list[tuple[float, float]]) -> None:
        row = {
            "charts/frames": self.frames,
            "charts/success_rate": self.success_rate(),
            "charts/epsilon": self.epsilon(),
            "time/elapsed_s": self.elapsed_s,
        }
        if losses:
            row["losses/td_loss"] = float(np.mean([x for x, _ in losses]))
            row["losses/q_mean"] = float(np.mean([q for _, q in losses]))
        self.metrics.append(row)
