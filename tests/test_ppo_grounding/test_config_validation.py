"""TrainConfig.validate refuses at start what would poison or block a run, naming the field."""

import math

import pytest
from ppo_grounding.cli import main
from ppo_grounding.config import TrainConfig, check_env_id

from .helpers import tiny_config

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("section", "name", "value", "message"),
    [
        ("ppo", "vf_coef", NAN, "ppo.vf_coef=nan: must be a finite number"),
        ("ppo", "reward_scale", NAN, "ppo.reward_scale=nan: must be a finite number"),
        ("ppo", "reward_scale", 0.0, "ppo.reward_scale=0.0: must be positive"),
        ("ppo", "clip_coef", NAN, "ppo.clip_coef=nan: must be a finite number"),
        ("ppo", "learning_rate", INF, "ppo.learning_rate=inf: must be a finite number"),
        ("ppo", "learning_rate", -INF, "ppo.learning_rate=-inf: must be a finite number"),
        ("ppo", "adam_eps", 0.0, "ppo.adam_eps=0.0: must be positive"),
        ("ppo", "ent_coef", -0.01, "--ppo.allow-negative-ent-coef"),
        ("ppo", "ent_coef", NAN, "ppo.ent_coef=nan"),
        ("ppo", "gamma", NAN, "ppo.gamma=nan"),
        ("ppo", "target_kl", NAN, "ppo.target_kl=nan"),
        ("ppo", "max_grad_norm", INF, "ppo.max_grad_norm=inf"),
        ("ppo", "weight_decay", -1.0, "ppo.weight_decay=-1.0"),
        ("ppo", "vf_coef", -0.5, "ppo.vf_coef=-0.5: use 0 or more"),
        ("run", "max_minutes", 0.0, "run.max_minutes=0.0: use a positive number"),
        ("run", "max_minutes", -3.0, "run.max_minutes=-3.0"),
        ("run", "max_minutes", NAN, "run.max_minutes=nan"),
        ("run", "torch_threads", 0, "run.torch_threads=0: use at least 1"),
        ("run", "seed", -1, "run.seed=-1"),
        ("run", "seed", 2**40, "numpy's seed range"),
        ("warm_start", "learning_rate", NAN, "warm_start.learning_rate=nan"),
        ("env", "num_envs", True, "env.num_envs=True: expected int"),
        ("ppo", "num_steps", "8", "ppo.num_steps='8': expected int"),
        ("env", "language", "de", "env.language='de': expected one of 'en', 'fr'"),
        ("dist", "shard", 1, "dist.shard=1: expected bool"),
    ],
)
def test_out_of_range_and_non_finite_values_are_refused_naming_the_field(
    tmp_path, section, name, value, message
):
    config = tiny_config(tmp_path / "run")
    setattr(getattr(config, section), name, value)
    with pytest.raises(ValueError, match="Invalid training config") as error:
        config.validate()
    assert message in str(error.value)


def test_a_negative_entropy_coefficient_is_accepted_when_asked_for(tmp_path):
    config = tiny_config(tmp_path / "run", ent_coef=-0.01, allow_negative_ent_coef=True)
    config.validate()


def test_every_problem_is_listed_at_once(tmp_path):
    config = tiny_config(tmp_path / "run", vf_coef=NAN, adam_eps=0.0)
    config.run.torch_threads = 0
    with pytest.raises(ValueError) as error:
        config.validate()
    assert all(f in str(error.value) for f in ("vf_coef", "adam_eps", "torch_threads"))


@pytest.mark.parametrize(
    ("env_id", "message"),
    [
        ("BabyAI-Text-GoToLocl-v0", "did you mean BabyAI-Text-GoToLocal-v0"),
        ("BabyAI-GoToLocal-v0", "is not a BabyAI-Text ID"),
        ("CartPole-v1", "is not a BabyAI-Text ID"),
        ("evil_module:BabyAI-Text-GoToLocal-v0", "drop the 'module:' prefix"),
        ("BabyAI-Text-GoToLocal-v0/../x", "is not a BabyAI-Text ID"),
        ("", "is not a BabyAI-Text ID"),
    ],
)
def test_unknown_or_foreign_env_ids_are_refused_before_anything_is_built(tmp_path, env_id, message):
    config = tiny_config(tmp_path / "run")
    config.env.env_id = env_id
    with pytest.raises(ValueError, match="env.env_id") as error:
        config.validate()
    assert message in str(error.value)
    assert not (tmp_path / "run").exists()


def test_check_env_id_accepts_every_registered_id():
    import babyai_text

    for env_id in babyai_text.registered_ids():
        check_env_id(env_id)


def test_a_device_that_does_not_exist_is_refused(tmp_path):
    config = tiny_config(tmp_path / "run")
    config.policy.device = "cuda:7"
    with pytest.raises(ValueError, match=r"policy.device='cuda:7' does not exist"):
        config.validate()


def test_an_output_dir_that_cannot_be_written_is_refused(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    config = tiny_config(blocker / "run")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        config.validate()
    config = tiny_config(blocker)
    with pytest.raises(ValueError, match="is a file, not a directory"):
        config.validate()


def test_an_output_dir_on_a_read_only_filesystem_is_refused():
    import os

    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here")
    config = TrainConfig()
    config.run.output_dir = "/proc/ppo-grounding-run"
    with pytest.raises(ValueError, match="cannot write in /proc"):
        config.validate()


def test_from_dict_raises_value_error_for_malformed_data():
    for data in (
        [],
        {"ppo": []},
        {"nonsense": {}},
        {"policy": {"model": 3}},
        {"policy": {"normalization": ["x"]}},
    ):
        with pytest.raises(ValueError):
            TrainConfig.from_dict(data)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ppo.vf-coef", "nan"], "ppo.vf_coef=nan"),
        (["--ppo.reward-scale", "nan"], "ppo.reward_scale=nan"),
        (["--ppo.clip-coef", "nan"], "ppo.clip_coef=nan"),
        (["--ppo.learning-rate", "inf"], "ppo.learning_rate=inf"),
        (["--ppo.adam-eps", "0"], "ppo.adam_eps=0.0"),
        (["--ppo.ent-coef", "-0.1"], "allow-negative-ent-coef"),
        (["--run.max-minutes", "0"], "run.max_minutes=0.0"),
        (["--run.torch-threads", "0"], "run.torch_threads=0"),
        (["--env.env-id", "CartPole-v1"], "is not a BabyAI-Text ID"),
        (["--policy.device", "cuda:9"], "does not exist on this machine"),
    ],
)
def test_the_command_line_refuses_them_before_any_model_is_built(tmp_path, args, message):
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        main(["train", *args, "--run.output-dir", str(run), "--run.no-progress"])
    assert message in str(exit_.value.code)
    assert not run.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--num-envs", "0"], "--num-envs 0: use at least 1"),
        (["--episodes", "0"], "--episodes 0: use at least 1"),
        (["--num-observations", "0"], "--num-observations 0"),
        (["--seed-offset", "-1"], "--seed-offset -1"),
    ],
)
def test_evaluate_refuses_counts_below_one_before_loading(tmp_path, args, message):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--checkpoint", str(tmp_path / "nothing-here"), *args])
    assert message in str(exit_.value.code)


def test_a_misspelt_offline_model_name_suggests_the_offline_names(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--policy.model", "offline-gtp2", "--run.output-dir", str(tmp_path / "r")])
    assert exit_.value.code != 0
    assert "offline-gpt2" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", ["evaluate", "replay"])
def test_evaluate_and_replay_refuse_a_non_babyai_env_id_before_loading(tmp_path, command):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--checkpoint", str(tmp_path / "none"), "--env-id", "CartPole-v1"])
    assert "--env-id='CartPole-v1' is not a BabyAI-Text ID" in str(exit_.value.code)


@pytest.mark.parametrize(
    ("name", "value"),
    [("attn_implementation", math.nan), ("lora_dropout", math.nan), ("seed", True)],
)
def test_policy_fields_changed_after_construction_are_checked_by_validate(name, value):
    # PolicyConfig checks its own fields; TrainConfig.validate runs that check again
    config = TrainConfig()
    setattr(config.policy, name, value)
    with pytest.raises(ValueError, match=rf"PolicyConfig\.{name} must be"):
        config.validate()
    with pytest.raises(ValueError, match=rf"PolicyConfig\.{name} must be"):
        TrainConfig.from_dict({"policy": {name: value}})


def test_an_unchanged_config_is_validated_once_and_a_changed_one_again(tmp_path, monkeypatch):
    # the command line validates before anything is built, the trainer validates what it is
    # given: validate_if_changed runs the checks only when a field changed since they passed
    config = tiny_config(tmp_path)
    config.validate(check_device=False)
    calls = []
    real_validate = TrainConfig.validate
    monkeypatch.setattr(
        TrainConfig, "validate", lambda self, **kw: calls.append(kw) or real_validate(self, **kw)
    )
    config.validate_if_changed(check_device=False)
    assert calls == []
    config.validate_if_changed()  # the device was not checked yet
    assert calls == [{"check_paths": True, "check_device": True}]
    config.validate_if_changed()
    assert len(calls) == 1
    config.ppo.num_steps = 0  # changed after the checks passed: checked again, and refused
    with pytest.raises(ValueError, match="ppo.num_steps=0"):
        config.validate_if_changed()
    config.ppo.num_steps = 4
    config.policy.lora_dropout = math.nan  # a policy field counts too
    with pytest.raises(ValueError, match="lora_dropout"):
        config.validate_if_changed()


def test_sharding_refuses_fp16_before_anything_is_built(tmp_path):
    config = tiny_config(tmp_path)
    config.dist.shard = True
    config.policy.dtype = "float16"
    with pytest.raises(ValueError, match="use --policy.dtype bfloat16"):
        config.validate()
