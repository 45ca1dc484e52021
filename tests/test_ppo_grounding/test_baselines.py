import copy
import json

import numpy as np
import pytest
import torch
from llm_policy import PolicyConfig
from ppo_grounding import (
    EnvConfig,
    PolicyAgent,
    PPOConfig,
    PPOTrainer,
    RandomAgent,
    RunConfig,
    TrainConfig,
    evaluate,
    load_policy,
)
from ppo_grounding.baselines import (
    DRRNAgent,
    DRRNConfig,
    DRRNetwork,
    DRRNTrainer,
    SymbolicActorCritic,
    SymbolicAgent,
    SymbolicModelConfig,
    SymbolicPolicy,
    SymbolicPPOTrainer,
    WordVocabulary,
    clone_expert,
)
from ppo_grounding.baselines.text import UNK, split_prompt
from ppo_grounding.checkpoint import latest_checkpoint
from ppo_grounding.finite import NonFiniteError
from ppo_grounding.metrics import read_metrics

from .helpers import tiny_config

LEVEL = "BabyAI-Text-GoToRedBallNoDists-v0"


def baseline_config(total_frames: int, seed: int, *, num_envs: int = 16, **ppo) -> TrainConfig:
    settings = dict(total_frames=total_frames, num_steps=32)
    settings.update(ppo)
    settings.setdefault("minibatch_size", min(128, settings["num_steps"] * num_envs))
    return TrainConfig(
        env=EnvConfig(env_id=LEVEL, num_envs=num_envs, num_observations=1),
        ppo=PPOConfig(**settings),
        run=RunConfig(seed=seed, progress=False, tensorboard=False),
    )


def held_out(agent, episodes: int = 50) -> float:
    return evaluate(agent, LEVEL, episodes=episodes, num_observations=1).success_rate


# ------------------------------------------------------------------------------------ vocabulary
def test_vocabulary_covers_what_the_envs_and_prompts_say():
    vocabulary = WordVocabulary()
    for text in (
        "Possible action of the agent: turn left, turn right, go forward",
        "Goal of the agent: go to the red ball",
        "Observation 0: You see a wall 6 steps forward, You see a red ball 3 steps right,",
        "But de l'agent: va à la balle rouge",
    ):
        assert UNK not in vocabulary.encode(text), text
    assert vocabulary.encode("zebra") == [UNK]
    assert vocabulary.batch(["go to", "turn left now please"]).shape == (2, 4)


def test_split_prompt_reads_the_goal_and_the_history():
    prompt = (
        "Possible action of the agent: turn left, go forward\n"
        "Goal of the agent: go to the red ball\n"
        "Observation 0: You see a wall 2 steps left,\n"
        "Action 0:"
    )
    mission, history = split_prompt(prompt)
    assert mission == "go to the red ball"
    assert history == "Observation 0: You see a wall 2 steps left,\nAction 0:"
    with pytest.raises(ValueError, match="layout"):
        split_prompt("go forward")


# -------------------------------------------------------------------------------------- shapes
def test_symbolic_network_output_shapes_and_film_switch():
    vocabulary = WordVocabulary()
    image = torch.randint(0, 11, (5, 7, 7, 3))
    direction = torch.randint(0, 4, (5,))
    mission = vocabulary.batch(["go to the red ball"] * 3 + ["pick up the blue key", "go"])
    for film in (True, False):
        model = SymbolicActorCritic(len(vocabulary), SymbolicModelConfig(film=film))
        logits, values = model(image, direction, mission)
        assert logits.shape == (5, 6) and values.shape == (5,)
        assert (model.film is not None) == film
    # padding after a short mission does not change its code
    short = vocabulary.batch(["go"])
    padded = torch.nn.functional.pad(short, (0, 4))
    torch.testing.assert_close(model.mission(short), model.mission(padded))


def test_drrn_network_scores_any_number_of_phrases():
    vocabulary = WordVocabulary()
    network = DRRNetwork(len(vocabulary))
    history = vocabulary.batch(["You see a red ball 2 steps left", "You see a wall 1 step forward"])
    mission = vocabulary.batch(["go to the red ball", "go to the red ball"])
    for phrases in (["turn left", "turn right"], ["turn left", "go forward", "sleep", "dance"]):
        q = network(history, mission, vocabulary.batch(phrases))
        assert q.shape == (2, len(phrases))
    state = network.state(history, mission)
    actions = network.actions(vocabulary.batch(["turn left", "go forward"]))
    torch.testing.assert_close(
        network(history, mission, vocabulary.batch(["turn left", "go forward"])),
        state @ actions.T,
    )


# ------------------------------------------------------------------------- the agent protocol
def test_symbolic_agent_reads_the_envs_and_follows_the_protocol(tmp_path):
    vocabulary = WordVocabulary()
    policy = SymbolicPolicy(SymbolicActorCritic(len(vocabulary)), vocabulary)
    agent = SymbolicAgent(policy, seed=0)
    assert agent.reads_env
    result = evaluate(agent, LEVEL, episodes=4, num_envs=2, num_observations=1)
    assert result.episodes == 4
    # the same agent seed meets the same episodes with the same actions
    again = evaluate(SymbolicAgent(policy, seed=0), LEVEL, episodes=4, num_envs=2)
    assert (again.successes, again.mean_length) == (result.successes, result.mean_length)
    # save and load (safetensors + JSON) give the same network
    loaded = SymbolicPolicy.load(policy.save(tmp_path / "symbolic"))
    for a, b in zip(
        policy.model.state_dict().values(), loaded.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b)
    greedy = evaluate(SymbolicAgent(loaded, greedy=True), LEVEL, episodes=2, num_envs=2)
    assert greedy.episodes == 2


def test_drrn_agent_reads_prompts_only_and_follows_the_protocol(tmp_path):
    trainer = DRRNTrainer(baseline_config(64, seed=0, num_envs=2), DRRNConfig(learning_starts=32))
    trainer.train()
    agent = trainer.agent(epsilon=0.0)
    assert not getattr(agent, "reads_env", False)
    prompts = [
        "Possible action of the agent: turn left, turn right, go forward, pick up, drop, toggle\n"
        "Goal of the agent: go to the red ball\nObservation 0: You see a red ball 1 step forward,"
        "\nAction 0:"
    ] * 3
    actions = agent(prompts, ["turn left", "turn right", "go forward", "pick up", "drop", "toggle"])
    assert actions.shape == (3,) and actions.dtype.kind == "i"
    assert len(set(actions.tolist())) == 1  # greedy: the same prompt, the same action
    # the extra phrases are scored like the others
    assert agent(prompts, ["turn left", "sleep", "dance"]).max() < 3
    result = evaluate(agent, LEVEL, episodes=4, num_envs=2, extra_actions=("sleep",))
    assert result.episodes == 4
    loaded = DRRNAgent(type(trainer.policy).load(trainer.policy.save(tmp_path / "drrn")), epsilon=0)
    np.testing.assert_array_equal(
        loaded(prompts, ["turn left", "go forward"]), agent(prompts, ["turn left", "go forward"])
    )


# ---------------------------------------------------------------------------------- determinism
def test_symbolic_ppo_same_seed_same_run():
    def run(seed):
        trainer = SymbolicPPOTrainer(baseline_config(256, seed, num_envs=4, num_steps=32))
        metrics = trainer.train()
        return trainer, metrics

    (a, ma), (b, mb), (c, _) = run(5), run(5), run(6)
    assert len(ma) == 2 and ma[-1]["charts/frames"] == 256
    for x, y in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert ma[-1]["losses/policy_loss"] == mb[-1]["losses/policy_loss"]
    assert any(
        not torch.equal(x, z)
        for x, z in zip(a.model.parameters(), c.model.parameters(), strict=True)
    )


def test_symbolic_ppo_shares_the_update_metrics_and_non_finite_stop():
    trainer = SymbolicPPOTrainer(baseline_config(128, 0, num_envs=4, num_steps=32))
    try:
        metrics = trainer.update(trainer.collect_rollout())
        shared = {"losses/approx_kl", "losses/old_approx_kl", "losses/minibatch_steps"}
        assert shared <= set(metrics)
        rollout = trainer.collect_rollout()
        with torch.no_grad():
            trainer.model.critic.bias.fill_(float("inf"))  # infinite values: infinite value loss
        before = [p.detach().clone() for p in trainer.model.parameters()]
        trainer.update_count = 1
        with pytest.raises(NonFiniteError, match="update 2: non-finite loss"):
            trainer.update(rollout)
        for b, p in zip(before, trainer.model.parameters(), strict=True):
            assert torch.equal(b, p), "no optimiser step after a non-finite loss"
    finally:
        trainer.envs.close()


def test_drrn_same_seed_same_run():
    def run(seed):
        config = baseline_config(256, seed, num_envs=4, num_steps=16)
        trainer = DRRNTrainer(config, DRRNConfig(learning_starts=64, batch_size=16))
        metrics = trainer.train()
        return trainer, metrics

    (a, ma), (b, mb), (c, _) = run(5), run(5), run(6)
    assert trainer_steps(a) > 0 and len(ma) == 4 and ma[-1]["charts/frames"] == 256
    for x, y in zip(a.network.parameters(), b.network.parameters(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert ma[-1]["losses/td_loss"] == mb[-1]["losses/td_loss"]
    assert any(
        not torch.equal(x, z)
        for x, z in zip(a.network.parameters(), c.network.parameters(), strict=True)
    )


def trainer_steps(trainer: DRRNTrainer) -> int:
    return trainer.gradient_steps


def test_drrn_n_step_transitions_sum_rewards_and_stop_at_episode_ends():
    trainer = DRRNTrainer(baseline_config(16, seed=0, num_envs=2), DRRNConfig(n_step=3))
    from collections import deque

    pending = deque([([1], [2], 0, 0.0), ([3], [2], 1, 0.0), ([4], [2], 2, 1.0)])
    trainer._store(pending, 0.5, [5], [2])
    history, mission, action, ret, next_history, _, discount = trainer.replay.items[-1]
    assert (history, action, next_history) == ([1], 0, [5])
    assert ret == pytest.approx(0.25) and discount == pytest.approx(0.125)
    trainer._store(pending, 0.5, None, None)  # the episode ended: no bootstrap
    assert trainer.replay.items[-1][3] == pytest.approx(0.5) and trainer.replay.items[-1][6] == 0
    trainer.envs.close()


# ------------------------------------------------------------------------------------- learning
@pytest.mark.slow
def test_symbolic_ppo_learns_go_to_red_ball_no_dists():
    # 120 updates of 16 envs x 32 steps; PPOConfig's settings except the small network's
    # learning rate and unscaled rewards (with x20 and the value clip of 0.2 its critic lags).
    # The run is deterministic on one CPU, but float kernels differ between CPU types and so do
    # the trajectories: on these 50 episodes seeds 1, 2 and 4 reach 0.86, 1.00 and 0.98 on the
    # machine this test was written on, 0.96, 0.78 and 1.00 on an AVX2 AMD EPYC (seed 3: 1.00).
    # Seed 4 clears the bar on both; at 40,960 frames some seeds were still at 0.6-0.7.
    trainer = SymbolicPPOTrainer(
        baseline_config(61_440, seed=4, learning_rate=1e-3, reward_scale=1.0)
    )
    metrics = trainer.train()
    assert metrics[-1]["charts/frames"] == 61_440
    trained = held_out(trainer.agent())
    random = held_out(RandomAgent(seed=0))
    assert random < 0.45
    assert trained >= 0.8, (trained, random)


@pytest.mark.slow
def test_drrn_learns_go_to_red_ball_no_dists():
    # 640 steps of 16 envs, epsilon from 1 to 0.05 over the first half; DRRNConfig's defaults.
    # Seeds 1 and 2 reach 0.98 and 1.00 on these 50 episodes.
    trainer = DRRNTrainer(baseline_config(10_240, seed=1))
    metrics = trainer.train()
    assert metrics[-1]["charts/frames"] == 10_240
    trained = held_out(trainer.agent())
    random = held_out(RandomAgent(seed=0))
    assert random < 0.45
    assert trained >= 0.8, (trained, random)


# ------------------------------------------------------------------------------------------ NPAE
def test_npae_trains_with_ppo_and_evaluates_end_to_end(tmp_path):
    config = tiny_config(tmp_path / "npae")
    config.policy = PolicyConfig(
        model="offline-gpt2", finetune="full", head="action_head", num_actions=6
    )
    trainer = PPOTrainer(config)
    before = [p.detach().clone() for p in trainer.policy.action_head.parameters()]
    state = trainer.train()
    assert (state.update, state.frames) == (2, 32)
    assert any(
        not torch.equal(b, p)
        for b, p in zip(before, trainer.policy.action_head.parameters(), strict=True)
    )
    rows = read_metrics(tmp_path / "npae")
    assert [r["update"] for r in rows] == [1, 2]
    policy, saved, kind = load_policy(tmp_path / "npae")
    assert kind == "trained" and saved.policy.head == "action_head"
    generator = torch.Generator().manual_seed(0)
    result = evaluate(PolicyAgent(policy, generator=generator), LEVEL, episodes=4, num_envs=2)
    assert result.episodes == 4


# ------------------------------------------------------------------------------ behaviour cloning
def test_clone_expert_checkpoint_evaluates_and_train_continues_from_it(tmp_path):
    config = tiny_config(tmp_path / "clone")
    checkpoint = clone_expert(config, demo_frames=64, epochs=1)
    assert config.run.max_minutes is None and config.warm_start.demo_frames == 0  # not modified
    assert checkpoint == latest_checkpoint(tmp_path / "clone")
    assert checkpoint.name == "update_000000"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["update"] == 0 and state["frames"] == 0 and state["demo_frames"] == 64
    warm = json.loads((tmp_path / "clone" / "warm_start.json").read_text())
    assert len(warm["epochs"]) == 1 and warm["transitions"] > 0
    assert read_metrics(tmp_path / "clone") == []  # no PPO update ran

    policy, saved, kind = load_policy(tmp_path / "clone")
    assert kind == "trained" and saved.warm_start.demo_frames == 64
    result = evaluate(PolicyAgent(policy), LEVEL, episodes=2, num_envs=2)
    assert result.episodes == 2

    # the same run continues with PPO (same options, --run.resume), without cloning again
    resumed = copy.deepcopy(config)
    resumed.warm_start.demo_frames, resumed.warm_start.epochs = 64, 1
    resumed.run.resume = True
    trainer = PPOTrainer(resumed)
    assert trainer.state.demo_frames == 64 and trainer.state.update == 0
    cloned = [p.detach().clone() for p in trainer.policy.trainable_parameters()]
    for a, b in zip(cloned, policy.trainable_parameters(), strict=True):
        torch.testing.assert_close(a, b)
    final = trainer.train()
    assert (final.update, final.frames) == (2, 32)
    assert [r["update"] for r in read_metrics(tmp_path / "clone")] == [1, 2]
    warm_after = json.loads((tmp_path / "clone" / "warm_start.json").read_text())
    assert warm_after == warm  # the warm start did not run again

    # and a new run can start from the cloned policy
    fresh = tiny_config(tmp_path / "from-clone", total_frames=16)
    start = type(policy).from_pretrained(checkpoint / "policy")
    assert PPOTrainer(fresh, policy=start).train().update == 1


def test_clone_expert_refuses_no_demonstrations(tmp_path):
    with pytest.raises(ValueError, match="demo_frames"):
        clone_expert(tiny_config(tmp_path / "none"))
