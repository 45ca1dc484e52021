"""Load any model by Hugging Face id, local path or offline name; per-architecture defaults.

One path for every model: resolve the name to something `from_pretrained` accepts, load the config,
switch dropout off (PPO ratios need deterministic forwards), load the weights from safetensors only
(never a pickle), and keep an untied output head untied.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import torch

from .offline import OFFLINE_MODELS, offline_model_path, quiet_progress_bars
from .tied_weights import protect_untied_output_head, quiet_tie_warning

__all__ = [
    "DTYPES",
    "default_lora_targets",
    "load_model_and_tokenizer",
    "model_fingerprint",
    "protect_untied_output_head",
    "resolve_model_source",
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# LoRA targets per model_type: the attention's query and value projections, as in the LoRA paper
# and GLAM's LoRA examples. Other types fall back to peft's table.
_LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "t5": ("q", "v"),
    "mt5": ("q", "v"),
    "umt5": ("q", "v"),
    "longt5": ("q", "v"),
    "gpt2": ("c_attn",),  # GPT-2 fuses q, k, v into one Conv1D
    "llama": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"),
    "qwen3": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"),
    "gemma": ("q_proj", "v_proj"),
    "gemma2": ("q_proj", "v_proj"),
    "phi3": ("qkv_proj",),
    "bart": ("q_proj", "v_proj"),
    "opt": ("q_proj", "v_proj"),
    "gpt_neox": ("query_key_value",),
}


def default_lora_targets(model_type: str) -> tuple[str, ...]:
    """LoRA target module names for a transformers `model_type`."""
    if model_type in _LORA_TARGETS:
        return _LORA_TARGETS[model_type]
    try:
        from peft.utils.constants import (
            TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as peft_map,
        )
    except ImportError:  # pragma: no cover - depends on the peft version
        peft_map = {}
    if model_type in peft_map:
        return tuple(peft_map[model_type])
    raise ValueError(
        f"no default LoRA target modules for model_type {model_type!r}; set "
        "PolicyConfig.lora_target_modules to the names of its attention projections "
        "(e.g. ('q_proj', 'v_proj'))"
    )


def resolve_model_source(name: str) -> str:
    """An OFFLINE_MODELS name becomes its (built on demand) cache directory; an existing local
    directory stays a path; anything else is taken as a Hugging Face Hub id."""
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"model must be a non-empty str (HF id, local path or offline name), got {name!r}"
        )
    if name in OFFLINE_MODELS:
        return str(offline_model_path(name))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} is a directory but has no config.json: not a Hugging Face model directory"
            )
        return str(path)
    # a Hub id is "name" or "org/name"; anything else that does not exist is a mistyped path
    looks_local = (
        name.startswith(("/", ".", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name
    )
    if looks_local or path.exists():
        raise FileNotFoundError(
            f"no model directory at {path}; pass a Hugging Face id (e.g. 'google/flan-t5-small'), "
            f"a local model directory, or one of {sorted(OFFLINE_MODELS)}"
        )
    return name


def _disable_dropout(config) -> None:
    for key, value in list(config.to_dict().items()):
        if ("dropout" in key or "pdrop" in key) and isinstance(value, float) and value > 0:
            try:
                setattr(config, key, 0.0)
            except (AttributeError, TypeError, ValueError):  # pragma: no cover - exotic configs
                pass


def load_model_and_tokenizer(
    name: str,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    disable_dropout: bool = True,
    attn_implementation: str | None = None,
):
    """Load (model, tokenizer) for `name` (offline name, local directory or HF id).

    Encoder-decoder configs load with AutoModelForSeq2SeqLM, others with AutoModelForCausalLM.
    Weights come from safetensors only; `trust_remote_code` is never set.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}")
    source = resolve_model_source(name)
    config = AutoConfig.from_pretrained(source)
    if disable_dropout:
        _disable_dropout(config)
    auto_cls = (
        AutoModelForSeq2SeqLM
        if getattr(config, "is_encoder_decoder", False)
        else AutoModelForCausalLM
    )
    kwargs = {"config": config, "dtype": DTYPES[dtype], "use_safetensors": True}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    offline = name in OFFLINE_MODELS or (Path(source) / "llm_policy_offline.json").is_file()
    quiet = quiet_progress_bars() if offline else contextlib.nullcontext()
    with quiet_tie_warning(), quiet:
        try:
            model = auto_cls.from_pretrained(source, **kwargs)
        except OSError as err:
            if "safetensors" in str(err).lower():
                raise OSError(
                    f"{name}: no safetensors weights found. llm-policy never loads pickled "
                    "(.bin/.pt) weights; convert the checkpoint to safetensors first."
                ) from err
            raise
    protect_untied_output_head(model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model.to(device)
    return model, tokenizer


def model_fingerprint(model, sample: int = 2048) -> str:
    """A cheap identity of a model's weights (names, shapes and the first `sample` values of each
    tensor, rounded to bfloat16 so that loading the same weights in another dtype matches)."""
    h = hashlib.sha256()
    for name, param in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(param.shape)).encode())
        head = param.detach().reshape(-1)[:sample].to("cpu", torch.bfloat16).to(torch.float32)
        h.update(head.numpy().tobytes())
    return h.hexdigest()[:24]
