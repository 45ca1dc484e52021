"""Small tokenizers of real formats, trained here (no download) on BabyAI-Text.

The offline models use a word-level tokenizer: one token per word, nothing at the edges. Real
checkpoints do not work that way: T5 reads SentencePiece unigram pieces with a "▁" word-start
marker and appends `</s>`, Llama(-2) reads SentencePiece BPE pieces after a `<s>` and falls back
to bytes, GPT-2 and Qwen2 read byte-level BPE with a "Ġ" space marker. The functions here train
such tokenizers on the words of `offline.vocabulary()` and prompt lines built with
`build_prompt`, deterministically (same pieces, ids and scores on every run), so that tests and
random stand-ins of large models see what the real tokenizers do where prompt and action meet.

Each returns a `transformers` tokenizer of the class that `AutoTokenizer` loads for that model
type, ready for `save_pretrained`, with `len(tokenizer) <= vocab_size` (a small corpus has fewer
pieces than a large vocab_size asks for; give the model the vocab_size anyway, as real
checkpoints pad their embedding matrices). Only `tokenizers` and `transformers` are used.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, cast

from .offline import SPECIAL_TOKENS, vocabulary, with_special_tokens
from .prompt import (
    ENGLISH_ACTION_NAMES,
    FRENCH_ACTION_NAMES,
    FRENCH_TEMPLATE,
    SYNONYM_ACTION_NAMES,
    build_prompt,
)

__all__ = [
    "babyai_corpus",
    "byte_level_bpe_tokenizer",
    "llama_bpe_tokenizer",
    "t5_unigram_tokenizer",
]

_COLOURS = ("red", "green", "blue", "purple", "yellow", "grey")
_OBJECTS = ("ball", "box", "key")
_COULEURS = ("rouge", "verte", "bleue", "violette", "jaune", "grise")  # feminine, as "balle"
_BYTE_TOKENS = tuple(f"<0x{b:02X}>" for b in range(256))  # Llama's byte-fallback pieces


def babyai_corpus() -> list[str]:
    """The training text, one line per item, no newlines: every word of `vocabulary()` alone and
    capitalised, then the lines of English and French prompts (action lists, goals, observations,
    actions) over every colour and object, so prompt words are frequent and rarer words split."""
    words = [w for w in vocabulary() if w not in SPECIAL_TOKENS]
    lines = [*words, *(w.capitalize() for w in words)]
    for i, colour in enumerate(_COLOURS):
        for j, obj in enumerate(_OBJECTS):
            steps = 1 + (i + j) % 5
            seen = [
                f"You see a {colour} {obj} {steps} steps forward",
                f"You see a wall {steps + 1} steps right",
                f"You see a closed {colour} door 1 step left and {steps} steps forward",
            ]
            carry = [f"You carry a {colour} {obj}"]
            action = ENGLISH_ACTION_NAMES[(i + j) % len(ENGLISH_ACTION_NAMES)]
            for names in (ENGLISH_ACTION_NAMES, SYNONYM_ACTION_NAMES):
                prompt = build_prompt(f"go to the {colour} {obj}", [seen, carry], [action], names)
                lines += prompt.splitlines()
            lines.append(f"Action 1: {action}")
            lines.append(f"pick up the {colour} {obj} then open the {colour} door")
    for i, couleur in enumerate(_COULEURS):
        seen = [f"Tu vois une balle {couleur} à {1 + i % 4} pas devant", "Tu vois un mur à 2 pas"]
        action = FRENCH_ACTION_NAMES[i % len(FRENCH_ACTION_NAMES)]
        prompt = build_prompt(
            f"va à la balle {couleur}",
            [seen, seen],
            [action],
            FRENCH_ACTION_NAMES,
            template=FRENCH_TEMPLATE,
        )
        lines += prompt.splitlines()
        lines.append(f"Action 1: {action}")
    return lines


def _check_room(what: str, pieces: int, alphabet: int, vocab_size: int, reserved: int) -> None:
    if pieces < alphabet:
        raise ValueError(
            f"vocab_size={vocab_size} leaves {pieces} pieces for the {what} after {reserved} "
            f"reserved tokens, fewer than the {alphabet} characters of the corpus; raise vocab_size"
        )


def _alphabet(pre_tokenizer: Any, lines: list[str]) -> set[str]:
    return {c for line in lines for piece, _ in pre_tokenizer.pre_tokenize_str(line) for c in piece}


def _train_bpe(lines: list[str], pre_tokenizer: Any, vocab_size: int) -> Any:
    """A `tokenizers` BPE trained on `lines`. Its trainer is deterministic: pair counts are
    integers, ties go to the pair of lower token ids, and ids follow the sorted alphabet."""
    from tokenizers import Tokenizer, models, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False)
    tokenizer.train_from_iterator(lines, trainer)
    return tokenizer


def _unigram_pieces(lines: list[str], pre_tokenizer: Any, size: int) -> list[tuple[str, float]]:
    """At most `size` unigram pieces with log-probability scores, best first.

    The `tokenizers` unigram trainer gives slightly different scores from run to run (by about
    1e-3 with tokenizers 0.23, even on one thread), so the pieces come from a BPE trained on the
    same text (deterministic) and the scores from hard EM: segment the corpus with the pieces (BPE
    first, then the unigram model's own Viterbi), score each piece by the log of its
    add-one-smoothed count, repeat. The result is a unigram model in SentencePiece's format that
    segments the corpus about as the BPE does; pieces and scores depend only on the corpus
    (integer counts, one float formula)."""
    from tokenizers import Tokenizer, models

    bpe = _train_bpe(lines, pre_tokenizer, size)
    pieces = sorted(bpe.get_vocab(), key=bpe.token_to_id)
    segmenter = bpe
    for _ in range(3):
        counts = Counter(t for enc in segmenter.encode_batch(lines) for t in enc.tokens)
        total = sum(counts[p] + 1 for p in pieces)
        scores = [(p, math.log((counts[p] + 1) / total)) for p in pieces]
        # unk_id 0 is a placeholder: every character of the corpus is a piece
        segmenter = Tokenizer(models.Unigram(scores, unk_id=0))
        segmenter.pre_tokenizer = pre_tokenizer
    # SentencePiece lists pieces by score, best first (ties: by piece, for a fixed order)
    return sorted(scores, key=lambda ps: (-ps[1], ps[0]))


def t5_unigram_tokenizer(
    vocab_size: int = 32100, model_max_length: int = 512, *, extra_ids: int = 100
) -> Any:
    """A T5-format SentencePiece unigram tokenizer (`transformers.T5Tokenizer`, what
    `AutoTokenizer` loads for model_type "t5"; T5TokenizerFast is the same class in transformers 5).

    As T5 and Flan-T5 have it: `<pad>` id 0 (also the decoder start), `</s>` id 1 appended to
    every encoded sequence, `<unk>` id 2 for characters it has no piece for (no byte fallback),
    pieces after them by score with a "▁" word-start marker (whitespace split, then Metaspace),
    and `extra_ids` sentinels `<extra_id_0>`... last, in reverse (`<extra_id_0>` has the highest
    id). Unlike T5's spiece.model it has no NFKC normaliser: the corpus is plain text. Training:
    see `_unigram_pieces`. Default sizes are T5's (32100 tokens, 512 positions).
    """
    from tokenizers import pre_tokenizers
    from transformers import T5Tokenizer

    # T5Tokenizer's own pre-tokenizer: it rebuilds it on load, so train on the same splits
    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        ]
    )
    lines = babyai_corpus()
    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    reserved = len(specials) + extra_ids
    room = vocab_size - reserved
    _check_room("unigram pieces", room, len(_alphabet(pre_tokenizer, lines)), vocab_size, reserved)
    sentinels = [(f"<extra_id_{i}>", 0.0) for i in reversed(range(extra_ids))]
    vocab = specials + _unigram_pieces(lines, pre_tokenizer, room) + sentinels
    return T5Tokenizer(vocab=vocab, extra_ids=extra_ids, model_max_length=model_max_length)


def llama_bpe_tokenizer(vocab_size: int = 32000, model_max_length: int = 4096) -> Any:
    """A Llama(-2)-format SentencePiece BPE tokenizer (`transformers.LlamaTokenizer`; what
    `AutoTokenizer` loads from the saved directory, whose tokenizer_config.json names the class as
    Llama-2's does; LlamaTokenizerFast is the same class in transformers 5).

    As Llama-2 has it: `<unk>` 0, `<s>` 1 put before every encoded sequence, `</s>` 2 (eos, not
    appended), no pad token; ids 3-258 the byte pieces `<0x00>`..`<0xFF>`, so a character without
    a piece ("ß", a newline) becomes its UTF-8 bytes instead of `<unk>`; then the BPE pieces with
    a "▁" word-start marker ("▁" put before the text, spaces become "▁"). Digits are split one by
    one, as Llama-2's split_digits does ("▁", "1", "0" for " 10"). Default sizes are Llama-2's.
    (Llama 3 uses a byte-level BPE instead: see `byte_level_bpe_tokenizer`.)
    """
    from tokenizers import pre_tokenizers
    from transformers import LlamaTokenizer

    specials = ("<unk>", "<s>", "</s>")
    # train on words ("▁" + word) with digits apart, so no merge crosses a word or joins digits;
    # on load LlamaTokenizer runs one Metaspace over the whole text, and these merges still hold
    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    lines = babyai_corpus()
    reserved = len(specials) + len(_BYTE_TOKENS)
    room = vocab_size - reserved
    _check_room("BPE pieces", room, len(_alphabet(pre_tokenizer, lines)), vocab_size, reserved)
    bpe = _train_bpe(lines, pre_tokenizer, room)
    vocab = {token: i for i, token in enumerate((*specials, *_BYTE_TOKENS))}
    for token in sorted(bpe.get_vocab(), key=bpe.token_to_id):
        vocab[token] = len(vocab)
    return LlamaTokenizer(
        vocab=vocab,
        merges=_bpe_merges(bpe),
        add_bos_token=True,
        add_eos_token=False,
        legacy=False,
        model_max_length=model_max_length,
    )


def _bpe_merges(bpe: Any) -> list[tuple[str, str]]:
    """The merges of a trained `tokenizers` BPE, in priority order."""
    import json

    merges = json.loads(bpe.to_str())["model"]["merges"]
    # each merge is a pair: "a b" (older tokenizers) or ["a", "b"]
    return [
        cast(tuple[str, str], tuple(m.split(" ")) if isinstance(m, str) else tuple(m))
        for m in merges
    ]


def byte_level_bpe_tokenizer(vocab_size: int = 800, model_max_length: int = 128) -> Any:
    """A GPT-2/Qwen2-style byte-level BPE (a `transformers` fast tokenizer) over the offline
    vocabulary's words.

    As GPT-2, Qwen2 and Llama 3 have it: every byte is a base token (the 256 printable stand-ins of
    `ByteLevel.alphabet()`), so no text is unknown; a leading space is part of the word ("Ġgo"); no
    BOS is added. The special tokens are the offline word tokenizer's, with its ids 0-3 ([PAD],
    [UNK], [BOS], [EOS]). Note that transformers loads a qwen2 directory's tokenizer as its own
    `Qwen2Tokenizer` (same vocabulary and merges, its own pre-tokenizer).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    words = [w for w in vocabulary() if w not in SPECIAL_TOKENS]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([" ".join(words), *words, *(f" {w}" for w in words)], trainer)
    return with_special_tokens(tok, model_max_length)
