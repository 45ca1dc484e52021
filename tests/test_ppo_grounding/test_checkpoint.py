import json
import os
import shutil

import pytest
import torch
from llm_policy import atomic
from ppo_grounding import checkpoint
from ppo_grounding.checkpoint import (
    TrainerState,
    _optimizer_from_files,
    _optimizer_to_files,
    checkpoint_dir,
    latest_checkpoint,
    save_checkpoint,
)

from .helpers import save_tagged_checkpoint


def test_optimizer_state_round_trips_without_pickle():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-5)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    tensors, meta = _optimizer_to_files(optimizer.state_dict())
    restored = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    restored.load_state_dict(_optimizer_from_files(tensors, meta))
    a, b = optimizer.state_dict(), restored.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for key in a["state"]:
        for name in a["state"][key]:
            torch.testing.assert_close(a["state"][key][name], b["state"][key][name])


class FailingPolicy:
    def save_pretrained(self, path):
        path.mkdir()
        (path / "partial.safetensors").write_bytes(b"half")
        raise OSError("disk full")


def test_a_failed_save_leaves_no_half_written_checkpoint(tmp_path):
    optimizer = torch.optim.Adam(torch.nn.Linear(2, 2).parameters())
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(
            tmp_path,
            policy=FailingPolicy(),
            optimizer=optimizer,
            shuffle_generator=torch.Generator(),
            state=TrainerState(update=4),
            config_json="{}",
        )
    assert not checkpoint_dir(tmp_path, 4).exists()
    assert list((tmp_path / "checkpoints").iterdir()) == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        latest_checkpoint(tmp_path)


def test_resaving_a_checkpoint_never_leaves_latest_naming_a_missing_or_partial_one(
    tmp_path, monkeypatch
):
    # A checkpoint is re-saved when a run that resumed from an older one reaches its update
    # again (the end-of-run save skips one that `latest` already names: forced here). At every
    # rename and removal during that re-save, `latest` must name a complete checkpoint: the old
    # one or the new one, never none.
    probe = [tmp_path / "probe" / name for name in "ab"]
    for path in probe:
        path.mkdir(parents=True)
    if not atomic._exchange(*probe):
        pytest.skip("no renameat2(RENAME_EXCHANGE) here: llm_policy.atomic's fallback has a gap")
    shutil.rmtree(tmp_path / "probe")
    run = tmp_path / "run"
    save_tagged_checkpoint(run, 3, "first")
    seen = []

    def check(moment):
        path = latest_checkpoint(run)  # raises if a required file is missing
        assert json.loads((path / "trainer_state.json").read_text())["update"] == 3
        seen.append((moment, (path / "policy" / "weights").read_text()))

    def spied(name, function):
        def call(*args, **kwargs):
            check(f"before {name}")
            result = function(*args, **kwargs)
            check(f"after {name}")
            return result

        return call

    # Everywhere, not only in llm_policy.atomic: whatever save_checkpoint uses is watched.
    monkeypatch.setattr(os, "rename", spied("rename", os.rename))
    monkeypatch.setattr(os, "replace", spied("replace", os.replace))
    monkeypatch.setattr(shutil, "rmtree", spied("rmtree", shutil.rmtree))
    monkeypatch.setattr(atomic, "_exchange", spied("exchange", atomic._exchange))
    monkeypatch.setattr(checkpoint, "_already_published", lambda *args: False)
    save_tagged_checkpoint(run, 3, "second")
    monkeypatch.undo()

    moments = [moment for moment, _ in seen]
    # the swap, the removal of the old copy, the rewrite of `latest`
    assert {"after exchange", "before rmtree", "before replace"} <= set(moments)
    assert dict(seen)["before exchange"] == "first" and dict(seen)["after exchange"] == "second"
    assert (latest_checkpoint(run) / "policy" / "weights").read_text() == "second"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "update_000003"]


def test_a_later_checkpoint_moves_latest_and_keeps_the_earlier_one(tmp_path):
    save_tagged_checkpoint(tmp_path, 1, "first")
    save_tagged_checkpoint(tmp_path, 2, "second")
    assert latest_checkpoint(tmp_path) == checkpoint_dir(tmp_path, 2)
    assert (checkpoint_dir(tmp_path, 1) / "policy" / "weights").read_text() == "first"


def test_a_directory_that_is_not_a_checkpoint_is_never_replaced(tmp_path):
    stranger = checkpoint_dir(tmp_path, 3)
    stranger.mkdir(parents=True)
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="trainer_state.json"):
        save_tagged_checkpoint(tmp_path, 3, "first")
    assert (stranger / "notes.txt").read_text() == "mine"
