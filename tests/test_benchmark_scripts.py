"""Benchmark scripts run as scripts: their pipelines are checked here at test size (their figures
come from full runs, never from tests)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script, *args, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LLM_POLICY_CACHE": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_paper_scale_runs_the_real_command_and_compares_with_plan(tmp_path):
    out = tmp_path / "rows.json"
    done = run(
        "paper_scale.py",
        "--tiny",
        "--rows",
        "qwen2.5-0.5b:full:bfloat16",
        "--models-dir",
        str(tmp_path / "models"),
        "--out",
        str(out),
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (row,) = json.loads(out.read_text())
    assert row["row"] == "qwen2.5-0.5b:full:bfloat16"
    assert row["s_per_frame"] > 0 and row["prompt_tokens"] > 50
    # the peaks come from /proc: resident memory of a real process, loading then training
    assert 0.1 < row["peak_load_gib"] and 0.1 < row["peak_train_gib"] <= row["peak_save_gib"]
    assert row["plan_gib"] > 0 and "plan vs measured training peak" in done.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="this checks the machine without CUDA")
def test_gpu_smoke_says_there_is_no_cuda_and_exits_0(tmp_path):
    done = run("gpu_smoke.py", tmp_path=tmp_path)
    assert done.returncode == 0
    assert "no CUDA device here" in done.stdout and "nothing run" in done.stdout


@pytest.mark.slow
def test_ppo_throughput_runs_both_pipelines(tmp_path):
    done = run(
        "ppo_throughput.py",
        *("--num-envs", "2", "--num-steps", "2", "--minibatch-size", "4"),
        *("--warmup-updates", "0", "--updates", "1", "--threads", "1"),
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "paper-era" in done.stdout and "speed-up ours / paper-era:" in done.stdout


@pytest.mark.slow
def test_distributed_throughput_runs_one_process_ddp_and_sharded(tmp_path):
    done = run(
        "distributed_throughput.py",
        *("--num-envs", "4", "--num-steps", "2", "--minibatch-size", "4"),
        *("--warmup-updates", "1", "--updates", "1", "--no-ceiling"),
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "frames/s (DDP)" in done.stdout and "frames/s (sharded)" in done.stdout
    # the sharded processes hold about half of what a replica holds
    share = float(done.stdout.split("MiB per process = ")[1].split(" of DDP's")[0])
    assert 0.45 < share < 0.55, done.stdout
