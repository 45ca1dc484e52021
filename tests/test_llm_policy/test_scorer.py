"""Every scoring method equals the per-pair references, for values and gradients, on every model
family: T5, Flan-T5-style (untied head), GPT-2, Llama, Qwen2 tiny configs."""

import pytest
import torch
from llm_policy import ActionScorer
from llm_policy.batching import length_groups
from llm_policy.loading import load_model_and_tokenizer
from llm_policy.reference import naive_scores, padded_batch_scores

from .scoring_cases import ATOL, CANDIDATES, FAST, KINDS, finite_close, make_prompts


@pytest.mark.parametrize("normalization", ["sum", "token", "word"])
@pytest.mark.parametrize("kind", KINDS)
def test_fast_methods_equal_naive_per_pair(scorers, kind, normalization):
    scorer = scorers(kind)
    prompts = make_prompts()
    with torch.no_grad():
        want = naive_scores(scorer, prompts, CANDIDATES, normalization)
        finite_close(padded_batch_scores(scorer, prompts, CANDIDATES, normalization), want)
        for method in ("cache", FAST[kind]):
            got = scorer.score(prompts, CANDIDATES, normalization=normalization, method=method)
            finite_close(got.scores, want)
            assert got.scores.dtype == torch.float32
            assert got.features.shape == (len(prompts), scorer.hidden_size)
    # -inf exactly where a prompt has fewer candidates
    assert torch.isinf(want).sum().item() == sum(
        max(map(len, CANDIDATES)) - len(c) for c in CANDIDATES
    )
    if normalization == "sum":  # realistic magnitudes: units to tens per action, never hundreds
        finite = want[torch.isfinite(want)]
        assert finite.max() < 0 and finite.min() > -150


def test_normalizations_divide_the_sum(scorers):
    scorer = scorers("gpt2")
    prompts = make_prompts()
    with torch.no_grad():
        out = {
            n: scorer.score(prompts, CANDIDATES, normalization=n) for n in ("sum", "token", "word")
        }
    s = out["sum"]
    fin = torch.isfinite(s.scores)
    tokens = s.token_mask.sum(-1).float()
    words = torch.tensor([float(len(c.split())) for cands in CANDIDATES for c in cands])
    flat = s.scores[fin]  # pairs in prompt-then-candidate order, like the flattening of fin
    torch.testing.assert_close(out["token"].scores[fin], flat / tokens)
    torch.testing.assert_close(out["word"].scores[fin], flat / words)
    # token log-probs are log-softmax values with padding exactly 0
    assert (s.token_logprobs[~s.token_mask] == 0).all() and (
        s.token_logprobs[s.token_mask] < 0
    ).all()


@pytest.mark.parametrize("kind", ["t5", "gpt2", "llama"])
def test_gradients_equal_naive(scorers, kind):
    scorer = scorers(kind)
    params = [p for p in scorer.model.parameters() if p.requires_grad]
    prompts, cands = make_prompts()[:3], CANDIDATES[:3]

    def grads(fn):
        s = fn()
        loss = s[torch.isfinite(s)].sum()
        return torch.autograd.grad(loss, params, allow_unused=True)

    want = grads(lambda: naive_scores(scorer, prompts, cands))
    for method in ("cache", FAST[kind]):
        got = grads(lambda m=method: scorer.score(prompts, cands, method=m).scores)
        for g, w in zip(got, want, strict=True):
            if w is None:
                assert g is None or g.abs().max() == 0
                continue
            torch.testing.assert_close(g, w, atol=2e-4, rtol=1e-3)


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
@pytest.mark.parametrize("kind", ["flan-t5", "gpt2", "llama"])
def test_peft_model_with_gradient_checkpointing(tiny_model_dir, kind):
    from llm_policy.loading import default_lora_targets
    from peft import LoraConfig, get_peft_model

    model, tok = load_model_and_tokenizer(tiny_model_dir(kind))
    model.activation_checkpointing_enable({"use_reentrant": False})
    targets = list(default_lora_targets(model.config.model_type))
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=targets, fan_in_fan_out=kind == "gpt2")
    )
    with torch.no_grad():  # non-zero adapters, so that they matter
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    scorer = ActionScorer(model, tok)
    prompts, cands = make_prompts()[:2], CANDIDATES[:2]
    lora = [p for n, p in peft_model.named_parameters() if p.requires_grad]

    model.eval()  # no checkpointing outside training: the KV cache can be used
    assert scorer.resolve_method() == ("cache" if kind == "flan-t5" else "packed")
    ref = scorer.score(prompts, cands, method="cache").scores
    ref_grads = torch.autograd.grad(ref[torch.isfinite(ref)].sum(), lora)
    with torch.no_grad():
        finite_close(ref, naive_scores(scorer, prompts, cands))

    model.train()  # checkpointing active: the cache-free path, same numbers and gradients
    assert scorer.resolve_method() == FAST[kind]
    with pytest.raises(ValueError, match="gradient checkpointing"):
        scorer.resolve_method("cache")
    got = scorer.score(prompts, cands).scores
    assert got.requires_grad
    finite_close(got.detach(), ref.detach())
    got_grads = torch.autograd.grad(got[torch.isfinite(got)].sum(), lora)
    for g, w in zip(got_grads, ref_grads, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)
    assert any(g.abs().sum() > 0 for g in got_grads)


@pytest.mark.parametrize("kind", ["t5", "gpt2"])
def test_only_needed_logits_are_computed(scorers, kind):
    """The output head sees the last prompt (or decoder-start) state and one state per action
    token after the first: never the whole prompt."""
    scorer = scorers(kind)
    prompts, cands = make_prompts(), CANDIDATES
    rows = []
    head = scorer.model.get_output_embeddings()
    hook = head.register_forward_hook(
        lambda m, i, o: rows.append(i[0].reshape(-1, i[0].shape[-1]).shape[0])
    )
    try:
        with torch.no_grad():
            for method in ("cache", FAST[kind]):
                rows.clear()
                out = scorer.score(prompts, cands, method=method)
                later_tokens = int((out.token_mask.sum(-1) - 1).sum())
                assert sum(rows) == len(prompts) + later_tokens
    finally:
        hook.remove()


def test_candidates_are_scored_independently(scorers):
    """Packing candidates together must not let them see each other."""
    scorer = scorers("llama")
    prompt = make_prompts()[:1]
    with torch.no_grad():
        alone = scorer.score(
            prompt, [["pick up the red key then go to the grey door"]], method="packed"
        ).scores[0, 0]
        crowd = [
            "go forward",
            "pick up the red key then go to the grey door",
            "turn left after you open the door",
        ]
        packed = scorer.score(prompt, [crowd], method="packed").scores[0, 1]
    assert abs(alone.item() - packed.item()) < ATOL


def test_shared_candidate_list_and_single_token_actions(scorers):
    scorer = scorers("gpt2")
    prompts = make_prompts()
    with torch.no_grad():
        shared = scorer.score(prompts, ["drop", "toggle"]).scores  # single-token actions only
        explicit = scorer.score(prompts, [["drop", "toggle"]] * len(prompts)).scores
        want = naive_scores(scorer, prompts, [["drop", "toggle"]] * len(prompts))
        single = torch.cat([scorer.score([p], [["drop", "toggle"]]).scores for p in prompts])
    finite_close(shared, want)
    finite_close(explicit, want)
    finite_close(single, want)


@pytest.mark.parametrize("kind", ["t5", "gpt2"])
def test_length_bucketing_keeps_order_values_and_gradients(tiny_model_dir, kind):
    model, tok = load_model_and_tokenizer(tiny_model_dir(kind))
    model.eval()
    one = ActionScorer(model, tok, length_bucketing=False)
    split = ActionScorer(model, tok)
    split.call_cost_tokens = 0.0  # as for a large model: every length gets its own group
    prompts = make_prompts()
    batch = split.tokenize(prompts, CANDIDATES)
    groups = length_groups(batch, call_cost_tokens=0.0, packs_candidates=kind == "gpt2")
    assert len(groups) > 1 and sorted(i for g in groups for i in g) == list(range(len(prompts)))
    assert length_groups(batch, call_cost_tokens=1e9, packs_candidates=False) == [[0, 1, 2, 3]]
    a = one.score(prompts, CANDIDATES)
    b = split.score(prompts, CANDIDATES)
    finite_close(b.scores.detach(), a.scores.detach())
    torch.testing.assert_close(b.token_logprobs, a.token_logprobs, atol=ATOL, rtol=0)
    assert torch.equal(b.token_mask, a.token_mask)
    torch.testing.assert_close(b.features, a.features, atol=1e-5, rtol=0)
    assert torch.equal(b.pair_prompt, a.pair_prompt) and torch.equal(b.pair_slot, a.pair_slot)
    params = [p for p in model.parameters() if p.requires_grad]
    ga = torch.autograd.grad(a.scores[torch.isfinite(a.scores)].sum(), params, allow_unused=True)
    gb = torch.autograd.grad(b.scores[torch.isfinite(b.scores)].sum(), params, allow_unused=True)
    for x, y in zip(ga, gb, strict=True):
        if x is not None:
            torch.testing.assert_close(y, x, atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("kind", ["flan-t5", "gpt2"])
def test_max_batch_prompts_bounds_each_forward_and_keeps_the_scores(tiny_model_dir, kind):
    """Scoring memory is bounded by max_batch_prompts, not by how many prompts (envs) a call
    passes: every forward sees at most that many prompts, and the scores are those of one batch."""
    from llm_policy import LLMPolicy, PolicyConfig

    prompts = (make_prompts() * 3)[:7]
    candidates = [CANDIDATES[i % len(CANDIDATES)] for i in range(len(prompts))]
    whole = LLMPolicy(PolicyConfig(model=tiny_model_dir(kind), max_batch_prompts=None))
    chunked = LLMPolicy(PolicyConfig(model=tiny_model_dir(kind), max_batch_prompts=2))
    chunked.merge_duplicates = False  # the prompts repeat: every row must reach the scorer
    seen = []
    for method in ("run", "prompt_features"):
        original = getattr(chunked.scorer.forwards, method)

        def spy(*args, _original=original, **kwargs):
            seen.append(args[-1].prompt_ids.shape[0])  # the PaddedBatch
            return _original(*args, **kwargs)

        setattr(chunked.scorer.forwards, method, spy)
    with torch.no_grad():
        want, got = whole(prompts, candidates), chunked(prompts, candidates)
        values = chunked.value(prompts)
    assert seen and max(seen) <= 2 and sum(seen) >= 2 * len(prompts)
    finite_close(got.logits, want.logits, atol=ATOL)
    torch.testing.assert_close(got.values, want.values, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values, want.values, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="max_batch_prompts must be None or a positive int"):
        PolicyConfig(max_batch_prompts=0)
