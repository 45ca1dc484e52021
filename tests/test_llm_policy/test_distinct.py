"""Repeated inputs are computed once: `LLMPolicy.forward` merges the rows of a batch that repeat a
(prompt, candidates), and inside `remember_outputs()` reuses outputs across calls. Outputs and
gradients equal those of computing every row, and neither applies where the forward is random."""

import pytest
import torch
from llm_policy import LLMPolicy, PolicyConfig
from llm_policy.distinct import distinct_rows, has_active_dropout, row_keys
from torch import nn

from .scoring_cases import CANDIDATES, make_prompts


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    return LLMPolicy(PolicyConfig(model=tiny_model_dir("gpt2")))


def count_scored_prompts(policy):
    """The prompts each scorer call receives."""
    seen = []
    original = policy.scorer.score

    def spy(prompts, *args, **kwargs):
        seen.append(list(prompts))
        return original(prompts, *args, **kwargs)

    policy.scorer.score = spy
    return seen


def repeated_batch():
    prompts, candidates = make_prompts(), CANDIDATES
    order = [0, 1, 0, 2, 3, 1, 0, 3]
    return [prompts[i] for i in order], [candidates[i] for i in order]


def test_lockstep_runs_a_stand_in_forward_when_another_process_must_compute(policy):
    # a sharded model's forward is collective: every process runs it when any must
    prompts, candidates = repeated_batch()
    seen = count_scored_prompts(policy)
    asked = []

    def others_compute(mine: bool) -> bool:  # another process always has prompts to score
        asked.append(mine)
        return True

    with torch.no_grad():
        want = policy(prompts, candidates)
        with policy.remember_outputs(lockstep=others_compute):
            policy(prompts, candidates)
            calls = len(seen)
            again = policy(prompts, candidates)  # all remembered here
            assert asked == [True, False]
            assert [len(s) for s in seen[calls:]] == [1]  # one stand-in row, output dropped

        def nobody_computes(mine: bool) -> bool:
            return mine

        with policy.remember_outputs(lockstep=nobody_computes):
            policy(prompts, candidates)
            calls = len(seen)
            policy(prompts, candidates)
            assert len(seen) == calls  # no process computes: no forward
    finite = torch.isfinite(want.logits)
    torch.testing.assert_close(again.logits[finite], want.logits[finite], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again.values, want.values, atol=1e-5, rtol=1e-5)


def test_distinct_rows_maps_every_row_to_its_first_occurrence():
    first, inverse = distinct_rows(["b", "a", "b", "c", "a"])
    assert first == [0, 1, 3]
    assert inverse.tolist() == [0, 1, 0, 2, 1]


def test_the_same_prompt_with_other_candidates_is_another_row():
    keys = row_keys(["p", "p", "p"], [["x", "y"], ["x"], ["x", "y"]])
    assert distinct_rows(keys)[0] == [0, 1]
    # one list object shared by every prompt (`[actions] * n`) becomes one tuple
    shared = ["x", "y"]
    keys = row_keys(["p", "q"], [shared, shared])
    assert keys == [("p", ("x", "y")), ("q", ("x", "y"))] and keys[0][1] is keys[1][1]
    # an action head's output depends on the prompt alone
    assert row_keys(["p", "p"], None) == [("p", None), ("p", None)]


def test_merged_rows_give_the_outputs_and_gradients_of_every_row(policy):
    prompts, candidates = repeated_batch()
    seen = count_scored_prompts(policy)
    weights = torch.linspace(0.5, 2.0, len(prompts))  # each row's loss counts differently

    def loss_and_grads(merge):
        policy.merge_duplicates = merge
        policy.zero_grad()
        out = policy(prompts, candidates)
        finite = torch.where(torch.isfinite(out.logits), out.logits, 0.0)
        loss = (weights * (finite.sum(-1) + out.values)).sum()
        loss.backward()
        grads = [p.grad.clone() for p in policy.trainable_parameters()]
        return out, grads

    try:
        merged, merged_grads = loss_and_grads(True)
        assert len(seen[-1]) == 4  # the 4 distinct prompts, once each
        every, every_grads = loss_and_grads(False)
        assert len(seen[-1]) == len(prompts)
    finally:
        policy.merge_duplicates = True
        policy.zero_grad()
    assert torch.equal(torch.isinf(merged.logits), torch.isinf(every.logits))
    finite = torch.isfinite(every.logits)
    torch.testing.assert_close(merged.logits[finite], every.logits[finite], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(merged.values, every.values, atol=1e-5, rtol=1e-5)
    for got, want in zip(merged_grads, every_grads, strict=True):
        assert (got - want).abs().max() <= 1e-5 * want.abs().max().clamp_min(1.0)


def test_remembered_outputs_are_reused_until_the_block_ends(policy):
    prompts, candidates = repeated_batch()
    seen = count_scored_prompts(policy)
    with torch.no_grad():
        want = policy(prompts, candidates)
        with policy.remember_outputs():
            first = policy(prompts[:3], candidates[:3])
            assert len(seen[-1]) == 2  # prompts 0 and 1
            calls = len(seen)
            again = policy(prompts, candidates)
            assert [len(s) for s in seen[calls:]] == [2]  # only prompts 2 and 3 are new
            calls = len(seen)
            policy(prompts[::-1], candidates[::-1])
            assert len(seen) == calls  # all remembered: no forward at all
            with pytest.raises(RuntimeError, match="already active"):
                with policy.remember_outputs():
                    pass
            grad_calls = len(seen)
            with torch.enable_grad():
                policy(prompts[:1], candidates[:1])  # a differentiable call computes
            assert len(seen) == grad_calls + 1
        calls = len(seen)
        policy(prompts[:1], candidates[:1])
        assert len(seen) == calls + 1  # forgotten after the block
    finite = torch.isfinite(want.logits)
    torch.testing.assert_close(again.logits[finite], want.logits[finite], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again.values, want.values, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(first.values, want.values[:3], atol=1e-5, rtol=1e-5)
    assert again.logits.shape == want.logits.shape


def test_no_merging_under_dropout(tiny_model_dir):
    """With dropout active every row's forward draws its own mask: rows are not merged, nor is a
    shared prompt prefix run once."""
    assert has_active_dropout(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)))
    assert not has_active_dropout(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)).eval())
    assert not has_active_dropout(nn.Sequential(nn.Dropout(0.0)))
    policy = LLMPolicy(
        PolicyConfig(model=tiny_model_dir("gpt2"), finetune="lora", lora_dropout=0.1)
    )
    prompts, candidates = repeated_batch()
    seen = count_scored_prompts(policy)
    policy.train()
    assert has_active_dropout(policy) and has_active_dropout(policy.scorer.model)
    policy(prompts, candidates)
    assert len(seen[-1]) == len(prompts)
    policy.eval()
    assert not has_active_dropout(policy)
    with torch.no_grad():
        policy(prompts, candidates)
    assert len(seen[-1]) == 4


def test_errors_name_the_callers_row(policy):
    """Merging must not renumber the rows a message names."""
    prompts = make_prompts()
    batch = [prompts[0], prompts[0], prompts[1], prompts[2]]
    lists = [["go forward"], ["go forward"], ["turn left"], ["drop", "drop"]]
    with pytest.raises(ValueError, match=r"candidates\[3\] lists 'drop' twice"):
        policy(batch, lists)
    with pytest.raises(ValueError, match=r"candidates\[3\] is empty"):
        policy(batch, [["go forward"], ["go forward"], ["turn left"], []])
    with pytest.raises(ValueError, match=r"candidates\[3\]\[0\] = ' ' has no tokens"):
        policy(batch, [["go forward"], ["go forward"], ["turn left"], [" "]])
    with pytest.raises(TypeError, match=r"candidates\[3\]\[1\] is a int"):
        policy(batch, [["go forward"], ["go forward"], ["turn left"], ["drop", 3]])
