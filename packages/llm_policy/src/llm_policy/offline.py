"""Offline models: small randomly initialised models that need no download.

Each entry of `OFFLINE_MODELS` is built from a config that ships with the package and a word-level
tokenizer (Hugging Face `tokenizers`) over the BabyAI-Text vocabulary in `data/babyai_words.txt`.
The first use writes an ordinary Hugging Face model directory (config.json, model.safetensors,
tokenizer.json) under the cache root; from then on the model loads through the same
`AutoModel*.from_pretrained` path as any checkpoint. Builds are deterministic (fixed seed) and
published with `atomic.atomic_directory`, so a reader never sees a half-written model; processes
that build the same model at once each end with a complete one (whichever rename lands last
replaces an identical copy).

Cache root: `$LLM_POLICY_CACHE`, else `~/.cache/llm_policy`; a model lives in `<root>/<name>`.
Each build carries a manifest (`manifest.py`); a build whose files no longer match it (a truncated
or edited file, a deleted tokenizer) is rebuilt, as is one made before manifests existed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .atomic import atomic_directory
from .manifest import MANIFEST_NAME, CheckpointCorruptError, verify_manifest, write_manifest
from .small_files import read_small_json
from .tied_weights import protect_untied_output_head

__all__ = [
    "OFFLINE_MODELS",
    "SPECIAL_TOKENS",
    "OfflineModelSpec",
    "build_word_tokenizer",
    "cache_root",
    "offline_model_path",
    "vocabulary",
    "with_special_tokens",
]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
_BUILD_INFO = "llm_policy_offline.json"
# Bump when the build procedure changes in a way the spec hash does not capture.
_BUILDER_VERSION = 1
_PUBLISH_ATTEMPTS = 3


@dataclass(frozen=True)
class OfflineModelSpec:
    """How to build one offline model. `config` holds the transformers config fields (the vocab
    size and special token ids are filled in from the word list)."""

    name: str
    architecture: str  # "t5" (encoder-decoder) or "gpt2" (decoder-only)
    description: str
    config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def spec_hash(self) -> str:
        payload = json.dumps(
            {
                "builder": _BUILDER_VERSION,
                "arch": self.architecture,
                "config": self.config,
                "seed": self.seed,
                "vocab": vocabulary(),
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


OFFLINE_MODELS: MappingProxyType[str, OfflineModelSpec] = MappingProxyType(
    {
        "offline-t5": OfflineModelSpec(
            name="offline-t5",
            architecture="t5",
            description=(
                "Encoder-decoder like Flan-T5 (gated GELU, untied output head, relative position "
                "buckets): 2+2 layers, d_model 192, 4 heads, d_ff 768, about 2.7M parameters."
            ),
            config=dict(
                d_model=192,
                d_kv=48,
                num_heads=4,
                d_ff=768,
                num_layers=2,
                num_decoder_layers=2,
                # Flan-T5's gated GELU (tanh approximation) as one fused kernel: "gated-gelu"
                # would run it as five element-wise ops, a third of this small model's time
                feed_forward_proj="gated-gelu_pytorch_tanh",
                relative_attention_num_buckets=32,
                relative_attention_max_distance=128,
                dropout_rate=0.0,
                tie_word_embeddings=False,
            ),
        ),
        "offline-gpt2": OfflineModelSpec(
            name="offline-gpt2",
            architecture="gpt2",
            description=(
                "Decoder-only GPT-2: 2 layers, d 128, 4 heads, 1024 positions, tied embeddings, "
                "about 0.57M parameters (the prototype's fast learner)."
            ),
            config=dict(
                n_embd=128,
                n_layer=2,
                n_head=4,
                n_inner=512,
                n_positions=1024,
                activation_function="gelu_pytorch_tanh",  # GPT-2's gelu_new, fused
                resid_pdrop=0.0,
                embd_pdrop=0.0,
                attn_pdrop=0.0,
            ),
        ),
    }
)


def vocabulary() -> list[str]:
    """The offline tokenizer's tokens in id order: the special tokens, then the word list."""
    text = resources.files("llm_policy").joinpath("data/babyai_words.txt").read_text("utf-8")
    words: list[str] = list(SPECIAL_TOKENS)
    seen = set(words)
    for line in text.splitlines():
        word = line.strip()
        if not word or word.startswith("#") or word in seen:
            continue
        seen.add(word)
        words.append(word)
    return words


def build_word_tokenizer(model_max_length: int = 1024):
    """A `transformers` fast tokenizer over `vocabulary()`: lower-cases, splits on whitespace and
    isolates every punctuation mark; unknown words map to [UNK]. It adds no special tokens."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {w: i for i, w in enumerate(vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]
    )
    return with_special_tokens(tok, model_max_length)


def with_special_tokens(tokenizer, model_max_length: int = 1024):
    """A `tokenizers.Tokenizer` whose vocabulary starts with `SPECIAL_TOKENS`, as a `transformers`
    fast tokenizer that knows them as its pad, unk, bos and eos tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        model_max_length=model_max_length,
    )


@contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """No transformers progress bars for the offline models' millisecond saves and loads."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def cache_root() -> Path:
    """`$LLM_POLICY_CACHE` if set, else `~/.cache/llm_policy`."""
    env = os.environ.get("LLM_POLICY_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "llm_policy"


class _PublishedMeanwhile(Exception):
    """Another process published the same build while ours ran: keep theirs, drop ours."""


def offline_model_path(name: str) -> Path:
    """Directory of the offline model `name`, built on first use (or when its spec changed)."""
    if name not in OFFLINE_MODELS:
        raise KeyError(f"unknown offline model {name!r}; available: {sorted(OFFLINE_MODELS)}")
    spec = OFFLINE_MODELS[name]
    final = cache_root() / name
    if _is_current(final, spec):
        return final
    error = None
    for _ in range(_PUBLISH_ATTEMPTS):
        try:
            # marker: a directory there without our build info is not ours, and is never replaced
            with atomic_directory(final, marker=_BUILD_INFO) as tmp:
                _build(spec, tmp)
                if _is_current(final, spec):
                    raise _PublishedMeanwhile
            return final
        except _PublishedMeanwhile:
            return final
        except OSError as err:
            # Two first renames at once: the later one fails on the directory the other put
            # there. A stale build that another process moved aside can also vanish under us.
            if _is_current(final, spec):
                return final
            error = err
    raise RuntimeError(
        f"could not write the offline model to {final} ({error}); is it writable?"
    ) from error


def _is_current(path: Path, spec: OfflineModelSpec) -> bool:
    """The build at `path` is of `spec` and intact (a damaged or pre-manifest build is rebuilt)."""
    try:
        info = read_small_json(path / _BUILD_INFO, what="offline build info")
    except (OSError, ValueError):  # missing, damaged, a pipe or link, too large: rebuild
        return False
    if info.get("spec_hash") != spec.spec_hash() or not (path / MANIFEST_NAME).is_file():
        return False
    try:
        return verify_manifest(path, extra="ignore")
    except (CheckpointCorruptError, OSError):
        return False


def _build(spec: OfflineModelSpec, out: Path) -> None:
    import torch
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        PreTrainedModel,
        T5Config,
        T5ForConditionalGeneration,
    )

    tokenizer = build_word_tokenizer()
    vocab_size = len(tokenizer)
    model: PreTrainedModel
    # Seeded without touching the caller's global RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        if spec.architecture == "t5":
            t5_config = T5Config(
                vocab_size=vocab_size,
                pad_token_id=PAD_ID,
                eos_token_id=EOS_ID,
                # T5Config is a strict dataclass to mypy, but its __post_init__ takes the common
                # PreTrainedConfig keywords such as this one
                decoder_start_token_id=PAD_ID,  # type: ignore[call-arg]
                **spec.config,
            )
            model = T5ForConditionalGeneration(t5_config)
            d = t5_config.d_model
            # Flan-T5 has a separate output projection; transformers ties it to the input
            # embeddings when building from a config, so give it its own weight. std d^-0.5 keeps
            # the initial next-token distribution close to uniform (log-probs near -log V).
            head = torch.nn.Linear(d, vocab_size, bias=False)
            torch.nn.init.normal_(head.weight, std=d**-0.5)
            model.lm_head = head
            protect_untied_output_head(model)
        elif spec.architecture == "gpt2":
            gpt2_config = GPT2Config(
                vocab_size=vocab_size,
                bos_token_id=BOS_ID,
                eos_token_id=EOS_ID,
                pad_token_id=PAD_ID,
                **spec.config,
            )
            model = GPT2LMHeadModel(gpt2_config)
        else:  # pragma: no cover - specs are package data
            raise ValueError(f"unknown offline architecture {spec.architecture!r}")
    with quiet_progress_bars():
        model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    info = {
        "name": spec.name,
        "spec_hash": spec.spec_hash(),
        "description": spec.description,
        "num_parameters": sum(p.numel() for p in model.parameters()),
    }
    (out / _BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n")
    write_manifest(out)  # last; a damaged cache fails it and is rebuilt
