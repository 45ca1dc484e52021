"""Training with extra useless actions (--env.extra-actions N): the paper's action-space experiment.

The run's envs offer N phrases after the real actions, the policy scores them like any other,
the env executes them as its no-op, the metrics count them, and the run's config carries N so
that evaluate and replay offer them by default.
"""

import json

import numpy as np
import pytest
import torch
from llm_policy import IdenticalCandidatesWarning
from ppo_grounding import PolicyAgent, PPOTrainer
from ppo_grounding.cli import main
from ppo_grounding.config import TrainConfig
from ppo_grounding.envs import make_envs
from ppo_grounding.metrics import read_metrics

from .helpers import tiny_config
from .test_cli import TINY

REAL = ("turn left", "turn right", "go forward", "pick up", "drop", "toggle")


def test_a_run_with_extra_actions_scores_samples_executes_and_logs_them(tmp_path):
    config = tiny_config(tmp_path / "run", total_frames=16)  # one update
    config.env.extra_actions = 2
    trainer = PPOTrainer(config)
    assert tuple(trainer.action_names) == (*REAL, "sleep", "dance")

    prompts = trainer.history.prompts(trainer.action_names)
    # the offline word tokenizer knows neither phrase: both read as [UNK], and the run says so
    with torch.no_grad(), pytest.warns(IdenticalCandidatesWarning, match="'sleep' = 'dance'"):
        probs = trainer.policy(prompts, [trainer.action_names] * len(prompts)).distribution().probs
    assert probs.shape == (2, 8) and bool((probs[:, 6:] > 0).all())

    trainer.train()
    row = read_metrics(tmp_path / "run")[0]
    fractions = {name: row[f"charts/action_frac/{name}"] for name in trainer.action_names}
    assert sum(fractions.values()) == pytest.approx(1.0)
    assert fractions["sleep"] + fractions["dance"] > 0  # sampled, and stepped without error

    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["env"]["extra_actions"] == 2
    checkpoint = tmp_path / "run" / "checkpoints" / "update_000001" / "config.json"
    assert TrainConfig.from_dict(json.loads(checkpoint.read_text())).env.extra_actions == 2


def test_the_extra_actions_of_a_run_are_the_envs_no_op(tmp_path):
    config = tiny_config(tmp_path / "run")
    config.env.extra_actions = 2
    envs = make_envs(config)
    try:
        obs, _ = envs.reset(seed=5)
        before = (envs.get_attr("agent_pos"), envs.get_attr("agent_dir"), list(obs["text"]))
        obs, reward, terminated, truncated, _ = envs.step(np.array([6, 7]))  # sleep, dance
        after = (envs.get_attr("agent_pos"), envs.get_attr("agent_dir"), list(obs["text"]))
        assert after == before
        assert not reward.any() and not terminated.any() and not truncated.any()
        assert envs.get_attr("step_count") == (1, 1)  # a step was taken all the same
    finally:
        envs.close()


@pytest.mark.slow
def test_an_action_head_run_with_extras_is_sized_for_them_and_evaluate_offers_them(
    tmp_path, monkeypatch, capsys
):
    run = tmp_path / "npae"
    main(["train", *TINY, "--env.extra-actions", "2", "--policy.head", "action_head",
          "--run.output-dir", str(run)])  # fmt: skip
    saved = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    assert saved.policy.num_actions == 8 and saved.env.extra_actions == 2
    assert "charts/action_frac/dance" in read_metrics(run)[0]

    offered = []
    real_call = PolicyAgent.__call__

    def spy(self, prompts, action_names):
        offered.append(tuple(action_names))
        return real_call(self, prompts, action_names)

    monkeypatch.setattr(PolicyAgent, "__call__", spy)
    eval_args = ["--episodes", "2", "--num-envs", "2", "--no-baseline"]
    main(["evaluate", "--checkpoint", str(run), *eval_args])
    assert "policy: success" in capsys.readouterr().out
    assert set(offered) == {(*REAL, "sleep", "dance")}  # the run's extras, by default

    # An explicit count wins, and an action head of 8 cannot play 6 actions: said before playing.
    with pytest.raises(SystemExit, match="offers 6 actions but the policy's action head outputs 8"):
        main(["evaluate", "--checkpoint", str(run), "--extra-actions", "0", *eval_args])
    out = tmp_path / "replays"
    main(["replay", "--checkpoint", str(run), "--episodes", "1", "--max-steps", "1",
          "--out", str(out)])  # fmt: skip
    assert (out / "episodes.csv").is_file()


@pytest.mark.parametrize("count", ["-1", "11"])
def test_an_out_of_range_count_is_refused_naming_the_flag_and_the_range(tmp_path, count):
    with pytest.raises(SystemExit, match="--env.extra-actions takes 0 to 10"):
        main(["train", *TINY, "--env.extra-actions", count, "--run.output-dir", str(tmp_path)])
    assert not (tmp_path / "checkpoints").exists()


def test_an_action_head_sized_for_other_actions_is_refused_before_training(tmp_path):
    config = tiny_config(tmp_path / "run")
    config.env.extra_actions = 2
    config.policy.head = "action_head"  # num_actions is still 6
    with pytest.raises(ValueError, match=r"env offers 8 actions .*set policy.num_actions=8"):
        config.validate()
    with pytest.raises(SystemExit, match="set policy.num_actions=8"):
        main(["train", *TINY, "--env.extra-actions", "2", "--policy.head", "action_head",
              "--policy.num-actions", "6", "--run.output-dir", str(tmp_path / "cli")])  # fmt: skip
    config.policy.num_actions = 8
    config.validate()
