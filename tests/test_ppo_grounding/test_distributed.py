"""Data-parallel training and evaluation under torchrun: 2 CPU processes (gloo) on the tiny model.

Each test launches distributed_worker.py with `python -m torch.distributed.run --standalone
--nproc_per_node 2` as a subprocess, with one thread per process and the session's offline
model cache, and reads back what the processes wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ppo_grounding import distributed
from ppo_grounding.buffer import Batch, Rollout
from ppo_grounding.checkpoint import CHECKPOINTS, LATEST, STATE_FILE
from ppo_grounding.metrics import read_metrics
from ppo_grounding.trainer import PPOTrainer

from . import distributed_worker as worker
from .helpers import tiny_config

WORKER = Path(worker.__file__)
BOUND_S = 60
"""A launch that has not ended by then is a hang (the tests never measure speed)."""


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        LLM_POLICY_CACHE=str(cache),
        PYTHONUNBUFFERED="1",
    )
    return env


def _command(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        *args,
    ]


def launch(cache: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(*args),
        env=_env(cache),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def built_model(offline_model_cache):
    """The offline model built once in this process, so that the launched ones only read it."""
    from llm_policy import LLMPolicy

    LLMPolicy(tiny_config("unused").policy)
    return offline_model_cache


def _hashes(dump: Path, rank: int) -> list[dict]:
    path = dump / f"hashes_rank{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _union_rollout(parts: list[dict]) -> Rollout:
    """The rollout of one process holding every process's envs (rank order along the env axis)."""
    steps = parts[0]["rollout"]["actions"].shape[0]
    per_process = parts[0]["rollout"]["actions"].shape[1]
    union = Rollout(steps, per_process * len(parts))
    for name in parts[0]["rollout"]:
        setattr(union, name, torch.cat([part["rollout"][name] for part in parts], dim=-1))
    union.prompts = [
        [prompt for part in parts for prompt in part["prompts"][t]] for t in range(steps)
    ]
    return union


def _union_minibatches(parts: list[dict]) -> list[torch.Tensor]:
    """Each optimiser step's union of the processes' minibatches, as indices into the union
    rollout's flattened batch (process r's local index t * E + e is t * N * E + r * E + e)."""
    per_process = parts[0]["rollout"]["actions"].shape[1]
    width = per_process * len(parts)
    steps = []
    for k in range(len(parts[0]["minibatches"])):
        union = []
        for rank, part in enumerate(parts):
            for i in part["minibatches"][k]:
                t, e = divmod(i, per_process)
                union.append(t * width + rank * per_process + e)
        steps.append(torch.tensor(union))
    return steps


def assert_one_process_update_matches(parts: list[dict], config) -> None:
    """One process's update on the union of the processes' first rollouts, taking the union of
    their minibatches step by step, ends with the parameters (within 1e-5) and losses the
    processes dumped."""
    single = PPOTrainer(config)
    assert single.dist.world_size == 1
    steps = _union_minibatches(parts)
    assert len(steps) == 2 and all(len(s) == worker.MINIBATCH for s in steps)
    order = iter(steps)
    original = Batch.minibatches
    Batch.minibatches = lambda self, size, generator: (
        next(order) for _ in range(len(self) // size)
    )
    try:
        metrics = single.update(_union_rollout(parts))
    finally:
        Batch.minibatches = original
        single.close()
    for mine, theirs in zip(single.policy.trainable_parameters(), parts[0]["params"], strict=True):
        torch.testing.assert_close(mine.detach(), theirs, atol=1e-5, rtol=0)
    assert metrics["losses/minibatch_steps"] == 2
    for name in ("losses/policy_loss", "losses/value_loss", "losses/approx_kl"):
        assert metrics[name] == pytest.approx(parts[0]["metrics"][name], abs=1e-5)


@pytest.mark.slow
def test_two_processes_train_resume_and_match_one_process_on_the_union(built_model, tmp_path):
    run, dump = tmp_path / "run", tmp_path / "dump"
    done = launch(built_model, "--output-dir", str(run), "--dump-dir", str(dump))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "global batch 16 = 2 process(es) x 2 envs x 4 steps; minibatch 8 = 2 x 4" in (
        done.stdout + done.stderr
    )

    # The replicas hold bit-identical trainable parameters after every update.
    first, second = _hashes(dump, 0), _hashes(dump, 1)
    assert [h["update"] for h in first] == [1, 2, 3]
    assert first == second
    assert len({h["hash"] for h in first}) == 3  # and they did move

    # One set of run files, written once: 3 metrics rows, one checkpoint per update.
    rows = read_metrics(run)
    assert [r["update"] for r in rows] == [1, 2, 3]
    assert [r["charts/frames"] for r in rows] == [16, 32, 48]
    # every process stopped at the same target-KL check (else the next collective would hang)
    assert [r["losses/minibatch_steps"] for r in rows] == [2, 2, 2]
    assert rows[0]["charts/learning_rate"] > rows[1]["charts/learning_rate"]  # annealed
    assert (run / CHECKPOINTS / LATEST).read_text().strip() == "update_000003"
    assert sorted(p.name for p in (run / CHECKPOINTS).glob("update_*")) == [
        "update_000001",
        "update_000002",
        "update_000003",
    ]

    # One DDP update equals one process's update on the union of the two processes' rollouts,
    # minibatch by minibatch (advantages normalised over each union minibatch).
    parts = [torch.load(dump / f"first_update_rank{r}.pt", weights_only=False) for r in (0, 1)]
    for a, b in zip(parts[0]["params"], parts[1]["params"], strict=True):
        assert torch.equal(a, b)
    assert_one_process_update_matches(
        parts, worker.worker_config(str(tmp_path / "single"), 48, resume=False)
    )

    # Resumed under 2 processes, the run continues its counters from update 3.
    done = launch(
        built_model,
        "--output-dir",
        str(run),
        "--dump-dir",
        str(dump),
        "--resume",
        "--total-frames",
        "80",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = read_metrics(run)
    assert [r["update"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["charts/frames"] for r in rows][-2:] == [64, 80]
    state = json.loads((run / CHECKPOINTS / "update_000005" / STATE_FILE).read_text())
    assert state["update"] == 5 and state["frames"] == 80
    assert _hashes(dump, 0) == _hashes(dump, 1)
    assert [h["update"] for h in _hashes(dump, 0)] == [1, 2, 3, 4, 5]

    # Another number of processes may resume it (the global sizes are the config's): here one.
    config = worker.worker_config(str(run), 96, resume=True)
    state = PPOTrainer(config).train()
    assert (state.update, state.frames) == (6, 96)
    assert [r["update"] for r in read_metrics(run)] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
@pytest.mark.parametrize("shard", [False, True], ids=["ddp", "sharded"])
def test_an_exception_in_one_process_stops_the_run_and_names_the_rank(built_model, tmp_path, shard):
    # The run starts with a warm start, split over the processes, before rank 1 fails.
    run, dump = tmp_path / "run", tmp_path / "dump"
    done = launch(
        built_model,
        "--output-dir",
        str(run),
        "--dump-dir",
        str(dump),
        "--total-frames",
        "1600",
        "--demo-frames",
        "64",
        "--fail-at",
        "1",
        *(["--shard"] if shard else []),
        timeout=BOUND_S,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "rank 1 of 2 failed: RuntimeError: injected failure for the test" in output
    assert "rank      : 1 (local_rank: 1)" in output  # torchrun's summary of the failure

    # The warm start: one file from the main process, over both processes' expert steps; the
    # replicas were still identical after it and the first update.
    warm = json.loads((run / "warm_start.json").read_text())
    assert warm["demo_frames"] == 64 and warm["transitions"] > 0
    assert (run / CHECKPOINTS / "update_000000").is_dir()
    assert _hashes(dump, 0)[0] == _hashes(dump, 1)[0]


@pytest.mark.slow
def test_a_killed_process_stops_the_other_with_a_message_naming_it(built_model, tmp_path):
    dump = tmp_path / "dump"
    process = subprocess.Popen(
        _command(
            "--output-dir",
            str(tmp_path / "run"),
            "--dump-dir",
            str(dump),
            "--total-frames",
            "1600",
            "--fail-at",
            "1",
            "--fail-how",
            "sigkill",
        ),
        env=_env(built_model),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        victim = dump / "victim.pid"
        for _ in range(1200):  # rank 1 writes its pid after its first update
            if victim.exists() or process.poll() is not None:
                break
            try:
                process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
        assert victim.exists(), "rank 1 never reached its first update"
        os.kill(int(victim.read_text()), signal.SIGKILL)
        output, _ = process.communicate(timeout=BOUND_S)  # the survivor must not hang
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode != 0
    assert "rank      : 1 (local_rank: 1)" in output
    assert "Signal 9 (SIGKILL)" in output
    assert "worker done" not in output


@pytest.mark.slow
def test_evaluate_under_two_processes_equals_one_process(built_model, tmp_path):
    episodes = 24
    done = launch(
        built_model,
        "--output-dir",
        str(tmp_path / "run"),
        "--dump-dir",
        str(tmp_path),
        "--evaluate",
        str(episodes),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    two = json.loads((tmp_path / "evaluate.json").read_text())
    one = json.loads(json.dumps(worker.evaluate_all(episodes)))
    assert two == one
    assert two["rule"]["episodes"] == episodes
    assert 0 < two["rule"]["successes"] < episodes  # the comparison covers both outcomes


def test_one_process_without_a_launcher_is_trivial(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    processes = distributed.Distributed()
    assert not processes.enabled and processes.is_main and processes.world_size == 1
    assert processes.policy_device("cpu") == "cpu"
    assert processes.mean([1.0, 2.0]) == [1.0, 2.0]
    assert processes.gather_objects([3]) == [3]
    module = torch.nn.Linear(2, 2)
    assert processes.prepare(module) is module and processes.unwrap(module) is module


def test_global_sizes_must_divide_among_the_processes(tmp_path):
    config = tiny_config(tmp_path)  # 2 envs, minibatch 8
    distributed.check_sizes(config, 2)
    config.env.num_envs = 3
    config.ppo.minibatch_size = 5
    with pytest.raises(ValueError) as error:
        distributed.check_sizes(config, 2)
    assert "env.num_envs=3" in str(error.value) and "ppo.minibatch_size=5" in str(error.value)
    assert "multiple of 2" in str(error.value)
    config = worker.worker_config(str(tmp_path), 48, resume=False)
    assert distributed.describe_sizes(config, 2).startswith(
        "global batch 16 = 2 process(es) x 2 envs x 4 steps; minibatch 8 = 2 x 4"
    )
