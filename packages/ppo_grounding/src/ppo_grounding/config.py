"""Configuration of a PPO grounding run: environment, policy, PPO and run settings, and presets.

Every field carries a one-line docstring; `ppo-grounding train --help` shows them. A config is
checked once, at start, by `TrainConfig.validate()`, whose errors say how to fix the input.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import re
import tempfile
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import babyai_text
from llm_policy import PolicyConfig

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Section = TypeVar("_Section", bound="DataclassInstance")
"""A section of a TrainConfig: one of its dataclasses."""

BABYAI_ACTIONS = 6
"""The real actions of every BabyAI-Text env (turn left, turn right, go forward, pick up, drop,
toggle, in any language or wording)."""


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
    extra_actions: int = 0
    """N useless phrases offered after the real actions, executed as the env's no-op (0 to 10: sleep, dance, ...; babyai_text.EXTRA_ACTION_PHRASES): the paper's action-space experiment."""

    @property
    def num_actions(self) -> int:
        """Actions the env offers: BabyAI's BABYAI_ACTIONS plus the extra phrases."""
        return BABYAI_ACTIONS + self.extra_actions


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
    """Entropy bonus coefficient (>= 0; a negative one, which rewards certainty, needs allow_negative_ent_coef)."""
    allow_negative_ent_coef: bool = False
    """Accept a negative ent_coef on purpose (an entropy penalty)."""
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
class DistConfig:
    shard: bool = False
    """Under a launcher with N processes, shard the policy's weights, gradients and optimiser state across them (torch FSDP2) instead of a full replica in each (DDP): for a model too big for one device. No effect on one process."""


@dataclass
class RunConfig:
    seed: int = 1
    """Seeds torch, numpy, Python and the environments; the same seed gives the same run."""
    output_dir: str = "runs/ppo"
    """Directory for metrics.jsonl, TensorBoard events, checkpoints and the config."""
    checkpoint_every: int = 10
    """Write a checkpoint every N updates (and always at the end); 0 writes only the last one."""
    keep_last: int | None = None
    """Keep only the N newest checkpoints (>= 1; older ones are deleted once a new one is published, never the one `latest` names); None keeps every checkpoint."""
    max_minutes: float | None = None
    """Stop after the update that crosses this many minutes of training (> 0; None: train to total_frames)."""
    resume: bool = False
    """Continue the run from the latest checkpoint in output_dir."""
    init_from: str | None = None
    """Start this new run from these weights: a saved policy directory, a run directory (its latest checkpoint's policy, e.g. the output of `ppo-grounding clone`) or a checkpoint directory; counters and optimiser start fresh. Recorded in the run's config as the directory the weights were read from."""
    torch_threads: int | None = None
    """torch.set_num_threads for the run (>= 1; None: torch's default)."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Also write TensorBoard events (metrics.jsonl is always written)."""


_ENV_ID = re.compile(r"BabyAI-Text-[A-Za-z0-9]+-v[0-9]+")


def check_env_id(env_id: Any, field: str = "env.env_id") -> None:
    """Raise a ValueError unless `env_id` is a BabyAI-Text ID that `import babyai_text` registers.

    Only the plain `BabyAI-Text-<Level>-v<N>` form is accepted: gymnasium's `module:ID` form
    imports `module` first, and an ID read from a config someone sent must not run code.
    """
    if not isinstance(env_id, str) or not _ENV_ID.fullmatch(env_id):
        hint = ""
        if isinstance(env_id, str) and ":" in env_id:
            hint = " (drop the 'module:' prefix: importing a module named in a config is refused)"
        raise ValueError(
            f"{field}={env_id!r} is not a BabyAI-Text ID: use one of babyai_text.registered_ids(), "
            f"e.g. BabyAI-Text-GoToLocal-v0{hint}."
        )
    registered = babyai_text.registered_ids()
    if env_id not in registered:
        close = difflib.get_close_matches(env_id, registered, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"{field}={env_id!r} is not registered{hint} (babyai_text.registered_ids() lists them)"
        )


_OWN_SECTIONS = ("env", "ppo", "warm_start", "run", "dist")
"""The sections whose fields `TrainConfig.validate` type-checks (the policy checks its own)."""


def _snapshot(config: TrainConfig) -> tuple[Any, ...]:
    """Every field of every section with its type (a seed changed from 0 to False is a change),
    copied so that a list changed in place is a change too."""
    return tuple(
        (type(value), copy.deepcopy(value))
        for section in (getattr(config, f.name) for f in dataclasses.fields(config))
        for value in (getattr(section, g.name) for g in dataclasses.fields(section))
    )


def _type_errors(section: str, obj: Any) -> list[str]:
    """Fields of dataclass `obj` whose value is not of the annotated type (bool is no int)."""
    errors = []
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not _is_of(value, hints[f.name]):
            errors.append(
                f"{section}.{f.name}={value!r}: expected {_type_name(hints[f.name])}, "
                f"got {type(value).__name__}."
            )
    return errors


def _is_of(value: Any, kind: Any) -> bool:
    origin = typing.get_origin(kind)
    if origin is Literal:
        return any(value == option and type(value) is type(option) for option in kind.__args__)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_is_of(value, option) for option in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    return True


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return "one of " + ", ".join(repr(a) for a in kind.__args__)
    args = typing.get_args(kind)
    if args:
        return " or ".join(_type_name(a) for a in args)
    return "None" if kind is type(None) else kind.__name__


def _check_output_dir(output_dir: str) -> str | None:
    """Why `output_dir` cannot hold a run, or None."""
    if not output_dir:
        return "run.output_dir is empty: name a directory."
    path = Path(output_dir).expanduser()
    probe = path
    while not probe.exists():
        if probe.is_symlink():
            return f"run.output_dir={output_dir!r}: {probe} is a broken symbolic link."
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"run.output_dir={output_dir!r}: {probe} is a file, not a directory."
    try:  # a real write: permissions, read-only mounts and full disks all show here
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as error:
        return (
            f"run.output_dir={output_dir!r}: cannot write in {probe} ({error.strerror}); choose "
            "another --run.output-dir."
        )
    return None


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
    dist: DistConfig = field(default_factory=DistConfig)
    """Multi-process training: data parallel (the default) or sharded."""

    @property
    def batch_size(self) -> int:
        """Transitions per rollout."""
        return self.ppo.num_steps * self.env.num_envs

    @property
    def num_updates(self) -> int:
        """Rollout + update iterations needed to reach total_frames (the last may overshoot)."""
        return max(1, -(-self.ppo.total_frames // self.batch_size))

    def learning_rate_at(self, update: int) -> float:
        """The learning rate of update number `update` (0-based): ppo.learning_rate, decayed
        linearly to 0 over num_updates with ppo.anneal_lr."""
        if not self.ppo.anneal_lr:
            return self.ppo.learning_rate
        return self.ppo.learning_rate * (1.0 - update / self.num_updates)

    def validate(self, *, check_paths: bool = True, check_device: bool = True) -> None:
        """Reject invalid values and combinations with a message that says how to fix them.

        Every number must be finite and in range (a NaN passes no comparison, so it is refused
        here rather than poisoning the first update). Also checked, before any env or model is
        built: the env ID is a registered BabyAI-Text ID, (with `check_device`) the policy's
        device exists on this machine, and (with `check_paths`) the output directory can be
        written. A saved config read for evaluation is checked without the last two: it was
        written on the machine and in the directory of its run.
        """
        errors = [
            error for name in _OWN_SECTIONS for error in _type_errors(name, getattr(self, name))
        ]
        # PolicyConfig checks its own fields (types, finite numbers, ranges) when it is built;
        # again here only if one was changed since (tyro, the CLI and callers set fields after
        # construction), so an unchanged policy is validated once
        try:
            self.policy.validate_if_changed()
        except ValueError as error:
            errors.append(str(error))
        if errors:  # the range checks below assume the types
            raise ValueError("Invalid training config:\n  - " + "\n  - ".join(errors))
        p = self.ppo
        for name in _OWN_SECTIONS:
            section = getattr(self, name)
            for f in dataclasses.fields(section):
                value = getattr(section, f.name)
                if isinstance(value, float) and not math.isfinite(value):
                    errors.append(f"{name}.{f.name}={value}: must be a finite number.")
        try:
            check_env_id(self.env.env_id)
        except ValueError as error:
            errors.append(str(error))
        try:
            from llm_policy.loading import check_device as device_exists

            if check_device:
                device_exists(self.policy.device, "policy.device")
        except ValueError as error:
            errors.append(str(error))
        if check_paths:
            problem = _check_output_dir(self.run.output_dir)
            if problem:
                errors.append(problem)
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
        if p.reward_scale <= 0:
            errors.append(
                f"ppo.reward_scale={p.reward_scale}: must be positive (rewards are multiplied by it)."
            )
        if p.vf_coef < 0:
            errors.append(f"ppo.vf_coef={p.vf_coef}: use 0 or more.")
        if p.ent_coef < 0 and not p.allow_negative_ent_coef:
            errors.append(
                f"ppo.ent_coef={p.ent_coef}: a negative coefficient penalises entropy; use 0 or "
                "more, or pass --ppo.allow-negative-ent-coef if you mean it."
            )
        if p.adam_eps <= 0:
            errors.append(f"ppo.adam_eps={p.adam_eps}: must be positive (Adam divides by it).")
        if p.weight_decay < 0:
            errors.append(f"ppo.weight_decay={p.weight_decay}: use 0 or more.")
        if p.max_grad_norm <= 0:
            errors.append(f"ppo.max_grad_norm={p.max_grad_norm}: must be positive.")
        if p.update_epochs < 1:
            errors.append(f"ppo.update_epochs={p.update_epochs}: use at least 1.")
        if p.target_kl is not None and p.target_kl <= 0:
            errors.append(f"ppo.target_kl={p.target_kl}: use a positive value, or None to disable.")
        if p.weight_decay and p.optimizer != "adamw":
            errors.append(f"ppo.weight_decay={p.weight_decay} needs ppo.optimizer=adamw.")
        extra = self.env.extra_actions
        phrases = babyai_text.EXTRA_ACTION_PHRASES
        if not 0 <= extra <= len(phrases):
            errors.append(
                f"env.extra_actions={extra}: --env.extra-actions takes 0 to "
                f"{len(phrases)} (the useless phrases, in order: {', '.join(phrases)})."
            )
        elif self.policy.head == "action_head" and self.policy.num_actions != self.env.num_actions:
            errors.append(
                f"policy.num_actions={self.policy.num_actions}: the env offers "
                f"{self.env.num_actions} actions ({BABYAI_ACTIONS} + env.extra_actions={extra}); "
                f"set policy.num_actions={self.env.num_actions} for the action head (the "
                "command line does so unless --policy.num-actions is given)."
            )
        if self.dist.shard and self.policy.dtype == "float16":
            errors.append(
                "dist.shard with policy.dtype=float16: fp16's gradient scaler does not run on "
                "sharded gradients here; use --policy.dtype bfloat16 (or float32)."
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
        r = self.run
        if r.checkpoint_every < 0:
            errors.append(f"run.checkpoint_every={r.checkpoint_every}: use 0 or more.")
        if r.keep_last is not None and r.keep_last < 1:
            errors.append(
                f"run.keep_last={r.keep_last}: keep at least 1 checkpoint, or None to keep all."
            )
        if r.max_minutes is not None and r.max_minutes <= 0:
            errors.append(f"run.max_minutes={r.max_minutes}: use a positive number, or None.")
        if r.init_from is not None and not r.init_from.strip():
            errors.append(
                "run.init_from is empty: pass --run.init-from PATH (a policy, run or checkpoint "
                "directory), or leave it out to start from a fresh policy."
            )
        if r.torch_threads is not None and r.torch_threads < 1:
            errors.append(f"run.torch_threads={r.torch_threads}: use at least 1, or None.")
        if not 0 <= r.seed <= 2**32 - 1 - max(self.env.num_envs, 0):
            errors.append(
                f"run.seed={r.seed}: use 0 to 2**32 - 1 - num_envs (numpy's seed range; "
                "env i is seeded with seed + i)."
            )
        if errors:
            raise ValueError("Invalid training config:\n  - " + "\n  - ".join(errors))
        self._validated = (_snapshot(self), check_paths, check_device)

    def validate_if_changed(self, *, check_paths: bool = True, check_device: bool = True) -> None:
        """`validate()` unless the last `validate()` accepted every field's present value (and
        type) with at least these checks. The command line validates before it builds anything,
        and the trainer, which is public API, validates what it is given: an unchanged config is
        checked once."""
        snapshot, paths_checked, device_checked = getattr(self, "_validated", (None, False, False))
        if (
            snapshot != _snapshot(self)
            or (check_paths and not paths_checked)
            or (check_device and not device_checked)
        ):
            self.validate(check_paths=check_paths, check_device=check_device)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, Any]]) -> TrainConfig:
        if not isinstance(data, dict):
            raise ValueError(f"a config is a JSON object of sections, got {type(data).__name__}")
        unknown_sections = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown_sections:
            raise ValueError(
                f"config has unknown sections {sorted(map(str, unknown_sections))}: it was "
                "written by another version of ppo-grounding, or is not a TrainConfig."
            )

        def build(kind: type[_Section], values: dict[str, Any]) -> _Section:
            if not isinstance(values, dict):
                raise ValueError(
                    f"config section for {kind.__name__} must be an object, got "
                    f"{type(values).__name__}"
                )
            names = {f.name for f in dataclasses.fields(kind)}
            unknown = set(values) - names
            if unknown:
                raise ValueError(
                    f"config has unknown {kind.__name__} fields {sorted(unknown)}: it was written "
                    "by another version of ppo-grounding; remove them or use that version."
                )
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
            try:
                return kind(**values)
            except TypeError as error:  # a value no check in the constructor expected
                raise ValueError(f"invalid {kind.__name__} values: {error}") from error

        return cls(
            env=build(EnvConfig, data.get("env", {})),
            policy=build(PolicyConfig, data.get("policy", {})),
            ppo=build(PPOConfig, data.get("ppo", {})),
            warm_start=build(WarmStartConfig, data.get("warm_start", {})),
            run=build(RunConfig, data.get("run", {})),
            dist=build(DistConfig, data.get("dist", {})),
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
