"""PPO under mixed precision: bf16 autocast updates track fp32 ones on the same rollouts, fp16
runs with a gradient scaler, and the optimiser only ever holds fp32 weights and state."""

import dataclasses

import pytest
import torch
from ppo_grounding import PPOTrainer

from .helpers import tiny_config

# Per-update metrics of bf16 autocast vs fp32 on the same rollouts from the same weights. The
# weights drift apart a little each step, so the tolerance covers a few updates, not many.
LOSS_ATOL = 0.005
LOSS_RTOL = 0.10
COMPARED = ("losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl")


def trainer(tmp_path, dtype, name):
    config = tiny_config(tmp_path / name, learning_rate=1e-4)
    config.policy = dataclasses.replace(config.policy, dtype=dtype)
    return PPOTrainer(config)


def test_bf16_updates_track_fp32_on_the_same_rollouts(tmp_path):
    with (
        trainer(tmp_path, "float32", "fp32") as fp32,
        trainer(tmp_path, "bfloat16", "bf16") as bf16,
    ):
        assert bf16.scaler is None and fp32.scaler is None
        for _ in range(3):
            rollout, _ = fp32.collect_rollout()
            want, got = fp32.update(rollout), bf16.update(rollout)
            for name in COMPARED:
                assert got[name] == pytest.approx(want[name], rel=LOSS_RTOL, abs=LOSS_ATOL), name
        # and the two policies still act alike after three updates
        prompts = [rollout.prompts[0][i] for i in range(2)]
        p32 = fp32.policy(prompts, fp32.action_names).distribution().probs
        p16 = bf16.policy(prompts, bf16.action_names).distribution().probs
        assert (p32 - p16).abs().max() < 0.05
        for group in bf16.optimizer.param_groups:
            assert {p.dtype for p in group["params"]} == {torch.float32}
        assert {s["exp_avg"].dtype for s in bf16.optimizer.state.values()} == {torch.float32}


def test_fp16_trains_with_a_gradient_scaler(tmp_path):
    with trainer(tmp_path, "float16", "fp16") as run:
        assert isinstance(run.scaler, torch.amp.GradScaler)
        before = [p.detach().clone() for p in run.policy.trainable_parameters()]
        rollout, _ = run.collect_rollout()
        metrics = run.update(rollout)
        assert metrics["losses/minibatch_steps"] > 0
        assert run.scaler.get_scale() > 1.0  # the loss was scaled up before the backward
        moved = [
            not torch.equal(p, b)
            for p, b in zip(run.policy.trainable_parameters(), before, strict=True)
        ]
        assert any(moved)
        assert {p.dtype for p in run.policy.trainable_parameters()} == {torch.float32}
