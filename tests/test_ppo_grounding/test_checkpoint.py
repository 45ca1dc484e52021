import pytest
import torch
from ppo_grounding.checkpoint import (
    TrainerState,
    _optimizer_from_files,
    _optimizer_to_files,
    checkpoint_dir,
    latest_checkpoint,
    save_checkpoint,
)


def test_optimizer_state_round_trips_without_pickle():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-5)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    tensors, meta = _optimizer_to_files(optimizer)
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
