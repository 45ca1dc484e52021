"""How the forwards hand key/value caches to transformers models and get them back.

transformers renamed the cache argument and output from `past_key_values` to `cache` in some
models; both spellings are accepted so one scorer serves either.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

__all__ = ["cache_keyword", "returned_cache"]


def cache_keyword(module: torch.nn.Module) -> str:
    """The name under which `module.forward` takes a key/value cache."""
    parameters = inspect.signature(module.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def returned_cache(output: Any) -> Any:
    """The key/value cache in a model output; raises if the model returned none."""
    cache = getattr(output, "cache", None)
    if cache is None:
        cache = getattr(output, "past_key_values", None)
    if cache is None:
        raise RuntimeError(
            "the model returned no key/value cache; use method='packed' or 'recompute'"
        )
    return cache
