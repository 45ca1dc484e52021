"""Tiny random models (width 32, 2 layers) saved as ordinary Hugging Face directories.

Weights are scaled so that token log-probs look like a real model's (a few units to tens per
action), not the hundreds that default random initialisations of the output layer give.

Every kind uses the offline word tokenizer except "qwen2": transformers loads any qwen2
directory's tokenizer as its own byte-level BPE `Qwen2Tokenizer`, whatever tokenizer.json holds,
so that kind gets a small byte-level BPE trained on the same words (`byte_level_bpe_tokenizer`),
as a real Qwen2 checkpoint has: multi-token words, a leading-space marker, no BOS.
"""

import json
from pathlib import Path

import torch
from llm_policy.offline import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    build_word_tokenizer,
    vocabulary,
    with_special_tokens,
)
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

KINDS = ("t5", "flan-t5", "gpt2", "llama", "qwen2")


def _configs(kind: str, vocab: int):
    if kind == "t5":  # original T5: tied head, decoder output scaled by d_model^-0.5
        return T5Config(
            vocab_size=vocab,
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            dropout_rate=0.0,
            decoder_start_token_id=PAD_ID,
            pad_token_id=PAD_ID,
            eos_token_id=EOS_ID,
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
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
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
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
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


def byte_level_bpe_tokenizer(vocab_size: int = 800, model_max_length: int = 128):
    """A GPT-2/Qwen2-style byte-level BPE over the offline vocabulary's words (deterministic; the
    special tokens keep the ids 0-3 of the word tokenizer's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    words = [w for w in vocabulary() if w not in SPECIAL_TOKENS]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([" ".join(words), *words, *(f" {w}" for w in words)], trainer)
    return with_special_tokens(tok, model_max_length)


def build_tiny_model(kind: str, directory: Path, seed: int = 0) -> Path:
    if kind == "qwen2":
        tokenizer = byte_level_bpe_tokenizer(model_max_length=256)
    else:
        tokenizer = build_word_tokenizer(model_max_length=128)
    vocab = len(tokenizer)
    if kind == "flan-t5":
        write_flan_t5_like(directory, vocab, seed)
        return directory
    config = _configs(kind, vocab)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cls = {
            "t5": T5ForConditionalGeneration,
            "gpt2": GPT2LMHeadModel,
            "llama": LlamaForCausalLM,
            "qwen2": Qwen2ForCausalLM,
        }[kind]
        model = cls(config)
        with torch.no_grad():
            emb = model.get_input_embeddings().weight
            if kind in ("gpt2", "llama", "qwen2"):
                # default std 0.02 gives near-uniform next-token distributions; 0.4 makes them
                # peaked enough that scores differ between actions (tens per action, not hundreds)
                emb.normal_(0.0, 0.4)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory
