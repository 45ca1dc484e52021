"""What `ppo-grounding train` writes on stderr: on a terminal our tqdm bar and nothing drawn
through it (transformers' "Writing model shards" bar is off while ours is open); in a pipe or a
log plain lines only (no carriage return, no cursor escape, no transformers bar); with
--run.no-progress no progress at all."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from .test_interrupts import TINY

PROGRESS_ON = [arg for arg in TINY if arg != "--run.no-progress"]


def train(*args: str, stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ppo_grounding.cli", "train", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_in_a_pipe_progress_is_plain_lines_and_no_progress_means_none(tmp_path):
    run = str(tmp_path / "run")
    first = train(*PROGRESS_ON, "--ppo.total-frames", "32", "--run.output-dir", run)
    assert first.returncode == 0, first.stderr
    assert "\r" not in first.stderr and "\x1b[" not in first.stderr
    assert "Writing model shards" not in first.stderr  # a checkpoint after each update
    assert "train: 16/32 frames, fps=" in first.stderr  # the first update, at once
    assert "train: 32/32 frames, fps=" in first.stderr  # and where it ended

    # A resume loads the policy with transformers ("Loading weights" bar) and saves again.
    resumed = train(
        "--run.output-dir", run, "--run.resume", "--ppo.total-frames", "48", "--run.no-progress"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "\r" not in resumed.stderr and "\x1b[" not in resumed.stderr
    assert "Loading weights" not in resumed.stderr and "Writing model shards" not in resumed.stderr
    assert "train:" not in resumed.stderr


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_on_a_terminal_the_bar_is_ours_alone(tmp_path):
    main, child_end = pty.openpty()
    # 24 x 120: a new pty is 0 columns wide, in which tqdm draws an empty bar
    fcntl.ioctl(child_end, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "ppo_grounding.cli", "train", *PROGRESS_ON,
         "--ppo.total-frames", "32", "--run.output-dir", str(tmp_path / "run")],
        stdout=subprocess.DEVNULL, stderr=child_end,
    )  # fmt: skip
    os.close(child_end)
    stderr = read_all(main).decode(errors="replace")
    os.close(main)
    assert process.wait(timeout=120) == 0, stderr
    assert "\rtrain: 100%" in stderr  # the tqdm bar, redrawn in place
    assert "Writing model shards" not in stderr  # saves after each update drew through it


def test_evaluate_in_a_pipe_draws_no_bar(tmp_path):
    """evaluate (like the suite and replay) draws its episode bar on a terminal only."""
    done = subprocess.run(
        [sys.executable, "-m", "ppo_grounding.cli", "evaluate", "--checkpoint", "offline-gpt2"]
        + ["--env-id", "BabyAI-Text-GoToRedBallNoDists-v0", "--episodes", "2", "--num-envs", "2"],
        capture_output=True,  # stderr is a pipe, as in a log
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b[" not in done.stderr
    assert "ep/s" not in done.stderr and "ep]" not in done.stderr  # no tqdm line
    assert "success" in done.stdout.lower()
