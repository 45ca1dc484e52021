"""Fixtures for the llm-policy tests: everything offline, tiny random models built from configs."""

import os

import pytest

# Set before transformers is imported anywhere: nothing may try the Hugging Face Hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402

from .tiny_models import build_tiny_model  # noqa: E402


@pytest.fixture(autouse=True)
def offline_cache(tmp_path_factory, monkeypatch):
    """Offline models are built into a per-session temporary cache, never the user's."""
    cache = tmp_path_factory.getbasetemp() / "llm_policy_cache"
    monkeypatch.setenv("LLM_POLICY_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture(scope="session", autouse=True)
def _threads():
    # The CI machine has 2 cores shared with other jobs; tiny models gain nothing from more.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """tiny_model_dir(kind) -> directory of a tiny random model + the offline word tokenizer."""
    root = tmp_path_factory.mktemp("tiny_models")
    built: dict[str, str] = {}

    def get(kind: str) -> str:
        if kind not in built:
            built[kind] = str(build_tiny_model(kind, root / kind))
        return built[kind]

    return get
