"""The offline models' word-level tokenizer knows every word the BabyAI-Text envs can emit."""

import babyai_text
import gymnasium as gym
import pytest
from llm_policy import offline_model_path
from transformers import AutoTokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLM_POLICY_CACHE", str(tmp_path_factory.getbasetemp() / "llm_policy_cache"))
        return AutoTokenizer.from_pretrained(offline_model_path("offline-gpt2"))


def unknown_words(tokenizer, texts):
    backend = tokenizer.backend_tokenizer
    unknown = set()
    for text in texts:
        for word, _ in backend.pre_tokenizer.pre_tokenize_str(
            backend.normalizer.normalize_str(text)
        ):
            if tokenizer.convert_tokens_to_ids(word) == tokenizer.unk_token_id:
                unknown.add(word)
    return unknown


@pytest.mark.parametrize("language", ["en", "fr"])
def test_missions_and_descriptions_have_no_unknown_words(tokenizer, language):
    texts = []
    for env_id in (
        "BabyAI-Text-MixedTrainLocal-v0",
        "BabyAI-Text-MixedTestLocal-v0",
        "BabyAI-Text-PickUpSeqPickUpLocal-v0",
    ):
        env = gym.make(env_id, language=language)
        for seed in range(40):
            obs, _ = env.reset(seed=seed)
            texts += [obs["mission"], obs["text"]]
    texts += list(babyai_text.vocabulary(language))
    texts += list(babyai_text.ACTION_NAMES[language]) + list(babyai_text.ACTION_NAMES["synonyms"])
    assert unknown_words(tokenizer, texts) == set()
