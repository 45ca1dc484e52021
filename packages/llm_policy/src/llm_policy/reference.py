"""Reference scorers: what `ActionScorer` must reproduce, computed the slow and obvious way.

- `naive_scores`: one full model forward per (prompt, candidate) pair, full-vocabulary logits.
- `padded_batch_scores`: every pair as its own (prompt + candidate) sequence, right-padded into
  one batch, one forward.

Both tokenize through the scorer (same truncation, same candidate prefix) and return (B, A_max)
scores, -inf where a prompt has fewer candidates. The tests and benchmarks compare against them;
`ActionScorer.verify` runs `naive_scores` on a tiny input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch

from .batching import (
    TokenizedBatch,
    check_normalization,
    pad_candidates,
    pairs_to_matrix,
    reduce_pairs,
)

__all__ = ["naive_scores", "padded_batch_scores"]


class ScorerLike(Protocol):
    """What the references use of an `ActionScorer` (a protocol: the checks do not import the
    scorer they check, and `ActionScorer.verify` can import them)."""

    model: Any
    pad_id: int
    is_encoder_decoder: bool
    forwards: Any  # its decoder_start_id, for encoder-decoders

    @property
    def device(self) -> torch.device: ...

    def tokenize(
        self, prompts: Sequence[str], candidates: Sequence[Sequence[str]] | Sequence[str]
    ) -> TokenizedBatch: ...


def _target_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log_softmax(logits)[target] in fp32: logits (T, V), targets (T,) -> (T,)."""
    return logits.float().log_softmax(-1).gather(-1, targets[:, None]).squeeze(-1)


def naive_scores(
    scorer: ScorerLike,
    prompts: Sequence[str],
    candidates: Sequence[Sequence[str]] | Sequence[str],
    normalization: str = "sum",
) -> torch.Tensor:
    """One full model forward per (prompt, candidate) pair. Returns (B, A_max)."""
    normalization = check_normalization(normalization)
    batch = scorer.tokenize(prompts, candidates)
    model, device = scorer.model, scorer.device
    totals = []
    for n, candidate in enumerate(batch.candidate_ids):
        prompt = batch.prompt_ids[batch.pair_prompt[n]]
        targets = torch.tensor(candidate, device=device)
        if scorer.is_encoder_decoder:
            start_id = scorer.forwards.decoder_start_id
            decoder_inputs = torch.tensor([[start_id, *candidate[:-1]]], device=device)
            logits = model(
                input_ids=torch.tensor([prompt], device=device), decoder_input_ids=decoder_inputs
            ).logits[0]  # (L, V)
        else:
            ids = torch.tensor([prompt + candidate], device=device)
            # position k predicts token k+1: the candidate's tokens come from len(prompt)-1 on
            first = len(prompt) - 1
            logits = model(input_ids=ids).logits[0, first : first + len(candidate)]  # (L, V)
        totals.append(_target_logprobs(logits, targets).sum())
    total = torch.stack(totals)  # (N,)
    num_tokens = torch.tensor([len(c) for c in batch.candidate_ids], device=device)
    num_words = torch.tensor(batch.num_words, device=device)
    per_pair = reduce_pairs(total[:, None], num_tokens, num_words, normalization)  # (N,)
    return pairs_to_matrix(
        per_pair,
        torch.tensor(batch.pair_prompt, device=device),
        torch.tensor(batch.pair_slot, device=device),
        batch.num_candidates,
    )


def padded_batch_scores(
    scorer: ScorerLike,
    prompts: Sequence[str],
    candidates: Sequence[Sequence[str]] | Sequence[str],
    normalization: str = "sum",
) -> torch.Tensor:
    """Every pair as its own (prompt + candidate) sequence, right-padded into one batch, one
    forward with full-vocabulary logits at every position. Returns (B, A_max)."""
    normalization = check_normalization(normalization)
    batch = scorer.tokenize(prompts, candidates)
    model, device, pad = scorer.model, scorer.device, scorer.pad_id
    candidate_ids, candidate_mask = pad_candidates(batch.candidate_ids, pad)
    num_pairs, candidate_len = candidate_ids.shape
    candidate_ids, candidate_mask = candidate_ids.to(device), candidate_mask.to(device)
    pair_prompt_ids = [batch.prompt_ids[i] for i in batch.pair_prompt]
    if scorer.is_encoder_decoder:
        prompt_len = max(len(p) for p in pair_prompt_ids)
        encoder_ids = torch.full((num_pairs, prompt_len), pad, dtype=torch.long)
        encoder_mask = torch.zeros((num_pairs, prompt_len), dtype=torch.long)
        for n, prompt in enumerate(pair_prompt_ids):
            encoder_ids[n, : len(prompt)] = torch.tensor(prompt)
            encoder_mask[n, : len(prompt)] = 1
        start = torch.full(
            (num_pairs, 1), scorer.forwards.decoder_start_id, dtype=torch.long, device=device
        )
        decoder_inputs = torch.cat([start, candidate_ids[:, :-1]], dim=1)  # (N, L)
        logits = model(
            input_ids=encoder_ids.to(device),
            attention_mask=encoder_mask.to(device),
            decoder_input_ids=decoder_inputs,
        ).logits  # (N, L, V)
        logprobs = logits.float().log_softmax(-1)
        logprobs = logprobs.gather(-1, candidate_ids[..., None]).squeeze(-1)  # (N, L)
    else:
        total_len = max(
            len(p) + len(c) for p, c in zip(pair_prompt_ids, batch.candidate_ids, strict=True)
        )
        ids = torch.full((num_pairs, total_len), pad, dtype=torch.long)
        mask = torch.zeros((num_pairs, total_len), dtype=torch.long)
        for n, (prompt, candidate) in enumerate(
            zip(pair_prompt_ids, batch.candidate_ids, strict=True)
        ):
            ids[n, : len(prompt) + len(candidate)] = torch.tensor(prompt + candidate)
            mask[n, : len(prompt) + len(candidate)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits  # (N, T, V)
        starts = torch.tensor([len(p) - 1 for p in pair_prompt_ids], device=device)  # (N,)
        offsets = torch.arange(candidate_len, device=device)
        positions = (starts[:, None] + offsets[None]).clamp(max=total_len - 1)  # (N, L)
        # pick the candidate positions before the softmax, only to bound this baseline's memory
        picked = logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))
        logprobs = picked.float().log_softmax(-1)
        logprobs = logprobs.gather(-1, candidate_ids[..., None]).squeeze(-1)  # (N, L)
    logprobs = logprobs * candidate_mask
    num_words = torch.tensor(batch.num_words, device=device)
    per_pair = reduce_pairs(logprobs, candidate_mask.sum(-1), num_words, normalization)  # (N,)
    return pairs_to_matrix(
        per_pair,
        torch.tensor(batch.pair_prompt, device=device),
        torch.tensor(batch.pair_slot, device=device),
        batch.num_candidates,
    )
