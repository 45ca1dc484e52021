"""Flan-T5 checkpoints carry an output head that is not tied to the input embeddings.

transformers 5 forces T5Config.tie_word_embeddings=True (the flag now only decides the decoder
output scaling, via `scale_decoder_outputs`), so an untied head survives loading only because the
checkpoint's lm_head differs from its embeddings, and any later tie_weights() would overwrite it.
"""

import torch
import torch.nn.functional as F
from llm_policy import LLMPolicy, PolicyConfig
from llm_policy.offline import vocabulary

from .tiny_models import write_flan_t5_like

PROMPT = [
    "Goal of the agent: go to the red ball\n"
    "Observation 0: You see a wall 2 steps forward,\nAction 0:"
]
CANDS = [["go forward", "turn left", "pick up the red key"]]


def manual_scores(policy, head_weight, scale):
    """log P(action | prompt) with an explicit output matrix, from the model's own hidden states."""
    lm, tok = policy.scorer.model, policy.tokenizer
    enc = torch.tensor([tok(PROMPT[0])["input_ids"]])
    out = []
    for cand in CANDS[0]:
        ids = tok(cand, add_special_tokens=False)["input_ids"]
        dec = torch.tensor([[lm.config.decoder_start_token_id, *ids[:-1]]])
        h = lm(
            input_ids=enc, decoder_input_ids=dec, output_hidden_states=True
        ).decoder_hidden_states[-1][0]
        logits = F.linear(h * scale, head_weight)
        out.append(logits.log_softmax(-1).gather(-1, torch.tensor(ids)[:, None]).sum())
    return torch.stack(out)


def test_untied_head_loads_and_scores_with_the_checkpoint_head(tmp_path):
    state = write_flan_t5_like(tmp_path / "flan", len(vocabulary()))
    policy = LLMPolicy(PolicyConfig(model=str(tmp_path / "flan"), value_head_hidden=8))
    lm = policy.scorer.model
    assert lm.config.scale_decoder_outputs is False  # Flan-T5 / T5 v1.1: no d_model^-0.5 scaling
    assert lm.lm_head.weight is not lm.shared.weight
    torch.testing.assert_close(lm.lm_head.weight, state["lm_head.weight"])
    torch.testing.assert_close(lm.shared.weight, state["shared.weight"])

    with torch.no_grad():
        got = policy.score(PROMPT, CANDS).scores[0]
        want = manual_scores(policy, state["lm_head.weight"], 1.0)
        wrong_tied = manual_scores(policy, state["shared.weight"], 1.0)
        wrong_scaled = manual_scores(policy, state["lm_head.weight"], 32**-0.5)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    assert (got - wrong_tied).abs().max() > 1e-2 and (got - wrong_scaled).abs().max() > 1e-2

    # a later tie_weights() (resize_token_embeddings, other libraries...) must not tie it back
    lm.tie_weights()
    assert lm.lm_head.weight is not lm.shared.weight
    torch.testing.assert_close(lm.lm_head.weight, state["lm_head.weight"])
    with torch.no_grad():
        torch.testing.assert_close(policy.score(PROMPT, CANDS).scores[0], got)


def test_untied_head_survives_full_finetuning_checkpoints(tmp_path):
    state = write_flan_t5_like(tmp_path / "flan", len(vocabulary()))
    policy = LLMPolicy(
        PolicyConfig(model=str(tmp_path / "flan"), finetune="full", value_head_hidden=8)
    )
    with torch.no_grad():
        policy.scorer.model.lm_head.weight.mul_(1.5)
        want = policy.score(PROMPT, CANDS).scores
    loaded = LLMPolicy.from_pretrained(policy.save_pretrained(tmp_path / "ckpt"))
    lm = loaded.scorer.model
    assert lm.lm_head.weight is not lm.shared.weight
    torch.testing.assert_close(lm.lm_head.weight, state["lm_head.weight"] * 1.5)
    with torch.no_grad():  # same weights; kernels may round differently on other buffers
        torch.testing.assert_close(loaded.score(PROMPT, CANDS).scores, want, atol=1e-5, rtol=0)


def test_offline_t5_has_an_untied_head_like_flan_t5():
    policy = LLMPolicy(PolicyConfig(model="offline-t5", value_head_hidden=8))
    lm = policy.scorer.model
    assert lm.lm_head.weight is not lm.shared.weight
    assert not torch.equal(lm.lm_head.weight, lm.shared.weight)
    assert lm.config.scale_decoder_outputs is False
    lm.tie_weights()
    assert lm.lm_head.weight is not lm.shared.weight
