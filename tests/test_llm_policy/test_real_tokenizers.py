"""Tokenizers of real formats (`llm_policy.local_tokenizers`): their layouts, scoring on the tiny
models that use them, and what happens where the prompt ends and the action begins."""

import io
import json

import pytest
import torch
from llm_policy import (
    ENGLISH_ACTION_NAMES,
    FRENCH_ACTION_NAMES,
    SYNONYM_ACTION_NAMES,
    ActionScorer,
)
from llm_policy.batching import NORMALIZATIONS, PairTokenizer
from llm_policy.local_tokenizers import (
    babyai_corpus,
    byte_level_bpe_tokenizer,
    llama_bpe_tokenizer,
    t5_unigram_tokenizer,
)

from .scoring_cases import CANDIDATES, finite_close, make_prompts
from .tiny_models import REAL_FORMAT_KINDS, build_tokenizer

FAST = {"t5-unigram": "recompute", "llama-bpe": "packed"}
ACTION_LISTS = (ENGLISH_ACTION_NAMES, FRENCH_ACTION_NAMES, SYNONYM_ACTION_NAMES, CANDIDATES[3])
WORD_START = "\u2581"  # "▁"


def _tokens(tokenizer, text, special=True):
    return tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=special)["input_ids"])


# ---------------------------------------------------------------------- layouts


def test_t5_unigram_has_t5s_layout(scorers):
    from transformers import T5Tokenizer

    tok = scorers("t5-unigram").tokenizer  # as AutoTokenizer loaded it from the model directory
    assert type(tok) is T5Tokenizer and tok.backend_tokenizer.model.__class__.__name__ == "Unigram"
    special_ids = (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, tok.bos_token_id)
    assert special_ids == (0, 1, 2, None)
    assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<pad>", "</s>", "<unk>"]
    assert tok.convert_tokens_to_ids("<extra_id_0>") == len(tok) - 1  # sentinels last, reversed
    line = "Observation 0: You see a closed purple door 1 step left and 3 steps forward,"
    ids = tok(line)["input_ids"]
    assert ids[-1] == 1 and ids.count(1) == 1  # </s> ends every sequence, once
    tokens = tok.convert_ids_to_tokens(ids[:-1])
    assert len(tokens) > len(line.split())  # subwords: some words take several pieces
    assert sum(t.startswith(WORD_START) for t in tokens) == len(line.split())  # one ▁ per word
    assert _tokens(tok, "go to the ß", special=False)[-1] == "<unk>"  # no byte fallback in T5
    assert "\n" not in "".join(_tokens(tok, "a\nb"))  # whitespace split: a newline is a space


def test_llama_bpe_has_llama2s_layout(scorers):
    from transformers import LlamaTokenizer

    tok = scorers("llama-bpe").tokenizer
    assert type(tok) is LlamaTokenizer and tok.backend_tokenizer.model.byte_fallback
    special_ids = (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    assert special_ids == (0, 1, 2, None)
    assert tok.convert_ids_to_tokens(list(range(3, 259))) == [f"<0x{b:02X}>" for b in range(256)]
    ids = tok("go to the red ball")["input_ids"]
    assert ids[0] == 1 and ids.count(1) == 1 and 2 not in ids  # <s> first, no </s> appended
    # characters the corpus never had: UTF-8 bytes, not <unk>; the text survives a round trip
    assert _tokens(tok, "ß", special=False) == [WORD_START, "<0xC3>", "<0x9F>"]
    text = "go to the ß€ ball\nYou see"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids and tok.convert_tokens_to_ids("<0x0A>") in ids
    assert tok.decode(ids) == text
    assert _tokens(tok, "12 steps", special=False)[:3] == [WORD_START, "1", "2"]  # split digits


def test_local_tokenizers_are_deterministic_and_fit_vocab_size():
    for make, size in (
        (t5_unigram_tokenizer, 300),
        (t5_unigram_tokenizer, 32100),
        (llama_bpe_tokenizer, 450),
        (llama_bpe_tokenizer, 32000),
        (byte_level_bpe_tokenizer, 800),
    ):
        first, second = make(size, 64), make(size, 64)
        assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()
        assert len(first) <= size and first.model_max_length == 64
    # the small sizes of the tiny models do split words; a large vocab_size only gets what the
    # corpus holds, and a vocab_size below the alphabet is refused
    assert len(t5_unigram_tokenizer(300)) < len(t5_unigram_tokenizer(32100)) < 32100
    with pytest.raises(ValueError, match="raise vocab_size"):
        llama_bpe_tokenizer(vocab_size=300)
    with pytest.raises(ValueError, match="raise vocab_size"):
        t5_unigram_tokenizer(vocab_size=150)


@pytest.mark.parametrize("kind", REAL_FORMAT_KINDS)
def test_saved_tokenizer_reads_as_the_one_built(scorers, kind):
    """transformers rebuilds a T5 or Llama tokenizer's pre-tokenizer and decoder from its own class
    when it loads a directory: the loaded one must still read prompts and actions alike."""
    loaded, built = scorers(kind).tokenizer, build_tokenizer(kind)
    assert type(loaded) is type(built) and len(loaded) == len(built)
    texts = make_prompts() + [" " + a for names in ACTION_LISTS for a in names]
    assert loaded(texts)["input_ids"] == built(texts)["input_ids"]


# ---------------------------------------------------------------------- scoring on them


@pytest.mark.parametrize("kind", REAL_FORMAT_KINDS)
def test_token_and_word_normalisations_count_pieces_and_words(scorers, kind):
    """The "token" normalisation divides by the action's pieces, "word" by its words (split on
    whitespace), both counted here from the tokenizer and the text, not from the scorer's batch."""
    scorer = scorers(kind)
    prefix = "" if kind == "t5-unigram" else " "
    prompts, cands = make_prompts(), CANDIDATES
    flat = [c for cs in cands for c in cs]
    pieces = [
        len(scorer.tokenizer(prefix + c, add_special_tokens=False)["input_ids"]) for c in flat
    ]
    words = [len(c.split()) for c in flat]
    assert any(p > w for p, w in zip(pieces, words, strict=True))  # the two really differ
    with torch.no_grad():
        out = {n: scorer.score(prompts, cands, normalization=n).scores for n in NORMALIZATIONS}
    fin = torch.isfinite(out["sum"])
    total = out["sum"][fin]  # prompt-then-candidate order, as the flattened lists above
    torch.testing.assert_close(out["token"][fin], total / torch.tensor(pieces, dtype=torch.float))
    torch.testing.assert_close(out["word"][fin], total / torch.tensor(words, dtype=torch.float))


# ---------------------------------------------------------------------- prompt / action edge


def test_t5_unigram_action_is_tokenized_apart_from_the_prompt(scorers):
    """Encoder-decoder: the prompt is the encoder's input, with the `</s>` T5 ends every input
    with; the action is tokenized apart, without special tokens, and the decoder reads the
    decoder start `<pad>`, then the action's pieces, the first with its "▁". No `</s>` ends the
    action: the score is log P(action's pieces | prompt), not log P(action, then end of text),
    which tokenizing the action with the tokenizer's defaults would give (one more term,
    log P(</s> | action)). Tokenizing prompt and action together makes no sense here: they go to
    different stacks."""
    scorer = scorers("t5-unigram")
    tok = scorer.tokenizer
    prompt = make_prompts()[1]
    batch = scorer.tokenize([prompt], [list(ENGLISH_ACTION_NAMES)])
    assert batch.prompt_ids[0] == tok(prompt)["input_ids"] and batch.prompt_ids[0][-1] == 1
    assert batch.prompt_ids[0].count(1) == 1
    assert scorer.forwards.decoder_start_id == tok.pad_token_id == 0
    for action, ids in zip(ENGLISH_ACTION_NAMES, batch.candidate_ids, strict=True):
        assert ids == tok(action, add_special_tokens=False)["input_ids"]
        assert tok(action)["input_ids"] == ids + [1]  # what the defaults would have scored
        assert not {0, 1, 2} & set(ids)  # no pad, </s> or unk inside the action
        tokens = tok.convert_ids_to_tokens(ids)
        assert tokens[0].startswith(WORD_START)
        assert sum(t.startswith(WORD_START) for t in tokens) == len(action.split())
    assert batch.candidate_ids[2] == tok.convert_tokens_to_ids(["▁go", "▁forwar", "d"])
    with torch.no_grad():
        out = scorer.score([prompt], [list(ENGLISH_ACTION_NAMES)])
    assert out.token_mask.sum(-1).tolist() == [len(ids) for ids in batch.candidate_ids]


def test_llama_bpe_action_continues_the_prompt_without_a_second_bos(scorers):
    """Decoder-only: the prompt is tokenized with the tokenizer's special tokens (one `<s>` first,
    no `</s>` after it), the action apart after `action_prefix` " " and without special tokens;
    the model reads prompt ids + action ids. Tokenizing the action with the defaults would put a
    second `<s>` between them. Tokenizing prompt + " " + action together gives the same ids here
    (checked below): the action's first piece carries the "▁" of its space, and no piece spans a
    word start. It is still done apart: each action is tokenized once and cached, the prompt once
    for all its actions, and the action's ids do not depend on the prompt's last characters, as
    in the paper's code; where a tokenizer reads the two differently (a real SentencePiece's
    doubled "▁": test_doubled_word_start_...) the scorer follows the joint reading."""
    scorer = scorers("llama-bpe")
    tok = scorer.tokenizer
    prompts = make_prompts()
    for actions in ACTION_LISTS:
        batch = scorer.tokenize(prompts, [list(actions)] * len(prompts))
        for n, ids in enumerate(batch.candidate_ids):
            prompt = prompts[batch.pair_prompt[n]]
            prompt_ids = batch.prompt_ids[batch.pair_prompt[n]]
            action = actions[batch.pair_slot[n]]
            assert prompt_ids[0] == tok.bos_token_id and (prompt_ids + ids).count(1) == 1
            assert tok.eos_token_id not in prompt_ids + ids
            assert tok.convert_ids_to_tokens(ids[0]).startswith(WORD_START)
            assert tok(prompt + " " + action)["input_ids"] == prompt_ids + ids  # together
            assert tok(" " + action)["input_ids"] == [tok.bos_token_id] + ids  # the defaults


@pytest.mark.parametrize("kind", ["gpt2", "llama", "qwen2"])
def test_other_decoder_only_tokenizers_read_the_action_alike_apart_and_together(scorers, kind):
    """The word-level (gpt2, llama) and byte-level BPE (qwen2, "Ġgo") fixtures: prompt ids + action
    ids are the ids of prompt + " " + action, tokenized together."""
    scorer = scorers(kind)
    tok = scorer.tokenizer
    prompts = make_prompts()
    for actions in ACTION_LISTS:
        batch = scorer.tokenize(prompts, [list(actions)] * len(prompts))
        for n, ids in enumerate(batch.candidate_ids):
            i, action = batch.pair_prompt[n], actions[batch.pair_slot[n]]
            assert tok(prompts[i] + " " + action)["input_ids"] == batch.prompt_ids[i] + ids


def _hub_layout(tokenizer):
    """The same vocabulary in the layout of Llama-2's tokenizer.json on the hub (Prepend "▁" and
    Replace " " by "▁" normaliser, no pre-tokenizer), which transformers loads as is, without
    LlamaTokenizer's rebuild, for Mistral and Phi-3 checkpoints: it reads text as SentencePiece
    does."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    layout = json.loads(tokenizer.backend_tokenizer.to_str())
    layout["normalizer"] = {
        "type": "Sequence",
        "normalizers": [
            {"type": "Prepend", "prepend": WORD_START},
            {"type": "Replace", "pattern": {"String": " "}, "content": WORD_START},
        ],
    }
    layout["pre_tokenizer"] = None
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(layout)),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )


def _pair_tokenizer(tokenizer, action_prefix=" "):
    return PairTokenizer(
        tokenizer,
        is_encoder_decoder=False,
        action_prefix=action_prefix,
        max_prompt_tokens=None,
        model_max_length=None,
    )


def test_doubled_word_start_of_a_sentencepiece_layout_is_not_scored(scorers):
    """A tokenizer that puts "▁" before every text reads action_prefix " " + "go" as "▁▁go": a
    lone "▁", then "▁go", where the prompt + action text reads ":", "▁go". Before the fix the
    candidate kept the lone "▁", and its score held log P("▁" | prompt), a second space."""
    llama = scorers("llama-bpe").tokenizer
    hub = _hub_layout(llama)
    assert _tokens(hub, " go forward", special=False)[:2] == [WORD_START, "▁go"]  # doubled
    prompts = make_prompts()
    for actions in ACTION_LISTS:
        candidates = [list(actions)] * len(prompts)
        got = _pair_tokenizer(hub).tokenize(prompts, candidates)
        want = _pair_tokenizer(llama).tokenize(prompts, candidates)
        assert got.prompt_ids == want.prompt_ids
        assert got.candidate_ids == want.candidate_ids
        for n, ids in enumerate(got.candidate_ids):  # the tail of the joint reading
            i, action = got.pair_prompt[n], actions[got.pair_slot[n]]
            assert hub(prompts[i] + " " + action)["input_ids"] == got.prompt_ids[i] + ids
    # a prefix of two spaces is two spaces: nothing is dropped
    ids = _pair_tokenizer(hub, "  ").tokenize(prompts[:1], [["go forward"]]).candidate_ids[0]
    assert ids == hub("  go forward", add_special_tokens=False)["input_ids"]
    # so the model scores the same tokens, whichever layout the checkpoint's tokenizer has
    reference = scorers("llama-bpe")
    with torch.no_grad():
        got = ActionScorer(reference.model, hub).score(prompts, CANDIDATES).scores
        finite_close(got, reference.score(prompts, CANDIDATES).scores)


# ---------------------------------------------------------------------- real SentencePiece


def _train_sentencepiece(**options) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(babyai_corpus()),
        model_writer=model,
        num_threads=1,
        hard_vocab_limit=False,
        minloglevel=2,
        **options,
    )
    return model.getvalue()


def _marked_text(tokenizer, text):
    """The tokens of `text` joined, byte pieces turned back into characters: where the "▁" marks
    fall and what becomes <unk>, whatever the pieces."""
    tokens = _tokens(tokenizer, text)
    out, pending = [], b""
    for t in tokens:
        if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            pending += bytes([int(t[3:5], 16)])
            continue
        out.append(pending.decode() + t)
        pending = b""
    return "".join(out) + pending.decode()


def test_formats_match_tokenizers_trained_by_sentencepiece(tmp_path, scorers):
    """The same corpus through the sentencepiece trainer with T5's and Llama-2's options, loaded by
    transformers from spiece.model / tokenizer.model: same classes, special ids, pre-tokenizers,
    post-processors and decoders as ours, and every text marked alike (the pieces differ). Also
    shows the doubled "▁" of real SentencePiece that the scorer drops."""
    pytest.importorskip("sentencepiece", reason="the sentencepiece package is not installed")
    pytest.importorskip("google.protobuf", reason="transformers reads spiece.model with protobuf")
    import sentencepiece as spm
    from transformers import AutoTokenizer, LlamaConfig, LlamaTokenizer, T5Config

    probes = make_prompts() + ["go to the ß ball", "Tu vois une boîte 12 steps"]
    t5_dir, llama_dir, as_is_dir = tmp_path / "t5", tmp_path / "llama", tmp_path / "as_is"
    for d in (t5_dir, llama_dir, as_is_dir):
        d.mkdir()
    # T5: unigram, NFKC-like normalisation, <pad> 0, </s> 1, <unk> 2, no <s>
    (t5_dir / "spiece.model").write_bytes(
        _train_sentencepiece(
            model_type="unigram", vocab_size=200, pad_id=0, eos_id=1, unk_id=2, bos_id=-1
        )
    )
    T5Config(vocab_size=300).save_pretrained(t5_dir)
    # Llama-2: BPE, byte fallback, split digits, no normalisation, <unk> 0, <s> 1, </s> 2
    llama_model = _train_sentencepiece(
        model_type="bpe",
        vocab_size=450,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
    )
    for d in (llama_dir, as_is_dir):
        (d / "tokenizer.model").write_bytes(llama_model)
        LlamaConfig(vocab_size=450).save_pretrained(d)
    # what Llama-2's tokenizer_config.json says; without the class, transformers converts the
    # model as is (as for a Mistral checkpoint)
    (llama_dir / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "LlamaTokenizer", "add_bos_token": True})
    )
    (as_is_dir / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": True}))

    real_llama = AutoTokenizer.from_pretrained(llama_dir)
    assert isinstance(real_llama, LlamaTokenizer)
    for real, ours in (
        (AutoTokenizer.from_pretrained(t5_dir), scorers("t5-unigram").tokenizer),
        (real_llama, scorers("llama-bpe").tokenizer),
    ):
        assert type(real) is type(ours)
        for name in ("pad_token_id", "eos_token_id", "unk_token_id", "bos_token_id"):
            assert getattr(real, name) == getattr(ours, name), name
        a, b = real.backend_tokenizer, ours.backend_tokenizer
        for part in ("pre_tokenizer", "post_processor", "decoder"):
            assert str(getattr(a, part)) == str(getattr(b, part)), part
        assert a.model.__class__ is b.model.__class__
        assert getattr(a.model, "byte_fallback", False) == getattr(b.model, "byte_fallback", False)
        for text in probes:
            assert _marked_text(real, text) == _marked_text(ours, text), text
    assert real_llama.convert_ids_to_tokens([3, 258]) == ["<0x00>", "<0xFF>"]

    # SentencePiece itself, and transformers' as-is conversion of its model (no LlamaTokenizer
    # class named), double the word start of " go": the scorer reads the action as after a prompt
    processor = spm.SentencePieceProcessor(model_proto=llama_model)
    as_is = AutoTokenizer.from_pretrained(as_is_dir)
    assert not isinstance(as_is, LlamaTokenizer)
    for tokens in (
        processor.encode(" go forward", out_type=str),
        _tokens(as_is, " go forward", False),
    ):
        assert tokens[0] == WORD_START and tokens[1].startswith(WORD_START)
    prompts = make_prompts()
    batch = _pair_tokenizer(as_is).tokenize(prompts, [list(ENGLISH_ACTION_NAMES)] * len(prompts))
    for n, ids in enumerate(batch.candidate_ids):
        prompt_ids = batch.prompt_ids[batch.pair_prompt[n]]
        text = prompts[batch.pair_prompt[n]] + " " + ENGLISH_ACTION_NAMES[batch.pair_slot[n]]
        assert [processor.bos_id()] + processor.encode(text) == prompt_ids + ids


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
@pytest.mark.parametrize("kind", REAL_FORMAT_KINDS)
def test_fast_scores_equal_the_per_pair_reference_within_1e_5(scorers, kind, normalization):
    """On the real formats every fast method equals one forward per (prompt, action) pair to
    1e-5 of the score's size (fp32 sums of a few log-probs: about 1e-7 relative in practice)."""
    from llm_policy.reference import naive_scores

    from .scoring_cases import FAST

    scorer = scorers(kind)
    prompts = make_prompts()
    with torch.no_grad():
        want = naive_scores(scorer, prompts, CANDIDATES, normalization)
        finite = torch.isfinite(want)
        for method in ("cache", FAST[kind]):
            got = scorer.score(prompts, CANDIDATES, normalization=normalization, method=method)
            assert torch.equal(torch.isfinite(got.scores), finite)
            error = (got.scores[finite] - want[finite]).abs()
            assert (error <= 1e-5 * want[finite].abs().clamp(min=1.0)).all(), error.max()
