"""Configuration of a PPO grounding run: environment, policy, PPO and run settings, and presets.

Every field carries a one-line docstring; `ppo-grounding train --help` shows them. A config is
checked once, at start, by `TrainConfig.validate()`, whose errors say how to fix the input.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from llm_policy import PolicyConfig

_Section = TypeVar("_Section")


def laptop_policy() -> PolicyConfig:
    """The default policy: the small offline decoder, fully fine-tuned, scores averaged per token."""
    return PolicyConfig(model="offline-gpt2", finetune="full", normalization="token")


@dataclass
class EnvConfig:
    env_id: str = "BabyAI-Text-GoToRedBallNoDists-v0"
    """BabyAI-Text environment ID (any ID that `import babyai_text` registers)."""
    num_envs: int = 16
    """Number of environments stepped in parallel."""
    vectorization: Literal["sync", "async"] = "sync"
    """Gymnasium vectorisation: "sync" steps envs in this process, "async" in subprocesses."""
    language: Literal["en", "fr"] = "en"
    """Language of the observations, missions and action names."""
    num_observations: int = 1
    """Observations kept in the prompt (the current one and the previous ones; paper: 3)."""


@dataclass
class PPOConfig:
    total_frames: int = 20_480
    """Environment steps (summed over all envs) to train for."""
    num_steps: int = 32
    """Steps per env in each rollout; a rollout holds num_steps * num_envs transitions."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.99
    """GAE lambda."""
    reward_scale: float = 20.0
    """Rewards are multiplied by this during training (paper: 20); logged returns are unscaled."""
    bootstrap_truncated: bool = False
    """Bootstrap from the value of the final observation on timeouts (the paper treats them as terminal)."""
    update_epochs: int = 4
    """Passes over each rollout."""
    minibatch_size: int = 128
    """Transitions per gradient step (paper: 64)."""
    learning_rate: float = 3e-4
    """Optimiser learning rate (paper: 1e-6 for a pretrained 780M model; 3e-4 trains from scratch)."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over the run."""
    optimizer: Literal["adam", "adamw"] = "adam"
    """Optimiser: Adam or AdamW."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    weight_decay: float = 0.0
    """Weight decay (AdamW only)."""
    clip_coef: float = 0.2
    """PPO clipping epsilon for the policy ratio."""
    clip_vloss: bool = True
    """Clip the value loss with the same epsilon around the rollout's values."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient norm clip over all trainable parameters."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    target_kl: float | None = None
    """Stop the epochs of an update early once the approximate KL exceeds this (None: never)."""


@dataclass
class WarmStartConfig:
    demo_frames: int = 0
    """Expert (BabyAIBot) steps to imitate before PPO, summed over envs; 0: no warm start."""
    epochs: int = 4
    """Passes of behaviour cloning over the demonstrations."""
    learning_rate: float = 3e-4
    """Learning rate of behaviour cloning (Adam; its moments are not carried into PPO)."""
    value_coef: float = 1.0
    """Weight of the value head's regression onto the demonstrations' discounted returns."""


@dataclass
class RunConfig:
    seed: int = 1
    """Seeds torch, numpy, Python and the environments; the same seed gives the same run."""
    output_dir: str = "runs/ppo"
    """Directory for metrics.jsonl, TensorBoard events, checkpoints and the config."""
    checkpoint_every: int = 10
    """Write a checkpoint every N updates (and always at the end); 0 writes only the last one."""
    max_minutes: float | None = None
    """Stop after the update that crosses this many minutes of training (None: train to total_frames)."""
    resume: bool = False
    """Continue the run from the latest checkpoint in output_dir."""
    torch_threads: int | None = None
    """torch.set_num_threads for the run (None: torch's default)."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Also write TensorBoard events (metrics.jsonl is always written)."""


@dataclass
class TrainConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    """Environment settings."""
    policy: PolicyConfig = field(default_factory=laptop_policy)
    """LLM policy settings (model, scoring, adapters, heads)."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO settings."""
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)
    """Optional behaviour cloning of the expert bot before PPO."""
    run: RunConfig = field(default_factory=RunConfig)
    """Run settings: seed, output, checkpoints."""

    @property
    def batch_size(self) -> int:
        """Transitions per rollout."""
        return self.ppo.num_steps * self.env.num_envs

    @property
    def num_updates(self) -> int:
        """Rollout + update iterations needed to reach total_frames (the last may overshoot)."""
        return max(1, -(-self.ppo.total_frames // self.batch_size))

    def validate(self) -> None:
        """Reject invalid combinations with a message that says how to fix them."""
        p = self.ppo
        errors = []
        if self.env.num_envs < 1:
            errors.append(f"env.num_envs={self.env.num_envs}: use at least 1.")
        if self.env.num_observations < 1:
            errors.append(f"env.num_observations={self.env.num_observations}: use at least 1.")
        if p.num_steps < 1:
            errors.append(f"ppo.num_steps={p.num_steps}: use at least 1.")
        if p.total_frames < 1:
            errors.append(f"ppo.total_frames={p.total_frames}: use at least 1.")
        if p.minibatch_size < 1 or p.minibatch_size > self.batch_size:
            errors.append(
                f"ppo.minibatch_size={p.minibatch_size} must be between 1 and the rollout size "
                f"num_steps * num_envs = {self.batch_size}: lower it or collect longer rollouts."
            )
        elif self.batch_size % p.minibatch_size:
            errors.append(
                f"ppo.minibatch_size={p.minibatch_size} does not divide the rollout size "
                f"num_steps * num_envs = {self.batch_size}: pick a divisor so that no transition "
                "is dropped."
            )
        if not 0.0 < p.gamma <= 1.0 or not 0.0 <= p.gae_lambda <= 1.0:
            errors.append(
                f"ppo.gamma={p.gamma}, ppo.gae_lambda={p.gae_lambda}: need 0 < gamma <= 1 and 0 <= lambda <= 1."
            )
        if p.learning_rate <= 0:
            errors.append(f"ppo.learning_rate={p.learning_rate}: must be positive.")
        if p.clip_coef <= 0:
            errors.append(f"ppo.clip_coef={p.clip_coef}: must be positive.")
        if p.max_grad_norm <= 0:
            errors.append(f"ppo.max_grad_norm={p.max_grad_norm}: must be positive.")
        if p.update_epochs < 1:
            errors.append(f"ppo.update_epochs={p.update_epochs}: use at least 1.")
        if p.target_kl is not None and p.target_kl <= 0:
            errors.append(f"ppo.target_kl={p.target_kl}: use a positive value, or None to disable.")
        if p.weight_decay and p.optimizer != "adamw":
            errors.append(f"ppo.weight_decay={p.weight_decay} needs ppo.optimizer=adamw.")
        if self.policy.head == "action_head" and self.policy.num_actions != 6:
            errors.append(
                f"policy.num_actions={self.policy.num_actions}: BabyAI-Text envs have 6 actions; "
                "set policy.num_actions=6 for the action head."
            )
        w = self.warm_start
        if w.demo_frames < 0:
            errors.append(f"warm_start.demo_frames={w.demo_frames}: use 0 (no warm start) or more.")
        if w.demo_frames and (w.epochs < 1 or w.learning_rate <= 0 or w.value_coef < 0):
            errors.append(
                f"warm_start.epochs={w.epochs}, warm_start.learning_rate={w.learning_rate}, "
                f"warm_start.value_coef={w.value_coef}: a warm start needs at least 1 epoch, a "
                "positive learning rate and a value_coef >= 0."
            )
        if self.run.checkpoint_every < 0:
            errors.append(f"run.checkpoint_every={self.run.checkpoint_every}: use 0 or more.")
        if errors:
            raise ValueError("Invalid training config:\n  - " + "\n  - ".join(errors))

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, Any]]) -> TrainConfig:
        def build(kind: type[_Section], values: dict[str, Any]) -> _Section:
            names = {f.name for f in dataclasses.fields(kind)}
            unknown = set(values) - names
            if unknown:
                raise ValueError(
                    f"config has unknown {kind.__name__} fields {sorted(unknown)}: it was written "
                    "by another version of ppo-grounding; remove them or use that version."
                )
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
            return kind(**values)

        return cls(
            env=build(EnvConfig, data.get("env", {})),
            policy=build(PolicyConfig, data.get("policy", {})),
            ppo=build(PPOConfig, data.get("ppo", {})),
            warm_start=build(WarmStartConfig, data.get("warm_start", {})),
            run=build(RunConfig, data.get("run", {})),
        )


def paper_preset() -> TrainConfig:
    """The paper's setting: Flan-T5 780M fully fine-tuned on MixedTrainLocal, 32 envs x 40 steps,
    GAE 0.99/0.99, rewards x20, 4 epochs of minibatches of 64, lr 1e-6, 1.5M frames."""
    return TrainConfig(
        env=EnvConfig(env_id="BabyAI-Text-MixedTrainLocal-v0", num_envs=32, num_observations=3),
        policy=PolicyConfig(model="google/flan-t5-large", finetune="full", normalization="sum"),
        ppo=PPOConfig(
            total_frames=1_500_000,
            num_steps=40,
            gamma=0.99,
            gae_lambda=0.99,
            reward_scale=20.0,
            update_epochs=4,
            minibatch_size=64,
            learning_rate=1e-6,
            adam_eps=1e-5,
            clip_coef=0.2,
            vf_coef=0.5,
            ent_coef=0.01,
            max_grad_norm=0.5,
        ),
        run=RunConfig(output_dir="runs/paper"),
    )


def offline_preset() -> TrainConfig:
    """The laptop default (TrainConfig's own defaults): the offline model trained from scratch
    on a level that learns fast.

    A randomly initialised model needs a much larger learning rate than the paper's pretrained
    one, full fine-tuning (LoRA adapts a model that already knows something), and scores
    normalised per token: with "sum", one-token actions (drop, toggle) start far ahead of
    two-token ones and the first updates collapse onto them.
    """
    return TrainConfig(run=RunConfig(output_dir="runs/quickstart"))


PRESETS = {"offline": offline_preset, "paper": paper_preset}
