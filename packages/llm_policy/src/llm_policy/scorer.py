"""Scoring text actions: log P(candidate | prompt) for many prompts and candidates at once.

score(candidate | prompt) = the sum over the candidate's tokens of log_softmax(logits)[token],
padding contributing exactly 0, optionally divided by the candidate's token count ("token") or
word count ("word"). The prompt is the expensive part, so it runs once per prompt and all of its
candidates reuse it. `ActionScorer` is the entry point; the work lives in:

- `batching.py`: validation, tokenisation, prompt truncation, padding, length groups, reductions;
- `decoder_only.py`: the "cache" and "packed" forwards of decoder-only models;
- `encoder_decoder.py`: the "cache" and "recompute" forwards of encoder-decoder models;
- `logprobs.py`: the model's output head on the few hidden states that predict candidate tokens;
- `reference.py`: the per-pair references every method must equal.

"auto" picks "packed" for decoder-only models ("cache" if the attention implementation cannot take
a custom mask) and "cache" for encoder-decoders, or "recompute" under gradient checkpointing.
Everything is differentiable: gradients flow through the shared prompt states into the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import torch

from .batching import (
    NORMALIZATIONS,
    IdenticalCandidatesWarning,
    PaddedBatch,
    PairTokenizer,
    PromptTruncationWarning,
    ScoreOutput,
    TokenizedBatch,
    UnknownWordWarning,
    check_normalization,
    check_prompts,
    forward_call_cost_tokens,
    length_groups,
    merge_group_outputs,
    pad_batch,
    pairs_to_matrix,
    reduce_pairs,
)
from .decoder_only import DecoderOnlyForwards
from .distinct import has_active_dropout
from .encoder_decoder import EncoderDecoderForwards
from .logprobs import candidate_token_logprobs, output_logits
from .reference import naive_scores

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "NORMALIZATIONS",
    "SCORING_METHODS",
    "ActionScorer",
    "IdenticalCandidatesWarning",
    "PromptTruncationWarning",
    "ScoreOutput",
    "TokenizedBatch",
    "UnknownWordWarning",
]

SCORING_METHODS = ("auto", "cache", "packed", "recompute")
_FAMILY_OF_METHOD = {"packed": "decoder-only", "recompute": "encoder-decoder"}


class ActionScorer:
    """Scores candidate action strings under a Hugging Face language model.

    Args:
        model: a transformers `*ForCausalLM` or `*ForConditionalGeneration` model, possibly with
            LoRA layers injected by peft (pass the underlying model, not the PeftModel wrapper).
        tokenizer: its tokenizer.
        normalization: default for `score` ("sum", "token" or "word").
        method: "auto", "cache", "packed" (decoder-only) or "recompute" (encoder-decoder).
        max_prompt_tokens: truncate longer prompts from the left (None: the model's limit).
        action_prefix: text put before each candidate when tokenizing it; None means " " for
            decoder-only models (the candidate continues "Action k:") and "" for encoder-decoders.
        length_bucketing: on CPU, split a batch into groups of similar prompt length when the
            padding saved outweighs the extra forward calls.
        share_prefixes: decoder-only "packed": the leading tokens that every prompt of a batch
            shares (GLAM's prompts open with the list of actions) run once, as a key/value cache
            the prompts attend to, when that saves more than the extra forward call costs. The
            scores equal the unshared forward's to float rounding.
        warn_unknown_words: warn (`UnknownWordWarning`, once per word) when a prompt or candidate
            holds a word the tokenizer maps to its unknown token.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        normalization: str = "sum",
        method: str = "auto",
        max_prompt_tokens: int | None = None,
        action_prefix: str | None = None,
        length_bucketing: bool = True,
        share_prefixes: bool = True,
        warn_unknown_words: bool = False,
        max_batch_prompts: int | None = 256,
    ) -> None:
        if max_batch_prompts is not None and (
            isinstance(max_batch_prompts, bool)
            or not isinstance(max_batch_prompts, int)
            or max_batch_prompts < 1
        ):
            raise ValueError(
                f"max_batch_prompts must be a positive int or None, got {max_batch_prompts!r}"
            )
        self.max_batch_prompts = max_batch_prompts
        """Prompts one forward scores at most: memory is bounded by it, not by how many prompts
        a call passes (10,000 envs are scored in chunks). None: no bound."""
        self.model = model
        self.tokenizer = tokenizer
        self.normalization = check_normalization(normalization)
        self.method = _check_method(method)
        self.is_encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.pad_id = int(pad)
        self.forwards: DecoderOnlyForwards | EncoderDecoderForwards = (
            EncoderDecoderForwards(model)
            if self.is_encoder_decoder
            else DecoderOnlyForwards(model, self.pad_id)
        )
        if action_prefix is None:
            action_prefix = "" if self.is_encoder_decoder else " "
        self.tokenization = PairTokenizer(
            tokenizer,
            is_encoder_decoder=self.is_encoder_decoder,
            action_prefix=action_prefix,
            max_prompt_tokens=max_prompt_tokens,
            model_max_length=_model_max_length(model, tokenizer, self.is_encoder_decoder),
            warn_unknown_words=warn_unknown_words,
        )
        self.length_bucketing = length_bucketing
        self.share_prefixes = share_prefixes
        # what one more forward call costs, in prompt tokens: length groups and shared prefixes
        # weigh it
        self.call_cost_tokens = forward_call_cost_tokens(
            self.forwards.prompt_side, _input_embedding_weight(model)
        )
        if isinstance(self.forwards, DecoderOnlyForwards):
            self.forwards.min_shared_tokens = self.call_cost_tokens

    @property
    def device(self) -> torch.device:
        return _input_embedding_weight(self.model).device

    @property
    def hidden_size(self) -> int:
        """Width of the hidden states the heads read."""
        size = getattr(self.model.config, "hidden_size", None)  # d_model / n_embd via attr maps
        if isinstance(size, int):
            return size
        return int(_input_embedding_weight(self.model).shape[1])

    @property
    def max_prompt_tokens(self) -> int | None:
        return self.tokenization.max_prompt_tokens

    @property
    def model_max_length(self) -> int | None:
        """Most tokens the prompt side accepts (positions for decoder-only models)."""
        return self.tokenization.model_max_length

    def resolve_method(self, method: str | None = None) -> str:
        """The forward that `score(method=method)` runs: "auto" becomes a concrete method, and a
        method this model or the current gradient-checkpointing state cannot run is refused."""
        method = _check_method(method or self.method)
        if method != "auto" and method not in self.forwards.methods:
            usable = " or ".join(repr(m) for m in self.forwards.methods)
            raise ValueError(
                f"method {method!r} is for {_FAMILY_OF_METHOD[method]} models; use {usable}"
            )
        checkpointing = self._checkpointing()
        if method == "cache" and checkpointing:
            raise ValueError(
                "method 'cache' cannot run under gradient checkpointing in training mode "
                "(transformers drops the cache there); use 'auto'"
            )
        return self.forwards.resolve(method, checkpointing)

    def _checkpointing(self) -> bool:
        return (
            self.model.training
            and torch.is_grad_enabled()
            and any(
                getattr(m, "gradient_checkpointing", False) is True for m in self.model.modules()
            )
        )

    def tokenize(
        self,
        prompts: Sequence[str],
        candidates: Sequence[Sequence[str]] | Sequence[str],
    ) -> TokenizedBatch:
        """Validate and tokenize. `candidates` is one list per prompt, or one list for all."""
        return self.tokenization.tokenize(prompts, candidates)

    def _pad(self, batch: TokenizedBatch) -> PaddedBatch:
        left_pad = not self.is_encoder_decoder
        return pad_batch(batch, pad_id=self.pad_id, left_pad_prompts=left_pad, device=self.device)

    def output_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits for hidden states (..., d), as the model's own forward makes them."""
        return output_logits(self.model, hidden)

    def prompt_features(self, prompts: Sequence[str]) -> torch.Tensor:
        """(B, d) hidden state of each prompt: the last prompt token (decoder-only) or the last
        decoder layer at the decoder-start position (encoder-decoder). Model dtype."""
        check_prompts(prompts)
        prompt_ids, _ = self.tokenization.tokenize_prompts(prompts, [0] * len(prompts))
        size = self.max_batch_prompts or len(prompt_ids)
        features = []
        for start in range(0, len(prompt_ids), size):
            # the padded batch needs a candidate; the prompt-only forward never reads it
            chunk = prompt_ids[start : start + size]
            batch = TokenizedBatch(chunk, [[self.pad_id]], [0], [0], [1], [1])
            features.append(self.forwards.prompt_features(self._pad(batch)))
        return features[0] if len(features) == 1 else torch.cat(features)

    def score(
        self,
        prompts: Sequence[str],
        candidates: Sequence[Sequence[str]] | Sequence[str],
        *,
        normalization: str | None = None,
        method: str | None = None,
    ) -> ScoreOutput:
        """Score every candidate of every prompt. Differentiable when grad is enabled."""
        normalization = check_normalization(normalization or self.normalization)
        method = self.resolve_method(method)
        batch = self.tokenize(prompts, candidates)
        groups = self._length_groups(batch)
        if len(groups) == 1:
            return self._score_batch(batch, method, normalization)
        parts = []
        for group in groups:
            sub_batch, pairs = batch.select(group)
            parts.append((group, pairs, self._score_batch(sub_batch, method, normalization)))
        return merge_group_outputs(batch, parts, method)

    __call__ = score

    def _length_groups(self, batch: TokenizedBatch) -> list[list[int]]:
        """Prompt indices scored together: length groups on CPU, one batch on a GPU, each cut
        into chunks of at most max_batch_prompts."""
        if not self.length_bucketing or self.device.type != "cpu":  # a GPU prefers one batch
            groups = [list(range(len(batch.prompt_ids)))]
        else:
            groups = length_groups(
                batch,
                call_cost_tokens=self.call_cost_tokens,
                packs_candidates=not self.is_encoder_decoder,
            )
        size = self.max_batch_prompts
        if size is None:
            return groups
        return [group[i : i + size] for group in groups for i in range(0, len(group), size)]

    def _score_batch(self, batch: TokenizedBatch, method: str, normalization: str) -> ScoreOutput:
        padded = self._pad(batch)
        # one prefix computation for all rows: not under checkpointing (transformers drops the
        # cache) nor under dropout (every row would share one random mask)
        share_prefix = (
            self.share_prefixes and not self._checkpointing() and not has_active_dropout(self.model)
        )
        states = self.forwards.run(method, padded, share_prefix=share_prefix)
        token_logprobs = candidate_token_logprobs(self.model, padded, states)  # (N, L)
        token_logprobs = token_logprobs * padded.candidate_mask  # padding contributes exactly 0
        per_pair = reduce_pairs(token_logprobs, padded.num_tokens, padded.num_words, normalization)
        scores = pairs_to_matrix(
            per_pair, padded.pair_prompt, padded.pair_slot, padded.num_candidates
        )  # (B, A_max)
        return ScoreOutput(
            scores=scores,
            token_logprobs=token_logprobs,
            token_mask=padded.candidate_mask,
            features=states.first,
            pair_prompt=padded.pair_prompt,
            pair_slot=padded.pair_slot,
            method=method,
        )

    @torch.no_grad()
    def verify(self, atol: float = 1e-3) -> None:
        """Check the fast methods against the naive per-pair computation on a tiny input; raises
        RuntimeError for architectures whose forward this scorer does not reproduce."""
        prompts = [
            "Goal of the agent: go to the red ball\n"
            "Observation 0: You see a wall 2 steps forward,\nAction 0:"
        ]
        candidates = [["go forward", "turn left", "pick up the key"]]
        was_training = self.model.training
        self.model.eval()
        try:
            want = naive_scores(self, prompts, candidates)
            for method in self.forwards.methods:
                got = self.score(prompts, candidates, normalization="sum", method=method).scores
                error = (got - want).abs().max().item()
                if not error <= atol * max(1.0, want.abs().max().item()):
                    raise RuntimeError(
                        f"scoring method {method!r} disagrees with the per-pair forward of "
                        f"{type(self.model).__name__} by {error:.3g}; "
                        "this architecture is not supported"
                    )
        finally:
            self.model.train(was_training)


def _input_embedding_weight(model: PreTrainedModel) -> torch.Tensor:
    """The input embedding matrix (V, d). transformers types `get_input_embeddings()` as any
    `nn.Module`, whose attributes read as `Tensor | Module`; it is an embedding layer, so its
    `weight` is a Parameter."""
    return cast(torch.Tensor, model.get_input_embeddings().weight)


def _check_method(method: str) -> str:
    if method not in SCORING_METHODS:
        raise ValueError(f"unknown scoring method {method!r}; choose one of {SCORING_METHODS}")
    return method


def _model_max_length(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, is_encoder_decoder: bool
) -> int | None:
    """Most tokens the prompt side accepts: a decoder-only model's positions, else the
    tokenizer's limit (ignoring the huge placeholder tokenizers use for "no limit")."""
    if not is_encoder_decoder:
        for key in ("max_position_embeddings", "n_positions", "n_ctx"):
            value = getattr(model.config, key, None)
            if isinstance(value, int) and value > 0:
                return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 1_000_000:
        return value
    return None
