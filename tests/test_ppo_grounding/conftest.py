import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def offline_model_cache(tmp_path_factory, monkeypatch):
    """Offline models are built once per test session into a temporary cache, never downloaded."""
    cache = tmp_path_factory.getbasetemp() / "llm_policy_cache"
    monkeypatch.setenv("LLM_POLICY_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache
