import json

import pytest
from ppo_grounding.cli import main
from ppo_grounding.config import PRESETS, TrainConfig
from ppo_grounding.metrics import read_metrics

TINY = [
    "--env.num-envs",
    "2",
    "--ppo.num-steps",
    "8",
    "--ppo.minibatch-size",
    "8",
    "--ppo.total-frames",
    "16",
    "--ppo.update-epochs",
    "1",
    "--run.no-progress",
    "--run.no-tensorboard",
]


def test_train_evaluate_and_plot_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "run"
    main(["train", *TINY, "--run.output-dir", str(run)])
    assert len(read_metrics(run)) == 1
    saved = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    assert saved.env.num_envs == 2 and saved.policy.model == PRESETS["offline"]().policy.model

    main(["evaluate", "--checkpoint", str(run), "--episodes", "4", "--num-envs", "2"])
    out = capsys.readouterr().out
    assert "policy: success" in out and "random: success" in out and "95% CI" in out

    png = tmp_path / "curve.png"
    main(["plot", str(run), "--out", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_invalid_options_exit_with_the_fix(tmp_path):
    with pytest.raises(SystemExit, match="does not divide"):
        main(["train", *TINY, "--ppo.minibatch-size", "5", "--run.output-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="--preset needs one of"):
        main(["train", "--preset", "nope"])


def test_paper_preset_is_the_papers_setting():
    config = PRESETS["paper"]()
    config.validate()
    assert (config.env.num_envs, config.ppo.num_steps, config.batch_size) == (32, 40, 1280)
    p = config.ppo
    assert (p.gamma, p.gae_lambda, p.reward_scale, p.update_epochs, p.minibatch_size) == (
        0.99,
        0.99,
        20.0,
        4,
        64,
    )
    assert (p.clip_coef, p.vf_coef, p.ent_coef, p.max_grad_norm, p.learning_rate, p.adam_eps) == (
        0.2,
        0.5,
        0.01,
        0.5,
        1e-6,
        1e-5,
    )
    assert config.policy.finetune == "full" and config.env.num_observations == 3


def test_config_round_trips_through_json():
    config = PRESETS["offline"]()
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config
    with pytest.raises(ValueError, match="unknown PPOConfig fields"):
        TrainConfig.from_dict({"ppo": {"learning_rat": 1.0}})


@pytest.mark.slow
def test_clone_then_evaluate_then_continue_with_ppo(tmp_path, capsys):
    run = tmp_path / "cloned"
    cloning = [*TINY, "--warm-start.demo-frames", "64", "--warm-start.epochs", "1"]
    main(["clone", *cloning, "--run.output-dir", str(run)])
    out = capsys.readouterr().out
    assert "update_000000" in out and "--run.resume" in out
    assert read_metrics(run) == []  # the expert was imitated; no PPO update ran
    warm = json.loads((run / "warm_start.json").read_text())
    assert warm["demo_frames"] >= 64 and len(warm["epochs"]) == 1

    main(["evaluate", "--checkpoint", str(run), "--episodes", "2", "--num-envs", "2"])
    assert "policy: success" in capsys.readouterr().out

    main(["train", *cloning, "--run.output-dir", str(run), "--run.resume"])
    assert [row["update"] for row in read_metrics(run)] == [1]
    assert json.loads((run / "warm_start.json").read_text()) == warm  # not repeated


def test_clone_needs_expert_steps(tmp_path):
    with pytest.raises(SystemExit, match="--warm-start.demo-frames N"):
        main(["clone", *TINY, "--run.output-dir", str(tmp_path / "run")])
