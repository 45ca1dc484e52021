"""The budget the three trainers share (loop.py): frames or minutes, whichever ends first."""

import pytest
import torch
from ppo_grounding.config import PPOConfig
from ppo_grounding.loop import Budget, make_optimizer, set_learning_rate

from .helpers import tiny_config


def test_budget_ends_at_the_frames_or_the_minutes():
    frames_only = Budget(total_frames=64)
    assert frames_only.allows_more(0, 1e9) and frames_only.allows_more(63, 0.0)
    assert not frames_only.allows_more(64, 0.0)
    both = Budget(total_frames=64, max_minutes=0.5)
    assert both.allows_more(0, 29.9)
    assert not both.allows_more(0, 30.0) and not both.allows_more(64, 0.0)


def test_budget_of_a_run_reads_its_frames_and_minutes(tmp_path):
    config = tiny_config(tmp_path, total_frames=48)
    config.run.max_minutes = 2.0
    assert Budget.of(config) == Budget(48, 2.0)


@pytest.mark.parametrize("name, kind", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_the_optimiser_follows_the_ppo_section(name, kind):
    layer = torch.nn.Linear(2, 2)
    ppo = PPOConfig(optimizer=name, learning_rate=3e-4, adam_eps=1e-5, weight_decay=0.1)
    optimizer = make_optimizer(layer.parameters(), ppo)
    assert type(optimizer) is kind
    group = optimizer.param_groups[0]
    assert (group["lr"], group["eps"]) == (3e-4, 1e-5)
    assert group["weight_decay"] == (0.1 if name == "adamw" else 0)
    set_learning_rate(optimizer, 1e-4)
    assert optimizer.param_groups[0]["lr"] == 1e-4
