"""Fixtures shared by every test: nothing reaches a model hub, offline models go to a temporary cache.

Package-specific fixtures live in each folder's own conftest.py.
"""

import os

import pytest

# Set before transformers is imported anywhere: nothing may try the Hugging Face Hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def offline_model_cache(tmp_path_factory, monkeypatch):
    """Offline models are built once per test session into a temporary cache, never the user's
    (`LLM_POLICY_CACHE`), and never downloaded."""
    cache = tmp_path_factory.getbasetemp() / "llm_policy_cache"
    monkeypatch.setenv("LLM_POLICY_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """The CI machine has 2 cores, often shared; tiny models gain nothing from a second thread."""
    try:
        import torch
    except ImportError:  # babyai-text's tests need no torch
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
