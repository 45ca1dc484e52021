"""Crafted run directories (issue 20): pipes, devices and links where small files belong, a
`latest` that points outside or holds someone's file, are refused or fallen back from with a
message; nothing blocks, reads without end, or shows what a file outside the checkpoint holds.

Cases that would block if a check regressed run under `no_hang`, which turns the hang into a
failure (a SIGALRM interrupts the blocked open and its handler's exception propagates).
"""

import os
import shutil
import subprocess
import sys
import warnings

import pytest
from llm_policy.manifest import CheckpointCorruptError
from llm_policy.small_files import UnsafeFileError
from ppo_grounding.checkpoint import CheckpointWarning, checkpoint_dir, latest_checkpoint
from ppo_grounding.run_lock import RunLock
from ppo_grounding.sources import load_policy_for_eval

from .helpers import save_tagged_checkpoint

SECRET = "root:x:0:0:root:/root:/bin/bash\nsecret-token-1234\n"


@pytest.fixture
def run(tmp_path):
    """A run with checkpoints 1 and 2; `latest` names 2."""
    run = tmp_path / "run"
    save_tagged_checkpoint(run, 1)
    save_tagged_checkpoint(run, 2)
    return run


def _replace(path, how, target=None):
    """Replace the file `path` by a named pipe or a symbolic link to `target`."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    if how == "pipe":
        os.mkfifo(path)
    else:
        path.symlink_to(target)


# ------------------------------------------------------------------------------------- latest
@pytest.mark.parametrize(
    ("how", "target", "problem"),
    [
        ("pipe", None, "is a named pipe, not a regular file"),
        ("link", "secret", "is a symbolic link, not a regular file"),
    ],
)
def test_a_latest_that_is_a_pipe_or_a_link_falls_back_without_reading_it(
    run, tmp_path, how, target, problem, no_hang
):
    (tmp_path / "secret").write_text(SECRET)
    if target == "secret":
        target = tmp_path / "secret"
    _replace(run / "checkpoints" / "latest", how, target)
    with no_hang(), pytest.warns(CheckpointWarning, match=problem) as record:
        assert latest_checkpoint(run) == checkpoint_dir(run, 2)
    assert "root:x" not in str(record[0].message)


def test_a_latest_holding_a_copy_of_another_file_is_not_echoed(run):
    (run / "checkpoints" / "latest").write_text(SECRET)
    with pytest.warns(CheckpointWarning) as record:
        assert latest_checkpoint(run) == checkpoint_dir(run, 2)
    message = str(record[0].message)
    assert f"holds {len(SECRET)} bytes that are not the name of a checkpoint" in message
    assert "root:x" not in message and "secret-token" not in message


def test_a_latest_too_long_for_a_name_is_not_read(run):
    with open(run / "checkpoints" / "latest", "wb") as f:
        f.truncate(64 << 20)  # sparse
    with pytest.warns(CheckpointWarning, match="is 67108864 bytes, more than the 256"):
        assert latest_checkpoint(run) == checkpoint_dir(run, 2)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_links_to_dev_zero_as_latest_or_a_checkpoint_file_are_never_read(run):
    # In a child whose address space is capped: if a check regressed, reading /dev/zero would
    # end in its MemoryError instead of taking the machine's memory with it.
    _replace(run / "checkpoints" / "latest", "link", "/dev/zero")
    old = checkpoint_dir(run, 1)
    (old / "manifest.json").unlink()
    _replace(old / "trainer_state.json", "link", "/dev/zero")
    code = f"""
import resource, warnings
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from ppo_grounding.checkpoint import latest_checkpoint, verify_checkpoint
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    print(latest_checkpoint("{run}").name)
print([str(w.message).split(": using")[0].rsplit(" ", 8)[-8:] for w in caught][0])
try:
    verify_checkpoint("{old}")
except ValueError as error:
    print(error.problems)
"""
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stdout + child.stderr
    lines = child.stdout.splitlines()
    assert lines[0] == "update_000002"
    assert "symbolic" in lines[1]
    assert lines[2] == "{'trainer_state.json': 'not a regular file'}"


# ----------------------------------------------------------------------- checkpoints' own files
@pytest.mark.parametrize(
    ("name", "how", "target"),
    [
        ("config.json", "pipe", None),
        ("trainer_state.json", "link", "../../../secret"),
        ("optimizer.json", "pipe", None),
        ("policy", "link", "/tmp"),
    ],
)
def test_a_checkpoint_without_manifest_holding_a_pipe_or_link_is_refused(
    run, name, how, target, no_hang
):
    # Without a manifest (an old checkpoint, or a crafted one) only the required files' kinds
    # stand between a loader and a pipe that blocks or a device that never ends.
    (run.parent / "secret").write_text(SECRET)
    checkpoint = checkpoint_dir(run, 2)
    (checkpoint / "manifest.json").unlink()
    _replace(checkpoint / name, how, target)
    with no_hang(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CheckpointCorruptError, match=f"{name}: not a"):
            latest_checkpoint(run)
        with pytest.raises(CheckpointCorruptError, match=f"{name}: not a"):
            load_policy_for_eval(run)


def test_a_checkpoint_config_far_too_large_is_refused_before_it_is_read(run):
    checkpoint = checkpoint_dir(run, 2)
    (checkpoint / "manifest.json").unlink()
    with open(checkpoint / "config.json", "wb") as f:
        f.truncate(256 << 20)  # sparse: 256 MiB of zeros that json would read whole
    with warnings.catch_warnings(), pytest.raises(CheckpointCorruptError, match="bytes, more than"):
        warnings.simplefilter("ignore")
        load_policy_for_eval(run)


# ------------------------------------------------------------------------------------ run.lock
def test_a_run_lock_linked_to_another_file_is_refused_and_that_file_untouched(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "precious").write_text(SECRET)
    (run / "run.lock").symlink_to(tmp_path / "precious")
    with pytest.raises(UnsafeFileError, match="run lock .*run.lock is a symbolic link; remove it"):
        RunLock(run)
    assert (tmp_path / "precious").read_text() == SECRET  # a lock would have emptied it


def test_a_run_lock_that_is_a_pipe_is_refused(tmp_path, no_hang):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "run.lock")
    with no_hang(), pytest.raises(UnsafeFileError, match="is a named pipe, not a regular file"):
        RunLock(run)


# ------------------------------------------------------------------------- a policy's config
def test_a_policy_config_linked_elsewhere_is_refused(tmp_path):
    from llm_policy import LLMPolicy

    policy = tmp_path / "policy"
    policy.mkdir()
    with open(tmp_path / "huge", "wb") as f:
        f.truncate(256 << 20)
    (policy / "llm_policy_config.json").symlink_to(tmp_path / "huge")
    with warnings.catch_warnings(), pytest.raises(ValueError, match="is a symbolic link"):
        warnings.simplefilter("ignore")  # no manifest: loaded unchecked, with a warning
        LLMPolicy.from_pretrained(policy)
