"""Fixtures for the llm-policy tests: tiny random models built from configs (see tests/conftest.py
for the offline cache every test shares)."""

import pytest
from llm_policy import ActionScorer
from llm_policy.loading import load_model_and_tokenizer

from .tiny_models import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """tiny_model_dir(kind) -> directory of a tiny random model and its tokenizer, for each kind
    of `tiny_models.KINDS`: the offline word tokenizer, or for "qwen2", "t5-unigram" and
    "llama-bpe" a tokenizer of the real format (see tiny_models.py)."""
    root = tmp_path_factory.mktemp("tiny_models")
    built: dict[str, str] = {}

    def get(kind: str) -> str:
        if kind not in built:
            built[kind] = str(build_tiny_model(kind, root / kind))
        return built[kind]

    return get


@pytest.fixture(scope="module")
def scorers(tiny_model_dir):
    """scorers(kind) -> an ActionScorer (eval mode) on that tiny model, one per test module."""
    cache = {}

    def get(kind):
        if kind not in cache:
            model, tok = load_model_and_tokenizer(tiny_model_dir(kind))
            model.eval()
            cache[kind] = ActionScorer(model, tok)
        return cache[kind]

    return get
