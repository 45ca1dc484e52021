"""The example scripts run end to end (tiny settings) and print what a person reads."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def offline(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LLM_POLICY_CACHE", str(tmp_path_factory.getbasetemp() / "llm_policy_cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def run_example(name, args, monkeypatch):
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


@pytest.mark.slow
def test_quickstart_trains_evaluates_and_plots(tmp_path, monkeypatch, capsys):
    out = tmp_path / "quick"
    run_example(
        "quickstart.py",
        [
            "--train.env.num-envs",
            "2",
            "--train.ppo.num-steps",
            "8",
            "--train.ppo.minibatch-size",
            "8",
            "--train.ppo.total-frames",
            "16",
            "--train.run.no-progress",
            "--train.run.output-dir",
            str(out),
            "--eval-episodes",
            "4",
        ],
        monkeypatch,
    )
    text = capsys.readouterr().out
    assert "PPO-trained LLM" in text and "uniform random" in text and "blind walk" in text
    assert (out / "learning_curve.png").is_file()

    run_example("evaluate.py", [str(out), "--episodes", "3"], monkeypatch)
    text = capsys.readouterr().out
    assert "trained policy" in text
    assert f"loaded {out / 'checkpoints' / 'update_000001'} (update 1, 16 frames)" in text


@pytest.mark.slow
def test_zero_shot_scores_actions_without_training(monkeypatch, capsys):
    run_example(
        "zero_shot.py",
        ["--episodes", "2", "--env-id", "BabyAI-Text-GoToRedBallNoDists-v0"],
        monkeypatch,
    )
    text = capsys.readouterr().out
    assert "Goal of the agent:" in text and "go forward" in text and "random: success" in text


@pytest.mark.slow
def test_generalisation_writes_both_tables(tmp_path, monkeypatch, capsys):
    out = tmp_path / "gen"
    run_example(
        "generalisation.py",
        ["offline-gpt2", "--env-id", "BabyAI-Text-GoToRedBallNoDists-v0", "--tests",
         "baseline,invented_nouns", "--episodes", "2", "--out", str(out)],
        monkeypatch,
    )  # fmt: skip
    assert "| invented_nouns | all |" in capsys.readouterr().out
    assert (out / "generalisation.md").is_file() and (out / "generalisation.csv").is_file()


def test_replay_writes_gifs(tmp_path, monkeypatch, capsys):
    out = tmp_path / "replays"
    run_example(
        "replay.py",
        ["offline-gpt2", "--env-id", "BabyAI-Text-GoToRedBallNoDists-v0", "--episodes", "1",
         "--max-steps", "2", "--out", str(out)],
        monkeypatch,
    )  # fmt: skip
    assert "wrote" in capsys.readouterr().out
    assert (out / "episode_000_seed_1000000.gif").read_bytes()[:6] == b"GIF89a"


TINY_TRAIN = [
    "--train.env.num-envs",
    "2",
    "--train.ppo.num-steps",
    "8",
    "--train.ppo.minibatch-size",
    "8",
    "--train.ppo.total-frames",
    "16",
    "--train.run.no-progress",
    "--train.run.no-tensorboard",
]


@pytest.mark.slow
def test_action_space_trains_with_and_without_extra_actions(tmp_path, monkeypatch, capsys):
    out = tmp_path / "action-space"
    run_example(
        "action_space.py",
        [*TINY_TRAIN, "--train.run.output-dir", str(out), "--extra-actions", "2",
         "--eval-episodes", "2"],
        monkeypatch,
    )  # fmt: skip
    text = capsys.readouterr().out
    assert "6 (real only)" in text and "6 + 2 useless" in text and "extra: sleep, dance" in text
    assert (out / "extra-0" / "checkpoints").is_dir() and (out / "extra-2" / "checkpoints").is_dir()


@pytest.mark.slow
def test_clone_then_train_starts_ppo_from_the_clone(tmp_path, monkeypatch, capsys):
    import json

    out = tmp_path / "clone-then-train"
    run_example(
        "clone_then_train.py",
        [*TINY_TRAIN, "--train.run.output-dir", str(out), "--demo-frames", "32",
         "--clone-epochs", "1", "--eval-episodes", "2"],
        monkeypatch,
    )  # fmt: skip
    text = capsys.readouterr().out
    assert "cloned " in text and "cloned + PPO" in text and "success" in text
    saved = json.loads((out / "ppo" / "config.json").read_text())
    assert saved["run"]["init_from"].endswith("clone/checkpoints/update_000000")


@pytest.mark.slow
def test_baselines_example_trains_both_and_compares_every_agent(tmp_path, monkeypatch, capsys):
    out = tmp_path / "baselines"
    run_example(
        "baselines.py",
        [*TINY_TRAIN, "--train.run.output-dir", str(out), "--eval-episodes", "2"],
        monkeypatch,
    )
    text = capsys.readouterr().out
    for name in ("symbolic PPO", "DRRN", "random", "forward unless blocked", "expert"):
        assert f"\n{name} " in text


def test_quickstart_checks_its_run_directory_before_training(tmp_path, monkeypatch):
    taken = tmp_path / "taken"
    taken.write_text("notes")
    with pytest.raises(SystemExit) as stopped:
        run_example("quickstart.py", ["--train.run.output-dir", str(taken / "run")], monkeypatch)
    assert str(stopped.value) == (
        f"quickstart: --train.run.output-dir {taken / 'run'} is inside {taken}, which is a file, "
        "not a directory: remove or rename it, or pass another --train.run.output-dir"
    )


def test_an_interrupted_quickstart_says_how_to_continue(tmp_path, monkeypatch):
    import signal

    from ppo_grounding.trainer import PPOTrainer, TrainingInterrupted

    def stopped_by_ctrl_c(self):
        self.close()
        raise TrainingInterrupted(signal.SIGINT)

    monkeypatch.setattr(PPOTrainer, "train", stopped_by_ctrl_c)
    out = tmp_path / "quick"
    args = [
        "--train.env.num-envs",
        "2",
        "--train.ppo.minibatch-size",
        "8",
        "--train.run.no-progress",
    ]
    with pytest.raises(SystemExit) as stopped:
        run_example("quickstart.py", [*args, "--train.run.output-dir", str(out)], monkeypatch)
    assert str(stopped.value).endswith(
        f"continue with the same options plus: --train.run.output-dir {out} --train.run.resume"
    )


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_help_starts_with_what_it_does(name, monkeypatch, capsys):
    first_line = (EXAMPLES / name).read_text().split('"""')[1].strip().splitlines()[0]
    with pytest.raises(SystemExit) as done:
        run_example(name, ["--help"], monkeypatch)
    assert done.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # tyro wraps lines
    assert " ".join(first_line.split()[:6]) in help_text
