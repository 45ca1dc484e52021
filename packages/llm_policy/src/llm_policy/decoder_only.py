"""Forwards of decoder-only models (GPT-2, Llama, Qwen, ...): each prompt runs once for all of its
candidates, in one of two layouts.

- "cache": the prompts run as one left-padded batch; each pair with more than one token then
  continues from its prompt's key/value cache, gathered per pair.
- "packed": a prompt's candidates are packed after one copy of it in a single sequence; a block
  attention mask keeps candidates from seeing each other, and position ids restart at the prompt's
  end for each one. No cache object, so it also runs under gradient checkpointing (which drops
  caches), and no per-pair cache copies, which makes it the faster layout.

Prompts are left-padded (`batching.pad_batch`), so column Tp-1 is every prompt's last token: the
state that predicts the first token of all its candidates.
"""

from __future__ import annotations

from typing import Any

import torch

from .batching import PaddedBatch
from .kv_cache import cache_keyword, returned_cache
from .logprobs import TokenStates

__all__ = ["DecoderOnlyForwards"]

# attention implementations that accept our own 4D float mask (the packed layout's block mask)
_MASKABLE_ATTENTION = (None, "eager", "sdpa")
# segment ids of the packed layout; candidates are their slot + 1
_PACKING_PAD, _PROMPT_PAD, _PROMPT = -2, -1, 0


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that ignore left padding: (B, T) mask -> (B, T), 0 at the first real token."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


class DecoderOnlyForwards:
    """The "cache" and "packed" forwards of a `*ForCausalLM` model (LoRA layers may be in it)."""

    family = "decoder-only"
    methods = ("cache", "packed")

    def __init__(self, model: Any, pad_id: int):
        self.model = model
        self.backbone = model.base_model
        if self.backbone is model:
            raise ValueError(
                f"{type(model).__name__} exposes no base model (base_model_prefix); "
                "pass a *ForCausalLM model"
            )
        self.pad_id = pad_id
        self._cache_keyword = cache_keyword(self.backbone)
        self.min_shared_tokens = 0.0
        """Prompt tokens a shared prefix must save before it is worth its own forward call (the
        scorer sets it from its estimate of a call's cost)."""

    @property
    def prompt_side(self) -> torch.nn.Module:
        """The module every prompt token runs through."""
        return self.backbone

    def resolve(self, method: str, checkpointing: bool) -> str:
        """The concrete method for `method` ("auto", "cache" or "packed")."""
        implementation = getattr(self.model.config, "_attn_implementation", None)
        maskable = implementation in _MASKABLE_ATTENTION
        if method == "auto":
            # packed is the faster one in benchmarks/scoring_throughput.py (no cache copies);
            # under checkpointing it is the only one that works at all
            return "packed" if maskable or checkpointing else "cache"
        if method == "packed" and not maskable:
            raise ValueError(
                f"method 'packed' needs a custom 4D attention mask, which attn_implementation "
                f"{implementation!r} does not take; use 'cache' or attn_implementation='sdpa'"
            )
        return method

    def run(self, method: str, batch: PaddedBatch, *, share_prefix: bool = False) -> TokenStates:
        """`method`'s forward; `share_prefix`: "packed" runs the leading tokens that all prompts
        share once (never under gradient checkpointing, which drops the cache it needs)."""
        if method == "packed":
            return self.packed(batch, share_prefix=share_prefix)
        return self.cache(batch)

    def prompt_features(self, batch: PaddedBatch) -> torch.Tensor:
        """(B, d) last-layer state of each prompt's last token."""
        output = self.backbone(
            input_ids=batch.prompt_ids,
            attention_mask=batch.prompt_mask,
            position_ids=_positions(batch.prompt_mask),
            use_cache=False,
        )
        return output.last_hidden_state[:, -1]

    def cache(self, batch: PaddedBatch) -> TokenStates:
        candidate_len = batch.candidate_ids.shape[1]
        has_later_tokens = candidate_len > 1
        output = self.backbone(
            input_ids=batch.prompt_ids,
            attention_mask=batch.prompt_mask,
            position_ids=_positions(batch.prompt_mask),
            use_cache=has_later_tokens,
        )
        first = output.last_hidden_state[:, -1]  # (B, d)
        if not has_later_tokens:
            return TokenStates(first, None)
        cache = returned_cache(output)
        multi_token = (batch.num_tokens > 1).nonzero(as_tuple=True)[0]  # (N',) pair indices
        owner = batch.pair_prompt[multi_token]  # (N',) their prompts
        cache.batch_select_indices(owner)  # (B, ...) -> (N', ...), a differentiable gather
        inputs = batch.candidate_ids[multi_token, :-1]  # (N', L-1): token k predicts token k+1
        ones = batch.prompt_mask.new_ones((multi_token.numel(), candidate_len - 1))
        attention = torch.cat([batch.prompt_mask[owner], ones], dim=1)  # (N', Tp + L-1)
        prompt_lengths = batch.prompt_mask.sum(-1)[owner]  # (N',) without padding
        offsets = torch.arange(candidate_len - 1, device=prompt_lengths.device)
        positions = prompt_lengths[:, None] + offsets[None]  # (N', L-1)
        output = self.backbone(
            input_ids=inputs,
            attention_mask=attention,
            position_ids=positions,
            use_cache=True,
            **{self._cache_keyword: cache},
        )
        # rows of the multi-token pairs' later_mask, row-major: the order TokenStates.later needs
        later = output.last_hidden_state[batch.later_mask[multi_token]]  # (M, d)
        return TokenStates(first, later)

    def packed(self, batch: PaddedBatch, *, share_prefix: bool = False) -> TokenStates:
        num_prompts = batch.prompt_ids.shape[0]
        device = batch.prompt_ids.device
        prompt_lengths = batch.prompt_mask.sum(-1)  # (B,) without padding
        # The first `shared` tokens of every prompt are the same (GLAM's prompts all open with
        # the list of actions): they run once, as a one-row key/value cache that every row
        # attends to, and the rows carry only the rest of their prompt.
        shared = self._shared_prefix_length(batch) if share_prefix else 0
        cache = None
        prompt_ids, prompt_mask = batch.prompt_ids, batch.prompt_mask
        if shared:
            prefix = self.backbone(
                input_ids=batch.prompt_ids[:1, -int(prompt_lengths[0]) :][:, :shared],
                position_ids=torch.arange(shared, device=device)[None],
                use_cache=True,
            )
            cache = returned_cache(prefix)
            cache.batch_repeat_interleave(num_prompts)  # differentiable: copies of one row
            # drop each row's first `shared` real tokens, keeping the rest left-padded
            width = batch.prompt_ids.shape[1] - shared
            prompt_mask = batch.prompt_mask[:, :width]
            prompt_ids = torch.where(
                prompt_mask.bool(), batch.prompt_ids[:, shared:], batch.prompt_ids[:, :width]
            )
        prompt_len = prompt_ids.shape[1]
        later_mask = batch.later_mask  # (N, L-1)
        later_counts = later_mask.sum(-1)  # (N,) tokens after the first, per pair
        # Each pair gets a block of later_counts[n] columns after its prompt; pairs are ordered by
        # prompt, so a block's offset is the exclusive prefix sum minus that of the prompt's first.
        global_start = torch.cumsum(later_counts, 0) - later_counts  # (N,)
        first_pair = batch.first_pair_of_prompts()  # (B,)
        block_offset = global_start - global_start[first_pair][batch.pair_prompt]  # (N,)
        packed_per_prompt = torch.zeros(num_prompts, dtype=torch.long, device=device).index_add(
            0, batch.pair_prompt, later_counts
        )  # (B,)
        packed_len = int(packed_per_prompt.max()) if packed_per_prompt.numel() else 0
        total_len = prompt_len + packed_len
        ids = torch.full((num_prompts, total_len), self.pad_id, dtype=torch.long, device=device)
        segment = torch.full(
            (num_prompts, total_len), _PACKING_PAD, dtype=torch.long, device=device
        )
        positions = torch.zeros((num_prompts, total_len), dtype=torch.long, device=device)
        ids[:, :prompt_len] = prompt_ids
        segment[:, :prompt_len] = torch.where(prompt_mask.bool(), _PROMPT, _PROMPT_PAD)
        positions[:, :prompt_len] = shared + _positions(prompt_mask)
        pair_index, token_index = later_mask.nonzero(as_tuple=True)  # (M,) row-major
        rows = batch.pair_prompt[pair_index]  # (M,)
        columns = prompt_len + block_offset[pair_index] + token_index  # (M,)
        if packed_len > 0:
            ids[rows, columns] = batch.candidate_ids[pair_index, token_index]
            segment[rows, columns] = batch.pair_slot[pair_index] + 1
            positions[rows, columns] = prompt_lengths[rows] + token_index
        query = torch.arange(total_len, device=device)
        causal = query[None, :] <= query[:, None]  # (T, T): key <= query
        query_segment, key_segment = (
            segment[:, :, None],
            segment[:, None, :],
        )  # (B, T, 1), (B, 1, T)
        # a token sees the real prompt tokens before it and the earlier tokens of its own candidate
        allowed = causal[None] & (
            (key_segment == _PROMPT) | ((key_segment == query_segment) & (query_segment > _PROMPT))
        )  # (B, T, T)
        # padding rows see only themselves: a row with no allowed key would softmax to NaN
        allowed = allowed | torch.eye(total_len, dtype=torch.bool, device=device)[None]
        dtype = self.model.get_input_embeddings().weight.dtype
        # every token sees the shared prefix: the mask's first `shared` columns stay 0
        mask = torch.zeros(
            (num_prompts, 1, total_len, shared + total_len), dtype=dtype, device=device
        )
        mask[..., shared:].masked_fill_(~allowed[:, None], torch.finfo(dtype).min)  # additive
        extra = {} if cache is None else {self._cache_keyword: cache}
        output = self.backbone(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=cache is not None,
            **extra,
        )
        hidden = output.last_hidden_state  # (B, T, d)
        first = hidden[:, prompt_len - 1]  # (B, d)
        later = hidden[rows, columns] if packed_len > 0 else None  # (M, d), later_mask row-major
        return TokenStates(first, later)

    def _shared_prefix_length(self, batch: PaddedBatch) -> int:
        """How many leading tokens every prompt of `batch` shares, when running them once saves
        more than the extra forward call costs (`min_shared_tokens`); else 0. Each prompt keeps
        at least its last token, whose state predicts its candidates."""
        num_prompts, width = batch.prompt_ids.shape
        lengths = batch.prompt_mask.sum(-1)  # (B,)
        shortest = int(lengths.min())
        if num_prompts < 2 or shortest < 2:
            return 0
        starts = width - lengths  # (B,) first real column of each left-padded prompt
        columns = starts[:, None] + torch.arange(shortest - 1, device=starts.device)[None]
        leading = batch.prompt_ids.gather(1, columns)  # (B, shortest-1)
        same = (leading == leading[:1]).all(0)  # (shortest-1,)
        shared = int(same.long().cumprod(0).sum())
        return shared if shared * (num_prompts - 1) >= self.min_shared_tokens else 0
