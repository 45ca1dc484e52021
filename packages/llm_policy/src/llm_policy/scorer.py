"""Scoring text actions: log P(action | prompt) for many prompts and candidates at once (SPEC 2.2).

score(a | p) = sum over the action's tokens t of log_softmax(logits)[t], padding contributing 0,
optionally divided by the action's token count ("token") or word count ("word").

The prompt is the expensive part, so it runs once per prompt and every candidate reuses it:

- "cache" (default): decoder-only models run the prompt once and each candidate continues from the
  prompt's key/value cache (gathered per candidate); encoder-decoder models encode the prompt once,
  run the decoder-start position once, and every candidate reuses the cached cross-attention
  keys/values and start position.
- "packed" (decoder-only): the candidates are packed after one copy of the prompt in a single
  sequence; a block attention mask keeps them from seeing each other and position ids restart at
  the prompt's end for each one. No cache object, so it also runs under gradient checkpointing.
- "recompute" (encoder-decoder): the prompt is encoded once; the decoder runs each candidate against
  the shared encoder output without a cache (what gradient checkpointing needs).

"auto" picks "packed" for decoder-only models (the faster of the two in the benchmark; "cache" if
the attention implementation cannot take a custom mask) and "cache" for encoder-decoders, or
"recompute" while gradient checkpointing is active.
Only the logits that are needed are computed: the last prompt (or decoder-start) position and the
positions that predict action tokens, never the full-vocabulary logits of the whole prompt.
Everything is differentiable: gradients flow through the shared prompt states into the model.

`naive_scores` (one forward per prompt/candidate pair) and `padded_batch_scores` (every pair as its
own padded sequence in one batch, full logits) are the references used by the tests and the
benchmark.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "NORMALIZATIONS",
    "SCORING_METHODS",
    "ActionScorer",
    "PromptTruncationWarning",
    "ScoreOutput",
    "TokenizedBatch",
    "naive_scores",
    "padded_batch_scores",
]

NORMALIZATIONS = ("sum", "token", "word")
SCORING_METHODS = ("auto", "cache", "packed", "recompute")
_T5_TYPES = ("t5", "mt5", "umt5", "longt5")


class PromptTruncationWarning(UserWarning):
    """A prompt was longer than the model accepts and lost its beginning."""


@dataclass
class TokenizedBatch:
    """Token ids of a scoring call, before padding. Pairs are ordered by prompt, then candidate."""

    prompt_ids: list[list[int]]  # B lists, already truncated
    candidate_ids: list[list[int]]  # N lists, one per (prompt, candidate) pair
    pair_prompt: list[int]  # (N,) prompt index of each pair
    pair_slot: list[int]  # (N,) candidate index within its prompt
    num_words: list[int]  # (N,) words of each candidate ("word" normalisation)
    num_candidates: list[int]  # (B,)
    num_truncated: int = 0

    def select(self, prompts: list[int]) -> tuple[TokenizedBatch, list[int]]:
        """The sub-batch of these prompts (in this order) and the indices of its pairs here."""
        starts = [0]
        for count in self.num_candidates:
            starts.append(starts[-1] + count)
        pairs = [n for i in prompts for n in range(starts[i], starts[i + 1])]
        remap = {i: k for k, i in enumerate(prompts)}
        sub = TokenizedBatch(
            prompt_ids=[self.prompt_ids[i] for i in prompts],
            candidate_ids=[self.candidate_ids[n] for n in pairs],
            pair_prompt=[remap[self.pair_prompt[n]] for n in pairs],
            pair_slot=[self.pair_slot[n] for n in pairs],
            num_words=[self.num_words[n] for n in pairs],
            num_candidates=[self.num_candidates[i] for i in prompts],
        )
        return sub, pairs


@dataclass
class ScoreOutput:
    scores: torch.Tensor  # (B, A_max) fp32, -inf where a prompt has fewer candidates
    token_logprobs: torch.Tensor  # (N, L) fp32 log-prob of each action token, 0 at padding
    token_mask: torch.Tensor  # (N, L) bool
    features: torch.Tensor  # (B, d) prompt hidden state for the heads (model dtype)
    pair_prompt: torch.Tensor  # (N,)
    pair_slot: torch.Tensor  # (N,)
    method: str


@dataclass
class _Collated:
    prompt_ids: torch.Tensor  # (B, Tp)
    prompt_mask: torch.Tensor  # (B, Tp) long
    cand: torch.Tensor  # (N, L) right-padded
    cand_mask: torch.Tensor  # (N, L) bool
    pair_prompt: torch.Tensor  # (N,)
    pair_slot: torch.Tensor  # (N,)
    num_tokens: torch.Tensor  # (N,)
    num_words: torch.Tensor  # (N,)
    num_candidates: list[int]

    @property
    def rest_mask(self) -> torch.Tensor:  # (N, L-1): positions that predict tokens 1..L-1
        return self.cand_mask[:, 1:]


def _check_normalization(normalization: str) -> str:
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"unknown normalization {normalization!r}; choose one of {NORMALIZATIONS} "
            "('sum' = log P(action), 'token' = mean per token, 'word' = per word)"
        )
    return normalization


def _reduce(token_lp, num_tokens, num_words, normalization):
    total = token_lp.sum(-1)  # (N,)
    if normalization == "token":
        return total / num_tokens.to(total.dtype)
    if normalization == "word":
        return total / num_words.to(total.dtype)
    return total


def _to_matrix(values, pair_prompt, pair_slot, num_candidates):
    """(N,) per-pair values -> (B, A_max), -inf where a prompt has fewer candidates."""
    B, A = len(num_candidates), max(num_candidates)
    out = values.new_full((B, A), -math.inf)
    return out.index_put((pair_prompt, pair_slot), values)


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
            decoder-only models (the action continues "Action k:") and "" for encoder-decoders.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        normalization: str = "sum",
        method: str = "auto",
        max_prompt_tokens: int | None = None,
        action_prefix: str | None = None,
        length_bucketing: bool = True,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.normalization = _check_normalization(normalization)
        if method not in SCORING_METHODS:
            raise ValueError(f"unknown scoring method {method!r}; choose one of {SCORING_METHODS}")
        self.method = method
        if max_prompt_tokens is not None and (
            not isinstance(max_prompt_tokens, int) or max_prompt_tokens < 1
        ):
            raise ValueError(
                f"max_prompt_tokens must be a positive int or None, got {max_prompt_tokens!r}"
            )
        self.max_prompt_tokens = max_prompt_tokens
        config = model.config
        self.is_encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
        self.model_type = getattr(config, "model_type", "")
        self.action_prefix = (
            action_prefix if action_prefix is not None else ("" if self.is_encoder_decoder else " ")
        )
        if self.is_encoder_decoder:
            self.encoder = model.get_encoder()
            self.decoder = model.get_decoder()
            if self.encoder is model or self.decoder is model:
                raise ValueError(f"cannot find the encoder and decoder of {type(model).__name__}")
            self.decoder_start_id = getattr(config, "decoder_start_token_id", None)
            if self.decoder_start_id is None:
                raise ValueError("the model config has no decoder_start_token_id")
            self._cache_kw = self._cache_keyword(self.decoder)
        else:
            self.backbone = model.base_model
            if self.backbone is model:
                raise ValueError(
                    f"{type(model).__name__} exposes no base model (base_model_prefix); "
                    "pass a *ForCausalLM model"
                )
            self._cache_kw = self._cache_keyword(self.backbone)
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.pad_id = int(pad)
        self._candidate_cache: dict[str, list[int]] = {}
        self.length_bucketing = length_bucketing
        # What one extra forward call costs, in prompt tokens of compute (rough CPU figures: ~4 ms
        # of call overhead, ~50 GFLOP/s): splitting a batch by prompt length pays off only when
        # it saves more padded tokens than this per extra call.
        prompt_side = self.encoder if self.is_encoder_decoder else self.backbone
        skip = {id(model.get_input_embeddings().weight)}
        params = sum(p.numel() for p in prompt_side.parameters() if id(p) not in skip)
        self._call_cost_tokens = 4e-3 / max(2.0 * params / 5e10, 1e-12)

    # ------------------------------------------------------------------ properties

    @staticmethod
    def _cache_keyword(module) -> str:
        params = inspect.signature(module.forward).parameters
        return "cache" if "cache" in params else "past_key_values"

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    @property
    def hidden_size(self) -> int:
        """Width of the hidden states the heads read."""
        size = getattr(
            self.model.config, "hidden_size", None
        )  # d_model / n_embd via attribute maps
        if isinstance(size, int):
            return size
        return int(self.model.get_input_embeddings().weight.shape[1])

    @property
    def model_max_length(self) -> int | None:
        """Most tokens the prompt side accepts (positions for decoder-only models)."""
        if not self.is_encoder_decoder:
            for key in ("max_position_embeddings", "n_positions", "n_ctx"):
                value = getattr(self.model.config, key, None)
                if isinstance(value, int) and value > 0:
                    return value
        value = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(value, int) and 0 < value < 1_000_000:
            return value
        return None

    def _checkpointing(self) -> bool:
        return (
            self.model.training
            and torch.is_grad_enabled()
            and any(
                getattr(m, "gradient_checkpointing", False) is True for m in self.model.modules()
            )
        )

    def resolve_method(self, method: str | None = None) -> str:
        method = method or self.method
        if method not in SCORING_METHODS:
            raise ValueError(f"unknown scoring method {method!r}; choose one of {SCORING_METHODS}")
        if method == "packed" and self.is_encoder_decoder:
            raise ValueError(
                "method 'packed' is for decoder-only models; use 'cache' or 'recompute'"
            )
        if method == "recompute" and not self.is_encoder_decoder:
            raise ValueError(
                "method 'recompute' is for encoder-decoder models; use 'cache' or 'packed'"
            )
        checkpointing = self._checkpointing()
        impl = getattr(self.model.config, "_attn_implementation", None)
        packable = impl in (None, "eager", "sdpa")
        if method == "auto":
            if self.is_encoder_decoder:
                return "recompute" if checkpointing else "cache"
            # packed is the faster one in benchmarks/scoring_throughput.py (no cache copies)
            if packable or checkpointing:
                return "packed"
            return "cache"
        if method == "cache" and checkpointing:
            raise ValueError(
                "method 'cache' cannot run under gradient checkpointing in training mode "
                "(transformers drops the cache there); use 'auto'"
            )
        if method == "packed":
            if not packable:
                raise ValueError(
                    f"method 'packed' needs a custom 4D attention mask, which attn_implementation "
                    f"{impl!r} does not take; use 'cache' or attn_implementation='sdpa'"
                )
        return method

    # ------------------------------------------------------------------ tokenization

    def _encode_candidate(self, text: str) -> list[int]:
        ids = self._candidate_cache.get(text)
        if ids is None:
            ids = list(
                self.tokenizer(self.action_prefix + text, add_special_tokens=False)["input_ids"]
            )
            if len(self._candidate_cache) < 100_000:
                self._candidate_cache[text] = ids
        return ids

    def _check_prompts(self, prompts) -> None:
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise TypeError("prompts must be a list of str (wrap a single prompt in a list)")
        if len(prompts) == 0:
            raise ValueError("prompts is empty")
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise TypeError(f"prompts[{i}] is a {type(p).__name__}, expected str")

    def tokenize(
        self,
        prompts: Sequence[str],
        candidates: Sequence[Sequence[str]] | Sequence[str],
    ) -> TokenizedBatch:
        """Validate and tokenize. `candidates` is one list per prompt, or one list for all."""
        self._check_prompts(prompts)
        if isinstance(candidates, str) or not isinstance(candidates, Sequence):
            raise TypeError(
                "candidates must be a list of candidate lists (or one list of str for all prompts)"
            )
        if len(candidates) > 0 and all(isinstance(c, str) for c in candidates):
            candidates = [list(candidates)] * len(prompts)
        if len(candidates) != len(prompts):
            raise ValueError(
                f"got {len(prompts)} prompts but {len(candidates)} candidate lists; pass one list "
                "of candidates per prompt (or a single list of str shared by all prompts)"
            )
        pair_prompt, pair_slot, cand_ids, num_words, counts, reserves = [], [], [], [], [], []
        for i, cands in enumerate(candidates):
            if isinstance(cands, str) or not isinstance(cands, Sequence):
                raise TypeError(
                    f"candidates[{i}] must be a list of str, got {type(cands).__name__}"
                )
            if len(cands) == 0:
                raise ValueError(
                    f"candidates[{i}] is empty: every prompt needs at least one candidate action"
                )
            lengths = []
            for j, c in enumerate(cands):
                if not isinstance(c, str):
                    raise TypeError(f"candidates[{i}][{j}] is a {type(c).__name__}, expected str")
                ids = self._encode_candidate(c)
                if not ids or not c.strip():
                    raise ValueError(
                        f"candidates[{i}][{j}] = {c!r} has no tokens; "
                        "candidates must be non-empty text"
                    )
                pair_prompt.append(i)
                pair_slot.append(j)
                cand_ids.append(ids)
                num_words.append(max(1, len(c.split())))
                lengths.append(len(ids))
            counts.append(len(cands))
            reserves.append(self._reserve(lengths))
        prompt_ids, truncated = self._tokenize_prompts(prompts, reserves)
        return TokenizedBatch(
            prompt_ids, cand_ids, pair_prompt, pair_slot, num_words, counts, truncated
        )

    def _reserve(self, candidate_lengths: list[int]) -> int:
        """Positions a decoder-only model needs after the prompt for these candidates: enough for
        the packed layout, which also covers prompt + any whole action, so every method (and the
        per-pair reference) scores the same truncated prompt."""
        if self.is_encoder_decoder:
            return 0
        return sum(n - 1 for n in candidate_lengths) + 1

    def _tokenize_prompts(self, prompts: Sequence[str], reserves: list[int]):
        # verbose=False: we truncate (and warn) ourselves, below
        encoded = self.tokenizer(list(prompts), add_special_tokens=True, verbose=False)["input_ids"]
        bos = self.tokenizer.bos_token_id
        eos = self.tokenizer.eos_token_id
        prompt_ids, truncated = [], 0
        for i, ids in enumerate(encoded):
            ids = list(ids)
            if not self.is_encoder_decoder and eos is not None and len(ids) > 1 and ids[-1] == eos:
                ids = ids[:-1]  # a decoder-only prompt must end where the action starts
            limit = self._prompt_limit(reserves[i])
            if len(ids) > limit:
                keep_bos = bos is not None and ids[0] == bos and limit > 1
                ids = ([bos] + ids[len(ids) - limit + 1 :]) if keep_bos else ids[len(ids) - limit :]
                truncated += 1
            if not ids:
                raise ValueError(f"prompts[{i}] has no tokens")
            prompt_ids.append(ids)
        if truncated:
            warnings.warn(
                f"{truncated} prompt(s) exceeded the {self._describe_limit()} and were truncated "
                "from the left (the end of the prompt is kept); shorten the history "
                "(num_observations) or raise max_prompt_tokens",
                PromptTruncationWarning,
                stacklevel=4,
            )
        return prompt_ids, truncated

    def _describe_limit(self) -> str:
        parts = []
        if self.max_prompt_tokens is not None:
            parts.append(f"max_prompt_tokens={self.max_prompt_tokens}")
        if self.model_max_length is not None:
            parts.append(f"model limit of {self.model_max_length} tokens")
        return " / ".join(parts) or "token limit"

    def _prompt_limit(self, reserve: int) -> int:
        limit = self.max_prompt_tokens if self.max_prompt_tokens is not None else math.inf
        model_max = self.model_max_length
        if model_max is not None:
            if model_max - reserve < 1:
                raise ValueError(
                    f"the candidates need {reserve} positions after the prompt but the model "
                    f"accepts only {model_max}; shorten the candidates"
                )
            limit = min(limit, model_max - reserve)
        return int(limit) if limit != math.inf else 1 << 60

    def collate(self, tb: TokenizedBatch) -> _Collated:
        device = self.device
        B = len(tb.prompt_ids)
        Tp = max(len(p) for p in tb.prompt_ids)
        prompt_ids = torch.full((B, Tp), self.pad_id, dtype=torch.long)
        prompt_mask = torch.zeros((B, Tp), dtype=torch.long)
        for i, ids in enumerate(tb.prompt_ids):
            if self.is_encoder_decoder:  # right padding: positions are relative anyway
                prompt_ids[i, : len(ids)] = torch.tensor(ids)
                prompt_mask[i, : len(ids)] = 1
            else:  # left padding: every prompt ends at the last column, where actions start
                prompt_ids[i, Tp - len(ids) :] = torch.tensor(ids)
                prompt_mask[i, Tp - len(ids) :] = 1
        N = len(tb.candidate_ids)
        L = max(len(c) for c in tb.candidate_ids)
        cand = torch.full((N, L), self.pad_id, dtype=torch.long)
        cand_mask = torch.zeros((N, L), dtype=torch.bool)
        for n, ids in enumerate(tb.candidate_ids):
            cand[n, : len(ids)] = torch.tensor(ids)
            cand_mask[n, : len(ids)] = True
        return _Collated(
            prompt_ids=prompt_ids.to(device),
            prompt_mask=prompt_mask.to(device),
            cand=cand.to(device),
            cand_mask=cand_mask.to(device),
            pair_prompt=torch.tensor(tb.pair_prompt, device=device),
            pair_slot=torch.tensor(tb.pair_slot, device=device),
            num_tokens=cand_mask.sum(-1).to(device),
            num_words=torch.tensor(tb.num_words, device=device),
            num_candidates=list(tb.num_candidates),
        )

    # ------------------------------------------------------------------ output head

    def output_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits for hidden states (..., d), as the model's own forward makes them."""
        config = self.model.config
        if self.model_type in _T5_TYPES:
            scale = getattr(config, "scale_decoder_outputs", None)
            if scale is None:  # transformers before the scale_decoder_outputs attribute
                scale = getattr(config, "tie_word_embeddings", True)
            if scale:
                hidden = hidden * (config.d_model**-0.5)
        head = self.model.get_output_embeddings()
        logits = head(hidden)
        bias = getattr(self.model, "final_logits_bias", None)
        if isinstance(bias, torch.Tensor):
            logits = logits + bias.to(logits.dtype)
        cap = getattr(config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def _log_probs(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log_softmax(logits(hidden))[target], in fp32. hidden (M, d), targets (M,) -> (M,)."""
        logits = self.output_logits(hidden).float()  # (M, V)
        return logits.log_softmax(-1).gather(-1, targets[:, None]).squeeze(-1)

    def _token_logprobs(self, t: _Collated, h_first: torch.Tensor, h_rest: torch.Tensor | None):
        """h_first (B, d): state predicting each prompt's first action token; h_rest (M, d): the
        states predicting tokens 1.. of each pair, row-major over t.rest_mask. -> (N, L) fp32."""
        first_lp = self.output_logits(h_first).float().log_softmax(-1)  # (B, V)
        lp0 = first_lp[t.pair_prompt, t.cand[:, 0]]  # (N,)
        N, L = t.cand.shape
        if L == 1:
            return lp0[:, None]
        rest = t.rest_mask
        lp_rest = self._log_probs(h_rest, t.cand[:, 1:][rest])  # (M,)
        idx = rest.nonzero(as_tuple=True)
        out = lp0.new_zeros((N, L - 1)).index_put(idx, lp_rest)  # (N, L-1)
        return torch.cat([lp0[:, None], out], dim=1)

    # ------------------------------------------------------------------ forwards

    def _get_cache(self, out):
        cache = getattr(out, "cache", None)
        if cache is None:
            cache = getattr(out, "past_key_values", None)
        if cache is None:
            raise RuntimeError(
                "the model returned no key/value cache; use method='packed' or 'recompute'"
            )
        return cache

    def _causal_positions(self, mask: torch.Tensor) -> torch.Tensor:
        return (mask.cumsum(-1) - 1).clamp(min=0)

    def _forward_causal_cache(self, t: _Collated):
        need_rest = t.cand.shape[1] > 1
        out = self.backbone(
            input_ids=t.prompt_ids,
            attention_mask=t.prompt_mask,
            position_ids=self._causal_positions(t.prompt_mask),
            use_cache=need_rest,
        )
        h = out.last_hidden_state  # (B, Tp, d)
        h_first = h[:, -1]  # left padding: the last column is every prompt's last token
        if not need_rest:
            return h_first, None, h_first
        cache = self._get_cache(out)
        multi = (t.num_tokens > 1).nonzero(as_tuple=True)[
            0
        ]  # (N',) pairs with tokens after the first
        owner = t.pair_prompt[multi]  # (N',)
        cache.batch_select_indices(owner)  # (B, ...) -> (N', ...), a differentiable gather
        n, L = multi.numel(), t.cand.shape[1]
        inputs = t.cand[multi, :-1]  # (N', L-1): token t predicts token t+1
        ones = t.prompt_mask.new_ones((n, L - 1))
        attn = torch.cat([t.prompt_mask[owner], ones], dim=1)  # (N', Tp + L-1)
        start = t.prompt_mask.sum(-1)[owner]  # (N',) real prompt lengths
        positions = start[:, None] + torch.arange(L - 1, device=start.device)[None]
        out2 = self.backbone(
            input_ids=inputs,
            attention_mask=attn,
            position_ids=positions,
            use_cache=True,
            **{self._cache_kw: cache},
        )
        h_rest = out2.last_hidden_state[t.rest_mask[multi]]  # (M, d), rest_mask's row-major order
        return h_first, h_rest, h_first

    def _forward_causal_packed(self, t: _Collated):
        B, Tp = t.prompt_ids.shape
        device = t.prompt_ids.device
        rest = t.rest_mask  # (N, L-1)
        rest_len = rest.sum(-1)  # (N,)
        # offset of each pair's block inside its prompt's packed region (pairs are prompt-ordered)
        counts = torch.tensor(t.num_candidates, device=device)
        block_start = torch.cumsum(counts, 0) - counts  # (B,) first pair of each prompt
        csum = torch.cumsum(rest_len, 0) - rest_len  # (N,) exclusive, global
        offset = csum - csum[block_start][t.pair_prompt]  # (N,) within the prompt
        per_prompt = torch.zeros(B, dtype=torch.long, device=device).index_add(
            0, t.pair_prompt, rest_len
        )
        S = int(per_prompt.max()) if per_prompt.numel() else 0
        T = Tp + S
        prompt_pos = self._causal_positions(t.prompt_mask)
        ids = torch.full((B, T), self.pad_id, dtype=torch.long, device=device)
        seg = torch.full((B, T), -2, dtype=torch.long, device=device)  # -2: packing pad
        pos = torch.zeros((B, T), dtype=torch.long, device=device)
        ids[:, :Tp] = t.prompt_ids
        seg[:, :Tp] = torch.where(t.prompt_mask.bool(), 0, -1)  # 0: shared prompt, -1: prompt pad
        pos[:, :Tp] = prompt_pos
        pair_idx, tok_idx = rest.nonzero(as_tuple=True)  # row-major over (pair, token)
        rows = t.pair_prompt[pair_idx]
        cols = Tp + offset[pair_idx] + tok_idx
        if S > 0:
            ids[rows, cols] = t.cand[pair_idx, tok_idx]
            seg[rows, cols] = t.pair_slot[pair_idx] + 1
            pos[rows, cols] = t.prompt_mask.sum(-1)[rows] + tok_idx
        q = torch.arange(T, device=device)
        causal = q[None, :] <= q[:, None]  # (T, T): key <= query
        seg_q, seg_k = seg[:, :, None], seg[:, None, :]
        allowed = causal[None] & ((seg_k == 0) | ((seg_k == seg_q) & (seg_q > 0)))
        allowed = allowed | torch.eye(T, dtype=torch.bool, device=device)[None]  # no empty rows
        dtype = self.model.get_input_embeddings().weight.dtype
        mask = torch.zeros((B, 1, T, T), dtype=dtype, device=device)
        mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
        out = self.backbone(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
        h = out.last_hidden_state  # (B, T, d)
        h_first = h[:, Tp - 1]
        h_rest = h[rows, cols] if S > 0 else None  # (M, d), same order as rest.nonzero()
        return h_first, h_rest, h_first

    def _encode(self, t: _Collated):
        return self.encoder(input_ids=t.prompt_ids, attention_mask=t.prompt_mask).last_hidden_state

    def _start_ids(self, n: int, device) -> torch.Tensor:
        return torch.full((n, 1), self.decoder_start_id, dtype=torch.long, device=device)

    def _forward_seq2seq_cache(self, t: _Collated):
        enc = self._encode(t)  # (B, Tp, d)
        B = enc.shape[0]
        N, L = t.cand.shape
        need_rest = L > 1
        extra = {}
        if need_rest and self._cache_kw == "cache":
            from transformers.cache_utils import DynamicCache, EncoderDecoderCache

            # built here rather than by the model: its config-driven constructor costs ~1 ms/call
            extra["cache"] = EncoderDecoderCache(DynamicCache(), DynamicCache())
        out = self.decoder(
            input_ids=self._start_ids(B, enc.device),
            encoder_hidden_states=enc,
            encoder_attention_mask=t.prompt_mask,
            use_cache=need_rest,
            **extra,
        )
        h_first = out.last_hidden_state[:, 0]  # (B, d) decoder-start position
        if not need_rest:
            return h_first, None, h_first
        cache = self._get_cache(out)
        updated = getattr(cache, "is_updated", None)
        if isinstance(updated, dict):
            num_layers = len(cache.cross_attention_cache.layers)
            if not all(updated.get(i, False) for i in range(num_layers)):
                raise RuntimeError("cross-attention cache was not filled; use method='recompute'")
        multi = (t.num_tokens > 1).nonzero(as_tuple=True)[
            0
        ]  # (N',) pairs with tokens after the first
        owner = t.pair_prompt[multi]
        cache.batch_select_indices(owner)  # self- and cross-attention caches -> (N', ...)
        out2 = self.decoder(
            input_ids=t.cand[multi, :-1],
            # Keys/values come from the cache; the tensor only gives the source length and must
            # not be None (it switches cross-attention on). A zero-copy view is enough.
            encoder_hidden_states=enc[:1].expand(multi.numel(), -1, -1),
            encoder_attention_mask=t.prompt_mask[owner],
            use_cache=True,
            **{self._cache_kw: cache},
        )
        h_rest = out2.last_hidden_state[t.rest_mask[multi]]
        return h_first, h_rest, h_first

    def _forward_seq2seq_recompute(self, t: _Collated):
        enc = self._encode(t)  # (B, Tp, d)
        N, L = t.cand.shape
        dec_in = torch.cat([self._start_ids(N, enc.device), t.cand[:, :-1]], dim=1)  # (N, L)
        out = self.decoder(
            input_ids=dec_in,
            encoder_hidden_states=enc[t.pair_prompt],
            encoder_attention_mask=t.prompt_mask[t.pair_prompt],
            use_cache=False,
        )
        h = out.last_hidden_state  # (N, L, d)
        counts = torch.tensor(t.num_candidates, device=h.device)
        first_pair = torch.cumsum(counts, 0) - counts  # (B,)
        h_first = h[first_pair, 0]
        h_rest = h[:, 1:][t.rest_mask] if L > 1 else None
        return h_first, h_rest, h_first

    # ------------------------------------------------------------------ public API

    def prompt_features(self, prompts: Sequence[str]) -> torch.Tensor:
        """(B, d) hidden state of each prompt: the last prompt token (decoder-only) or the last
        decoder layer at the decoder-start position (encoder-decoder). Model dtype."""
        self._check_prompts(prompts)
        prompt_ids, _ = self._tokenize_prompts(prompts, [0] * len(prompts))
        tb = TokenizedBatch(prompt_ids, [[self.pad_id]], [0], [0], [1], [1])
        t = self.collate(tb)
        if self.is_encoder_decoder:
            enc = self._encode(t)
            out = self.decoder(
                input_ids=self._start_ids(enc.shape[0], enc.device),
                encoder_hidden_states=enc,
                encoder_attention_mask=t.prompt_mask,
                use_cache=False,
            )
            return out.last_hidden_state[:, 0]
        out = self.backbone(
            input_ids=t.prompt_ids,
            attention_mask=t.prompt_mask,
            position_ids=self._causal_positions(t.prompt_mask),
            use_cache=False,
        )
        return out.last_hidden_state[:, -1]

    def score(
        self,
        prompts: Sequence[str],
        candidates: Sequence[Sequence[str]] | Sequence[str],
        *,
        normalization: str | None = None,
        method: str | None = None,
    ) -> ScoreOutput:
        """Score every candidate of every prompt. Differentiable when grad is enabled."""
        normalization = _check_normalization(normalization or self.normalization)
        method = self.resolve_method(method)
        tb = self.tokenize(prompts, candidates)
        groups = self._length_groups(tb)
        if len(groups) == 1:
            return self._score_tokenized(tb, method, normalization)
        parts = []
        for group in groups:
            sub, pairs = tb.select(group)
            parts.append((group, pairs, self._score_tokenized(sub, method, normalization)))
        return self._merge(tb, parts, method)

    def _length_groups(self, tb: TokenizedBatch) -> list[list[int]]:
        """Prompts split into groups of similar length, when the padding this saves outweighs
        the extra forward calls (CPU only: a GPU prefers one large batch)."""
        B = len(tb.prompt_ids)
        everything = [list(range(B))]
        if not self.length_bucketing or B < 2 or self.device.type != "cpu":
            return everything
        extra = [0] * B  # packed candidate tokens ride along with the prompt (decoder-only)
        if not self.is_encoder_decoder:
            for n, ids in enumerate(tb.candidate_ids):
                extra[tb.pair_prompt[n]] += len(ids) - 1
        lengths = [len(p) + e for p, e in zip(tb.prompt_ids, extra, strict=True)]
        order = sorted(range(B), key=lengths.__getitem__)
        ordered = [lengths[i] for i in order]
        # minimise padded tokens + call cost over contiguous runs of the sorted lengths
        best, back = [0.0] + [math.inf] * B, [0] * (B + 1)
        for j in range(1, B + 1):
            for i in range(max(0, j - 64), j):
                cost = best[i] + (j - i) * ordered[j - 1] + self._call_cost_tokens
                if cost < best[j]:
                    best[j], back[j] = cost, i
        groups, j = [], B
        while j > 0:
            groups.append(order[back[j] : j])
            j = back[j]
        return groups[::-1] if len(groups) > 1 else everything

    def _merge(self, tb: TokenizedBatch, parts, method: str) -> ScoreOutput:
        """Reassemble per-group outputs in the original prompt and pair order."""
        A = max(tb.num_candidates)
        L = max(len(c) for c in tb.candidate_ids)
        prompt_order = [i for group, _, _ in parts for i in group]
        pair_order = [n for _, pairs, _ in parts for n in pairs]
        device = parts[0][2].scores.device
        inv_prompt = torch.argsort(torch.tensor(prompt_order, device=device))
        inv_pair = torch.argsort(torch.tensor(pair_order, device=device))
        scores = torch.cat(
            [F.pad(o.scores, (0, A - o.scores.shape[1]), value=-math.inf) for *_, o in parts]
        )
        token_lp = torch.cat(
            [F.pad(o.token_logprobs, (0, L - o.token_logprobs.shape[1])) for *_, o in parts]
        )
        token_mask = torch.cat(
            [F.pad(o.token_mask, (0, L - o.token_mask.shape[1])) for *_, o in parts]
        )
        features = torch.cat([o.features for *_, o in parts])
        return ScoreOutput(
            scores=scores[inv_prompt],
            token_logprobs=token_lp[inv_pair],
            token_mask=token_mask[inv_pair],
            features=features[inv_prompt],
            pair_prompt=torch.tensor(tb.pair_prompt, device=device),
            pair_slot=torch.tensor(tb.pair_slot, device=device),
            method=method,
        )

    def _score_tokenized(self, tb: TokenizedBatch, method: str, normalization: str) -> ScoreOutput:
        t = self.collate(tb)
        forward = {
            ("cache", False): self._forward_causal_cache,
            ("packed", False): self._forward_causal_packed,
            ("cache", True): self._forward_seq2seq_cache,
            ("recompute", True): self._forward_seq2seq_recompute,
        }[(method, self.is_encoder_decoder)]
        h_first, h_rest, features = forward(t)
        token_lp = self._token_logprobs(t, h_first, h_rest)  # (N, L)
        token_lp = token_lp * t.cand_mask  # padding contributes exactly 0
        per_pair = _reduce(token_lp, t.num_tokens, t.num_words, normalization)  # (N,)
        scores = _to_matrix(per_pair, t.pair_prompt, t.pair_slot, t.num_candidates)
        return ScoreOutput(
            scores, token_lp, t.cand_mask, features, t.pair_prompt, t.pair_slot, method
        )

    __call__ = score

    @torch.no_grad()
    def verify(self, atol: float = 1e-3) -> None:
        """Check the fast path against the naive per-pair computation on a tiny input; raises
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
            methods = ["cache", "recompute" if self.is_encoder_decoder else "packed"]
            for method in methods:
                got = self.score(prompts, candidates, normalization="sum", method=method).scores
                err = (got - want).abs().max().item()
                if not err <= atol * max(1.0, want.abs().max().item()):
                    raise RuntimeError(
                        f"scoring method {method!r} disagrees with the per-pair forward of "
                        f"{type(self.model).__name__} by {err:.3g}; "
                        "this architecture is not supported"
                    )
        finally:
            self.model.train(was_training)


# ---------------------------------------------------------------------- references


def _pair_logprobs_from_full_logits(logits, targets):
    return logits.float().log_softmax(-1).gather(-1, targets[:, None]).squeeze(-1)


def naive_scores(
    scorer: ActionScorer,
    prompts: Sequence[str],
    candidates: Sequence[Sequence[str]] | Sequence[str],
    normalization: str = "sum",
) -> torch.Tensor:
    """Reference: one full model forward per (prompt, candidate) pair. Returns (B, A_max)."""
    normalization = _check_normalization(normalization)
    tb = scorer.tokenize(prompts, candidates)
    model, device = scorer.model, scorer.device
    values = []
    for n, cand in enumerate(tb.candidate_ids):
        prompt = tb.prompt_ids[tb.pair_prompt[n]]
        target = torch.tensor(cand, device=device)
        if scorer.is_encoder_decoder:
            dec = torch.tensor([[scorer.decoder_start_id, *cand[:-1]]], device=device)
            logits = model(
                input_ids=torch.tensor([prompt], device=device), decoder_input_ids=dec
            ).logits[0]
        else:
            ids = torch.tensor([prompt + cand], device=device)
            logits = model(input_ids=ids).logits[0, len(prompt) - 1 : len(prompt) - 1 + len(cand)]
        values.append(_pair_logprobs_from_full_logits(logits, target).sum())
    total = torch.stack(values)
    num_tokens = torch.tensor([len(c) for c in tb.candidate_ids], device=device)
    num_words = torch.tensor(tb.num_words, device=device)
    per_pair = _reduce(total[:, None], num_tokens, num_words, normalization)
    return _to_matrix(
        per_pair,
        torch.tensor(tb.pair_prompt, device=device),
        torch.tensor(tb.pair_slot, device=device),
        tb.num_candidates,
    )


def padded_batch_scores(
    scorer: ActionScorer,
    prompts: Sequence[str],
    candidates: Sequence[Sequence[str]] | Sequence[str],
    normalization: str = "sum",
) -> torch.Tensor:
    """Baseline: every pair as its own (prompt + action) sequence, right-padded into one batch,
    one forward with full-vocabulary logits at every position. Returns (B, A_max)."""
    normalization = _check_normalization(normalization)
    tb = scorer.tokenize(prompts, candidates)
    model, device, pad = scorer.model, scorer.device, scorer.pad_id
    N = len(tb.candidate_ids)
    L = max(len(c) for c in tb.candidate_ids)
    cand = torch.full((N, L), pad, dtype=torch.long)
    cand_mask = torch.zeros((N, L), dtype=torch.bool)
    for n, c in enumerate(tb.candidate_ids):
        cand[n, : len(c)] = torch.tensor(c)
        cand_mask[n, : len(c)] = True
    cand, cand_mask = cand.to(device), cand_mask.to(device)
    prompts_ids = [tb.prompt_ids[i] for i in tb.pair_prompt]
    if scorer.is_encoder_decoder:
        Tp = max(len(p) for p in prompts_ids)
        enc = torch.full((N, Tp), pad, dtype=torch.long)
        enc_mask = torch.zeros((N, Tp), dtype=torch.long)
        for n, p in enumerate(prompts_ids):
            enc[n, : len(p)] = torch.tensor(p)
            enc_mask[n, : len(p)] = 1
        start = torch.full((N, 1), scorer.decoder_start_id, dtype=torch.long, device=device)
        dec = torch.cat([start, cand[:, :-1]], dim=1)
        logits = model(
            input_ids=enc.to(device), attention_mask=enc_mask.to(device), decoder_input_ids=dec
        ).logits
        lp = logits.float().log_softmax(-1).gather(-1, cand[..., None]).squeeze(-1)  # (N, L)
    else:
        T = max(len(p) + len(c) for p, c in zip(prompts_ids, tb.candidate_ids, strict=True))
        ids = torch.full((N, T), pad, dtype=torch.long)
        mask = torch.zeros((N, T), dtype=torch.long)
        for n, (p, c) in enumerate(zip(prompts_ids, tb.candidate_ids, strict=True)):
            ids[n, : len(p) + len(c)] = torch.tensor(p + c)
            mask[n, : len(p) + len(c)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits  # (N, T, V)
        starts = torch.tensor([len(p) - 1 for p in prompts_ids], device=device)  # (N,)
        positions = (starts[:, None] + torch.arange(L, device=device)[None]).clamp(max=T - 1)
        # pick the action positions before the softmax, only to bound this baseline's memory
        picked = logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))
        lp = picked.float().log_softmax(-1).gather(-1, cand[..., None]).squeeze(-1)  # (N, L)
    lp = lp * cand_mask
    per_pair = _reduce(
        lp, cand_mask.sum(-1), torch.tensor(tb.num_words, device=device), normalization
    )
    return _to_matrix(
        per_pair,
        torch.tensor(tb.pair_prompt, device=device),
        torch.tensor(tb.pair_slot, device=device),
        tb.num_candidates,
    )
