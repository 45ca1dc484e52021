"""From last-layer hidden states to the log-probabilities of candidate tokens.

Both model families end the same way: the forwards (`decoder_only.py`, `encoder_decoder.py`) return
only the hidden states that predict candidate tokens, and this module applies the model's own
output head to those rows alone, never to the whole prompt. Scores are log-softmax values in fp32:
the released GLAM code summed raw logits (and padded with +1), which ranks candidates by something
that is not their probability.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from .batching import PaddedBatch

__all__ = ["TokenStates", "candidate_token_logprobs", "output_logits"]

_T5_TYPES = ("t5", "mt5", "umt5", "longt5")


class TokenStates(NamedTuple):
    """Last-layer hidden states that predict candidate tokens."""

    first: torch.Tensor
    """(B, d) each prompt's state that predicts the first token of all its candidates (the last
    prompt token, or the decoder-start position); the heads read it too."""
    later: torch.Tensor | None
    """(M, d) the states predicting tokens 1.. of each pair, row-major over `later_mask`; None
    when every candidate has a single token."""


def output_logits(model: Any, hidden: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits for hidden states (..., d), as the model's own forward makes them."""
    config = model.config
    if getattr(config, "model_type", "") in _T5_TYPES:
        scale = getattr(config, "scale_decoder_outputs", None)
        if scale is None:  # transformers before the scale_decoder_outputs attribute
            scale = getattr(config, "tie_word_embeddings", True)
        if scale:
            hidden = hidden * (config.d_model**-0.5)
    logits = model.get_output_embeddings()(hidden)
    bias = getattr(model, "final_logits_bias", None)
    if isinstance(bias, torch.Tensor):
        logits = logits + bias.to(logits.dtype)
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def _target_logprobs(model: Any, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log_softmax(logits(hidden))[target] in fp32: hidden (M, d), targets (M,) -> (M,)."""
    logits = output_logits(model, hidden).float()  # (M, V)
    return logits.log_softmax(-1).gather(-1, targets[:, None]).squeeze(-1)


def candidate_token_logprobs(model: Any, batch: PaddedBatch, states: TokenStates) -> torch.Tensor:
    """(N, L) fp32 log-prob of every candidate token; padding positions are left at 0 here and
    masked again by the caller."""
    # one softmax per prompt serves the first token of all its candidates
    first_logprobs = output_logits(model, states.first).float().log_softmax(-1)  # (B, V)
    first = first_logprobs[batch.pair_prompt, batch.candidate_ids[:, 0]]  # (N,)
    num_pairs, candidate_len = batch.candidate_ids.shape
    if candidate_len == 1:
        return first[:, None]
    later_mask = batch.later_mask  # (N, L-1)
    later_targets = batch.candidate_ids[:, 1:][later_mask]  # (M,)
    # candidate_len > 1: some pair has a later token, so the forwards filled `later`
    assert states.later is not None
    later = _target_logprobs(model, states.later, later_targets)  # (M,)
    later_positions = later_mask.nonzero(as_tuple=True)
    later_matrix = first.new_zeros((num_pairs, candidate_len - 1)).index_put(
        later_positions, later
    )  # (N, L-1)
    return torch.cat([first[:, None], later_matrix], dim=1)
