"""One training job per run directory (run_lock.py): a second is refused, a dead one's lock is
taken over with a warning."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
from ppo_grounding import PPOTrainer
from ppo_grounding.cli import main
from ppo_grounding.run_lock import LOCK_FILE, RunLock, RunLockedError, StaleLockWarning

from .helpers import tiny_config

HOLDER = textwrap.dedent(
    """
    import sys
    from ppo_grounding.run_lock import RunLock
    lock = RunLock(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.read()  # hold it until the parent closes our stdin
    lock.release()
    """
)


@pytest.fixture
def holder(tmp_path):
    """A live process holding the lock of tmp_path / "run"."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "run")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "locked"
    yield child
    if child.poll() is None:
        child.stdin.close()
        child.wait()


def test_a_second_job_in_a_run_directory_is_refused_naming_the_first(tmp_path, holder):
    with pytest.raises(RunLockedError, match=f"pid {holder.pid} on {socket.gethostname()}"):
        RunLock(tmp_path / "run")
    with pytest.raises(RunLockedError, match="another --run.output-dir"):
        PPOTrainer(tiny_config(tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--run.output-dir", str(tmp_path / "run"), "--run.no-progress"])
    assert "in use by another training job" in str(exit_.value.code)

    holder.stdin.close()  # the first job ends: the directory is free again
    holder.wait()
    with RunLock(tmp_path / "run") as lock:
        assert lock.held
    assert (tmp_path / "run" / LOCK_FILE).read_text() == ""


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_warning(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    left = json.loads((tmp_path / "run" / LOCK_FILE).read_text())
    assert left["pid"] == holder.pid
    with pytest.warns(StaleLockWarning, match=f"pid {holder.pid}.*is no longer running"):
        lock = RunLock(tmp_path / "run")
    assert json.loads((tmp_path / "run" / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()


def test_release_is_idempotent_and_a_released_lock_leaves_no_warning(tmp_path, recwarn):
    lock = RunLock(tmp_path / "run")
    lock.release()
    lock.release()
    RunLock(tmp_path / "run").release()
    assert not [w for w in recwarn if issubclass(w.category, StaleLockWarning)]


def test_within_one_process_a_new_lock_takes_over(tmp_path):
    first = RunLock(tmp_path / "run")
    second = RunLock(tmp_path / "run")
    assert not first.held and second.held
    second.release()


@pytest.mark.slow
def test_a_trainer_holds_the_lock_until_train_ends(tmp_path):
    trainer = PPOTrainer(tiny_config(tmp_path / "run", total_frames=16))
    assert trainer.run_dir.lock.held
    probe = subprocess.run(
        [sys.executable, "-c", HOLDER, str(tmp_path / "run")],
        input="",
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0 and "RunLockedError" in probe.stderr
    trainer.train()
    assert not trainer.run_dir.lock.held
    probe = subprocess.run(
        [sys.executable, "-c", HOLDER, str(tmp_path / "run")], input="", capture_output=True
    )
    assert probe.returncode == 0
