"""Fixtures shared by every test: nothing reaches a model hub, offline models go to a temporary cache.

Package-specific fixtures live in each folder's own conftest.py.
"""

import contextlib
import os
import signal

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


class Hung(Exception):
    """A block that `no_hang` cut short."""


@contextlib.contextmanager
def _no_hang(seconds: float = 5.0):
    """Raise Hung if the block runs longer than `seconds`: a blocked open() of a named pipe is
    interrupted by the signal, and the handler's exception propagates (PEP 475). Main thread
    only (SIGALRM)."""

    def alarm(signum, frame):
        raise Hung(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def no_hang():
    """`with no_hang():` turns a regression that would block a test forever into a failure."""
    return _no_hang
