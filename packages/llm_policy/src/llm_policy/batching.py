"""The token side of a scoring call: validation, tokenisation, prompt truncation, padding, length
groups, and the reduction of per-token log-probs to one score per candidate.

A scoring call holds B prompts, each with its own list of candidate strings. Every (prompt,
candidate) combination is a *pair*; the N pairs are always ordered by prompt, then by candidate, so
a prompt's pairs are contiguous and `pair_prompt` / `pair_slot` say where each one belongs in the
(B, A_max) score matrix.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, cast

import torch
import torch.nn.functional as F

__all__ = [
    "NORMALIZATIONS",
    "PairTokenizer",
    "PaddedBatch",
    "PromptTruncationWarning",
    "ScoreOutput",
    "TokenizedBatch",
    "UnknownWordWarning",
    "candidate_lists",
    "check_candidate_list",
    "check_normalization",
    "check_prompts",
    "forward_call_cost_tokens",
    "length_groups",
    "merge_group_outputs",
    "pad_batch",
    "pairs_to_matrix",
    "reduce_pairs",
]

NORMALIZATIONS = ("sum", "token", "word")
_CANDIDATE_CACHE_LIMIT = 100_000
_PROMPT_CACHE_LIMIT = 16_384
_WORD_START = "\u2581"  # "▁", SentencePiece's word-start marker


class PromptTruncationWarning(UserWarning):
    """A prompt was longer than the model accepts and lost its beginning."""


class UnknownWordWarning(UserWarning):
    """A prompt or candidate holds a word that the tokenizer maps to its unknown token."""


class IdenticalCandidatesWarning(UserWarning):
    """Two different candidates of one prompt tokenize to the same ids: the model reads them
    alike, so their scores can never differ."""


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
        new_index = {old: new for new, old in enumerate(prompts)}
        sub_batch = TokenizedBatch(
            prompt_ids=[self.prompt_ids[i] for i in prompts],
            candidate_ids=[self.candidate_ids[n] for n in pairs],
            pair_prompt=[new_index[self.pair_prompt[n]] for n in pairs],
            pair_slot=[self.pair_slot[n] for n in pairs],
            num_words=[self.num_words[n] for n in pairs],
            num_candidates=[self.num_candidates[i] for i in prompts],
        )
        return sub_batch, pairs


@dataclass
class PaddedBatch:
    """A `TokenizedBatch` as padded tensors on the model's device."""

    prompt_ids: torch.Tensor  # (B, Tp), left-padded for decoder-only models, else right-padded
    prompt_mask: torch.Tensor  # (B, Tp) long
    candidate_ids: torch.Tensor  # (N, L) right-padded
    candidate_mask: torch.Tensor  # (N, L) bool
    pair_prompt: torch.Tensor  # (N,)
    pair_slot: torch.Tensor  # (N,)
    num_tokens: torch.Tensor  # (N,)
    num_words: torch.Tensor  # (N,)
    num_candidates: list[int]  # (B,)

    @property
    def later_mask(self) -> torch.Tensor:
        """(N, L-1): which of tokens 1..L-1 of each candidate exist. The first token of every
        candidate is predicted by its prompt's last state; these later tokens by per-pair states."""
        return self.candidate_mask[:, 1:]

    def first_pair_of_prompts(self) -> torch.Tensor:
        """(B,) index of each prompt's first pair."""
        counts = torch.tensor(self.num_candidates, device=self.prompt_ids.device)
        return torch.cumsum(counts, 0) - counts


@dataclass
class ScoreOutput:
    """What `ActionScorer.score` returns."""

    scores: torch.Tensor  # (B, A_max) fp32, -inf where a prompt has fewer candidates
    token_logprobs: torch.Tensor  # (N, L) fp32 log-prob of each candidate token, 0 at padding
    token_mask: torch.Tensor  # (N, L) bool
    features: torch.Tensor  # (B, d) prompt hidden state for the heads (model dtype)
    pair_prompt: torch.Tensor  # (N,)
    pair_slot: torch.Tensor  # (N,)
    method: str


# ---------------------------------------------------------------------- validation


def check_normalization(normalization: str) -> str:
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"unknown normalization {normalization!r}; choose one of {NORMALIZATIONS} "
            "('sum' = log P(action), 'token' = mean per token, 'word' = per word)"
        )
    return normalization


def check_prompts(prompts: Any) -> None:
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise TypeError("prompts must be a list of str (wrap a single prompt in a list)")
    if len(prompts) == 0:
        raise ValueError("prompts is empty")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise TypeError(f"prompts[{i}] is a {type(prompt).__name__}, expected str")


def candidate_lists(
    candidates: Sequence[Sequence[str]] | Sequence[str], num_prompts: int
) -> Sequence[Sequence[str]]:
    """One candidate list per prompt; a single list of str is shared by every prompt (the same
    list object for each). Each list is checked by `check_candidate_list`, not here."""
    if isinstance(candidates, str) or not isinstance(candidates, Sequence):
        raise TypeError(
            "candidates must be a list of candidate lists (or one list of str for all prompts)"
        )
    if len(candidates) > 0 and all(isinstance(c, str) for c in candidates):
        # every item is a str: one candidate list shared by all prompts
        candidates = [list(cast(Sequence[str], candidates))] * num_prompts
    if len(candidates) != num_prompts:
        raise ValueError(
            f"got {num_prompts} prompts but {len(candidates)} candidate lists; pass one list "
            "of candidates per prompt (or a single list of str shared by all prompts)"
        )
    return candidates


def check_candidate_list(i: int, prompt_candidates: Any) -> None:
    """Refuse prompt i's candidates unless they are a non-empty list of distinct, non-blank str;
    the message names `candidates[i]`. (Whether each has tokens is the tokenizer's to say.)"""
    if isinstance(prompt_candidates, str) or not isinstance(prompt_candidates, Sequence):
        raise TypeError(
            f"candidates[{i}] must be a list of str, got {type(prompt_candidates).__name__}"
        )
    if len(prompt_candidates) == 0:
        raise ValueError(
            f"candidates[{i}] is empty: every prompt needs at least one candidate action"
        )
    first_slot: dict[str, int] = {}
    for j, candidate in enumerate(prompt_candidates):
        if not isinstance(candidate, str):
            raise TypeError(f"candidates[{i}][{j}] is a {type(candidate).__name__}, expected str")
        if candidate in first_slot:
            raise ValueError(
                f"candidates[{i}] lists {candidate!r} twice (at {first_slot[candidate]} "
                f"and {j}); each candidate of a prompt must be distinct, or the policy "
                "would count that action twice"
            )
        first_slot[candidate] = j
        if not candidate.strip():
            raise ValueError(_no_tokens(i, j, candidate))


def _no_tokens(i: int, j: int, candidate: str) -> str:
    return f"candidates[{i}][{j}] = {candidate!r} has no tokens; candidates must be non-empty"


def _stacklevel_outside_package() -> int:
    """`warnings.warn` stacklevel that names the first caller outside llm_policy (so the default
    once-per-location filter keys on the user's line, whichever entry point they called)."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and os.path.dirname(frame.f_code.co_filename) == package_dir:
        frame = frame.f_back
        level += 1
    return level


# ---------------------------------------------------------------------- tokenisation


class PairTokenizer:
    """Turns prompts and candidate lists into a `TokenizedBatch`.

    Candidates are tokenized on their own, without special tokens, after `action_prefix` (less a
    doubled SentencePiece word start, see `_drop_doubled_word_start`), and cached. Prompts get
    the tokenizer's special tokens; a decoder-only prompt loses a trailing EOS, since the candidate
    continues it. A prompt longer than the model accepts loses its beginning (a leading BOS is
    kept), with a `PromptTruncationWarning`: the end is where the current observation is.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        is_encoder_decoder: bool,
        action_prefix: str,
        max_prompt_tokens: int | None,
        model_max_length: int | None,
        warn_unknown_words: bool = False,
    ) -> None:
        if max_prompt_tokens is not None and (
            not isinstance(max_prompt_tokens, int) or max_prompt_tokens < 1
        ):
            raise ValueError(
                f"max_prompt_tokens must be a positive int or None, got {max_prompt_tokens!r}"
            )
        self.tokenizer = tokenizer
        self.is_encoder_decoder = is_encoder_decoder
        self.action_prefix = action_prefix
        self.max_prompt_tokens = max_prompt_tokens
        self.model_max_length = model_max_length
        self.warn_unknown_words = warn_unknown_words
        self._candidate_cache: dict[str, list[int]] = {}
        self._prompt_cache: dict[str, list[int]] = {}
        self._warned_words: set[str] = set()
        self._checked_lists: set[tuple[str, ...]] = set()

    def tokenize(
        self,
        prompts: Sequence[str],
        candidates: Sequence[Sequence[str]] | Sequence[str],
    ) -> TokenizedBatch:
        """Validate and tokenize. `candidates` is one list per prompt, or one list for all."""
        check_prompts(prompts)
        lists = candidate_lists(candidates, len(prompts))
        pair_prompt: list[int] = []
        pair_slot: list[int] = []
        candidate_ids: list[list[int]] = []
        num_words: list[int] = []
        num_candidates, reserves = [], []
        # a list object shared by many prompts (the usual `[actions] * n`) is checked once
        encoded_lists: dict[int, tuple[list[list[int]], list[int], int]] = {}
        for i, prompt_candidates in enumerate(lists):
            encoded = encoded_lists.get(id(prompt_candidates))
            if encoded is None:
                encoded = self._encode_candidates(i, prompt_candidates)
                encoded_lists[id(prompt_candidates)] = encoded
            ids, words, reserve = encoded
            count = len(ids)
            pair_prompt += [i] * count
            pair_slot += range(count)
            candidate_ids += ids
            num_words += words
            num_candidates.append(count)
            reserves.append(reserve)
        prompt_ids, num_truncated = self.tokenize_prompts(prompts, reserves)
        return TokenizedBatch(
            prompt_ids=prompt_ids,
            candidate_ids=candidate_ids,
            pair_prompt=pair_prompt,
            pair_slot=pair_slot,
            num_words=num_words,
            num_candidates=num_candidates,
            num_truncated=num_truncated,
        )

    def _encode_candidates(
        self, i: int, prompt_candidates: Sequence[str]
    ) -> tuple[list[list[int]], list[int], int]:
        """Checked token ids and word counts of prompt i's candidates, and the positions they
        need after the prompt."""
        check_candidate_list(i, prompt_candidates)
        all_ids, words = [], []
        for j, candidate in enumerate(prompt_candidates):
            ids = self._encode_candidate(candidate)
            if not ids:
                raise ValueError(_no_tokens(i, j, candidate))
            all_ids.append(ids)
            words.append(max(1, len(candidate.split())))
        self._check_distinct(prompt_candidates, all_ids)
        return all_ids, words, self._reserve([len(ids) for ids in all_ids])

    def tokenize_prompts(
        self, prompts: Sequence[str], reserves: Sequence[int]
    ) -> tuple[list[list[int]], int]:
        """Token ids of each prompt, truncated so that `reserves[i]` positions remain after it;
        and how many prompts were truncated."""
        encoded = self._encode_prompts(prompts)
        if self.warn_unknown_words:
            self._warn_unknown_words(prompts, add_special_tokens=True)
        bos = self.tokenizer.bos_token_id
        eos = self.tokenizer.eos_token_id
        prompt_ids, num_truncated = [], 0
        for i, ids in enumerate(encoded):
            ids = list(ids)
            if not self.is_encoder_decoder and eos is not None and len(ids) > 1 and ids[-1] == eos:
                ids = ids[:-1]  # a decoder-only prompt must end where the candidate starts
            limit = self._prompt_limit(reserves[i])
            if len(ids) > limit:
                keep_bos = bos is not None and ids[0] == bos and limit > 1
                ids = ([bos] + ids[len(ids) - limit + 1 :]) if keep_bos else ids[len(ids) - limit :]
                num_truncated += 1
            if not ids:
                raise ValueError(f"prompts[{i}] has no tokens")
            prompt_ids.append(ids)
        if num_truncated:
            warnings.warn(
                f"{num_truncated} prompt(s) exceeded the {self._describe_limit()} and were "
                "truncated from the left (the end of the prompt is kept); shorten the history "
                "(num_observations) or raise max_prompt_tokens",
                PromptTruncationWarning,
                stacklevel=_stacklevel_outside_package(),
            )
        return prompt_ids, num_truncated

    def _encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids of each prompt, special tokens included. The last _PROMPT_CACHE_LIMIT
        prompts are remembered: PPO's update reads every prompt of its rollout once per epoch."""
        cache = self._prompt_cache
        distinct = dict.fromkeys(prompts)
        found = {p: cache[p] for p in distinct if p in cache}
        missing = [p for p in distinct if p not in found]
        if missing:
            # verbose=False: the caller truncates (and warns) itself
            encoded = self.tokenizer(missing, add_special_tokens=True, verbose=False)["input_ids"]
            fresh = {text: list(ids) for text, ids in zip(missing, encoded, strict=True)}
            found.update(fresh)
            cache.update(fresh)
            while len(cache) > _PROMPT_CACHE_LIMIT:  # may forget some of this call's prompts
                cache.pop(next(iter(cache)))  # the oldest
        return [found[p] for p in prompts]

    def _encode_candidate(self, text: str) -> list[int]:
        ids = self._candidate_cache.get(text)
        if ids is None:
            with_prefix = self.action_prefix + text
            ids = list(self.tokenizer(with_prefix, add_special_tokens=False)["input_ids"])
            if with_prefix.startswith(" ") and not with_prefix.startswith("  "):
                ids = self._drop_doubled_word_start(ids)
            if self.warn_unknown_words:
                self._warn_unknown_words([with_prefix], add_special_tokens=False)
            if len(self._candidate_cache) < _CANDIDATE_CACHE_LIMIT:
                self._candidate_cache[text] = ids
        return ids

    def _drop_doubled_word_start(self, ids: list[int]) -> list[int]:
        """Ids of a candidate that starts with one space, without the second word start that a
        SentencePiece tokenizer adds to it. Such a tokenizer puts "▁" before every text and turns
        spaces into "▁" (real SentencePiece, and the tokenizer.json of Llama-2-style checkpoints
        that transformers loads as is, e.g. for Mistral or Phi-3), so " go" reads "▁▁go": a lone
        "▁", then "▁go". After the prompt the same text reads ":", "▁go"; the lone "▁" is a
        second space that prompt + action do not hold, and scoring it would add log P("▁")."""
        if len(ids) >= 2:
            first, second = self.tokenizer.convert_ids_to_tokens(ids[:2])
            if first == _WORD_START and isinstance(second, str) and second.startswith(_WORD_START):
                return ids[1:]
        return ids

    def _check_distinct(self, candidates: Sequence[str], ids: list[list[int]]) -> None:
        """One `IdenticalCandidatesWarning` per candidate list (per tokenizer) in which different
        candidates share their token ids, e.g. "sleep" and "dance" both read as [UNK] by a word
        tokenizer that does not know them."""
        key = tuple(candidates)
        if key in self._checked_lists:
            return
        if len(self._checked_lists) < _CANDIDATE_CACHE_LIMIT:
            self._checked_lists.add(key)
        by_ids: dict[tuple[int, ...], list[str]] = {}
        for candidate, candidate_ids in zip(candidates, ids, strict=True):
            by_ids.setdefault(tuple(candidate_ids), []).append(candidate)
        alike = [group for group in by_ids.values() if len(group) > 1]
        if alike:
            groups = "; ".join(" = ".join(repr(c) for c in group) for group in alike)
            warnings.warn(
                f"candidates that tokenize to the same ids: {groups}. The model reads each group "
                "alike and gives it one score, so the policy cannot prefer one of them over "
                "another; use a tokenizer that knows these words, or other phrases",
                IdenticalCandidatesWarning,
                stacklevel=_stacklevel_outside_package(),
            )

    def _warn_unknown_words(self, texts: Sequence[str], *, add_special_tokens: bool) -> None:
        """One `UnknownWordWarning` per word (per scorer) that becomes the unknown token: the
        model cannot tell such words apart, e.g. a colour the tokenizer has never seen."""
        unk = getattr(self.tokenizer, "unk_token_id", None)
        if unk is None or not getattr(self.tokenizer, "is_fast", False):
            return  # slow tokenizers give no character offsets to find the word with
        encoded = self.tokenizer(
            list(texts),
            add_special_tokens=add_special_tokens,
            return_offsets_mapping=True,
            verbose=False,
        )
        for text, ids, offsets in zip(
            texts, encoded["input_ids"], encoded["offset_mapping"], strict=True
        ):
            for token_id, (start, end) in zip(ids, offsets, strict=True):
                word = text[start:end]
                if token_id != unk or not word or word in self._warned_words:
                    continue
                self._warned_words.add(word)
                warnings.warn(
                    f"the tokenizer maps {word!r} to its unknown token "
                    f"{self.tokenizer.unk_token!r}: the model cannot tell it from other unknown "
                    "words (warned once per word)",
                    UnknownWordWarning,
                    stacklevel=_stacklevel_outside_package(),
                )

    def _reserve(self, candidate_lengths: list[int]) -> int:
        """Positions a decoder-only model needs after the prompt for these candidates: enough for
        the packed layout, which also covers prompt + any whole candidate, so every method (and the
        per-pair reference) scores the same truncated prompt."""
        if self.is_encoder_decoder:
            return 0
        return sum(n - 1 for n in candidate_lengths) + 1

    def _describe_limit(self) -> str:
        parts = []
        if self.max_prompt_tokens is not None:
            parts.append(f"max_prompt_tokens={self.max_prompt_tokens}")
        if self.model_max_length is not None:
            parts.append(f"model limit of {self.model_max_length} tokens")
        return " / ".join(parts) or "token limit"

    def _prompt_limit(self, reserve: int) -> int:
        limit = self.max_prompt_tokens if self.max_prompt_tokens is not None else math.inf
        if self.model_max_length is not None:
            if self.model_max_length - reserve < 1:
                raise ValueError(
                    f"the candidates need {reserve} positions after the prompt but the model "
                    f"accepts only {self.model_max_length}; shorten the candidates"
                )
            limit = min(limit, self.model_max_length - reserve)
        return int(limit) if limit != math.inf else 1 << 60


def pad_candidates(
    candidate_ids: Sequence[Sequence[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad each pair's candidate tokens: ids (N, L) long and mask (N, L) bool."""
    lengths = [len(ids) for ids in candidate_ids]
    length = max(lengths)
    padded = torch.tensor([[*ids, *[pad_id] * (length - len(ids))] for ids in candidate_ids])
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
    return padded.reshape(len(candidate_ids), length), mask


def pad_batch(
    batch: TokenizedBatch, *, pad_id: int, left_pad_prompts: bool, device: torch.device
) -> PaddedBatch:
    """Pad to tensors. Decoder-only prompts are left-padded so that every prompt ends at the last
    column, where its candidates start; encoder-decoder positions are relative, so right padding."""
    lengths = [len(p) for p in batch.prompt_ids]
    prompt_len = max(lengths)
    if left_pad_prompts:
        rows = [[*[pad_id] * (prompt_len - len(ids)), *ids] for ids in batch.prompt_ids]
    else:
        rows = [[*ids, *[pad_id] * (prompt_len - len(ids))] for ids in batch.prompt_ids]
    prompt_ids = torch.tensor(rows, dtype=torch.long).reshape(len(rows), prompt_len)
    columns = torch.arange(prompt_len)[None, :]
    real = torch.tensor(lengths)[:, None]
    prompt_mask = (columns >= prompt_len - real if left_pad_prompts else columns < real).long()
    candidate_ids, candidate_mask = pad_candidates(batch.candidate_ids, pad_id)
    return PaddedBatch(
        prompt_ids=prompt_ids.to(device),
        prompt_mask=prompt_mask.to(device),
        candidate_ids=candidate_ids.to(device),
        candidate_mask=candidate_mask.to(device),
        pair_prompt=torch.tensor(batch.pair_prompt, device=device),
        pair_slot=torch.tensor(batch.pair_slot, device=device),
        num_tokens=candidate_mask.sum(-1).to(device),
        num_words=torch.tensor(batch.num_words, device=device),
        num_candidates=list(batch.num_candidates),
    )


# ---------------------------------------------------------------------- scores


def reduce_pairs(
    token_logprobs: torch.Tensor,
    num_tokens: torch.Tensor,
    num_words: torch.Tensor,
    normalization: str,
) -> torch.Tensor:
    """(N, L) per-token log-probs (0 at padding) -> (N,) score of each pair."""
    total = token_logprobs.sum(-1)  # (N,)
    if normalization == "token":
        return total / num_tokens.to(total.dtype)
    if normalization == "word":
        return total / num_words.to(total.dtype)
    return total


def pairs_to_matrix(
    values: torch.Tensor,
    pair_prompt: torch.Tensor,
    pair_slot: torch.Tensor,
    num_candidates: Sequence[int],
) -> torch.Tensor:
    """(N,) per-pair values -> (B, A_max), -inf where a prompt has fewer candidates."""
    matrix = values.new_full((len(num_candidates), max(num_candidates)), -math.inf)
    return matrix.index_put((pair_prompt, pair_slot), values)


# ---------------------------------------------------------------------- length groups


def forward_call_cost_tokens(prompt_side: torch.nn.Module, input_embeddings: torch.Tensor) -> float:
    """What one extra forward call costs, in prompt tokens of compute, from rough CPU figures
    (~4 ms of call overhead, ~50 GFLOP/s): splitting a batch by prompt length pays off only when
    it saves more padded tokens than this per extra call."""
    params = sum(p.numel() for p in prompt_side.parameters() if p is not input_embeddings)
    return 4e-3 / max(2.0 * params / 5e10, 1e-12)


def length_groups(
    batch: TokenizedBatch, *, call_cost_tokens: float, packs_candidates: bool
) -> list[list[int]]:
    """Prompt indices split into groups of similar length, when the padding this saves outweighs
    the extra forward calls; otherwise one group of every prompt, in order.

    `packs_candidates`: the candidates' later tokens ride along in the prompt's sequence (the
    decoder-only packed layout), so they count towards its length.
    """
    num_prompts = len(batch.prompt_ids)
    everything = [list(range(num_prompts))]
    if num_prompts < 2:
        return everything
    packed_tokens = [0] * num_prompts
    if packs_candidates:
        for n, ids in enumerate(batch.candidate_ids):
            packed_tokens[batch.pair_prompt[n]] += len(ids) - 1
    lengths = [len(p) + e for p, e in zip(batch.prompt_ids, packed_tokens, strict=True)]
    order = sorted(range(num_prompts), key=lengths.__getitem__)
    sorted_lengths = [lengths[i] for i in order]
    # dynamic programme over contiguous runs of the sorted lengths: padded tokens + call cost
    best = [0.0] + [math.inf] * num_prompts
    run_start = [0] * (num_prompts + 1)
    for end in range(1, num_prompts + 1):
        for start in range(max(0, end - 64), end):
            cost = best[start] + (end - start) * sorted_lengths[end - 1] + call_cost_tokens
            if cost < best[end]:
                best[end], run_start[end] = cost, start
    groups, end = [], num_prompts
    while end > 0:
        groups.append(order[run_start[end] : end])
        end = run_start[end]
    return groups[::-1] if len(groups) > 1 else everything


def merge_group_outputs(
    batch: TokenizedBatch,
    parts: Sequence[tuple[list[int], list[int], ScoreOutput]],
    method: str,
) -> ScoreOutput:
    """Reassemble per-group outputs `(prompt indices, pair indices, output)` in the original
    prompt and pair order."""
    max_candidates = max(batch.num_candidates)
    max_tokens = max(len(c) for c in batch.candidate_ids)
    prompt_order = [i for group, _, _ in parts for i in group]
    pair_order = [n for _, pairs, _ in parts for n in pairs]
    outputs = [output for *_, output in parts]
    device = outputs[0].scores.device
    prompt_inverse = torch.argsort(torch.tensor(prompt_order, device=device))
    pair_inverse = torch.argsort(torch.tensor(pair_order, device=device))
    scores = torch.cat(
        [F.pad(o.scores, (0, max_candidates - o.scores.shape[1]), value=-math.inf) for o in outputs]
    )
    token_logprobs = torch.cat(
        [F.pad(o.token_logprobs, (0, max_tokens - o.token_logprobs.shape[1])) for o in outputs]
    )
    token_mask = torch.cat(
        [F.pad(o.token_mask, (0, max_tokens - o.token_mask.shape[1])) for o in outputs]
    )
    features = torch.cat([o.features for o in outputs])
    return ScoreOutput(
        scores=scores[prompt_inverse],
        token_logprobs=token_logprobs[pair_inverse],
        token_mask=token_mask[pair_inverse],
        features=features[prompt_inverse],
        pair_prompt=torch.tensor(batch.pair_prompt, device=device),
        pair_slot=torch.tensor(batch.pair_slot, device=device),
        method=method,
    )
