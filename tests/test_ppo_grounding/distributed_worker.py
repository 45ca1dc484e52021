"""One process of a data-parallel test run, launched by test_distributed.py under torchrun.

    python -m torch.distributed.run --standalone --nproc_per_node 2 distributed_worker.py \\
        --output-dir RUN --dump-dir DUMP [--resume] [--total-frames N] [--fail-at U --fail-how H]

It trains the tiny test config with 4 envs (2 per process) through the real PPOTrainer and,
after every update, appends a hash of this process's trainable parameters to
DUMP/hashes_rank<R>.jsonl. Before its first update it also saves what a single-process update
would need to redo it: the rollout, the minibatches it took (as indices), and the parameters
after the update (DUMP/first_update_rank<R>.pt).

--demo-frames N starts with a warm start on N expert steps. --shard trains with --dist.shard
(--finetune, --dtype, --model: the policy's). At the end the main process saves the trained policy's
logits and values on SCORED_PROMPTS (DUMP/scores.pt). --fail-at U makes rank 1 fail after update U: "exception" raises, "sigkill" writes its pid to
DUMP/victim.pid and keeps training until the test kills it.

--evaluate N instead evaluates, with N episodes, the agents of `evaluation_agents` and writes
the results (as the main process gathered them) to DUMP/evaluate.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: tests.*

from ppo_grounding import buffer, trainer  # noqa: E402

from tests.test_ppo_grounding.helpers import tiny_config  # noqa: E402

NUM_ENVS = 4
NUM_STEPS = 4
MINIBATCH = 8
"""Global sizes: a rollout of 16 transitions, 2 minibatches of 8 per epoch (4 per process)."""
TARGET_KL = 1e-9


def worker_config(
    output_dir: str,
    total_frames: int,
    resume: bool,
    demo_frames: int = 0,
    shard: bool = False,
    finetune: str = "full",
    dtype: str = "float32",
    model: str | None = None,
):
    # anneal_lr and target_kl: the schedule and the early stop must agree across processes. The
    # update's first minibatch re-scores the rollout's own policy (KL ~ 0); after one step the
    # KL exceeds TARGET_KL, so every update stops after its second optimiser step.
    config = tiny_config(
        output_dir,
        total_frames=total_frames,
        num_steps=NUM_STEPS,
        minibatch_size=MINIBATCH,
        anneal_lr=True,
        target_kl=TARGET_KL,
    )
    config.env.num_envs = NUM_ENVS
    config.warm_start.demo_frames = demo_frames
    config.warm_start.epochs = 1
    config.run.resume = resume
    config.dist.shard = shard
    config.policy.finetune = finetune
    config.policy.dtype = dtype
    if model is not None:
        config.policy.model = model
    return config


def full(param: torch.Tensor) -> torch.Tensor:
    """The whole parameter: a sharded one (a DTensor) gathered from every process (collective)."""
    param = param.detach()
    return param.full_tensor() if hasattr(param, "full_tensor") else param


def param_hash(policy) -> str:
    digest = hashlib.sha256()
    for p in policy.trainable_parameters():
        digest.update(full(p).cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class RecordingTrainer(trainer.PPOTrainer):
    def __init__(self, config, dump_dir: Path, fail_at: int | None, fail_how: str):
        super().__init__(config)
        self.dump_dir, self.fail_at, self.fail_how = dump_dir, fail_at, fail_how

    def update(self, rollout):
        rank = self.dist.rank
        first = self.state.update == 0
        taken: list[list[int]] = []
        original = buffer.Batch.minibatches

        def recording(batch, size, generator):
            for idx in original(batch, size, generator):
                taken.append(idx.tolist())
                yield idx

        buffer.Batch.minibatches = recording
        try:
            metrics = super().update(rollout)
        finally:
            buffer.Batch.minibatches = original
        if first:
            torch.save(
                {
                    "rollout": {
                        name: getattr(rollout, name)
                        for name in (
                            "actions",
                            "logprobs",
                            "values",
                            "rewards",
                            "terminated",
                            "truncated",
                            "truncated_values",
                            "next_value",
                        )
                    },
                    "prompts": rollout.prompts,
                    "minibatches": taken,
                    "params": [full(p).clone() for p in self.policy.trainable_parameters()],
                    "local_elements": sum(
                        (p.to_local() if hasattr(p, "to_local") else p).numel()
                        for p in self.policy.trainable_parameters()
                    ),
                    "metrics": metrics,
                },
                self.dump_dir / f"first_update_rank{rank}.pt",
            )
        with (self.dump_dir / f"hashes_rank{rank}.jsonl").open("a") as f:
            update = self.state.update + 1
            f.write(json.dumps({"update": update, "hash": param_hash(self.policy)}) + "\n")
        if rank == 1 and self.fail_at is not None and self.state.update + 1 >= self.fail_at:
            if self.fail_how == "exception":
                raise RuntimeError("injected failure for the test")
            pid_file = self.dump_dir / "victim.pid"
            if not pid_file.exists():
                pid_file.write_text(str(os.getpid()))
            time.sleep(0.5)  # the test kills this process; until then, keep training
        return metrics


SCORED_PROMPTS = [
    "Goal of the agent: go to the red ball\nObservation 0: You see a wall 2 steps forward\nAction 0:",
    "Goal of the agent: go to the red ball\nObservation 0: You see a red ball 1 step left\nAction 0:",
]
"""What the trained policy scores at the end (DUMP/scores.pt)."""

EVAL_ENV = "BabyAI-Text-GoToLocal-v0"


def evaluation_agents():
    """Agents whose action depends on the prompt alone: the direction rule, and the untrained
    offline model taking its argmax."""
    from llm_policy import LLMPolicy, PolicyConfig
    from ppo_grounding.evaluate import PolicyAgent
    from ppo_grounding.rule_agents import DirectionRuleAgent

    policy = LLMPolicy(PolicyConfig(model="offline-gpt2", finetune="full"))
    return {"rule": DirectionRuleAgent(), "greedy": PolicyAgent(policy, greedy=True)}


def evaluate_all(episodes: int) -> dict:
    from ppo_grounding.evaluate import evaluate

    # The untrained model rarely ends an episode before the time limit: fewer of its episodes.
    counts = {"rule": episodes, "greedy": max(3, episodes // 4)}
    return {
        name: dataclasses.asdict(
            evaluate(agent, EVAL_ENV, episodes=counts[name], num_envs=3, num_observations=1)
        )
        for name, agent in evaluation_agents().items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--dump-dir", required=True)
    parser.add_argument("--total-frames", type=int, default=3 * NUM_ENVS * NUM_STEPS)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--fail-at", type=int, default=None)
    parser.add_argument("--fail-how", choices=("exception", "sigkill"), default="exception")
    parser.add_argument("--evaluate", type=int, default=None)
    parser.add_argument("--demo-frames", type=int, default=0, help="warm start first")
    parser.add_argument("--shard", action="store_true", help="--dist.shard")
    parser.add_argument("--finetune", default="full")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--model", default=None, help="the policy's model (default: tiny's)")
    args = parser.parse_args()
    dump_dir = Path(args.dump_dir)
    dump_dir.mkdir(parents=True, exist_ok=True)
    if args.evaluate is not None:
        from ppo_grounding import distributed

        results = evaluate_all(args.evaluate)
        if distributed.get().is_main:
            (dump_dir / "evaluate.json").write_text(json.dumps(results, indent=1))
        return
    config = worker_config(
        args.output_dir,
        args.total_frames,
        args.resume,
        args.demo_frames,
        shard=args.shard,
        finetune=args.finetune,
        dtype=args.dtype,
        model=args.model,
    )
    run = RecordingTrainer(config, dump_dir, args.fail_at, args.fail_how)
    if args.resume and args.shard:  # the optimiser state the processes restored, gathered
        from ppo_grounding import sharding

        restored = sharding.gather_full_state(run.policy, run.optimizer)
        if restored is not None:
            torch.save(restored[1], dump_dir / "restored_optimizer.pt")
    state = run.train()
    # the trained policy's outputs on fixed prompts (every process runs a sharded forward)
    run.policy.eval()
    with torch.no_grad():
        out = run.policy(SCORED_PROMPTS, [run.action_names] * len(SCORED_PROMPTS))
    if run.dist.is_main:
        torch.save(
            {"logits": out.logits, "values": out.values, "actions": run.action_names},
            dump_dir / "scores.pt",
        )
    if run.dist.is_main:
        print(f"worker done: update {state.update}, frames {state.frames}", flush=True)


if __name__ == "__main__":
    main()
