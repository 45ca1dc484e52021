"""Keeping an untied output head untied (Flan-T5, offline-t5) under transformers 5.

The loader and the offline-model builder both need it, so it lives here, below both of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["protect_untied_output_head", "quiet_tie_warning"]


class _DropTieWarning(logging.Filter):
    # transformers warns when a checkpoint's lm_head differs from its embeddings while the config
    # says "tied" (every Flan-T5 since T5Config forces tie_word_embeddings=True). That is the
    # expected case for us, and protect_untied_output_head() keeps the head untied afterwards.
    def filter(self, record: logging.LogRecord) -> bool:
        return "present in the checkpoints with different values" not in record.getMessage()


@contextmanager
def quiet_tie_warning() -> Iterator[None]:
    """Silence transformers' tied-weights warning while loading (see `_DropTieWarning`)."""
    logger = logging.getLogger("transformers.modeling_utils")
    flt = _DropTieWarning()
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)


def _output_weight_name(model: Any) -> str | None:
    out = model.get_output_embeddings()
    if out is None:
        return None
    for name, param in model.named_parameters(remove_duplicate=False):
        if param is out.weight:
            return name
    return None


def protect_untied_output_head(model: Any) -> bool:
    """If the output head has its own weight, stop later `tie_weights()` calls from tying it.

    T5Config (transformers 5) always says `tie_word_embeddings=True`, also for Flan-T5, whose
    checkpoints carry a separate `lm_head.weight`. Loading keeps that weight (it differs from the
    embeddings), but any later `model.tie_weights()` (e.g. from `resize_token_embeddings`) would
    silently replace it by the input embeddings. Returns True when the head is untied.
    """
    out = model.get_output_embeddings()
    inp = model.get_input_embeddings()
    if out is None or inp is None or out.weight is inp.weight:
        return False
    head_name = _output_weight_name(model) or "lm_head.weight"
    tied = dict(getattr(model, "_tied_weights_keys", None) or {})
    if head_name in tied:
        tied.pop(head_name)
        # instance attribute: shadows the class mapping that tie_weights() recomputes from
        model._tied_weights_keys = tied
    all_tied = getattr(model, "all_tied_weights_keys", None)
    if isinstance(all_tied, dict):
        all_tied.pop(head_name, None)
    return True
