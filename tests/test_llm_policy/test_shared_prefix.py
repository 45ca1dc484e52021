"""Shared prompt prefixes: the decoder-only "packed" forward runs the leading tokens that every
prompt of a batch shares once, as a key/value cache. Scores, features and gradients equal the
unshared forward's to float rounding, and sharing is off where it cannot work."""

import pytest
import torch
from llm_policy import ENGLISH_ACTION_NAMES, ActionScorer, build_prompt
from llm_policy.loading import load_model_and_tokenizer

ACTIONS = list(ENGLISH_ACTION_NAMES)
DECODER_ONLY = ("gpt2", "llama", "qwen2")


def glam_prompts():
    """GLAM prompts open with the same list of actions; goals and observations differ, and so do
    their lengths."""
    cases = [
        ("go to the red ball", [["You see a wall 2 steps forward"]]),
        (
            "pick up the blue key",
            [["You see a blue key 1 step left", "You see a wall 3 steps left"]],
        ),
        ("open the door", [["You carry a red ball"]]),
        ("go to the red ball", [["You see a red ball 1 step forward"]]),
        ("go to the red ball", [[]]),
    ]
    return [build_prompt(goal, obs, [], ENGLISH_ACTION_NAMES) for goal, obs in cases]


def scorer_pair(tiny_model_dir, kind):
    """Two scorers on the same weights, with and without prefix sharing; sharing forced on for
    any saving (a tiny model's call cost would otherwise decide)."""
    model, tokenizer = load_model_and_tokenizer(tiny_model_dir(kind))
    model.eval()
    shared = ActionScorer(model, tokenizer, share_prefixes=True)
    shared.forwards.min_shared_tokens = 0
    unshared = ActionScorer(model, tokenizer, share_prefixes=False)
    return shared, unshared


def count_backbone_calls(scorer):
    calls = []
    scorer.forwards.backbone.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize("kind", DECODER_ONLY)
def test_shared_prefix_scores_and_gradients_equal_the_unshared_forward(tiny_model_dir, kind):
    shared, unshared = scorer_pair(tiny_model_dir, kind)
    prompts = glam_prompts()
    candidates = [ACTIONS, ACTIONS[:3], ACTIONS, ACTIONS[2:], ACTIONS]
    calls = count_backbone_calls(shared)
    params = [p for p in shared.model.parameters() if p.requires_grad]

    got = shared.score(prompts, candidates, method="packed")
    assert len(calls) == 2, "the shared prefix must run as its own forward call"
    grads_got = torch.autograd.grad(got.scores[torch.isfinite(got.scores)].sum(), params)
    calls.clear()
    want = unshared.score(prompts, candidates, method="packed")
    assert len(calls) == 1
    grads_want = torch.autograd.grad(want.scores[torch.isfinite(want.scores)].sum(), params)

    assert torch.equal(torch.isinf(got.scores), torch.isinf(want.scores))
    finite = torch.isfinite(want.scores)
    torch.testing.assert_close(got.scores[finite], want.scores[finite], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.features, want.features, atol=1e-5, rtol=1e-5)
    for g, w in zip(grads_got, grads_want, strict=True):
        scale = w.abs().max().clamp_min(1.0)
        assert (g - w).abs().max() <= 1e-5 * scale


def test_prefix_length_stops_before_each_prompts_last_token(tiny_model_dir):
    """Identical prompts share all but their last token, which predicts the candidates; prompts
    with no common start share nothing and run as one call."""
    shared, unshared = scorer_pair(tiny_model_dir, "gpt2")
    prompt = glam_prompts()[0]
    batch = shared._pad(shared.tokenize([prompt, prompt], [ACTIONS, ACTIONS]))
    length = int(batch.prompt_mask[0].sum())
    assert shared.forwards._shared_prefix_length(batch) == length - 1
    with torch.no_grad():
        got = shared.score([prompt, prompt], [ACTIONS, ACTIONS], method="packed")
        want = unshared.score([prompt, prompt], [ACTIONS, ACTIONS], method="packed")
    torch.testing.assert_close(got.scores, want.scores, atol=1e-5, rtol=1e-5)

    different = shared._pad(shared.tokenize(["go to the red ball", "open the door"], [ACTIONS] * 2))
    assert shared.forwards._shared_prefix_length(different) == 0


def test_a_short_prefix_is_not_worth_its_own_call(tiny_model_dir):
    """Sharing saves shared*(B-1) prompt tokens and costs one forward call: below the scorer's
    estimate of that cost it is skipped."""
    model, tokenizer = load_model_and_tokenizer(tiny_model_dir("gpt2"))
    scorer = ActionScorer(model, tokenizer)
    assert scorer.forwards.min_shared_tokens == scorer.call_cost_tokens > 0
    prompts = glam_prompts()[:2]
    batch = scorer._pad(scorer.tokenize(prompts, [ACTIONS] * 2))
    scorer.forwards.min_shared_tokens = 0
    shared = scorer.forwards._shared_prefix_length(batch)
    assert shared > 0
    scorer.forwards.min_shared_tokens = shared * (len(prompts) - 1) + 1
    assert scorer.forwards._shared_prefix_length(batch) == 0


def test_no_sharing_under_gradient_checkpointing(tiny_model_dir):
    """transformers drops the key/value cache under gradient checkpointing in training mode, so
    the scorer runs the prompts whole there, with the same scores."""
    shared, unshared = scorer_pair(tiny_model_dir, "llama")
    prompts = glam_prompts()
    with torch.no_grad():
        want = unshared.score(prompts, [ACTIONS] * len(prompts), method="packed")
    shared.model.activation_checkpointing_enable()
    shared.model.train()
    calls = count_backbone_calls(shared)
    got = shared.score(prompts, [ACTIONS] * len(prompts), method="packed")
    assert len(calls) == 1
    torch.testing.assert_close(got.scores, want.scores, atol=1e-5, rtol=1e-5)


def test_encoder_decoders_ignore_share_prefixes(tiny_model_dir):
    """An encoder is bidirectional: a prompt's first tokens depend on its last, so there is no
    prefix to share and the option changes nothing."""
    model, tokenizer = load_model_and_tokenizer(tiny_model_dir("t5"))
    model.eval()
    prompts = glam_prompts()
    with torch.no_grad():
        on = ActionScorer(model, tokenizer, share_prefixes=True).score(prompts, ACTIONS)
        off = ActionScorer(model, tokenizer, share_prefixes=False).score(prompts, ACTIONS)
    assert torch.equal(on.scores, off.scores)
