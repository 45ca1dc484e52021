"""The paper's model sizes as architecture configs: facts about the models, no weights.

`data/architectures/*.json` hold the transformers configs of google/flan-t5-large (the paper's
780M model), Qwen/Qwen2.5-0.5B, meta-llama/Llama-3.2-1B and meta-llama/Llama-3.1-8B (the size
that needs sharding), as their model cards publish them.
From one of them `build_random_model` writes an ordinary model directory with randomly
initialised weights and a small tokenizer of the family's format (local_tokenizers.py), trained
here on BabyAI text: the real shapes, parameter counts and memory, without a download. Such a model
scores nothing meaningfully; it exists to run and measure the real command at real scale
(benchmarks/paper_scale.py) and to plan memory (`ppo-grounding plan`).

The embedding keeps the real vocabulary size (32,128 / 151,936 / 128,256 rows), which dominates the
two decoder-only models' parameter counts; the local tokenizer uses only its first ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_directory
from .tied_weights import protect_untied_output_head

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "architecture_config",
    "build_random_model",
    "find_architecture",
    "stored_config_dict",
]

BUILD_INFO = "llm_policy_architecture.json"


@dataclass(frozen=True)
class Architecture:
    """One stored architecture config and the tokenizer format of its family."""

    name: str
    """Short name, e.g. "flan-t5-large"; also the JSON file's stem."""
    hub_id: str
    """The Hugging Face id whose config.json this is."""
    tokenizer: str
    """local_tokenizers function that trains a tokenizer of the family's format."""
    note: str
    """What the local tokenizer shares with the real one, and where it differs."""


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "flan-t5-large",
            "google/flan-t5-large",
            "t5_unigram_tokenizer",
            "SentencePiece unigram with the word-start marker and </s> appended, as T5's",
        ),
        Architecture(
            "qwen2.5-0.5b",
            "Qwen/Qwen2.5-0.5B",
            "byte_level_bpe_tokenizer",
            "byte-level BPE with a leading-space marker and no BOS, as Qwen2's",
        ),
        Architecture(
            "llama-3.2-1b",
            "meta-llama/Llama-3.2-1B",
            "llama_bpe_tokenizer",
            "BPE with a BOS token and byte fallback; Llama 3's own is a byte-level BPE "
            "(tiktoken) with BOS, Llama 2's a SentencePiece BPE like this one",
        ),
        Architecture(
            "llama-3.1-8b",
            "meta-llama/Llama-3.1-8B",
            "llama_bpe_tokenizer",
            "as llama-3.2-1b's: the same tokenizer family, with an untied output layer",
        ),
    )
}


def find_architecture(name: str) -> Architecture | None:
    """The stored architecture for a short name or a Hugging Face id (case-insensitive)."""
    key = name.strip().lower()
    for arch in ARCHITECTURES.values():
        if key in (arch.name, arch.hub_id.lower()):
            return arch
    return None


def _require(name: str) -> Architecture:
    arch = find_architecture(name)
    if arch is None:
        known = ", ".join(f"{a.name} ({a.hub_id})" for a in ARCHITECTURES.values())
        raise ValueError(f"unknown architecture {name!r}; stored configs: {known}")
    return arch


def stored_config_dict(name: str) -> dict[str, Any]:
    """The stored config.json of an architecture, as published (transformers may rewrite some
    fields when it builds a config from it: T5's tie_word_embeddings)."""
    arch = _require(name)
    text = resources.files("llm_policy").joinpath(f"data/architectures/{arch.name}.json")
    return json.loads(text.read_text())


def architecture_config(name: str, overrides: dict[str, Any] | None = None) -> Any:
    """The transformers config (PretrainedConfig) of a stored architecture, with `overrides`
    applied to its fields before the config is built (so derived fields follow them)."""
    from transformers import AutoConfig

    raw = {**stored_config_dict(name), **(overrides or {})}
    if "torch_dtype" in raw:  # the published name; transformers 5 calls it dtype
        raw["dtype"] = raw.pop("torch_dtype")
    return AutoConfig.for_model(raw.pop("model_type"), **raw)


def _tokenizer_factory(arch: Architecture) -> Callable[..., Any]:
    from . import local_tokenizers

    return getattr(local_tokenizers, arch.tokenizer)


def build_random_model(
    name: str,
    directory: str | Path,
    *,
    seed: int = 0,
    tokenizer_vocab: int = 1000,
    max_tokens: int = 512,
    config_overrides: dict[str, Any] | None = None,
) -> Path:
    """Write a randomly initialised model of a stored architecture to `directory` (config.json,
    model.safetensors in the config's torch_dtype, a local tokenizer of `tokenizer_vocab` tokens
    at most), published atomically. Returns the directory. Needs a few GB of memory and disk:
    the weights of the real model. `config_overrides` changes config fields (e.g. fewer layers
    for a test that needs the family's code paths, not its size)."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    arch = _require(name)
    config = architecture_config(arch.name, config_overrides)
    tokenizer = _tokenizer_factory(arch)(vocab_size=tokenizer_vocab, model_max_length=max_tokens)
    # The local tokenizer's special tokens; the embedding keeps the real vocabulary size.
    for field in ("pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(config, field, getattr(tokenizer, field))
    if config.is_encoder_decoder:  # T5 starts decoding from the pad token
        config.decoder_start_token_id = tokenizer.pad_token_id
    dtype = getattr(torch, str(config.dtype or "float32").replace("torch.", ""))
    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = auto.from_config(config)
    if stored_config_dict(arch.name).get("tie_word_embeddings") is False:
        # Flan-T5's head is its own weight (32M parameters); transformers 5's T5Config ties it
        _untie_output_head(model, config)
    model.to(dtype)
    info = {
        "architecture": arch.name,
        "config_of": arch.hub_id,
        "weights": f"random (seed {seed}), not {arch.hub_id}'s",
        "tokenizer": f"{arch.tokenizer} ({len(tokenizer)} tokens, trained on BabyAI text)",
        "tokenizer_note": arch.note,
        "parameters": sum(p.numel() for p in model.parameters()),
        "config_overrides": config_overrides or {},
    }
    with atomic_directory(directory, marker=BUILD_INFO) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        (tmp / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return Path(directory)


def _untie_output_head(model: Any, config: Any) -> None:
    head = model.get_output_embeddings()
    if head.weight is not model.get_input_embeddings().weight:
        return
    std = getattr(config, "initializer_factor", 1.0) * config.d_model**-0.5
    with torch.no_grad():
        head.weight = torch.nn.Parameter(torch.randn_like(head.weight) * std)
    protect_untied_output_head(model)
