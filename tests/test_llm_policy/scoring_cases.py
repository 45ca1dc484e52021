"""Inputs shared by the scoring tests: prompts of every template and length, candidate lists of
different sizes, and a comparison that also checks where the -inf padding is."""

import torch
from llm_policy import (
    ENGLISH_ACTION_NAMES,
    FRENCH_ACTION_NAMES,
    SYNONYM_ACTION_NAMES,
    build_prompt,
)

# t5-unigram and llama-bpe: the real SentencePiece formats (local_tokenizers.py)
KINDS = ("t5", "flan-t5", "gpt2", "llama", "qwen2", "t5-unigram", "llama-bpe")
FAST = {
    "t5": "recompute",
    "flan-t5": "recompute",
    "gpt2": "packed",
    "llama": "packed",
    "qwen2": "packed",
    "t5-unigram": "recompute",
    "llama-bpe": "packed",
}
ATOL = 1e-4


def make_prompts():
    obs = [
        ["You see a wall 5 steps forward", "You see a blue key 1 step left and 2 steps forward"],
        ["You see a wall 4 steps forward"],
        ["You carry a red ball", "You see a closed yellow door 2 steps right and 3 steps forward"],
    ]
    return [
        build_prompt(
            "pick up the blue key", obs, ["go forward", "turn left"], ENGLISH_ACTION_NAMES
        ),
        build_prompt("go to the red ball", obs[:1], [], ENGLISH_ACTION_NAMES),
        build_prompt(
            "va à la boîte rouge",
            [["Tu vois un mur à 2 pas devant"]],
            [],
            FRENCH_ACTION_NAMES,
            template="fr",
        ),
        build_prompt(
            "open the door", obs[1:], ["toggle"], SYNONYM_ACTION_NAMES, num_observations=1
        ),
    ]


CANDIDATES = [
    list(ENGLISH_ACTION_NAMES),
    ["go forward", "drop"],  # prompts may have different candidate lists
    list(FRENCH_ACTION_NAMES),
    ["switch", "pick up the red key then go to the grey door", "rotate left"],
]


def finite_close(a, b, atol=ATOL):
    assert a.shape == b.shape
    assert torch.equal(torch.isinf(a), torch.isinf(b))
    fin = torch.isfinite(a)
    err = (a[fin] - b[fin]).abs().max().item()
    assert err <= atol, err
