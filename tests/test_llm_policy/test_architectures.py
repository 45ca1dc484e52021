"""The stored architecture configs of the paper's model sizes, and the random models built from
them (llm_policy.architectures)."""

import json

import pytest
import torch
from llm_policy import ENGLISH_ACTION_NAMES, LLMPolicy, PolicyConfig, build_prompt
from llm_policy.architectures import (
    ARCHITECTURES,
    BUILD_INFO,
    architecture_config,
    build_random_model,
    find_architecture,
)
from llm_policy.reference import naive_scores

# The families' code paths at test size: same model types, tokenizers, tying and attention
# layout (grouped-query heads), a few thousand times fewer parameters.
TINY = {
    "flan-t5-large": dict(
        d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4
    ),
    "qwen2.5-0.5b": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "llama-3.2-1b": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
    ),
}
TINY["llama-3.1-8b"] = TINY["llama-3.2-1b"]
TOKENIZER_CLASSES = {
    "flan-t5-large": "T5Tokenizer",
    "qwen2.5-0.5b": "Qwen2Tokenizer",
    "llama-3.2-1b": "LlamaTokenizer",
    "llama-3.1-8b": "LlamaTokenizer",
}
ACTIONS = list(ENGLISH_ACTION_NAMES)


def test_stored_configs_are_the_published_architectures():
    t5 = architecture_config("google/flan-t5-large")
    assert (t5.d_model, t5.d_ff, t5.num_layers, t5.num_heads, t5.vocab_size) == (
        1024,
        2816,
        24,
        16,
        32128,
    )
    assert t5.feed_forward_proj == "gated-gelu" and t5.scale_decoder_outputs is False
    qwen = architecture_config("Qwen/Qwen2.5-0.5B")
    assert (qwen.hidden_size, qwen.num_hidden_layers, qwen.num_key_value_heads) == (896, 24, 2)
    llama = architecture_config("meta-llama/Llama-3.2-1B")
    assert (llama.hidden_size, llama.intermediate_size, llama.num_hidden_layers) == (2048, 8192, 16)
    assert llama.vocab_size == 128256 and llama.tie_word_embeddings
    assert find_architecture("LLAMA-3.2-1B") is ARCHITECTURES["llama-3.2-1b"]
    assert find_architecture("gpt2") is None
    with pytest.raises(ValueError, match="unknown architecture 'gpt2'; stored configs: flan-t5"):
        architecture_config("gpt2")


@pytest.fixture(scope="module")
def tiny_builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("architectures")
    return {
        name: build_random_model(name, root / name, config_overrides=TINY[name])
        for name in ARCHITECTURES
    }


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_a_built_model_loads_with_its_familys_tokenizer_and_scores_exactly(tiny_builds, name):
    directory = tiny_builds[name]
    info = json.loads((directory / BUILD_INFO).read_text())
    assert info["config_of"] == ARCHITECTURES[name].hub_id
    # verify_scoring: the fast scorer is checked against the per-pair forward at construction
    policy = LLMPolicy(PolicyConfig(model=str(directory), finetune="full", value_head_hidden=16))
    assert type(policy.tokenizer).__name__.removesuffix("Fast") == TOKENIZER_CLASSES[name]
    assert len(policy.tokenizer) <= 1000
    # the real vocabulary size: the embedding is as large as the published model's
    embeddings = policy.model.get_input_embeddings().weight
    assert embeddings.shape[0] == architecture_config(name).vocab_size
    prompt = build_prompt("go to the red ball", [["You see a red ball 1 step left"]], [], ACTIONS)
    scores = policy.score([prompt], [ACTIONS]).scores
    assert torch.isfinite(scores).all()
    reference = naive_scores(policy.scorer, [prompt], [ACTIONS], normalization="sum")
    torch.testing.assert_close(scores, reference, atol=1e-5, rtol=1e-5)


def test_flan_t5_keeps_its_own_output_head(tiny_builds):
    policy = LLMPolicy(PolicyConfig(model=str(tiny_builds["flan-t5-large"]), finetune="full"))
    lm = policy.model
    assert lm.get_output_embeddings().weight is not lm.get_input_embeddings().weight
    assert not torch.equal(lm.get_output_embeddings().weight, lm.get_input_embeddings().weight)
