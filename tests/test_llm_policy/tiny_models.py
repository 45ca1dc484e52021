"""Tiny random models (width 32, 2 layers) saved as ordinary Hugging Face directories.

Weights are scaled so that token log-probs look like a real model's (a few units to tens per
action), not the hundreds that default random initialisations of the output layer give.

Tokenizers: "t5", "flan-t5", "gpt2" and "llama" use the offline word tokenizer (one token per
word, nothing added at the edges). The others have the formats of real checkpoints, trained on
BabyAI text by `llm_policy.local_tokenizers`:
- "qwen2": a byte-level BPE (multi-token words, a leading-space marker, no BOS). transformers loads
  any qwen2 directory's tokenizer as its own byte-level `Qwen2Tokenizer`, whatever tokenizer.json
  holds, so a word-level one would be read as single characters;
- "t5-unigram": T5 with a SentencePiece unigram tokenizer ("▁" word starts, `</s>` appended, pad 0
  / eos 1 / unk 2), loaded as `T5Tokenizer`;
- "llama-bpe": Llama with a Llama-2-style SentencePiece BPE (`<s>` prepended, byte fallback, "▁"
  word starts, no pad token), loaded as `LlamaTokenizer`.
The two SentencePiece vocabularies are small, so that many words split into several pieces.
"""

import json
from pathlib import Path

import torch
from llm_policy.local_tokenizers import (
    byte_level_bpe_tokenizer,
    llama_bpe_tokenizer,
    t5_unigram_tokenizer,
)
from llm_policy.offline import BOS_ID, EOS_ID, PAD_ID, build_word_tokenizer
from safetensors.torch import save_file
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

KINDS = ("t5", "flan-t5", "gpt2", "llama", "qwen2", "t5-unigram", "llama-bpe")
REAL_FORMAT_KINDS = ("t5-unigram", "llama-bpe")  # SentencePiece tokenizers of real formats
# subword prompts run longer than word-level ones: the longest test prompt is about 150 tokens
_REAL_FORMAT_MAX_LENGTH = 512


def build_tokenizer(kind: str):
    """The tokenizer a tiny model of this kind is saved with."""
    if kind == "qwen2":
        return byte_level_bpe_tokenizer(model_max_length=256)
    if kind == "t5-unigram":
        return t5_unigram_tokenizer(vocab_size=300, model_max_length=_REAL_FORMAT_MAX_LENGTH)
    if kind == "llama-bpe":
        return llama_bpe_tokenizer(vocab_size=450, model_max_length=_REAL_FORMAT_MAX_LENGTH)
    return build_word_tokenizer(model_max_length=128)


# Width 32, 2 layers: every kind has this shape; only the token ids and the head differ.
_T5_SHAPE = dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, dropout_rate=0.0)
_DECODER_SHAPE = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
)


def _configs(kind: str, vocab: int):
    if kind == "t5":  # original T5: tied head, decoder output scaled by d_model^-0.5
        return T5Config(
            vocab_size=vocab,
            **_T5_SHAPE,
            decoder_start_token_id=PAD_ID,
            pad_token_id=PAD_ID,
            eos_token_id=EOS_ID,
        )
    if kind == "t5-unigram":  # the same T5 with T5's own ids: <pad> 0 (decoder start), </s> 1
        return T5Config(
            vocab_size=vocab, **_T5_SHAPE, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1
        )
    if kind == "llama-bpe":  # Llama-2's ids: <s> 1, </s> 2, and no pad token
        return LlamaConfig(
            vocab_size=vocab,
            **_DECODER_SHAPE,
            max_position_embeddings=_REAL_FORMAT_MAX_LENGTH,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=None,
        )
    if kind == "gpt2":
        return GPT2Config(
            vocab_size=vocab,
            n_embd=32,
            n_layer=2,
            n_head=4,
            n_positions=128,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=BOS_ID,
            eos_token_id=EOS_ID,
            pad_token_id=PAD_ID,
        )
    if kind in ("llama", "qwen2"):  # same shape; Qwen2 adds biases on q/k/v
        config_class = LlamaConfig if kind == "llama" else Qwen2Config
        return config_class(
            vocab_size=vocab,
            **_DECODER_SHAPE,
            # byte-level BPE prompts run about twice as long as word-level ones
            max_position_embeddings=256 if kind == "qwen2" else 128,
            bos_token_id=BOS_ID,
            eos_token_id=EOS_ID,
            pad_token_id=PAD_ID,
        )
    raise ValueError(kind)


def write_flan_t5_like(directory: Path, vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A checkpoint laid out like a real Flan-T5 one: config.json says tie_word_embeddings=false,
    gated-GELU, and model.safetensors carries an lm_head.weight that differs from shared.weight.
    Returns the written tensors."""
    directory.mkdir(parents=True, exist_ok=True)
    config = T5Config(
        vocab_size=vocab,
        **_T5_SHAPE,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        decoder_start_token_id=PAD_ID,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
    )
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T5ForConditionalGeneration(config)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    shared = torch.randn(vocab, 32, generator=g)
    state["shared.weight"] = shared
    state["encoder.embed_tokens.weight"] = shared.clone()
    state["decoder.embed_tokens.weight"] = shared.clone()
    state["lm_head.weight"] = torch.randn(vocab, 32, generator=g) * 0.5
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    # the config.json of google/flan-t5-*: tie_word_embeddings false, no scale_decoder_outputs key
    raw = config.to_dict()
    raw.pop("scale_decoder_outputs", None)
    raw["tie_word_embeddings"] = False
    raw["architectures"] = ["T5ForConditionalGeneration"]
    (directory / "config.json").write_text(json.dumps(raw, indent=2))
    build_word_tokenizer().save_pretrained(directory)
    return state


def build_tiny_model(kind: str, directory: Path, seed: int = 0) -> Path:
    tokenizer = build_tokenizer(kind)
    vocab = len(tokenizer)
    if kind == "flan-t5":
        write_flan_t5_like(directory, vocab, seed)
        return directory
    config = _configs(kind, vocab)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cls = {
            "t5": T5ForConditionalGeneration,
            "t5-unigram": T5ForConditionalGeneration,
            "gpt2": GPT2LMHeadModel,
            "llama": LlamaForCausalLM,
            "llama-bpe": LlamaForCausalLM,
            "qwen2": Qwen2ForCausalLM,
        }[kind]
        model = cls(config)
        with torch.no_grad():
            emb = model.get_input_embeddings().weight
            if kind in ("gpt2", "llama", "llama-bpe", "qwen2"):
                # default std 0.02 gives near-uniform next-token distributions; 0.4 makes them
                # peaked enough that scores differ between actions (tens per action, not hundreds)
                emb.normal_(0.0, 0.4)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory
