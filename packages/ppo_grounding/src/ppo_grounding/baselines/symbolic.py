"""Symbolic PPO: the same PPO as the LLM trainer, on minigrid's symbolic observation.

The observation is what minigrid gives a non-text agent: the 7x7x3 `image` of the agent's view
(object, colour and state index of each cell), its `direction` (0-3) and the mission. BabyAI-Text
envs add the first two with `symbolic=True`; the rest of the env (levels, seeds, rewards, ends) is
the one the LLM policy plays.

Network (`SymbolicActorCritic`), a small BabyAI-style actor-critic:

    image (7, 7, 3) -> per-cell embedding of object + colour + state (summed, 16)
        -> conv 3x3 (32) -> ReLU -> conv 3x3 (32) -> FiLM(mission) -> ReLU -> conv 1x1 (16)
        -> flatten (784) -> linear (64) -> ReLU
    mission words -> embedding (32) -> GRU (64)
    direction -> embedding (8)
    [image 64, mission 64, direction 8] -> linear (64) -> tanh -> actor (6 logits), critic (1)

FiLM: the mission code gives a per-channel scale (1 + gamma) and shift (beta) of the second
conv's features, so what the convolutions look for depends on the goal.

Training (`SymbolicPPOTrainer`) takes a `TrainConfig` and reads the same sections as
`PPOTrainer`: env (id, num_envs, language), ppo (total_frames, num_steps, GAE, reward scale,
epochs, minibatch size, learning rate, clip, coefficients, target KL, ...) and run (seed,
max_minutes); the policy section is ignored. Advantages come from the same `compute_gae`, and the
update is the same `update.ppo_update` (epochs over shuffled minibatches, `ppo_loss`, gradient
clip, non-finite check, per-minibatch target-KL stop, the same losses/* metrics): the trainer
only flattens its rollout into a `Batch` and gives it a `forward` that runs the network on a
minibatch's image, direction and mission tensors. It runs in one process (`ppo_update`'s default).
One seed (run.seed) seeds torch, the minibatch shuffler and the envs (run.seed + i): the same seed
gives the same run.

`SymbolicAgent` plays in `evaluate`: it sets `reads_env = True`, so it is given the envs, and
reads each one's symbolic observation with `env.unwrapped.gen_obs()` (minigrid's own encoder of
the current view) and the mission with `env.unwrapped.mission`; the prompt is ignored.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from torch import nn

from ..buffer import Batch
from ..envs import make_envs
from ..gae import compute_gae
from ..loop import Budget, make_optimizer, set_learning_rate
from ..metrics import SUCCESS_WINDOW, running_success_rate
from ..update import ppo_update
from .text import GRUEncoder, WordVocabulary, load_network, read_network_meta, save_network

if TYPE_CHECKING:
    from ..config import TrainConfig

NUM_ACTIONS = 6
_CHANNEL_SIZE = 16
"""Each image channel's values (object < 11, colour < 6, state < 3) get their own 16 ids."""


@dataclass
class SymbolicModelConfig:
    cell_dim: int = 16
    """Embedding of a cell (sum of its object, colour and state embeddings)."""
    conv_channels: int = 32
    """Channels of the two 3x3 convolutions."""
    word_dim: int = 32
    """Word embedding of the mission."""
    mission_dim: int = 64
    """GRU state of the mission."""
    direction_dim: int = 8
    """Embedding of the agent's direction."""
    hidden: int = 64
    """Width of the image projection and of the shared trunk before the actor and critic."""
    film: bool = True
    """Condition the image features on the mission with FiLM (False: plain concatenation)."""


class SymbolicActorCritic(nn.Module):
    """Actor-critic over (image, direction, mission ids); see the module docstring."""

    channel_offsets: torch.Tensor
    """(3,) the first id of each channel in `cells` (a buffer, registered in __init__)."""

    def __init__(self, vocab_size: int, config: SymbolicModelConfig | None = None) -> None:
        super().__init__()
        c = self.config = config or SymbolicModelConfig()
        self.cells = nn.Embedding(3 * _CHANNEL_SIZE, c.cell_dim)
        self.conv1 = nn.Conv2d(c.cell_dim, c.conv_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(c.conv_channels, c.conv_channels, 3, padding=1)
        self.film = nn.Linear(c.mission_dim, 2 * c.conv_channels) if c.film else None
        self.squeeze = nn.Conv2d(c.conv_channels, 16, 1)
        self.image_out = nn.Linear(16 * 7 * 7, c.hidden)
        self.mission = GRUEncoder(
            nn.Embedding(vocab_size, c.word_dim, padding_idx=0), c.mission_dim
        )
        self.direction = nn.Embedding(4, c.direction_dim)
        self.trunk = nn.Linear(c.hidden + c.mission_dim + c.direction_dim, c.hidden)
        self.actor = nn.Linear(c.hidden, NUM_ACTIONS)
        self.critic = nn.Linear(c.hidden, 1)
        nn.init.orthogonal_(self.actor.weight, 0.01)
        nn.init.zeros_(self.actor.bias)
        nn.init.orthogonal_(self.critic.weight, 1.0)
        nn.init.zeros_(self.critic.bias)
        self.register_buffer("channel_offsets", torch.arange(3) * _CHANNEL_SIZE, persistent=False)

    def forward(
        self, image: torch.Tensor, direction: torch.Tensor, mission: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image (B, 7, 7, 3) ints, direction (B,), mission (B, L) word ids ->
        (logits (B, 6), values (B,))."""
        cells = image.long().clamp(0, _CHANNEL_SIZE - 1) + self.channel_offsets
        x = self.cells(cells).sum(3).permute(0, 3, 1, 2)  # (B, cell_dim, 7, 7)
        x = torch.relu(self.conv1(x))
        x = self.conv2(x)
        goal = self.mission(mission)
        if self.film is not None:
            gamma, beta = self.film(goal).chunk(2, dim=-1)
            x = x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        x = torch.relu(self.squeeze(torch.relu(x)))
        x = torch.relu(self.image_out(x.flatten(1)))
        h = torch.tanh(self.trunk(torch.cat([x, goal, self.direction(direction.long())], -1)))
        return self.actor(h), self.critic(h).squeeze(-1)


def make_symbolic_envs(config: TrainConfig) -> gym.vector.VectorEnv:
    """The run's vector env (SAME_STEP autoreset) with `symbolic=True`: `envs.make_envs`'s."""
    return make_envs(config, symbolic=True)


class SymbolicPolicy:
    """The network with its vocabulary: turns raw symbolic observations into tensors."""

    def __init__(self, model: SymbolicActorCritic, vocabulary: WordVocabulary) -> None:
        self.model, self.vocabulary = model, vocabulary

    def tensors(
        self, images: np.ndarray, directions: Sequence[int], missions: Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            torch.as_tensor(np.asarray(images), dtype=torch.long),
            torch.as_tensor(np.asarray(directions), dtype=torch.long),
            self.vocabulary.batch(list(missions)),
        )

    def __call__(self, images, directions, missions) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(*self.tensors(images, directions, missions))

    # ------------------------------------------------------------------- save and load (no pickle)
    def save(self, directory: str | os.PathLike) -> Path:
        """<directory>/symbolic.safetensors (weights) and symbolic.json (model config)."""
        meta = {"model": dataclasses.asdict(self.model.config), "vocabulary": self.vocabulary.words}
        return save_network(directory, "symbolic", self.model, meta)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SymbolicPolicy:
        vocabulary = WordVocabulary()
        meta = read_network_meta(directory, "symbolic", vocabulary)
        model = SymbolicActorCritic(len(vocabulary), SymbolicModelConfig(**meta["model"]))
        load_network(directory, "symbolic", model)
        return cls(model, vocabulary)


class SymbolicAgent:
    """Plays a `SymbolicPolicy` in `evaluate`: reads each env's symbolic view (`reads_env`),
    samples from the policy (or takes its argmax with `greedy=True`). Phrases past the 6 real
    actions (`extra_actions`) are never chosen."""

    reads_env = True

    def __init__(self, policy: SymbolicPolicy, *, greedy: bool = False, seed: int = 0) -> None:
        self.policy, self.greedy = policy, greedy
        self.generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def __call__(self, prompts: list[str], action_names: Sequence[str], *, envs) -> np.ndarray:
        if len(action_names) < NUM_ACTIONS:
            raise ValueError(f"the symbolic policy needs the {NUM_ACTIONS} minigrid actions")
        views = [env.unwrapped.gen_obs() for env in envs]
        self.policy.model.eval()
        logits, _ = self.policy(
            [v["image"] for v in views],
            [v["direction"] for v in views],
            [env.unwrapped.mission for env in envs],
        )
        if self.greedy:
            return logits.argmax(-1).numpy()
        probs = torch.softmax(logits, -1)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1).numpy()


class SymbolicPPOTrainer:
    """PPO on the symbolic observation with the LLM trainer's GAE, loss and budget semantics.

    `train()` runs updates of ppo.num_steps x env.num_envs frames until ppo.total_frames (the
    last may overshoot, as in PPOTrainer) or run.max_minutes; it returns one metrics dict per
    update (charts/frames, charts/success_rate over the last 100 episodes, losses/*). Like
    PPOTrainer's, it closes the envs at the end: train once per trainer.
    """

    def __init__(
        self, config: TrainConfig, model_config: SymbolicModelConfig | None = None
    ) -> None:
        config.validate_if_changed()
        self.config = config
        if config.run.torch_threads:
            torch.set_num_threads(config.run.torch_threads)
        torch.manual_seed(config.run.seed)
        self.vocabulary = WordVocabulary()
        self.policy = SymbolicPolicy(
            SymbolicActorCritic(len(self.vocabulary), model_config), self.vocabulary
        )
        self.optimizer = make_optimizer(self.model.parameters(), config.ppo)
        self.shuffle = torch.Generator().manual_seed(config.run.seed)
        self.envs = RecordEpisodeStatistics(
            make_symbolic_envs(config), buffer_length=SUCCESS_WINDOW
        )
        self.obs, _ = self.envs.reset(seed=config.run.seed)
        self.frames = 0
        self.update_count = 0
        self.elapsed_s = 0.0
        self.metrics: list[dict[str, float]] = []

    @property
    def model(self) -> SymbolicActorCritic:
        return self.policy.model

    def agent(self, *, greedy: bool = False, seed: int = 0) -> SymbolicAgent:
        return SymbolicAgent(self.policy, greedy=greedy, seed=seed)

    def _tensors(self, obs: dict[str, Any]):
        return self.policy.tensors(obs["image"], obs["direction"], obs["mission"])

    @torch.no_grad()
    def collect_rollout(self) -> dict[str, Any]:
        cfg = self.config
        T, N = cfg.ppo.num_steps, cfg.env.num_envs
        images = torch.zeros(T, N, 7, 7, 3, dtype=torch.long)
        directions = torch.zeros(T, N, dtype=torch.long)
        missions: list[torch.Tensor] = []
        zeros = torch.zeros(T, N)
        actions = torch.zeros(T, N, dtype=torch.long)
        logprobs, values, rewards = zeros.clone(), zeros.clone(), zeros.clone()
        truncated_values = zeros.clone()
        terminated = torch.zeros(T, N, dtype=torch.bool)
        truncated = torch.zeros(T, N, dtype=torch.bool)
        self.model.eval()
        for t in range(T):
            image, direction, mission = self._tensors(self.obs)
            logits, value = self.model(image, direction, mission)
            dist = torch.distributions.Categorical(logits=logits)
            action = dist.sample()
            images[t], directions[t] = image, direction
            missions.append(mission)
            actions[t], logprobs[t], values[t] = action, dist.log_prob(action), value
            self.obs, reward, term, trunc, info = self.envs.step(action.numpy())
            rewards[t] = torch.as_tensor(reward, dtype=torch.float32) * cfg.ppo.reward_scale
            terminated[t], truncated[t] = torch.as_tensor(term), torch.as_tensor(trunc)
            if cfg.ppo.bootstrap_truncated:
                timed_out = np.flatnonzero(trunc & ~term).tolist()
                if timed_out:
                    final = [info["final_obs"][i] for i in timed_out]
                    _, final_values = self.policy(
                        [f["image"] for f in final],
                        [f["direction"] for f in final],
                        [f["mission"] for f in final],
                    )
                    truncated_values[t, timed_out] = final_values
        _, next_value = self.model(*self._tensors(self.obs))
        return dict(
            images=images,
            directions=directions,
            missions=missions,
            actions=actions,
            logprobs=logprobs,
            values=values,
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            truncated_values=truncated_values,
            next_value=next_value,
        )

    def update(self, rollout: dict[str, Any]) -> dict[str, float]:
        """GAE, then PPOTrainer's PPO epochs (update.ppo_update) over the rollout; returns the
        losses/* metrics of this update."""
        p = self.config.ppo
        advantages, returns = compute_gae(
            rollout["rewards"],
            rollout["values"],
            rollout["next_value"],
            rollout["terminated"],
            rollout["truncated"],
            p.gamma,
            p.gae_lambda,
            rollout["truncated_values"] if p.bootstrap_truncated else None,
        )
        B = advantages.numel()
        length = max(m.shape[1] for m in rollout["missions"])
        missions = torch.cat(
            [nn.functional.pad(m, (0, length - m.shape[1])) for m in rollout["missions"]]
        )
        images = rollout["images"].reshape(B, 7, 7, 3)
        directions = rollout["directions"].reshape(B)
        batch = Batch(
            actions=rollout["actions"].reshape(B),
            logprobs=rollout["logprobs"].reshape(B),
            values=rollout["values"].reshape(B),
            advantages=advantages.reshape(B),
            returns=returns.reshape(B),
        )

        def forward(idx: torch.Tensor) -> tuple[torch.distributions.Distribution, torch.Tensor]:
            logits, values = self.model(images[idx], directions[idx], missions[idx])
            return torch.distributions.Categorical(logits=logits), values

        self.model.train()
        return ppo_update(
            batch,
            forward,
            self.optimizer,
            list(self.model.parameters()),
            p,
            self.shuffle,
            update=self.update_count + 1,
        )

    def success_rate(self) -> float:
        return running_success_rate(self.envs.return_queue)

    def train(self) -> list[dict[str, float]]:
        cfg = self.config
        try:
            budget = Budget.of(cfg)
            while budget.allows_more(self.frames, self.elapsed_s):
                start = time.perf_counter()
                lr = cfg.learning_rate_at(self.update_count)
                set_learning_rate(self.optimizer, lr)
                metrics = self.update(self.collect_rollout())
                self.update_count += 1
                self.frames += cfg.batch_size
                self.elapsed_s += time.perf_counter() - start
                metrics.update(
                    {
                        "update": self.update_count,
                        "charts/frames": self.frames,
                        "charts/success_rate": self.success_rate(),
                        "charts/learning_rate": lr,
                        "time/elapsed_s": self.elapsed_s,
                    }
                )
                self.metrics.append(metrics)
        finally:
            self.envs.close()
        return self.metrics
