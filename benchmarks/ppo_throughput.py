"""PPO throughput: frames/s of the whole loop (rollout + update), our pipeline vs a paper-era one.

    python benchmarks/ppo_throughput.py
    python benchmarks/ppo_throughput.py --model offline-t5 --env-id BabyAI-Text-GoToLocal-v0

Both pipelines train the same model (same weights at the start) in the same envs with the same PPO
settings; only the way the policy is computed differs:
- ours: LLMPolicy as the trainer uses it: all prompts of a step (or minibatch) in one batch, the
  prompt encoded once (encoder-decoder) or its key/value cache reused (decoder-only) for every
  candidate, and only the needed logits computed.
- paper-era (the released GLAM code's data path): each prompt encoded alone, its candidates decoded
  in batches of 3 as full (prompt + action) sequences with full-vocabulary logits, the value
  computed by a separate forward, full fp32 fine-tuning.
Each pipeline runs warm-up updates, then timed updates; the ratio is printed. Run it alone.
"""

import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass

import torch
import tyro
from llm_policy import LLMPolicy, PolicyConfig, PolicyOutput
from llm_policy.reference import padded_batch_scores
from ppo_grounding import EnvConfig, PPOConfig, PPOTrainer, RunConfig, TrainConfig
from torch import nn


class PaperEraPolicy(nn.Module):
    """The same LLMPolicy's weights, computed the paper-era way (see the module docstring)."""

    def __init__(self, policy: LLMPolicy, candidates_per_batch: int = 3):
        super().__init__()
        self.policy = policy
        self.candidates_per_batch = candidates_per_batch

    @property
    def config(self) -> PolicyConfig:
        return self.policy.config

    @property
    def device(self) -> torch.device:
        return self.policy.device

    def trainable_parameters(self):
        return self.policy.trainable_parameters()

    def remember_outputs(self):
        """The paper-era pipeline scored every prompt of a rollout anew: nothing remembered."""
        return contextlib.nullcontext()

    def save_pretrained(self, path):
        return self.policy.save_pretrained(path)

    def value(self, prompts: list[str]) -> torch.Tensor:
        return torch.cat([self.policy.value([prompt]) for prompt in prompts])

    def forward(self, prompts: list[str], candidates: list[list[str]]) -> PolicyOutput:
        scorer = self.policy.scorer
        normalization = self.policy.config.normalization
        rows = []
        for prompt, actions in zip(prompts, candidates, strict=False):
            chunks = [
                padded_batch_scores(
                    scorer, [prompt], [actions[i : i + self.candidates_per_batch]], normalization
                )
                for i in range(0, len(actions), self.candidates_per_batch)
            ]
            rows.append(torch.cat(chunks, dim=1))  # (1, A)
        return PolicyOutput(logits=torch.cat(rows), values=self.value(prompts))


@dataclass
class Args:
    model: str = "offline-t5"
    """Model both pipelines train (the paper used an encoder-decoder, Flan-T5)."""
    env_id: str = "BabyAI-Text-GoToLocal-v0"
    """Environment."""
    num_envs: int = 16
    """Envs per rollout."""
    num_steps: int = 8
    """Steps per env per rollout."""
    minibatch_size: int = 64
    """PPO minibatch (the paper's 64)."""
    num_observations: int = 3
    """Observations in the prompt (the paper's 3)."""
    warmup_updates: int = 1
    """Untimed updates first."""
    updates: int = 2
    """Timed updates per pipeline."""
    threads: int = 2
    """torch threads."""


def frames_per_second(args: Args, make_policy) -> tuple[float, float, float]:
    """(frames/s, rollout share, update share) over `updates` timed updates."""
    out = tempfile.mkdtemp(prefix="ppo_throughput_")
    try:
        config = TrainConfig(
            env=EnvConfig(
                env_id=args.env_id, num_envs=args.num_envs, num_observations=args.num_observations
            ),
            policy=PolicyConfig(model=args.model, finetune="full", normalization="token"),
            ppo=PPOConfig(
                num_steps=args.num_steps,
                minibatch_size=args.minibatch_size,
                learning_rate=1e-4,
                total_frames=10**9,
            ),
            run=RunConfig(
                output_dir=out, progress=False, tensorboard=False, checkpoint_every=0, seed=7
            ),
        )
        trainer = PPOTrainer(config, policy=make_policy(config.policy))
        rollout_s = update_s = 0.0
        for i in range(args.warmup_updates + args.updates):
            start = time.perf_counter()
            rollout, _ = trainer.collect_rollout()
            middle = time.perf_counter()
            trainer.update(rollout)
            end = time.perf_counter()
            if i >= args.warmup_updates:
                rollout_s += middle - start
                update_s += end - middle
        trainer.envs.close()
        total = rollout_s + update_s
        return args.updates * config.batch_size / total, rollout_s / total, update_s / total
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    print(
        f"{args.model} on {args.env_id}: {args.num_envs} envs x {args.num_steps} steps, "
        f"minibatch {args.minibatch_size}, {args.num_observations} observations per prompt, "
        f"{args.threads} threads"
    )
    results = {
        "paper-era": frames_per_second(args, lambda cfg: PaperEraPolicy(LLMPolicy(cfg))),
        "ours": frames_per_second(args, lambda cfg: LLMPolicy(cfg)),
    }
    for name, (fps, rollout_share, update_share) in results.items():
        print(
            f"  {name:<10} {fps:7.1f} frames/s  (rollout {rollout_share:.0%}, update {update_share:.0%})"
        )
    print(
        f"speed-up ours / paper-era: {results['ours'][0] / results['paper-era'][0]:.1f}x  (goal >= 4x)"
    )


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
