"""A run's saved config (issue 20): a damaged or partial config.json is a clear error on resume and
never passes for the same config; `evaluate` checks the config it loads as `train` does; and
`train --run.output-dir DIR --run.resume` alone continues the run with its own config."""

import json
import shutil

import pytest
import torch
from ppo_grounding import PPOTrainer
from ppo_grounding.checkpoint import (
    TrainerState,
    checkpoint_dir,
    latest_checkpoint,
    save_checkpoint,
)
from ppo_grounding.cli import main
from ppo_grounding.metrics import read_metrics
from ppo_grounding.run_directory import check_resumable, resume_point
from ppo_grounding.sources import load_policy_for_eval

from .helpers import TaggedPolicy, tiny_config


def whole(tmp_path):
    return json.loads(tiny_config(tmp_path / "run").to_json())


DAMAGED = {
    "a list": ([], "holds a JSON list, not an object of sections"),
    "a string": ("x", "holds a JSON str"),
    "a section that is a number": ("ppo=5", "sections ['ppo'] are not JSON objects"),
    "only some sections": ("partial", "are missing (a partial config)"),
}


def damaged(kind, tmp_path):
    value = DAMAGED[kind][0]
    if value == "ppo=5":
        return {**whole(tmp_path), "ppo": 5}
    if value == "partial":
        return {"ppo": whole(tmp_path)["ppo"], "run": whole(tmp_path)["run"]}
    return value


@pytest.mark.parametrize("kind", list(DAMAGED))
def test_a_damaged_saved_config_is_a_clear_error_not_a_match(tmp_path, kind):
    config = tiny_config(tmp_path / "run")
    with pytest.raises(ValueError, match="config.json is not a whole run config") as error:
        check_resumable(damaged(kind, tmp_path), config, source=tmp_path / "config.json")
    assert DAMAGED[kind][1] in str(error.value)
    assert "restore it from a backup" in str(error.value)


def test_a_field_missing_from_a_section_reads_as_its_default(tmp_path):
    config = tiny_config(tmp_path / "run")
    saved = whole(tmp_path)
    del saved["env"]["num_envs"]  # the default, 16: not this run's 2
    with pytest.raises(ValueError, match="env.num_envs: checkpoint has 16, this run 2"):
        check_resumable(saved, config)
    check_resumable(whole(tmp_path), config)  # the whole config passes


@pytest.mark.parametrize("kind", list(DAMAGED))
def test_resuming_a_run_stopped_before_its_checkpoint_with_a_damaged_config(tmp_path, kind):
    config = tiny_config(tmp_path / "run")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(damaged(kind, tmp_path)))
    config.run.resume = True
    with pytest.raises(ValueError, match="not a whole run config"):
        resume_point(config)


# ------------------------------------------------------------------------------------ evaluate
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3", "env.num_observations='3': expected int, got str"),
        (2.5, "env.num_observations=2.5: expected int, got float"),
        (-1, "env.num_observations=-1: use at least 1"),
    ],
)
def test_evaluate_validates_the_config_it_loads(tmp_path, value, message, capsys):
    saved = whole(tmp_path)
    saved["env"]["num_observations"] = value
    save_checkpoint(
        tmp_path / "run",
        policy=TaggedPolicy("x"),  # never loaded: the config is refused first
        optimizer=torch.optim.Adam(torch.nn.Linear(2, 2).parameters()),
        shuffle_generator=torch.Generator(),
        state=TrainerState(update=1),
        config_json=json.dumps(saved),
    )
    with pytest.raises(ValueError, match="refusing to load") as error:
        load_policy_for_eval(tmp_path / "run")
    assert message in str(error.value)
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--episodes", "1"])
    assert message in str(exit_.value.code)


# ------------------------------------------------------------------------ resume with own config
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A one-update run with options far from the defaults (2 envs x 8 steps, seed 3, ...)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    PPOTrainer(tiny_config(run, total_frames=16)).train()
    return run


def copy(finished_run, tmp_path):
    shutil.copytree(finished_run, tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.slow
def test_output_dir_and_resume_alone_continue_the_run_with_its_config(finished_run, tmp_path):
    run = copy(finished_run, tmp_path)
    main(["train", "--run.output-dir", str(run), "--run.resume", "--ppo.total-frames", "32"])
    assert [r["update"] for r in read_metrics(run)] == [1, 2]
    assert latest_checkpoint(run) == checkpoint_dir(run, 2)
    saved = json.loads((run / "config.json").read_text())
    assert saved["env"]["num_envs"] == 2 and saved["run"]["seed"] == 3
    assert saved["ppo"]["total_frames"] == 32  # a change that is allowed


def test_an_option_that_may_not_change_is_refused_naming_those_that_may(finished_run, tmp_path):
    run = copy(finished_run, tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--run.output-dir", str(run), "--run.resume", "--ppo.num-steps", "4"])
    message = str(exit_.value.code)
    assert "ppo.num_steps: checkpoint has 8, this run 4" in message
    assert "--run.resume` alone continues the run with its own config" in message
    assert "ppo.total_frames" in message and "run.keep_last" in message


@pytest.mark.parametrize("kind", list(DAMAGED))
def test_resume_with_a_damaged_run_config_is_a_clear_error(finished_run, tmp_path, kind):
    run = copy(finished_run, tmp_path)
    (run / "config.json").write_text(json.dumps(damaged(kind, tmp_path)))
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--run.output-dir", str(run), "--run.resume"])
    message = str(exit_.value.code)
    assert message.startswith(f"ppo-grounding train: {run / 'config.json'} is not a whole run")
    assert DAMAGED[kind][1] in message


def test_resume_with_an_unreadable_run_config_names_the_copies(finished_run, tmp_path):
    run = copy(finished_run, tmp_path)
    (run / "config.json").write_text("{not json")
    with pytest.raises(SystemExit, match=r"config.json cannot be read .*checkpoints/update_\*"):
        main(["train", "--run.output-dir", str(run), "--run.resume"])
