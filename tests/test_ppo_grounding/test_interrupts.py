"""Ctrl-C (SIGINT) and SIGTERM stop `ppo-grounding train` cleanly: no traceback, one line naming
the checkpoint that survives and the command that resumes, exit status 128 + the signal, the run
lock released. The subprocess tests run the real command with tiny settings."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ppo_grounding import PPOTrainer
from ppo_grounding import trainer as trainer_module
from ppo_grounding.checkpoint import latest_checkpoint
from ppo_grounding.trainer import TrainingInterrupted

from .helpers import tiny_config

TINY = [
    "--env.env-id", "BabyAI-Text-GoToRedBallNoDists-v0", "--env.num-envs", "2",
    "--env.num-observations", "3", "--policy.model", "offline-gpt2", "--policy.finetune", "full",
    "--policy.normalization", "token", "--ppo.num-steps", "8", "--ppo.minibatch-size", "8",
    "--ppo.update-epochs", "2", "--run.no-tensorboard", "--run.torch-threads", "1",
    "--run.no-progress",
]  # fmt: skip
"""tests/test_ppo_grounding/helpers.py's tiny_config as options."""


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ppo_grounding.cli", "train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended early:\n{process.communicate()[1]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out:\n{process.communicate()[1]}")
        time.sleep(0.05)


def latest_update(run: Path) -> int:
    pointer = run / "checkpoints" / "latest"
    return int(pointer.read_text().strip().rsplit("_", 1)[-1]) if pointer.is_file() else -1


def stop(process: subprocess.Popen, signum: int) -> tuple[int, str]:
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


@pytest.mark.slow
def test_sigint_then_sigterm_name_the_checkpoint_and_the_resume_command_works(tmp_path):
    run = tmp_path / "run"
    process = start(*TINY, "--ppo.total-frames", "1000000", "--run.output-dir", str(run))
    wait_for(lambda: latest_update(run) >= 1, process)
    code, stderr = stop(process, signal.SIGINT)

    assert code == 130, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    update = latest_update(run)
    resume = f"ppo-grounding train --run.output-dir {run} --run.resume"
    assert last == (
        f"ppo-grounding train: stopped by SIGINT; the latest checkpoint is "
        f"{run / 'checkpoints' / f'update_{update:06d}'} (update {update}, {16 * update} "
        f"frames); resume with: {resume}"
    )
    assert (run / "run.lock").read_text() == ""  # released, not only dropped by the kernel

    # The exact command resumes (the run's own config), in the same directory, without a stale
    # lock to take over; SIGTERM stops it the same way.
    process = start(*resume.split()[2:])
    wait_for(lambda: latest_update(run) > update, process)
    code, stderr = stop(process, signal.SIGTERM)
    assert code == 143, stderr
    assert "Traceback" not in stderr and "took over the lock" not in stderr
    assert "stopped by SIGTERM; the latest checkpoint is" in stderr.strip().splitlines()[-1]
    assert latest_update(run) > update
    assert (run / "run.lock").read_text() == ""


def test_a_signal_before_the_first_checkpoint_says_none_exists_and_releases_the_lock(tmp_path):
    run = tmp_path / "run"
    process = start(
        *TINY, "--ppo.total-frames", "1000000", "--run.checkpoint-every", "1000",
        "--run.output-dir", str(run),
    )  # fmt: skip
    wait_for(lambda: (run / "config.json").is_file(), process)  # built, training
    code, stderr = stop(process, signal.SIGTERM)
    assert code == 143, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"ppo-grounding train: stopped by SIGTERM; no checkpoint exists yet in {run}; start over "
        f"with: ppo-grounding train --run.output-dir {run} --run.resume"
    )
    assert (run / "run.lock").read_text() == ""


def interrupt_during_update(trainer: PPOTrainer, monkeypatch, times: int = 1) -> None:
    """Send this process SIGINT `times` times in the middle of the first rollout."""
    collect = trainer.collect_rollout

    def collect_and_signal():
        for _ in range(times):
            os.kill(os.getpid(), signal.SIGINT)
        return collect()

    monkeypatch.setattr(trainer, "collect_rollout", collect_and_signal)


@pytest.mark.parametrize("old", [True, False])
def test_the_first_signal_stops_after_the_update_saving_if_the_last_save_is_old(
    tmp_path, monkeypatch, old
):
    # checkpoint_every 0: only the stop itself may save
    config = tiny_config(tmp_path, total_frames=10_000)
    config.run.checkpoint_every = 0
    monkeypatch.setattr(trainer_module, "SAVE_ON_STOP_AFTER_S", 0.0 if old else 3600.0)
    trainer = PPOTrainer(config)
    interrupt_during_update(trainer, monkeypatch)
    with pytest.raises(TrainingInterrupted) as stopped:
        trainer.train()
    assert stopped.value.signum == signal.SIGINT and not stopped.value.at_once
    assert trainer.state.update == 1  # the update in progress was finished, no other begun
    if old:
        assert latest_checkpoint(tmp_path).name == "update_000001"
    else:
        assert not (tmp_path / "checkpoints").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    assert not trainer.run_dir.lock.held


def test_a_second_signal_stops_at_once_without_saving(tmp_path, monkeypatch):
    config = tiny_config(tmp_path, total_frames=10_000)
    config.run.checkpoint_every = 0
    monkeypatch.setattr(trainer_module, "SAVE_ON_STOP_AFTER_S", 0.0)
    trainer = PPOTrainer(config)
    interrupt_during_update(trainer, monkeypatch, times=2)
    with pytest.raises(TrainingInterrupted) as stopped:
        trainer.train()
    assert stopped.value.at_once
    assert trainer.state.update == 0 and not (tmp_path / "checkpoints").exists()
    assert not trainer.run_dir.lock.held


@pytest.mark.slow
def test_ctrl_c_under_torchrun_releases_the_lock(tmp_path):
    # A terminal's Ctrl-C goes to the whole process group: torchrun and both workers; torchrun
    # then passes a SIGINT on to each worker, the second signal, so they stop at once.
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "ppo_grounding.cli", "train", *TINY, "--ppo.total-frames", "1000000",
         "--run.output-dir", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    try:
        wait_for(lambda: latest_update(run) >= 1, process, timeout=90)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    # (torchrun's own agent prints its SignalException; the workers print no traceback)
    ours = [line for line in stderr.splitlines() if line.startswith("ppo-grounding train:")]
    assert len(ours) == 1 and "stopped by SIGINT; the latest checkpoint is" in ours[0], stderr
    assert f"resume with: ppo-grounding train --run.output-dir {run} --run.resume" in ours[0]
    assert (run / "run.lock").read_text() == ""  # emptied and unlocked by the main worker
