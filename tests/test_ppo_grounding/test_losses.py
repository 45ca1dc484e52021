import math

import pytest
import torch
from ppo_grounding.losses import explained_variance, ppo_loss


def loss_for(
    ratios,
    advantages,
    *,
    new_values=(0.0, 0.0),
    old_values=(0.0, 0.0),
    returns=(0.0, 0.0),
    clip_vloss=True,
):
    ratios = torch.tensor(ratios)
    return ppo_loss(
        new_logprob=ratios.log(),
        old_logprob=torch.zeros(2),
        advantages=torch.tensor(advantages),
        entropy=torch.tensor([1.0, 3.0]),
        new_values=torch.tensor(new_values),
        old_values=torch.tensor(old_values),
        returns=torch.tensor(returns),
        clip_coef=0.2,
        clip_vloss=clip_vloss,
        vf_coef=0.5,
        ent_coef=0.01,
        norm_adv=False,
    )


def test_positive_advantage_clips_the_ratio_from_above_only():
    out = loss_for([1.5, 0.5], [1.0, 1.0])
    # -min(r A, clip(r) A): 1.5 -> 1.2, but 0.5 stays 0.5 (the pessimistic side).
    assert math.isclose(out.policy_loss.item(), -(1.2 + 0.5) / 2, rel_tol=1e-6)
    assert out.clipfrac.item() == 1.0


def test_negative_advantage_clips_the_ratio_from_below_only():
    out = loss_for([1.5, 0.5], [-1.0, -1.0])
    assert math.isclose(out.policy_loss.item(), (1.5 + 0.8) / 2, rel_tol=1e-6)


def test_ratio_inside_the_clip_range_is_not_clipped():
    out = loss_for([1.1, 0.9], [2.0, -1.0])
    assert math.isclose(out.policy_loss.item(), -(1.1 * 2.0 - 0.9) / 2, rel_tol=1e-6)
    assert out.clipfrac.item() == 0.0


def test_value_loss_is_clipped_around_the_rollout_value():
    out = loss_for(
        [1.0, 1.0], [0.0, 0.0], new_values=(1.0, 2.0), old_values=(0.0, 2.0), returns=(2.0, 2.0)
    )
    # first: unclipped (1-2)^2 = 1, clipped (0.2-2)^2 = 3.24 -> max 3.24; second: 0.
    assert math.isclose(out.value_loss.item(), 0.5 * (3.24 + 0.0) / 2, rel_tol=1e-6)
    plain = loss_for(
        [1.0, 1.0],
        [0.0, 0.0],
        new_values=(1.0, 2.0),
        old_values=(0.0, 2.0),
        returns=(2.0, 2.0),
        clip_vloss=False,
    )
    assert math.isclose(plain.value_loss.item(), 0.5 * 1.0 / 2, rel_tol=1e-6)


def test_total_loss_combines_the_terms_and_kl_is_zero_at_ratio_one():
    out = loss_for(
        [1.0, 1.0], [1.0, -1.0], new_values=(1.0, 1.0), returns=(0.0, 0.0), clip_vloss=False
    )
    expected = out.policy_loss + 0.5 * out.value_loss - 0.01 * 2.0
    assert math.isclose(out.loss.item(), expected.item(), rel_tol=1e-6)
    assert out.approx_kl.item() == 0.0 and out.old_approx_kl.item() == 0.0


def test_approx_kl_is_the_k3_estimator():
    out = loss_for([2.0, 0.5], [0.0, 0.0])
    expected = ((2.0 - 1 - math.log(2.0)) + (0.5 - 1 - math.log(0.5))) / 2
    assert math.isclose(out.approx_kl.item(), expected, rel_tol=1e-6)


def test_advantage_normalisation_and_gradient_flow():
    logp = torch.zeros(4, requires_grad=True)
    out = ppo_loss(
        logp,
        torch.zeros(4),
        torch.tensor([1.0, 2.0, 3.0, 4.0]),
        torch.zeros(4),
        torch.zeros(4),
        torch.zeros(4),
        torch.zeros(4),
        clip_coef=0.2,
        clip_vloss=True,
        vf_coef=0.5,
        ent_coef=0.0,
        norm_adv=True,
    )
    out.loss.backward()
    # Normalised advantages sum to zero, so d(loss)/d(logp) = -A_norm / 4 sums to zero too.
    assert abs(logp.grad.sum().item()) < 1e-6
    assert logp.grad[0] > 0 > logp.grad[3]


def test_explained_variance():
    target = torch.tensor([1.0, 2.0, 3.0])
    assert explained_variance(target, target) == 1.0
    assert explained_variance(torch.zeros(3), target) == pytest.approx(0.0, abs=1e-6)
    assert explained_variance(target + 1.0, target) == pytest.approx(1.0)  # a bias is free
    assert explained_variance(-target, target) == pytest.approx(-3.0)
    assert math.isnan(explained_variance(torch.zeros(3), torch.ones(3)))


def test_policy_gradient_is_zero_where_the_clip_binds_and_not_inside():
    # ratio, advantage: the clip binds above 1 + eps for A > 0 and below 1 - eps for A < 0;
    # on the other side the unclipped term is the pessimistic one and keeps its gradient.
    cases = [
        (1.5, 1.0, "clipped"),
        (0.5, -1.0, "clipped"),
        (1.3, 2.0, "clipped"),
        (1.5, -1.0, "free"),
        (0.5, 1.0, "free"),
        (1.1, 2.0, "free"),
        (0.9, -1.0, "free"),
        (1.0, 0.5, "free"),
    ]
    ratios = torch.tensor([r for r, _, _ in cases])
    advantages = torch.tensor([a for _, a, _ in cases])
    new_logprob = ratios.log().requires_grad_()
    out = ppo_loss(
        new_logprob,
        torch.zeros(len(cases)),
        advantages,
        torch.zeros(len(cases)),
        torch.zeros(len(cases)),
        torch.zeros(len(cases)),
        torch.zeros(len(cases)),
        clip_coef=0.2,
        clip_vloss=True,
        vf_coef=0.5,
        ent_coef=0.01,
        norm_adv=False,
    )
    out.loss.backward()
    for (ratio, advantage, kind), grad in zip(cases, new_logprob.grad.tolist(), strict=True):
        if kind == "clipped":
            assert grad == 0.0, (ratio, advantage)
        else:
            # d(-A r / B)/d(log r) = -A r / B
            assert math.isclose(grad, -advantage * ratio / len(cases), rel_tol=1e-6)
