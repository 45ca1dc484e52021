import pytest
from ppo_grounding.evaluate import EvalResult, RandomAgent, evaluate, wilson_interval


def test_wilson_interval_known_values():
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(0, 20)[1] == pytest.approx(
        0.161, abs=1e-3
    )
    assert wilson_interval(20, 20)[1] == 1.0


def test_random_agent_evaluation_is_reproducible_and_counts_every_episode():
    first = evaluate(
        RandomAgent(seed=0), "BabyAI-Text-GoToRedBallNoDists-v0", episodes=12, num_envs=4
    )
    second = evaluate(
        RandomAgent(seed=0), "BabyAI-Text-GoToRedBallNoDists-v0", episodes=12, num_envs=4
    )
    assert first == second
    assert first.episodes == 12
    assert 0 <= first.successes <= 12 and 0 < first.mean_length <= 64


def test_blind_walk_weights_are_respected():
    agent = RandomAgent(seed=0, weights=[0, 0, 1, 0, 0, 0])
    assert set(agent(["p"] * 50, ["a", "b", "c", "d", "e", "f"]).tolist()) == {2}


def test_evaluate_rejects_zero_episodes():
    with pytest.raises(ValueError, match="at least 1"):
        evaluate(RandomAgent(), "BabyAI-Text-GoToRedBallNoDists-v0", episodes=0)


def test_summary_mentions_the_interval():
    assert (
        "95% CI" in EvalResult(episodes=10, successes=5, mean_return=0.3, mean_length=20).summary()
    )


def test_results_are_aggregated_in_episode_order_whatever_the_envs_in_parallel():
    # What lets a run under N processes (each playing every N-th episode) equal one process's.
    from ppo_grounding.rule_agents import DirectionRuleAgent

    def run(num_envs):
        return evaluate(
            DirectionRuleAgent(),
            "BabyAI-Text-GoToLocal-v0",
            episodes=12,
            num_envs=num_envs,
            num_observations=1,
        )

    one = run(1)
    assert run(5) == one and run(12) == one
    assert 0 < one.successes < 12


def test_load_policy_on_a_run_whose_latest_is_missing_falls_back_and_says_so(tmp_path):
    from ppo_grounding import PPOTrainer
    from ppo_grounding.checkpoint import CheckpointWarning
    from ppo_grounding.evaluate import load_policy

    from .helpers import tiny_config

    run = tmp_path / "run"
    PPOTrainer(tiny_config(run, total_frames=16)).train()
    (run / "checkpoints" / "latest").unlink()
    with pytest.warns(CheckpointWarning, match="newest complete checkpoint, update_000001"):
        policy, config, kind = load_policy(run)
    assert kind == "trained" and config.env.env_id == "BabyAI-Text-GoToRedBallNoDists-v0"


def test_load_policy_says_which_checkpoint_it_loaded(tmp_path):
    from ppo_grounding import PPOTrainer
    from ppo_grounding.evaluate import load_policy
    from ppo_grounding.sources import source_kind

    from .helpers import tiny_config

    run = tmp_path / "run"
    PPOTrainer(tiny_config(run, total_frames=32)).train()
    checkpoints = run / "checkpoints"
    assert source_kind(run) == "run"
    assert source_kind(checkpoints / "update_000001") == "checkpoint"
    assert source_kind(checkpoints / "update_000001" / "policy") == "policy"
    assert source_kind(tmp_path) == source_kind(tmp_path / "missing") == "other"

    said = []
    load_policy(run, report=said.append)
    assert said == [f"loaded {checkpoints / 'update_000002'} (update 2, 32 frames)"]
    load_policy(checkpoints / "update_000001", report=said.append)
    assert said[-1] == f"loaded {checkpoints / 'update_000001'} (update 1, 16 frames)"
    load_policy(checkpoints / "update_000001" / "policy", report=said.append)
    assert said[-1].startswith("loaded the policy directory")
