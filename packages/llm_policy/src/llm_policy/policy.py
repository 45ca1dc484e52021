"""`PolicyConfig` and `LLMPolicy`: a language model as an actor-critic over text actions.

Data path: prompts + candidate actions -> `ActionScorer` (log P(action | prompt)) -> softmax over
the candidates = the policy; the prompt's hidden state -> value head = the critic.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import shutil
import typing
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from . import precision
from .atomic import atomic_directory
from .batching import candidate_lists, check_candidate_list, check_prompts
from .distinct import OutputMemo, distinct_rows, has_active_dropout, row_keys
from .loading import (
    check_device,
    check_model_name,
    default_lora_targets,
    load_model_and_tokenizer,
    model_fingerprint,
    parse_device,
)
from .manifest import MANIFEST_NAME, verify_manifest, write_manifest
from .offline import OFFLINE_MODELS, offline_model_path
from .precision import (
    all_finite,
    check_precision,
    check_trainable_fp32,
    storage_dtype,
)
from .scorer import ActionScorer, ScoreOutput
from .value_head import ActionHead, ValueHead

__all__ = ["CONFIG_NAME", "LLMPolicy", "PolicyConfig", "PolicyOutput"]

CONFIG_NAME = "llm_policy_config.json"
HEADS_NAME = "heads.safetensors"
ADAPTER_DIR = "adapter"
MODEL_DIR = "model"
BASE_DIR = "base"
_FORMAT_VERSION = 1

# What each PolicyConfig field is, declared next to it (`_field(default, KIND)`), so that the
# lists below, checkpoint loading and --run.init-from all follow from one place:
WEIGHTS = "weights"
"""Defines the saved policy (its weights, their layout, how actions are tokenised, the seed of
its heads): a checkpoint loads with its saved value, and a run started from it
(--run.init-from) must name the same."""
LORA = "lora"
"""The same, for a LoRA policy's adapters (compared only when one side fine-tunes with LoRA)."""
RUN_TIME = "run_time"
"""How the policy runs, not what it is: `LLMPolicy.from_pretrained(**overrides)` may change it."""
FIELD_KINDS = (WEIGHTS, LORA, RUN_TIME)


def _field(default: Any, kind: str, *, overridable: bool | None = None) -> Any:
    """A PolicyConfig field of `kind`; run-time fields are overridable when loading unless
    `overridable` says otherwise."""
    if kind not in FIELD_KINDS:
        raise ValueError(f"field kind {kind!r} is not one of {FIELD_KINDS}")
    overridable = kind == RUN_TIME if overridable is None else overridable
    return dataclasses.field(default=default, metadata={"kind": kind, "overridable": overridable})


@dataclass
class PolicyConfig:
    """Everything that defines an `LLMPolicy`. Saved as JSON inside every checkpoint.

    Every field declares its kind (WEIGHTS, LORA or RUN_TIME; `field_names` lists them); fields
    with a fixed set of values are `Literal`s (checked here, listed by `--help`)."""

    # a LoRA checkpoint may name where to find the same base model (its fingerprint is checked
    # on load); a full fine-tuning checkpoint carries its own (from_pretrained refuses it)
    model: str = _field("offline-t5", WEIGHTS, overridable=True)
    """Hugging Face id (e.g. "google/flan-t5-small"), local model directory or offline name."""
    normalization: Literal["sum", "token", "word"] = _field("sum", RUN_TIME)
    """Action score: "sum" (log P(action)), "token" (mean per token) or "word" (per word)."""
    head: Literal["score", "action_head"] = _field("score", WEIGHTS)
    """"score": GLAM, softmax over the candidates' scores; "action_head": NPAE, an MLP to
    num_actions logits."""
    num_actions: int = _field(6, WEIGHTS)
    """Size of the action head's output (head="action_head" only)."""
    critic: Literal["value_head", "frozen_base"] = _field("value_head", WEIGHTS)
    """"value_head": MLP on the policy model's prompt state; "frozen_base": the same head on the
    adapter-disabled base model (LoRA only; no second copy of the model)."""
    finetune: Literal["lora", "full"] = _field("lora", WEIGHTS)
    """"lora": only LoRA adapters and heads train; "full": every model weight trains too."""
    lora_r: int = _field(16, LORA)
    """LoRA rank."""
    lora_alpha: int = _field(32, LORA)
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = _field(0.0, LORA)
    """Dropout on the LoRA input; 0 keeps PPO's ratios exact."""
    lora_target_modules: tuple[str, ...] | None = _field(None, LORA)
    """Module names that get adapters; None = per-architecture default (q/v projections)."""
    value_head_hidden: int = _field(1024, WEIGHTS)
    """Width of the value (and action) head's two hidden layers."""
    max_prompt_tokens: int | None = _field(None, RUN_TIME)
    """Truncate longer prompts from the left (with a warning); None = the model's limit."""
    max_batch_prompts: int | None = _field(256, RUN_TIME)
    """Prompts scored in one forward at most; more are scored in chunks, so scoring memory is
    bounded by this, not by the number of envs. None: no bound."""
    device: str = _field("cpu", RUN_TIME)
    """Torch device of the model and heads, e.g. "cuda" or "cuda:1"."""
    dtype: Literal["float32", "bfloat16", "float16"] = _field("float32", RUN_TIME)
    """Forward precision: "float32", or "bfloat16" / "float16" mixed precision (autocast; weights
    that train, their gradients and optimiser state stay fp32; a frozen LoRA base is stored in
    16 bits; "float16" needs a gradient scaler, which PPOTrainer adds). See llm_policy.precision."""
    gradient_checkpointing: bool = _field(False, RUN_TIME)
    """Recompute activations in backward to save memory (scoring then avoids the KV cache)."""
    seed: int = _field(0, WEIGHTS)
    """Seed of the heads' and LoRA adapters' initialisation."""
    scoring: Literal["auto", "cache", "packed", "recompute"] = _field("auto", RUN_TIME)
    """Scoring method: "auto", "cache", "packed" (decoder-only) or "recompute" (encoder-decoder)."""
    disable_dropout: bool = _field(True, RUN_TIME)
    """Set every dropout probability of the model config to 0 (PPO needs deterministic forwards)."""
    attn_implementation: str | None = _field(None, RUN_TIME)
    """Passed to transformers ("sdpa", "eager", ...); None = transformers' default."""
    action_prefix: str | None = _field(None, WEIGHTS)
    """Text put before each action when tokenizing it; None: " " (decoder-only), "" (seq2seq)."""
    verify_scoring: bool = _field(True, RUN_TIME)
    """At construction, check the fast scorer against the per-pair forward on a tiny input."""
    trust_remote_code: bool = _field(False, RUN_TIME)
    """Let transformers run Python code that ships with the model (its `auto_map`). Only for
    models whose code you have read or trust; not saved in checkpoints (pass it to
    `LLMPolicy.from_pretrained` when loading one that needs it)."""

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def field_names(cls, kind: str) -> tuple[str, ...]:
        """The fields of `kind` (WEIGHTS, LORA or RUN_TIME), in declaration order."""
        if kind not in FIELD_KINDS:
            raise ValueError(f"field kind {kind!r} is not one of {FIELD_KINDS}")
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("kind") == kind)

    def validate(self) -> None:
        """Check every field (type, then value); ValueError names the field. Run at construction;
        call it again after changing fields (it also normalises `device` and
        `lora_target_modules`)."""
        _check_field_types(self)
        if not self.model:
            raise ValueError(
                "PolicyConfig.model must be a Hugging Face id, a local path or an offline name"
            )
        check_model_name(self.model, "PolicyConfig.model")
        # syntax only: a config written on a GPU machine still parses on a laptop; whether the
        # device exists is checked when a policy is built (LLMPolicy), before any model loads
        self.device = parse_device(self.device, "PolicyConfig.device")
        if self.critic == "frozen_base" and self.finetune != "lora":
            raise ValueError(
                "critic='frozen_base' needs finetune='lora': the frozen base is the model with its "
                "adapters switched off (full fine-tuning would need a second copy of the model)"
            )
        # the types are checked above: only the ranges are left
        for name in ("num_actions", "lora_r", "value_head_hidden"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"PolicyConfig.{name} must be a positive int, got {value!r}")
        if not self.lora_alpha > 0:
            raise ValueError(f"PolicyConfig.lora_alpha must be positive, got {self.lora_alpha!r}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(
                f"PolicyConfig.lora_dropout must be in [0, 1), got {self.lora_dropout!r}"
            )
        for name in ("max_batch_prompts", "max_prompt_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(
                    f"PolicyConfig.{name} must be None or a positive int, got {value!r}"
                )
        if self.lora_target_modules is not None:
            if isinstance(self.lora_target_modules, str):
                self.lora_target_modules = (self.lora_target_modules,)
            self.lora_target_modules = tuple(self.lora_target_modules)
            if not self.lora_target_modules or not all(
                isinstance(m, str) and m for m in self.lora_target_modules
            ):
                raise ValueError(
                    "PolicyConfig.lora_target_modules must be None or a non-empty list of names"
                )
        self._validated = _snapshot(self)

    def validate_if_changed(self) -> None:
        """`validate()` unless every field still holds the value (and type) the last `validate()`
        accepted. For code that receives a config someone may have changed since it was built
        (TrainConfig.validate, LLMPolicy): a config is then checked once, not once per holder."""
        if getattr(self, "_validated", None) != _snapshot(self):
            self.validate()

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (what a checkpoint's config file holds)."""
        d = dataclasses.asdict(self)
        if d["lora_target_modules"] is not None:
            d["lora_target_modules"] = list(d["lora_target_modules"])
        return d


# Fields from_pretrained may change: they do not alter the checkpoint's structure or weights.
_OVERRIDABLE = frozenset(
    f.name for f in dataclasses.fields(PolicyConfig) if f.metadata.get("overridable")
)


# fields with their own, more specific check: a device may be a torch.device, target modules
# any sequence of names
_OWN_TYPE_CHECK = {"device", "lora_target_modules"}


_KIND_NAMES = {
    str: "a str",
    int: "an int",
    float: "a finite number",
    bool: "True or False",
    type(None): "None",
}


def _check_field_types(config: PolicyConfig) -> None:
    """Every field holds a value of its declared type (str, int, float, bool, or None where
    declared); ints are no bools, floats are finite (an int passes for a float). A `Literal`
    field holds a value of its options' type, and one of them."""
    hints = typing.get_type_hints(PolicyConfig)
    for f in dataclasses.fields(config):
        if f.name in _OWN_TYPE_CHECK:
            continue
        value = getattr(config, f.name)
        # a Literal field (of strs): a value of another type gets the type's message ("must be
        # a str"), one of that type but no option the list of options
        hint = hints[f.name]
        options = typing.get_args(hint) if typing.get_origin(hint) is Literal else ()
        kinds = (type(options[0]),) if options else typing.get_args(hint) or (hint,)
        if value is None and type(None) in kinds:
            continue
        if not any(_is_of(value, kind) for kind in kinds):
            expected = " or ".join(_KIND_NAMES[k] for k in kinds)
            raise ValueError(
                f"PolicyConfig.{f.name} must be {expected}, got {value!r} "
                f"({type(value).__name__}); default: {f.default!r}"
            )
        if options and value not in options:
            raise ValueError(f"PolicyConfig.{f.name}={value!r} is not one of {options}")


def _snapshot(config: PolicyConfig) -> tuple[tuple[type, Any], ...]:
    """Every field's type and value: what `validate_if_changed` compares (with the type, so that
    a seed changed from 0 to False counts as a change)."""
    return tuple(
        (type(v), v) for v in (getattr(config, f.name) for f in dataclasses.fields(config))
    )


def _is_of(value: Any, kind: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
    if kind is str:
        return isinstance(value, str)
    return False


@dataclass
class PolicyOutput:
    """What `LLMPolicy.forward` returns."""

    logits: torch.Tensor
    """(B, A_max) fp32 action logits (scores); -inf where a prompt has fewer candidates."""
    values: torch.Tensor
    """(B,) fp32 state values."""

    def distribution(self) -> torch.distributions.Categorical:
        """Categorical over each prompt's candidates (softmax of `logits`)."""
        return torch.distributions.Categorical(logits=self.logits.float())


def _require_candidates(
    candidates: Sequence[Sequence[str]] | Sequence[str] | None,
) -> Sequence[Sequence[str]] | Sequence[str]:
    """`candidates`, which head="score" cannot do without."""
    if candidates is None:
        raise ValueError("head='score' needs candidates: one list of action strings per prompt")
    return candidates


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed initialisations without touching the caller's RNG streams."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class LLMPolicy(nn.Module):
    """Actor-critic over text actions on top of any Hugging Face causal or seq2seq LM.

    Args:
        config: a `PolicyConfig`.
        model_source: load the model weights from here instead of `config.model` (used by
            `from_pretrained` for fully fine-tuned checkpoints).
    """

    def __init__(self, config: PolicyConfig, *, model_source: str | None = None) -> None:
        super().__init__()
        if not isinstance(config, PolicyConfig):
            raise TypeError(f"config must be a PolicyConfig, got {type(config).__name__}")
        # a private copy, checked again only if the caller changed a field since it was
        # validated (a replace() would run __post_init__'s validate a second time)
        self.config = copy.copy(config)
        self.config.validate_if_changed()
        cfg = self.config
        check_device(cfg.device, "PolicyConfig.device")  # before any model is built
        check_precision(cfg.dtype, cfg.device, "PolicyConfig.dtype")
        lm, tokenizer = load_model_and_tokenizer(
            model_source or cfg.model,
            dtype=storage_dtype(cfg.dtype, trains=cfg.finetune == "full"),
            device=cfg.device,
            disable_dropout=cfg.disable_dropout,
            attn_implementation=cfg.attn_implementation,
            trust_remote_code=cfg.trust_remote_code,
        )
        self.tokenizer = tokenizer
        self.base_fingerprint = model_fingerprint(lm) if cfg.finetune == "lora" else None
        if cfg.gradient_checkpointing:
            enable = (
                getattr(lm, "activation_checkpointing_enable", None)
                or lm.gradient_checkpointing_enable
            )
            enable({"use_reentrant": False})
        if cfg.finetune == "lora":
            from peft import LoraConfig, get_peft_model

            model_type = lm.config.model_type
            targets = cfg.lora_target_modules or default_lora_targets(model_type)
            lora = LoraConfig(
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=cfg.lora_dropout,
                target_modules=list(targets),
                bias="none",
                fan_in_fan_out=model_type == "gpt2",  # GPT-2 stores its projections as Conv1D
            )
            with _seeded(cfg.seed), warnings.catch_warnings():
                # peft probes a deprecated transformers property; not actionable for our users
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
                self.model = get_peft_model(lm, lora)
            for param in self.model.parameters():
                if param.requires_grad:  # the adapters: fp32 over a 16-bit frozen base
                    param.data = param.data.float()
        else:
            lm.requires_grad_(True)
            self.model = lm
        self.scorer = ActionScorer(
            self._lm,
            tokenizer,
            normalization=cfg.normalization,
            method=cfg.scoring,
            max_prompt_tokens=cfg.max_prompt_tokens,
            action_prefix=cfg.action_prefix,
            max_batch_prompts=cfg.max_batch_prompts,
        )
        hidden = self.scorer.hidden_size
        with _seeded(cfg.seed + 1):
            self.value_head = ValueHead(hidden, cfg.value_head_hidden)
            self.action_head = (
                ActionHead(hidden, cfg.num_actions, cfg.value_head_hidden)
                if cfg.head == "action_head"
                else None
            )
        self.value_head.to(cfg.device)
        if self.action_head is not None:
            self.action_head.to(cfg.device)
        check_trainable_fp32(self.named_parameters())
        self.merge_duplicates = True
        """`forward` computes each distinct (prompt, candidates) of a batch once and gives every
        repeat its output (not under active dropout, where each row's forward is random)."""
        self._memo: OutputMemo | None = None
        self._lockstep: Callable[[bool], bool] | None = None
        if cfg.verify_scoring and cfg.head == "score" and cfg.dtype == "float32":
            self.scorer.verify()

    # ------------------------------------------------------------------ accessors

    @property
    def _lm(self):
        """The transformers model (LoRA layers injected in place when finetune="lora")."""
        get_base = getattr(self.model, "get_base_model", None)
        return get_base() if callable(get_base) else self.model

    @property
    def device(self) -> torch.device:
        return self.scorer.device

    def autocast(self):
        """The forward's precision context (torch.autocast for 16-bit dtypes; llm_policy.precision).
        `forward`, `value` and `score` enter it themselves."""
        return precision.autocast(self.config.dtype, self.device)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """LoRA adapters + heads (finetune="lora"), or everything (finetune="full")."""
        return [p for p in self.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ forward

    def _check_action_head_candidates(
        self, prompts: Sequence[str], candidates: Sequence[Sequence[str]] | Sequence[str] | None
    ) -> None:
        if candidates is None:
            return
        if isinstance(candidates, str) or not isinstance(candidates, (list, tuple)):
            raise TypeError("candidates must be a list of action lists (or one list of str)")
        shared = len(candidates) > 0 and all(isinstance(c, str) for c in candidates)
        lists = [candidates] * len(prompts) if shared else candidates
        if len(lists) != len(prompts):
            raise ValueError(f"got {len(lists)} candidate lists for {len(prompts)} prompts")
        for i, candidate_list in enumerate(lists):
            if len(candidate_list) != self.config.num_actions:
                raise ValueError(
                    f"candidates[{i}] has {len(candidate_list)} actions but the action head outputs "
                    f"num_actions={self.config.num_actions} logits"
                )

    def _critic(self, prompts: Sequence[str], features: torch.Tensor | None) -> torch.Tensor:
        if self.config.critic == "value_head":
            return self.value_head(features)
        # frozen_base: the base model without adapters; it has no trainable weights, so no graph.
        with torch.no_grad(), self.model.disable_adapter(), self.autocast():
            base_features = self.scorer.prompt_features(prompts)
        return self.value_head(base_features)

    def forward(
        self,
        prompts: Sequence[str],
        candidates: Sequence[Sequence[str]] | Sequence[str] | None = None,
    ) -> PolicyOutput:
        """Action logits (B, A_max) and values (B,) for a batch of prompts. Differentiable.

        `candidates`: one list of action strings per prompt (lists may differ in length), or a
        single list of str shared by all prompts. With head="action_head" they are optional and,
        if given, only checked to number `num_actions` each (logit i is action i).

        A (prompt, candidates) that the batch repeats is computed once and its output given to
        every repeat (`merge_duplicates`); the gradient of the repeats flows back to that one
        computation, summed. Inside `remember_outputs()` outputs are also reused across calls.
        """
        if self.config.head == "action_head":
            self._check_action_head_candidates(prompts, candidates)
        if not self.merge_duplicates or has_active_dropout(self):
            return self._forward_rows(prompts, candidates)
        # Checked before rows are merged, so that an error names the caller's row.
        check_prompts(prompts)
        lists = None  # an action head's logits depend on the prompt alone
        if self.config.head == "score":
            lists = candidate_lists(_require_candidates(candidates), len(prompts))
            checked: set[int] = set()
            for i, listed in enumerate(lists):
                if id(listed) not in checked:
                    check_candidate_list(i, listed)
                    checked.add(id(listed))
        keys = row_keys(prompts, lists)

        def rows(indices: list[int]) -> PolicyOutput:
            picked = None if lists is None else [lists[i] for i in indices]
            return self._forward_rows([prompts[i] for i in indices], picked)

        if self._memo is not None and not torch.is_grad_enabled():
            missing = self._memo.missing(keys)
            runs = bool(missing) if self._lockstep is None else self._lockstep(bool(missing))
            if runs:  # with nothing missing here, a stand-in row keeps lockstep
                out = rows(missing or [0])
                if missing:
                    self._memo.store([keys[i] for i in missing], out.logits, out.values)
            return PolicyOutput(*self._memo.gather(keys))
        first, inverse = distinct_rows(keys)
        if len(first) == len(keys):
            return self._forward_rows(prompts, candidates)
        out = rows(first)
        inverse = inverse.to(out.logits.device)
        return PolicyOutput(logits=out.logits[inverse], values=out.values[inverse])

    @contextmanager
    def remember_outputs(self, lockstep: Callable[[bool], bool] | None = None) -> Iterator[None]:
        """Within this block, `forward` under `torch.no_grad()` computes each distinct
        (prompt, candidates) once and reuses its logits and value in later calls: for a rollout,
        where the weights do not change. Leaving the block forgets them; changing the weights
        inside it would return stale outputs.

        `lockstep`, for a model sharded across processes (whose every forward is collective):
        each `forward` calls `lockstep(this process has prompts to compute)`, which must return
        whether any process has; then every process runs the model, one with nothing to compute
        on a stand-in row whose output it drops."""
        if self._memo is not None:
            raise RuntimeError("remember_outputs() is already active on this policy")
        self._memo, self._lockstep = OutputMemo(), lockstep
        try:
            yield
        finally:
            self._memo, self._lockstep = None, None

    def _forward_rows(
        self,
        prompts: Sequence[str],
        candidates: Sequence[Sequence[str]] | Sequence[str] | None,
    ) -> PolicyOutput:
        """`forward` on every row as given."""
        if self.config.head == "score":
            with self.autocast():
                scored = self.scorer.score(prompts, _require_candidates(candidates))
            logits, features = scored.scores, scored.features
        else:
            with self.autocast():
                features = self.scorer.prompt_features(prompts)
            assert self.action_head is not None  # built in __init__ when head == "action_head"
            logits = self.action_head(features)
        return PolicyOutput(logits=logits, values=self._critic(prompts, features))

    def value(self, prompts: Sequence[str]) -> torch.Tensor:
        """(B,) fp32 values alone (e.g. to bootstrap the last state of a rollout)."""
        if self.config.critic == "frozen_base":
            return self._critic(prompts, None)
        with self.autocast():
            features = self.scorer.prompt_features(prompts)
        return self.value_head(features)

    def score(
        self,
        prompts: Sequence[str],
        candidates: Sequence[Sequence[str]] | Sequence[str],
        *,
        normalization: str | None = None,
    ) -> ScoreOutput:
        """The scorer's full output (scores, per-token log-probs, features) for inspection."""
        with self.autocast():
            return self.scorer.score(prompts, candidates, normalization=normalization)

    # ------------------------------------------------------------------ checkpoints

    def _heads_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        heads = {k: v for k, v in state.items() if k.startswith(("value_head.", "action_head."))}
        return {k: v.detach().to("cpu").contiguous() for k, v in heads.items()}

    def _check_finite(self, path: str | os.PathLike, state: dict[str, torch.Tensor]) -> None:
        """Refuse to save NaN/inf weights: name the first tensor that holds any."""
        for name, param in self.named_parameters():
            # a frozen base never changes (nor is it saved with a LoRA adapter)
            if not param.is_floating_point() or not param.requires_grad:
                continue
            values = state[name].detach()
            if all_finite(values):
                continue
            nan = int(torch.isnan(values).sum())
            inf = int(torch.isinf(values).sum())
            kept = (
                f"the existing {Path(path)} is left as it was"
                if Path(path).exists()
                else "nothing was written"
            )
            raise ValueError(
                f"refusing to save the policy to {path}: parameter {name!r} holds non-finite "
                f"values ({nan} NaN, {inf} inf of {values.numel()}); {kept}. Training has "
                "diverged: go back to the last good checkpoint (e.g. with a lower learning rate)."
            )

    def save_pretrained(
        self, path: str | os.PathLike, *, state_dict: dict[str, torch.Tensor] | None = None
    ) -> Path:
        """Write a checkpoint directory (atomically):

        - llm_policy_config.json: the PolicyConfig and the base model's fingerprint
        - heads.safetensors: value head (and action head)
        - adapter/: the LoRA adapter (peft format, safetensors), plus base/: a copy of the base
          model when it is an offline model; or
          model/: the full model and tokenizer (finetune="full")
        - manifest.json: size and sha256 of every other file, checked by `from_pretrained`

        A policy whose parameters or heads hold NaN/inf is refused (ValueError naming the tensor)
        and nothing is written.

        `state_dict`: the weights to write instead of the module's own, under the names of
        `self.state_dict()`; for a policy whose parameters are sharded across processes (torch
        FSDP), whose full weights one process has gathered.
        """
        from safetensors.torch import save_file

        state = self.state_dict() if state_dict is None else state_dict
        self._check_finite(path, state)
        # the transformers (or peft) model's weights, named as its own state_dict names them
        model_state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
        lm = self._lm
        meta = {
            "format": "llm-policy",
            "format_version": _FORMAT_VERSION,
            # trust_remote_code is not saved: loading never takes it from the file (and older
            # llm-policy versions, which do not know the field, can still read the checkpoint)
            "config": {k: v for k, v in self.config.to_dict().items() if k != "trust_remote_code"},
            "base_model_fingerprint": self.base_fingerprint,
            "model_type": lm.config.model_type,
            "hidden_size": self.scorer.hidden_size,
        }
        with atomic_directory(path, marker=CONFIG_NAME) as tmp:
            save_file(self._heads_state(state), str(tmp / HEADS_NAME), metadata={"format": "pt"})
            if self.config.finetune == "lora":
                self.model.save_pretrained(
                    str(tmp / ADAPTER_DIR), safe_serialization=True, state_dict=model_state
                )
                if self.config.model in OFFLINE_MODELS:
                    # The offline base is rebuilt from a seed; a different torch could draw other
                    # numbers, so a copy (a few MB) keeps the checkpoint loadable everywhere.
                    shutil.copytree(offline_model_path(self.config.model), tmp / BASE_DIR)
            else:
                lm.save_pretrained(
                    str(tmp / MODEL_DIR), safe_serialization=True, state_dict=model_state
                )
                self.tokenizer.save_pretrained(str(tmp / MODEL_DIR))
            # a directory with this file is complete
            (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
            write_manifest(tmp)  # last: it lists every other file
        return Path(path)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **overrides: Any) -> LLMPolicy:
        """Load a checkpoint written by `save_pretrained`; the result scores and values exactly as
        the saved policy did. `overrides` may change run-time fields (device, dtype,
        gradient_checkpointing, max_prompt_tokens, normalization, scoring, trust_remote_code, ...)
        and, for LoRA checkpoints, `model` (where to find the same base model).

        Every file is first checked against the directory's manifest.json (CheckpointCorruptError
        names each missing, truncated or modified one); a directory without one loads with a
        ManifestWarning. `trust_remote_code` is False unless passed here: the saved value is
        ignored, so a checkpoint from elsewhere cannot switch it on."""
        path = Path(path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"no checkpoint directory at {path}")
        config_file = path / CONFIG_NAME
        if not config_file.is_file() and not (path / MANIFEST_NAME).exists():
            raise FileNotFoundError(
                f"{path} has no {CONFIG_NAME}: not an llm-policy checkpoint (save_pretrained "
                f"writes {CONFIG_NAME}, {HEADS_NAME} and {ADAPTER_DIR}/ or {MODEL_DIR}/)"
            )
        # every file against the manifest, before transformers or peft read any of them
        verify_manifest(path)
        if not config_file.is_file():
            raise FileNotFoundError(f"{path} has no {CONFIG_NAME}: not an llm-policy checkpoint")
        from .small_files import read_small_json  # bounded; never a pipe, a device or a link

        try:
            meta = read_small_json(config_file, what=CONFIG_NAME)
        except ValueError as err:
            raise ValueError(f"{config_file} is not valid JSON: {err}") from err
        if meta.get("format") != "llm-policy" or meta.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{config_file}: unsupported checkpoint format {meta.get('format')!r} version "
                f"{meta.get('format_version')!r} (this llm-policy reads version {_FORMAT_VERSION})"
            )
        bad = sorted(set(overrides) - _OVERRIDABLE)
        if bad:
            raise ValueError(
                f"cannot override {bad} when loading: they define the checkpoint's structure; "
                f"overridable fields are {sorted(_OVERRIDABLE)}"
            )
        saved = dict(meta["config"])
        known = {f.name for f in dataclasses.fields(PolicyConfig)}
        unknown = sorted(set(saved) - known)
        if unknown:
            raise ValueError(
                f"{config_file} has config fields this llm-policy does not know: {unknown}"
            )
        # never from the file: a checkpoint from elsewhere must not switch on code execution
        saved.pop("trust_remote_code", None)
        config = PolicyConfig(**{**saved, **overrides})
        try:
            check_device(config.device, "device")
        except ValueError as err:
            raise ValueError(
                f"{err}; this checkpoint was saved for device={saved.get('device')!r}: pass "
                "device=<one of them> to LLMPolicy.from_pretrained"
            ) from None
        lora = config.finetune == "lora"
        if not lora and "model" in overrides:
            raise ValueError(
                "a full fine-tuning checkpoint carries its own model; do not override `model`"
            )

        required = [HEADS_NAME]
        if lora:
            required += [
                f"{ADAPTER_DIR}/adapter_config.json",
                f"{ADAPTER_DIR}/adapter_model.safetensors",
            ]
        else:
            required += [f"{MODEL_DIR}/config.json"]
        missing = [name for name in required if not (path / name).is_file()]
        if not lora and not any((path / MODEL_DIR).glob("*.safetensors")):
            missing.append(f"{MODEL_DIR}/*.safetensors")
        if missing:
            raise FileNotFoundError(f"checkpoint {path} is incomplete; missing: {missing}")

        source = None if lora else str(path / MODEL_DIR)
        if lora and "model" not in overrides and (path / BASE_DIR / "config.json").is_file():
            source = str(path / BASE_DIR)  # the offline base model, saved with the adapter
        policy = cls(config, model_source=source)
        if lora:
            expected = meta.get("base_model_fingerprint")
            if expected is not None and expected != policy.base_fingerprint:
                raise ValueError(
                    f"base model mismatch: the adapter in {path} was trained on a base model with "
                    f"fingerprint {expected}, but {config.model!r} loads as "
                    f"{policy.base_fingerprint}; "
                    "pass model=<the original base model> to from_pretrained"
                )
            policy._load_adapter(path / ADAPTER_DIR)
        policy._load_heads(path / HEADS_NAME)
        return policy

    def _load_adapter(self, adapter_dir: Path) -> None:
        from peft import get_peft_model_state_dict, set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(str(adapter_dir / "adapter_model.safetensors"), device=str(self.device))
        missing, unexpected, wrong = _state_mismatch(get_peft_model_state_dict(self.model), weights)
        if missing or unexpected or wrong:
            raise ValueError(
                f"adapter in {adapter_dir} does not match this policy's LoRA layout "
                f"(lora_r / lora_target_modules / base model): missing {missing[:5]}"
                f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                f"{'...' if len(unexpected) > 5 else ''}, wrong shapes {wrong[:5]}"
            )
        set_peft_model_state_dict(self.model, weights)

    def _load_heads(self, file: Path) -> None:
        from safetensors.torch import load_file

        weights = load_file(str(file), device=str(self.device))
        missing, unexpected, wrong = _state_mismatch(self._heads_state(self.state_dict()), weights)
        if missing or unexpected or wrong:
            raise ValueError(
                f"{file} does not match the policy's heads (head / num_actions / "
                "value_head_hidden): "
                f"missing {missing}, unexpected {unexpected}, wrong shapes {wrong}"
            )
        self.value_head.load_state_dict(
            {k[len("value_head.") :]: v for k, v in weights.items() if k.startswith("value_head.")}
        )
        if self.action_head is not None:
            self.action_head.load_state_dict(
                {
                    k[len("action_head.") :]: v
                    for k, v in weights.items()
                    if k.startswith("action_head.")
                }
            )


def _state_mismatch(
    expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]
) -> tuple[list[str], list[str], list[str]]:
    """Keys missing from `found`, keys it has in excess, and keys whose shapes differ."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(
        f"{k}: checkpoint {tuple(found[k].shape)} vs policy {tuple(expected[k].shape)}"
        for k in set(expected) & set(found)
        if found[k].shape != expected[k].shape
    )
    return missing, unexpected, wrong
