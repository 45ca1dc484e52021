"""Saving checkpoints (issue 20): a full disk reads as an OSError whatever library wrote the file,
the end-of-run save does not rewrite the checkpoint `latest` already names, and
`--run.keep-last N` deletes old checkpoints only after the new one is published."""

import errno
import json

import pytest
import torch
from ppo_grounding import PPOTrainer, checkpoint
from ppo_grounding.checkpoint import (
    TrainerState,
    checkpoint_dir,
    latest_checkpoint,
    save_checkpoint,
)
from ppo_grounding.cli import main
from safetensors import SafetensorError

from .helpers import TaggedPolicy, save_tagged_checkpoint, tiny_config

ENOSPC = "Error while serializing: I/O error: No space left on device (os error 28)"
"""What safetensors raises when the disk fills during save_file (measured on a 64 KiB tmpfs)."""


def full_disk(*args, **kwargs):
    raise SafetensorError(ENOSPC)


def names(run):
    return sorted(p.name for p in (run / "checkpoints").iterdir())


def weights(run, update):
    return (checkpoint_dir(run, update) / "policy" / "weights").read_text()


def save(run, update, tag="x", keep_last=None):
    return save_checkpoint(
        run,
        policy=TaggedPolicy(tag),
        optimizer=torch.optim.Adam(torch.nn.Linear(2, 2).parameters()),
        shuffle_generator=torch.Generator(),
        state=TrainerState(update=update),
        config_json=json.dumps({"run": {"keep_last": keep_last}}),
    )


# ---------------------------------------------------------------------------------- full disk
def test_a_full_disk_inside_safetensors_is_an_os_error_and_latest_is_kept(tmp_path, monkeypatch):
    run = tmp_path / "run"
    save_tagged_checkpoint(run, 1, "good")
    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    with pytest.raises(OSError) as error:
        save_tagged_checkpoint(run, 2)
    assert error.value.errno == errno.ENOSPC
    assert "[Errno 28] No space left on device" in str(error.value)
    assert names(run) == ["latest", "update_000001"]  # no temporary directory left either
    assert latest_checkpoint(run) == checkpoint_dir(run, 1)


def test_a_full_disk_while_the_policy_saves_is_an_os_error_too(tmp_path):
    class FullDiskPolicy:
        def save_pretrained(self, path):
            path.mkdir()
            full_disk()

    with pytest.raises(OSError, match="No space left on device"):
        save_checkpoint(
            tmp_path,
            policy=FullDiskPolicy(),
            optimizer=torch.optim.Adam(torch.nn.Linear(2, 2).parameters()),
            shuffle_generator=torch.Generator(),
            state=TrainerState(update=1),
            config_json="{}",
        )


def test_other_safetensors_errors_are_left_as_they_are(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise SafetensorError("Error while serializing: something else")

    monkeypatch.setattr(checkpoint, "save_file", broken)
    with pytest.raises(SafetensorError, match="something else"):
        save_tagged_checkpoint(tmp_path, 1)


@pytest.mark.slow
def test_a_full_disk_during_training_gives_the_documented_message(tmp_path, monkeypatch):
    real_save_file = checkpoint.save_file
    calls = []

    def save_file(tensors, path):
        calls.append(path)
        if len(calls) > 2:  # the second checkpoint's first file (the first wrote two)
            full_disk()
        return real_save_file(tensors, path)

    monkeypatch.setattr(checkpoint, "save_file", save_file)
    run = tmp_path / "run"
    args = ["--env.num-envs", "2", "--ppo.num-steps", "8", "--ppo.minibatch-size", "8"]
    args += ["--ppo.total-frames", "32", "--run.checkpoint-every", "1", "--run.no-progress"]
    with pytest.raises(SystemExit) as exit_:
        main(["train", *args, "--run.no-tensorboard", "--run.output-dir", str(run)])
    message = str(exit_.value.code)
    assert message.startswith("ppo-grounding train: stopped: [Errno 28] No space left on device")
    assert "SafetensorError" not in message and "Traceback" not in message
    assert "update_000001" in message and "--run.resume" in message
    assert names(run) == ["latest", "update_000001"]
    assert latest_checkpoint(run) == checkpoint_dir(run, 1)


# ------------------------------------------------------------------------- end-of-run re-save
def test_a_save_of_the_update_latest_already_names_writes_nothing(tmp_path, monkeypatch):
    run = tmp_path / "run"
    save_tagged_checkpoint(run, 3, "first")
    monkeypatch.setattr(checkpoint, "save_file", full_disk)  # any write would fail
    assert save_tagged_checkpoint(run, 3, "second") == checkpoint_dir(run, 3)
    assert weights(run, 3) == "first"
    assert names(run) == ["latest", "update_000003"]


def test_a_checkpoint_latest_does_not_name_is_still_replaced(tmp_path):
    # e.g. a run that resumed from update 2 (its `latest` was damaged) reaches update 3 again
    run = tmp_path / "run"
    save_tagged_checkpoint(run, 2, "two")
    save_tagged_checkpoint(run, 3, "abandoned")
    (run / "checkpoints" / "latest").write_text("update_000002")
    save_tagged_checkpoint(run, 3, "new")
    assert weights(run, 3) == "new"
    assert latest_checkpoint(run) == checkpoint_dir(run, 3)


def test_an_incomplete_checkpoint_named_by_latest_is_rewritten(tmp_path):
    run = tmp_path / "run"
    save_tagged_checkpoint(run, 3, "first")
    (checkpoint_dir(run, 3) / "manifest.json").unlink()
    save_tagged_checkpoint(run, 3, "second")
    assert weights(run, 3) == "second"


@pytest.mark.slow
def test_a_finished_run_saves_each_update_once_and_resumes_on_a_full_disk(tmp_path, monkeypatch):
    real_save_file = checkpoint.save_file
    calls = []
    monkeypatch.setattr(
        checkpoint, "save_file", lambda t, p: calls.append(p) or real_save_file(t, p)
    )
    config = tiny_config(tmp_path / "run", total_frames=32)  # 2 updates, checkpoint_every 1
    PPOTrainer(config).train()
    assert len(calls) == 2 * 2  # optimizer + rng for updates 1 and 2; the final save wrote none

    monkeypatch.setattr(checkpoint, "save_file", full_disk)  # the disk is now full
    config.run.resume = True
    assert PPOTrainer(config).train().update == 2  # nothing left to train: it ends, writing nothing
    assert latest_checkpoint(tmp_path / "run") == checkpoint_dir(tmp_path / "run", 2)


# --------------------------------------------------------------------------------- retention
def test_keep_last_deletes_older_checkpoints_after_the_new_one_is_published(tmp_path):
    run = tmp_path / "run"
    for update in range(1, 5):
        save(run, update, keep_last=2)
    assert names(run) == ["latest", "update_000003", "update_000004"]
    save(run, 5, keep_last=1)
    assert names(run) == ["latest", "update_000005"]
    assert latest_checkpoint(run) == checkpoint_dir(run, 5)


def test_without_keep_last_every_checkpoint_is_kept(tmp_path):
    run = tmp_path / "run"
    for update in range(1, 4):
        save(run, update)
    assert names(run) == ["latest", "update_000001", "update_000002", "update_000003"]


def test_a_failed_save_deletes_nothing(tmp_path, monkeypatch):
    run = tmp_path / "run"
    save(run, 1, keep_last=1)
    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    with pytest.raises(OSError):
        save(run, 2, keep_last=1)
    assert names(run) == ["latest", "update_000001"]


def test_keep_last_spares_later_checkpoints_of_an_abandoned_attempt(tmp_path):
    run = tmp_path / "run"
    for update in (1, 2, 5):
        save(run, update)
    (run / "checkpoints" / "latest").write_text("update_000002")  # resumed from 2
    save(run, 3, keep_last=1)
    assert names(run) == ["latest", "update_000003", "update_000005"]
    assert latest_checkpoint(run) == checkpoint_dir(run, 3)


def test_keep_last_on_the_command_line_is_checked_and_resumable():
    from ppo_grounding.cli import _train_config
    from ppo_grounding.run_directory import RESUMABLE_CHANGES

    assert _train_config(["--run.keep-last", "3"], "train", "t").run.keep_last == 3
    with pytest.raises(SystemExit, match="run.keep_last=0: keep at least 1"):
        _train_config(["--run.keep-last", "0"], "train", "t")
    assert "run.keep_last" in RESUMABLE_CHANGES


@pytest.mark.slow
def test_a_run_with_keep_last_ends_with_its_newest_checkpoints(tmp_path):
    config = tiny_config(tmp_path / "run", total_frames=48)  # 3 updates, checkpoint_every 1
    config.run.keep_last = 2
    PPOTrainer(config).train()
    assert names(tmp_path / "run") == ["latest", "update_000002", "update_000003"]
