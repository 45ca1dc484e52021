import json
import math

import pytest
import torch
from ppo_grounding import PPOTrainer
from ppo_grounding.checkpoint import latest_checkpoint
from ppo_grounding.gae import compute_gae
from ppo_grounding.metrics import read_metrics

from .helpers import tiny_config

FIXED_METRICS = {
    "charts/frames",
    "charts/episodes",
    "charts/success_rate",
    "charts/SPS",
    "charts/learning_rate",
    "losses/policy_loss",
    "losses/value_loss",
    "losses/entropy",
    "losses/approx_kl",
    "losses/old_approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
    "losses/grad_norm",
    "time/elapsed_s",
}


def test_two_update_smoke_run_logs_metrics_and_checkpoints(tmp_path):
    config = tiny_config(tmp_path / "run")
    state = PPOTrainer(config).train()
    assert (state.update, state.frames) == (2, 32)
    rows = read_metrics(tmp_path / "run")
    assert [r["update"] for r in rows] == [1, 2]
    assert FIXED_METRICS <= set(rows[0])
    assert sum(
        rows[-1][f"charts/action_frac/{name}"]
        for name in ("turn left", "turn right", "go forward", "pick up", "drop", "toggle")
    ) == pytest.approx(1.0)
    assert latest_checkpoint(tmp_path / "run").name == "update_000002"
    assert (tmp_path / "run" / "checkpoints" / "update_000001" / "policy").is_dir()


def test_training_changes_the_policy_and_same_seed_gives_same_run(tmp_path):
    first = PPOTrainer(tiny_config(tmp_path / "a", total_frames=16))
    before = [p.detach().clone() for p in first.policy.trainable_parameters()]
    first.train()
    assert any(
        not torch.equal(b, p)
        for b, p in zip(before, first.policy.trainable_parameters(), strict=False)
    )
    second = PPOTrainer(tiny_config(tmp_path / "b", total_frames=16))
    second.train()
    for a, b in zip(
        first.policy.trainable_parameters(), second.policy.trainable_parameters(), strict=False
    ):
        torch.testing.assert_close(a, b)
    assert (
        read_metrics(tmp_path / "a")[0]["losses/policy_loss"]
        == read_metrics(tmp_path / "b")[0]["losses/policy_loss"]
    )


def test_resume_continues_from_the_latest_checkpoint(tmp_path):
    PPOTrainer(tiny_config(tmp_path / "run", total_frames=16)).train()
    checkpoint = latest_checkpoint(tmp_path / "run")
    # what a run killed in the middle of a save leaves behind: removed on resume
    leftover = tmp_path / "run" / "checkpoints" / ".update_000002.tmp-killed"
    (leftover / "policy").mkdir(parents=True)
    config = tiny_config(tmp_path / "run", total_frames=48)
    config.run.resume = True
    trainer = PPOTrainer(config)
    assert not leftover.exists()
    assert trainer.state.update == 1 and trainer.state.frames == 16
    saved = json.loads((checkpoint / "optimizer.json").read_text())
    assert trainer.optimizer.state_dict()["param_groups"][0]["lr"] == saved["param_groups"][0]["lr"]
    adam_state = next(iter(trainer.optimizer.state.values()))
    assert float(adam_state["step"]) > 0, "Adam moments were restored, not restarted"
    state = trainer.train()
    assert state.update == 3
    assert [r["update"] for r in read_metrics(tmp_path / "run")] == [1, 2, 3]


def test_resume_with_a_different_config_is_refused(tmp_path):
    PPOTrainer(tiny_config(tmp_path / "run", total_frames=16)).train()
    config = tiny_config(tmp_path / "run", total_frames=32, learning_rate=5e-4)
    config.run.resume = True
    with pytest.raises(ValueError, match="ppo.learning_rate"):
        PPOTrainer(config)


def test_resume_without_checkpoint_says_what_to_do(tmp_path):
    config = tiny_config(tmp_path / "empty")
    config.run.resume = True
    with pytest.raises(FileNotFoundError, match="without --run.resume"):
        PPOTrainer(config)


def test_a_new_run_never_overwrites_an_existing_one(tmp_path):
    PPOTrainer(tiny_config(tmp_path / "run", total_frames=16)).train()
    with pytest.raises(FileExistsError, match="--run.resume"):
        PPOTrainer(tiny_config(tmp_path / "run", total_frames=16))
    assert latest_checkpoint(tmp_path / "run").name == "update_000001"


def test_gradient_clipping_is_really_applied(tmp_path):
    trainer = PPOTrainer(tiny_config(tmp_path / "run", max_grad_norm=1e-4))
    params = trainer.policy.trainable_parameters()
    norms_at_step = []
    original_step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        norms_at_step.append(
            torch.linalg.vector_norm(
                torch.stack([p.grad.norm() for p in params if p.grad is not None])
            ).item()
        )
        return original_step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    rollout, _ = trainer.collect_rollout()
    metrics = trainer.update(rollout)
    assert norms_at_step and max(norms_at_step) <= 1e-4 * 1.001
    assert metrics["losses/grad_norm"] > 1e-4, (
        "the pre-clip norm is logged, and was above the limit"
    )


def test_episode_end_clears_the_prompt_history(tmp_path):
    # GoToRedBallNoDists times out after 64 steps, so 70 steps see every env's episode end.
    trainer = PPOTrainer(tiny_config(tmp_path / "run", num_steps=70, minibatch_size=10))
    rollout, stats = trainer.collect_rollout()
    ended = rollout.terminated | rollout.truncated
    assert ended.any(dim=0).all()
    for t, env in ended[:-1].nonzero().tolist():
        next_prompt = rollout.prompts[t + 1][env]
        assert "Observation 0:" in next_prompt and "Observation 1:" not in next_prompt
    # Within an episode the history grows up to num_observations=3.
    assert "Observation 2:" in rollout.prompts[5][0]
    assert stats["charts/episodes_finished"] == int(ended.sum())


def test_invalid_config_is_rejected_with_a_fix(tmp_path):
    with pytest.raises(ValueError, match="does not divide"):
        PPOTrainer(tiny_config(tmp_path / "run", minibatch_size=5))
    with pytest.raises(ValueError, match="between 1 and the rollout size"):
        PPOTrainer(tiny_config(tmp_path / "run", minibatch_size=64))


def test_target_kl_stops_the_epochs_early_and_lr_anneals(tmp_path):
    config = tiny_config(
        tmp_path / "run", total_frames=32, target_kl=1e-12, anneal_lr=True, update_epochs=3
    )
    trainer = PPOTrainer(config)
    trainer.train()
    rows = read_metrics(tmp_path / "run")
    # 16 transitions / minibatch 8 = 2 steps per epoch, 3 epochs: 6 without the early stop. The
    # first step sees the rollout's own policy (KL exactly 0); the second exceeds any target.
    assert [r["losses/minibatch_steps"] for r in rows] == [2, 2]
    assert [r["charts/learning_rate"] for r in rows] == pytest.approx([1e-3, 0.5e-3])


def test_async_vector_envs_train_like_sync_ones(tmp_path):
    config = tiny_config(tmp_path / "run", total_frames=16)
    config.env.vectorization = "async"
    state = PPOTrainer(config).train()
    assert state.frames == 16
    sync = tiny_config(tmp_path / "sync", total_frames=16)
    PPOTrainer(sync).train()
    assert read_metrics(tmp_path / "run")[0]["losses/policy_loss"] == pytest.approx(
        read_metrics(tmp_path / "sync")[0]["losses/policy_loss"]
    )


def test_metrics_of_a_run_without_checkpoint_are_not_overwritten(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"update": 1}\n')
    with pytest.raises(FileExistsError, match="already holds a run"):
        PPOTrainer(tiny_config(tmp_path / "run"))
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == '{"update": 1}\n'


def test_target_kl_is_checked_after_every_minibatch_not_once_per_epoch(tmp_path):
    # 16 transitions in minibatches of 4: 4 optimiser steps per epoch, 8 in 2 epochs. The first
    # step sees the rollout's own policy (KL exactly 0); the second sees a moved policy, whose KL
    # exceeds any tiny target. Checked per minibatch the update stops there, after 2 steps;
    # CleanRL's check once per epoch would have finished the epoch's 4 steps first.
    config = tiny_config(tmp_path / "run", minibatch_size=4, update_epochs=2, target_kl=1e-12)
    trainer = PPOTrainer(config)
    steps = []
    original_step = trainer.optimizer.step

    def counting_step(*args, **kwargs):
        steps.append(1)
        return original_step(*args, **kwargs)

    trainer.optimizer.step = counting_step
    rollout, _ = trainer.collect_rollout()
    metrics = trainer.update(rollout)
    assert metrics["losses/minibatch_steps"] == len(steps) == 2
    assert metrics["losses/approx_kl"] > config.ppo.target_kl
    config.ppo.target_kl = None
    assert trainer.update(rollout)["losses/minibatch_steps"] == 8


def test_bootstrap_truncated_values_the_final_observation_of_each_timeout(tmp_path):
    # GoToObjS4 times out after 16 steps: in 16 steps of 2 envs one episode does.
    config = tiny_config(
        tmp_path / "run", total_frames=32, num_steps=16, minibatch_size=16, bootstrap_truncated=True
    )
    config.env.env_id = "BabyAI-Text-GoToObjS4-v0"
    trainer = PPOTrainer(config)
    rollouts, valued, final_texts = [], [], {}
    update, value, step = trainer.update, trainer.policy.value, trainer.envs.step

    def recording_update(rollout):
        rollouts.append(rollout)
        return update(rollout)

    def recording_value(prompts):
        valued.append(list(prompts))
        return value(prompts)

    def recording_step(action):
        result = step(action)
        info = result[-1]
        if "final_obs" in info:
            final_texts[len(final_texts)] = [
                obs["text"] if done else None
                for obs, done in zip(info["final_obs"], info["_final_obs"], strict=True)
            ]
        else:
            final_texts[len(final_texts)] = [None] * config.env.num_envs
        return result

    trainer.update, trainer.policy.value, trainer.envs.step = (
        recording_update,
        recording_value,
        recording_step,
    )
    assert trainer.train().update == 1
    (rollout,) = rollouts
    timed_out = rollout.truncated & ~rollout.terminated
    assert timed_out.sum() == 1
    assert (rollout.truncated_values[timed_out] != 0).all()
    assert (rollout.truncated_values[~timed_out] == 0).all()
    # The valued prompt ends with the episode's final observation, not the next one's first.
    ((t, env),) = timed_out.nonzero().tolist()
    (final_prompt,) = [p[0] for p in valued if len(p) == 1]
    next_prompts = rollout.prompts[t + 1] if t + 1 < config.ppo.num_steps else valued[-1]
    assert final_texts[t][env].splitlines()[-1] in final_prompt
    assert final_prompt != next_prompts[env]
    # ...and GAE used it: without it the timed-out step's advantage would differ.
    gae_inputs = (
        rollout.rewards,
        rollout.values,
        rollout.next_value,
        rollout.terminated,
        rollout.truncated,
        config.ppo.gamma,
        config.ppo.gae_lambda,
    )
    no_bootstrap, _ = compute_gae(*gae_inputs)
    with_bootstrap, _ = compute_gae(*gae_inputs, rollout.truncated_values)
    assert with_bootstrap[t, env] != no_bootstrap[t, env]


@pytest.mark.slow
def test_episode_statistics_follow_the_rollouts_episodes(tmp_path):
    # GoToObjS4 ends every episode within 16 steps: 3 rollouts of 16 steps x 8 envs finish >= 24.
    config = tiny_config(tmp_path / "run", num_steps=16, minibatch_size=128)
    config.env.env_id = "BabyAI-Text-GoToObjS4-v0"
    config.env.num_envs = 8
    trainer = PPOTrainer(config)
    running_return, running_length = [0.0] * 8, [0] * 8
    returns = []
    for _ in range(3):
        rollout, stats = trainer.collect_rollout()
        # Rebuild this rollout's finished episodes from its rewards (unscaled) and end flags.
        finished, lengths = [], []
        ended = rollout.terminated | rollout.truncated
        for t in range(rollout.num_steps):
            for env in range(rollout.num_envs):
                running_return[env] += float(rollout.rewards[t, env]) / config.ppo.reward_scale
                running_length[env] += 1
                if ended[t, env]:
                    finished.append(running_return[env])
                    lengths.append(running_length[env])
                    running_return[env], running_length[env] = 0.0, 0
        returns += finished
        assert stats["charts/episodes_finished"] == len(finished) > 0
        assert stats["charts/episodic_return"] == pytest.approx(sum(finished) / len(finished))
        assert stats["charts/episodic_length"] == pytest.approx(sum(lengths) / len(lengths))
        recent = returns[-100:]
        if len(recent) < 20:
            assert math.isnan(trainer.success_rate())  # not reported yet
        else:
            assert trainer.success_rate() == sum(r > 0 for r in recent) / len(recent)
    assert len(returns) >= 20
