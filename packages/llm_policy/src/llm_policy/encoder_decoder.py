"""Forwards of encoder-decoder models (T5, Flan-T5, ...): each prompt is encoded once for all of
its candidates.

- "cache": the decoder-start position runs once per prompt and fills the cross-attention cache;
  every pair with more than one token continues from that cache (gathered per pair), so the
  cross-attention keys/values of the prompt are computed once.
- "recompute": the decoder runs every pair from the start position against the shared encoder
  output, without a cache: what gradient checkpointing needs, since transformers drops caches there.

The decoder-start state predicts the first token of all of a prompt's candidates and is also the
feature the heads read.
"""

from __future__ import annotations

from typing import Any

import torch

from .batching import PaddedBatch
from .kv_cache import cache_keyword, returned_cache
from .logprobs import TokenStates

__all__ = ["EncoderDecoderForwards"]


class EncoderDecoderForwards:
    """The "cache" and "recompute" forwards of a `*ForConditionalGeneration` model."""

    family = "encoder-decoder"
    methods = ("cache", "recompute")

    def __init__(self, model: Any):
        self.model = model
        self.encoder = model.get_encoder()
        self.decoder = model.get_decoder()
        if self.encoder is model or self.decoder is model:
            raise ValueError(f"cannot find the encoder and decoder of {type(model).__name__}")
        start_id = getattr(model.config, "decoder_start_token_id", None)
        if start_id is None:
            raise ValueError("the model config has no decoder_start_token_id")
        self.decoder_start_id: int = start_id
        self._cache_keyword = cache_keyword(self.decoder)

    @property
    def prompt_side(self) -> torch.nn.Module:
        """The module every prompt token runs through."""
        return self.encoder

    def resolve(self, method: str, checkpointing: bool) -> str:
        """The concrete method for `method` ("auto", "cache" or "recompute")."""
        if method == "auto":
            return "recompute" if checkpointing else "cache"
        return method

    def run(self, method: str, batch: PaddedBatch, *, share_prefix: bool = False) -> TokenStates:
        """`method`'s forward. `share_prefix` has no effect: the encoder is bidirectional, so a
        prompt's first tokens depend on its last and cannot be shared."""
        forward = {"cache": self.cache, "recompute": self.recompute}[method]
        return forward(batch)

    def encode(self, batch: PaddedBatch) -> torch.Tensor:
        """(B, Tp, d) encoder output of the prompts."""
        return self.encoder(
            input_ids=batch.prompt_ids, attention_mask=batch.prompt_mask
        ).last_hidden_state

    def _start_ids(self, count: int, device: torch.device) -> torch.Tensor:
        return torch.full((count, 1), self.decoder_start_id, dtype=torch.long, device=device)

    def prompt_features(self, batch: PaddedBatch) -> torch.Tensor:
        """(B, d) last decoder layer at the decoder-start position."""
        encoded = self.encode(batch)
        output = self.decoder(
            input_ids=self._start_ids(encoded.shape[0], encoded.device),
            encoder_hidden_states=encoded,
            encoder_attention_mask=batch.prompt_mask,
            use_cache=False,
        )
        return output.last_hidden_state[:, 0]

    def cache(self, batch: PaddedBatch) -> TokenStates:
        encoded = self.encode(batch)  # (B, Tp, d)
        has_later_tokens = batch.candidate_ids.shape[1] > 1
        cache_argument = {}
        if has_later_tokens and self._cache_keyword == "cache":
            from transformers.cache_utils import DynamicCache, EncoderDecoderCache

            # built here rather than by the model: its config-driven constructor costs ~1 ms/call
            cache_argument["cache"] = EncoderDecoderCache(DynamicCache(), DynamicCache())
        output = self.decoder(
            input_ids=self._start_ids(encoded.shape[0], encoded.device),
            encoder_hidden_states=encoded,
            encoder_attention_mask=batch.prompt_mask,
            use_cache=has_later_tokens,
            **cache_argument,
        )
        first = output.last_hidden_state[:, 0]  # (B, d) decoder-start position
        if not has_later_tokens:
            return TokenStates(first, None)
        cache = returned_cache(output)
        updated = getattr(cache, "is_updated", None)
        if isinstance(updated, dict):
            num_layers = len(cache.cross_attention_cache.layers)
            if not all(updated.get(i, False) for i in range(num_layers)):
                raise RuntimeError("cross-attention cache was not filled; use method='recompute'")
        multi_token = (batch.num_tokens > 1).nonzero(as_tuple=True)[0]  # (N',) pair indices
        owner = batch.pair_prompt[multi_token]  # (N',) their prompts
        cache.batch_select_indices(owner)  # self- and cross-attention caches -> (N', ...)
        output = self.decoder(
            input_ids=batch.candidate_ids[multi_token, :-1],  # (N', L-1)
            # Keys/values come from the cache; the tensor only gives the source length and must
            # not be None (it switches cross-attention on). A zero-copy view is enough.
            encoder_hidden_states=encoded[:1].expand(multi_token.numel(), -1, -1),
            encoder_attention_mask=batch.prompt_mask[owner],
            use_cache=True,
            **{self._cache_keyword: cache},
        )
        later = output.last_hidden_state[batch.later_mask[multi_token]]  # (M, d)
        return TokenStates(first, later)

    def recompute(self, batch: PaddedBatch) -> TokenStates:
        encoded = self.encode(batch)  # (B, Tp, d)
        num_pairs, candidate_len = batch.candidate_ids.shape
        decoder_inputs = torch.cat(
            [self._start_ids(num_pairs, encoded.device), batch.candidate_ids[:, :-1]], dim=1
        )  # (N, L): start token, then each token predicts the next
        output = self.decoder(
            input_ids=decoder_inputs,
            encoder_hidden_states=encoded[batch.pair_prompt],
            encoder_attention_mask=batch.prompt_mask[batch.pair_prompt],
            use_cache=False,
        )
        hidden = output.last_hidden_state  # (N, L, d)
        # every pair of a prompt has the same start state: take it from the prompt's first pair
        first = hidden[batch.first_pair_of_prompts(), 0]  # (B, d)
        later = hidden[:, 1:][batch.later_mask] if candidate_len > 1 else None  # (M, d)
        return TokenStates(first, later)
