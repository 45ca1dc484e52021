"""Sharded training (`--dist.shard`, torch FSDP2) under torchrun: 2 CPU processes (gloo), tiny model.

The runs are distributed_worker.py's, launched as in test_distributed.py, with --shard.
"""

from __future__ import annotations

import json

import pytest
import torch
from llm_policy import LLMPolicy
from ppo_grounding import distributed
from ppo_grounding.checkpoint import CHECKPOINTS, LATEST, STATE_FILE, latest_checkpoint
from ppo_grounding.metrics import read_metrics
from ppo_grounding.trainer import PPOTrainer
from safetensors.torch import load_file

from . import distributed_worker as worker
from .test_distributed import _hashes, assert_one_process_update_matches, built_model, launch

__all__ = ["built_model"]  # the fixture, shared with test_distributed.py


def launch_sharded(built_model, run, dump, *args: str):
    """distributed_worker.py under 2 processes with --shard, writing to `run` and `dump`; it
    must succeed."""
    done = launch(built_model, "--output-dir", str(run), "--dump-dir", str(dump), "--shard", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _first_updates(dump) -> list[dict]:
    return [torch.load(dump / f"first_update_rank{r}.pt", weights_only=False) for r in (0, 1)]


def assert_checkpoint_scores_as_the_run_ended(run, dump) -> None:
    """The run's latest checkpoint, loaded in this one process, gives the logits and values the
    sharded policy gave at the end of the run (the worker's DUMP/scores.pt), within 1e-5."""
    saved = torch.load(dump / "scores.pt")
    policy = LLMPolicy.from_pretrained(latest_checkpoint(run) / "policy")
    policy.eval()
    with torch.no_grad():
        out = policy(worker.SCORED_PROMPTS, [saved["actions"]] * len(worker.SCORED_PROMPTS))
    torch.testing.assert_close(out.logits, saved["logits"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.values, saved["values"], atol=1e-5, rtol=0)
    if policy.config.finetune == "full":  # model/ is an ordinary transformers directory
        from transformers import AutoModelForCausalLM

        lm = AutoModelForCausalLM.from_pretrained(latest_checkpoint(run) / "policy" / "model")
        mine = policy._lm.state_dict()
        for name, tensor in lm.state_dict().items():
            assert torch.equal(tensor, mine[name]), name


@pytest.mark.slow
@pytest.mark.parametrize("finetune", ["full", "lora"])
def test_a_sharded_update_equals_one_process_on_the_union_and_its_checkpoint_is_ordinary(
    built_model, tmp_path, finetune
):
    run, dump = tmp_path / "run", tmp_path / "dump"
    launch_sharded(built_model, run, dump, "--finetune", finetune, "--total-frames", "32")

    # Both processes see the same (gathered) parameters after every update, and they moved.
    assert _hashes(dump, 0) == _hashes(dump, 1)
    assert len({h["hash"] for h in _hashes(dump, 0)}) == 2
    assert [r["losses/minibatch_steps"] for r in read_metrics(run)] == [2, 2]

    # Each process holds about half of the trainable parameters (its shards), and the run logs
    # what the fullest process holds: about half of a replica's weights and Adam moments.
    parts = _first_updates(dump)
    total = sum(p.numel() for p in parts[0]["params"])
    for part in parts:
        assert abs(part["local_elements"] / total - 0.5) < 0.01, (part["local_elements"], total)
    assert parts[0]["local_elements"] + parts[1]["local_elements"] == total
    replica = LLMPolicy(worker.worker_config(str(tmp_path), 48, False, finetune=finetune).policy)
    replica_bytes = sum(p.numel() * p.element_size() for p in replica.parameters())
    replica_bytes += 2 * 4 * total  # Adam's two fp32 moments of every trained weight
    held = read_metrics(run)[0]["memory/weights_and_adam_gib"] * 2**30
    assert abs(held / replica_bytes - 0.5) < 0.01, (held, replica_bytes)  # a LoRA's base too

    # One sharded update equals one process's update on the union of the minibatches.
    assert_one_process_update_matches(
        parts,
        worker.worker_config(str(tmp_path / "single"), 48, resume=False, finetune=finetune),
    )

    # The checkpoint is an ordinary policy directory: one process loads it, and it scores as
    # the sharded policy did at the end of the run.
    assert_checkpoint_scores_as_the_run_ended(run, dump)


@pytest.mark.slow
def test_a_sharded_run_resumes_sharded_and_in_one_process(built_model, tmp_path):
    run, dump = tmp_path / "run", tmp_path / "dump"
    launch_sharded(built_model, run, dump, "--total-frames", "32")
    assert (run / CHECKPOINTS / LATEST).read_text().strip() == "update_000002"

    # Sharded -> sharded: the counters, the optimiser's moments and the weights carry on.
    launch_sharded(built_model, run, dump, "--resume", "--total-frames", "48")
    assert [r["update"] for r in read_metrics(run)] == [1, 2, 3]
    state = json.loads((run / CHECKPOINTS / "update_000003" / STATE_FILE).read_text())
    assert (state["update"], state["frames"]) == (3, 48)
    assert _hashes(dump, 0) == _hashes(dump, 1)
    # the processes restored the checkpoint's optimiser state, each its shard: gathered, it is
    # the saved one, moment for moment
    saved = load_file(str(run / CHECKPOINTS / "update_000002" / "optimizer.safetensors"))
    restored = torch.load(dump / "restored_optimizer.pt")
    assert len(restored["state"]) == len({key.split(".")[0] for key in saved})
    for index, moments in restored["state"].items():
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(moments[name], saved[f"{index}.{name}"])
        assert moments["exp_avg"].abs().sum() > 0

    # Sharded -> one process, unsharded: the same checkpoint, read by the plain trainer.
    config = worker.worker_config(str(run), 64, resume=True)
    trainer = PPOTrainer(config)
    assert trainer.state.update == 3
    moments = [s["exp_avg"] for s in trainer.optimizer.state.values()]
    assert moments and all(m.abs().sum() > 0 for m in moments)
    state = trainer.train()
    assert (state.update, state.frames) == (4, 64)


@pytest.mark.slow
def test_bf16_lora_of_a_llama_trains_sharded(built_model, tmp_path):
    # Llama's architecture (its decoder layers, rotary embeddings, untied sizes) at a tiny width
    from llm_policy.architectures import build_random_model

    llama = build_random_model(
        "llama-3.2-1b",
        tmp_path / "llama",
        config_overrides=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
        ),
    )
    run, dump = tmp_path / "run", tmp_path / "dump"
    launch_sharded(
        built_model,
        run,
        dump,
        *("--model", str(llama), "--finetune", "lora", "--dtype", "bfloat16"),
        *("--total-frames", "16"),
    )
    assert _hashes(dump, 0) == _hashes(dump, 1)
    parts = _first_updates(dump)
    assert all(p.dtype == torch.float32 for p in parts[0]["params"])  # trained weights: fp32
    assert_checkpoint_scores_as_the_run_ended(run, dump)


def test_the_start_line_says_whether_the_policy_is_sharded(tmp_path):
    config = worker.worker_config(str(tmp_path), 48, resume=False)
    assert distributed.describe_sizes(config, 2).endswith(
        "the policy replicated in the 2 processes"
    )
    config.dist.shard = True
    assert distributed.describe_sizes(config, 2).endswith(
        "the policy sharded across the 2 processes"
    )
    assert distributed.describe_sizes(config, 1).endswith("dist.shard has no effect in one process")


def test_only_models_with_named_blocks_and_no_fp16_are_sharded(tmp_path):
    from ppo_grounding import sharding

    policy = LLMPolicy(worker.worker_config(str(tmp_path), 48, resume=False).policy)
    blocks = sharding.sharded_blocks(policy)
    assert [type(b).__name__ for b in blocks] == ["GPT2Block"] * len(policy._lm.transformer.h)
    policy._lm._no_split_modules = []
    with pytest.raises(ValueError, match="names no transformer blocks"):
        sharding.sharded_blocks(policy)
    policy.config.dtype = "float16"
    with pytest.raises(ValueError, match="use policy.dtype=bfloat16"):
        sharding.shard_policy(policy, torch.device("cpu"))


def test_a_run_whose_checkpoints_would_not_fit_host_memory_is_warned_at_start(
    tmp_path, monkeypatch
):
    from ppo_grounding import sharding

    policy = LLMPolicy(worker.worker_config(str(tmp_path), 48, resume=False).policy)
    trained = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    assert sharding.gathered_bytes(policy) == 3 * 4 * trained  # fp32 weights and 2 moments
    assert sharding.checkpoint_memory_warning(policy) is None  # this machine holds 20 MiB
    monkeypatch.setattr(sharding, "host_memory_available", lambda: 2**40)
    assert sharding.checkpoint_memory_warning(policy) is None
    monkeypatch.setattr(sharding, "host_memory_available", lambda: 1024)
    warning = sharding.checkpoint_memory_warning(policy)
    assert warning is not None and "host memory" in warning and "--policy.finetune lora" in warning
    monkeypatch.setattr(sharding, "host_memory_available", lambda: None)
    assert sharding.checkpoint_memory_warning(policy) is None


def test_host_memory_is_read_from_proc_meminfo():
    from ppo_grounding import sharding

    available = sharding.host_memory_available()  # Linux: MemAvailable, in bytes
    assert available is not None and 2**20 < available < 2**50
