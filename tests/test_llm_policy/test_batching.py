"""The token side of scoring: validation, truncation, duplicates, unknown words, length groups."""

import warnings

import pytest
import torch
from llm_policy import ENGLISH_ACTION_NAMES, ActionScorer, PromptTruncationWarning, build_prompt
from llm_policy.batching import TokenizedBatch, UnknownWordWarning, length_groups
from llm_policy.reference import naive_scores

from .scoring_cases import CANDIDATES, KINDS, finite_close, make_prompts


def test_bad_input_is_explained(scorers):
    scorer = scorers("gpt2")
    p = make_prompts()[:2]
    with pytest.raises(ValueError, match=r"candidates\[1\] is empty"):
        scorer.score(p, [["go forward"], []])
    with pytest.raises(ValueError, match="2 prompts but 3 candidate lists"):
        scorer.score(p, [["a"], ["b"], ["c"]])
    with pytest.raises(ValueError, match="unknown normalization"):
        scorer.score(p, [["a"], ["b"]], normalization="mean")
    with pytest.raises(ValueError, match="has no tokens"):
        scorer.score(p, [["go forward"], [" "]])
    with pytest.raises(TypeError, match="list of str"):
        scorer.score(p[0], [["a"]])
    with pytest.raises(TypeError, match=r"candidates\[0\]\[1\]"):
        scorer.score(p, [["a", 3], ["b"]])
    with pytest.raises(ValueError, match="prompts is empty"):
        scorer.score([], [])
    with pytest.raises(ValueError, match="decoder-only"):
        scorers("t5").score(p, [["a"], ["b"]], method="packed")
    with pytest.raises(ValueError, match="encoder-decoder"):
        scorer.score(p, [["a"], ["b"]], method="recompute")
    with pytest.raises(ValueError, match="unknown scoring method"):
        scorer.score(p, [["a"], ["b"]], method="fast")


@pytest.mark.parametrize("kind", ["gpt2", "t5"])
def test_long_prompts_are_truncated_from_the_left(scorers, kind):
    scorer = scorers(kind)  # tiny models accept 128 tokens (positions / tokenizer limit)
    history = [
        [f"You see a wall {i % 7} steps forward", "You see a red ball 1 step left"]
        for i in range(30)
    ]
    long_prompt = build_prompt(
        "go to the red ball",
        history,
        ["go forward"] * 29,
        ENGLISH_ACTION_NAMES,
        num_observations=30,
    )
    cands = [["go forward", "pick up the red key then go to the grey door"]]
    with pytest.warns(PromptTruncationWarning, match="truncated from the left"):
        tb = scorer.tokenize([long_prompt], cands)
    full = scorer.tokenizer(long_prompt)["input_ids"]
    kept = tb.prompt_ids[0]
    assert len(kept) < len(full) and kept == full[len(full) - len(kept) :]  # the end is kept
    if kind == "gpt2":  # prompt + action must fit the 128 positions
        assert len(kept) + sum(len(c) - 1 for c in tb.candidate_ids) + 1 == 128
    with torch.no_grad(), pytest.warns(PromptTruncationWarning):
        got = scorer.score([long_prompt], cands).scores
    with torch.no_grad(), pytest.warns(PromptTruncationWarning):
        finite_close(got, naive_scores(scorer, [long_prompt], cands))

    limited = ActionScorer(scorer.model, scorer.tokenizer, max_prompt_tokens=10)
    with pytest.warns(PromptTruncationWarning, match="max_prompt_tokens=10"):
        tb = limited.tokenize([long_prompt], cands)
    assert tb.prompt_ids[0] == full[-10:]


def test_duplicate_candidates_are_refused_by_name(scorers):
    scorer = scorers("gpt2")
    prompts = make_prompts()[:2]
    with pytest.raises(ValueError, match=r"candidates\[1\] lists 'drop' twice \(at 0 and 2\)"):
        scorer.score(prompts, [["go forward"], ["drop", "toggle", "drop"]])
    with pytest.raises(ValueError, match=r"candidates\[0\] lists 'turn left' twice"):
        scorer.score(prompts, ["turn left", "go forward", "turn left"])  # one list for all
    # the same candidate under different prompts is fine
    assert scorer.score(prompts, [["drop"], ["drop"]]).scores.shape == (2, 1)


def test_unknown_words_warn_once_per_word(tiny_model_dir):
    from llm_policy.loading import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(tiny_model_dir("gpt2"))  # the offline word tokenizer
    prompt = ["Goal of the agent: go to the qwxzy ball\nAction 0:"]
    candidates = [["go forward", "vrrmp the key"]]
    scorer = ActionScorer(model, tok, warn_unknown_words=True)
    with pytest.warns(UnknownWordWarning) as record:
        batch = scorer.tokenize(prompt, candidates)
    messages = sorted(str(w.message) for w in record if w.category is UnknownWordWarning)
    assert len(messages) == 2
    assert "'qwxzy'" in messages[0] and "'vrrmp'" in messages[1] and "[UNK]" in messages[0]
    assert tok.unk_token_id in batch.prompt_ids[0] and tok.unk_token_id in batch.candidate_ids[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownWordWarning)
        scorer.tokenize(prompt, [["vrrmp the key", "turn left"]])  # already warned: silent
        ActionScorer(model, tok).tokenize(prompt, candidates)  # off by default
    with pytest.warns(UnknownWordWarning, match="'blorp'"):
        scorer.prompt_features(["Goal of the agent: blorp\nAction 0:"])


def test_warnings_name_the_callers_line(scorers):
    scorer = ActionScorer(scorers("gpt2").model, scorers("gpt2").tokenizer, max_prompt_tokens=5)
    with pytest.warns(PromptTruncationWarning) as record:
        scorer.score(make_prompts()[:1], [["go forward"]])
    assert record[0].filename == __file__  # not a line inside llm_policy


def test_length_groups_split_only_when_the_padding_saved_pays_for_a_call():
    lengths = [10, 200, 12, 190]
    batch = TokenizedBatch(
        prompt_ids=[[1] * n for n in lengths],
        candidate_ids=[[5, 6, 7]] * 4,
        pair_prompt=[0, 1, 2, 3],
        pair_slot=[0, 0, 0, 0],
        num_words=[1] * 4,
        num_candidates=[1] * 4,
    )
    # one call for all pads every prompt to 200 (378 padded tokens); two calls pad to 12 and 200
    assert length_groups(batch, call_cost_tokens=100.0, packs_candidates=False) == [[0, 2], [3, 1]]
    assert length_groups(batch, call_cost_tokens=1000.0, packs_candidates=False) == [[0, 1, 2, 3]]
    # packed candidate tokens (2 per pair here) count towards each prompt's length
    assert length_groups(batch, call_cost_tokens=0.0, packs_candidates=True) == [[0], [2], [3], [1]]


def test_select_keeps_pairs_with_their_prompts(scorers):
    batch = scorers("gpt2").tokenize(make_prompts(), CANDIDATES)
    sub_batch, pairs = batch.select([3, 1])
    assert sub_batch.prompt_ids == [batch.prompt_ids[3], batch.prompt_ids[1]]
    assert sub_batch.num_candidates == [3, 2] and sub_batch.pair_prompt == [0, 0, 0, 1, 1]
    assert [sub_batch.candidate_ids[k] for k in range(5)] == [batch.candidate_ids[n] for n in pairs]
    assert pairs == [14, 15, 16, 6, 7]  # CANDIDATES hold 6, 2, 6 and 3 candidates


def test_candidates_that_tokenize_alike_warn_once_per_list(tiny_model_dir):
    from llm_policy import IdenticalCandidatesWarning
    from llm_policy.loading import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(tiny_model_dir("gpt2"))  # the offline word tokenizer
    scorer = ActionScorer(model, tok)
    prompt = ["Goal of the agent: go to the red ball\nAction 0:"]
    # "sleep", "dance" and "sing" are not in the offline vocabulary: all three read as [UNK]
    candidates = [["go forward", "sleep", "turn left", "dance", "sing"]]
    with pytest.warns(IdenticalCandidatesWarning) as record:
        batch = scorer.tokenize(prompt, candidates)
    assert len(record) == 1
    assert "'sleep' = 'dance' = 'sing'" in str(record[0].message)
    assert record[0].filename == __file__  # the caller's line
    assert batch.candidate_ids[1] == batch.candidate_ids[3] == batch.candidate_ids[4]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", IdenticalCandidatesWarning)
        scores = scorer.score(prompt * 2, candidates[0]).scores  # this list was checked: silent
        scorer.score(prompt, [ENGLISH_ACTION_NAMES])  # distinct phrases: silent
    assert scores[0, 1] == scores[0, 3] == scores[0, 4]  # the model cannot tell them apart
    # the same phrases under different prompts, or alone, are no collision
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdenticalCandidatesWarning)
        scorer.tokenize(prompt * 2, [["sleep", "go forward"], ["dance", "go forward"]])


@pytest.mark.parametrize("kind", KINDS)
def test_every_tiny_models_tokenizer_reads_each_action_phrase_apart(scorers, kind):
    """The fixture's tokenizer is the one the model loads with (transformers swaps in its own
    class for some model types) and tells every action phrase of every language apart."""
    from llm_policy import FRENCH_ACTION_NAMES, SYNONYM_ACTION_NAMES, IdenticalCandidatesWarning

    scorer = scorers(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdenticalCandidatesWarning)
        for names in (ENGLISH_ACTION_NAMES, FRENCH_ACTION_NAMES, SYNONYM_ACTION_NAMES):
            batch = scorer.tokenize(make_prompts()[:1], [list(names)])
            assert len({tuple(ids) for ids in batch.candidate_ids}) == len(names)


def test_prompt_ids_are_remembered_and_the_oldest_forgotten(tiny_model_dir, monkeypatch):
    """PPO's update tokenizes each rollout prompt once per epoch: the ids come from a bounded
    cache and equal the tokenizer's own, in the caller's order, repeats included."""
    from llm_policy import batching
    from llm_policy.loading import load_model_and_tokenizer

    monkeypatch.setattr(batching, "_PROMPT_CACHE_LIMIT", 3)
    model, tokenizer = load_model_and_tokenizer(tiny_model_dir("gpt2"))
    pairs = ActionScorer(model, tokenizer).tokenization
    prompts = make_prompts()  # 4 prompts, over the limit of 3
    fresh = tokenizer(prompts, add_special_tokens=True)["input_ids"]
    order = [2, 0, 2, 3, 1]
    assert pairs._encode_prompts([prompts[i] for i in order]) == [fresh[i] for i in order]
    assert list(pairs._prompt_cache) == [
        prompts[0],
        prompts[3],
        prompts[1],
    ]  # first seen, first out
    again = [prompts[i] for i in (3, 2, 2)]
    assert pairs._encode_prompts(again) == [fresh[i] for i in (3, 2, 2)]
    assert list(pairs._prompt_cache) == [prompts[3], prompts[1], prompts[2]]
    # a call whose new prompts push out one of its own remembered prompts still gets both
    mixed = [prompts[3], prompts[0]]  # prompts[3], the oldest, is forgotten when [0] comes in
    assert pairs._encode_prompts(mixed) == [fresh[3], fresh[0]]
    assert list(pairs._prompt_cache) == [prompts[1], prompts[2], prompts[0]]
