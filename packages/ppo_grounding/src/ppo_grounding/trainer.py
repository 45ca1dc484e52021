"""PPOTrainer: rollout -> advantages -> PPO loss -> optimiser step -> log -> checkpoint.

The loop reads like CleanRL's ppo.py, top to bottom: `__init__` (the run directory's lock, the
policy to train, optimiser, the checkpoint's state on a resume, envs, logger), `collect_rollout`, `update` (GAE, the rollout flattened into a `Batch`, then the PPO epochs over
shuffled minibatches of `update.ppo_update`, given a `forward` that re-scores a minibatch's
prompts) and `train` (learning rate schedule, logging, checkpoints). The symbolic baseline
(baselines/symbolic.py) runs the same `ppo_update` with its own network. The policy is an
LLMPolicy: it scores every action phrase given the prompt (reusing the prompt's encoder states or
key/value cache across the candidates, in rollouts and in updates alike); a softmax over the
scores is the policy, a value head the critic.

Where the loop differs from CleanRL's ppo.py:

- Observations are prompts, not tensors: each env keeps its own history (goal, last observations,
  actions between them; history.py), cleared on the step that ends its episode (SAME_STEP
  autoreset), so no prompt mixes two episodes. The rollout stores the prompts and the update
  re-scores them. The policy is in eval mode for rollouts and in train mode for updates.
- Rewards are multiplied by ppo.reward_scale before GAE and the value loss; logged returns and
  success (return > 0) are unscaled.
- End flags belong to the step that ended the episode (terminated[t], truncated[t]), where CleanRL
  stores the done flag of the next observation and reads dones[t + 1]. A timeout counts as
  terminal, as in CleanRL and the paper, unless ppo.bootstrap_truncated: then GAE continues from
  the value of the episode's final observation (info["final_obs"]), computed during the rollout.
- The target-KL check runs after every minibatch and stops the update there (update.py); CleanRL
  checks once per epoch, after all of its minibatches. losses/minibatch_steps counts the
  optimiser steps actually taken.
- Minibatches are given by their size (ppo.minibatch_size), not their number.
- losses/policy_loss, value_loss and entropy are means over the update's minibatches (CleanRL logs
  the last minibatch's); clipfrac is a mean and approx_kl the last minibatch's in both. We also
  log grad_norm (before clipping). charts/SPS is this update's frames per second (CleanRL's is the
  average since the start).
- Episode statistics come from gymnasium's vector RecordEpisodeStatistics (which follows SAME_STEP
  autoreset); charts/success_rate is over its last SUCCESS_WINDOW episodes, reported once
  SUCCESS_MIN_EPISODES have finished.
- Extras CleanRL lacks: a behaviour-cloning warm start (imitation.py), checkpoints and resume
  (checkpoint.py, run_directory.py), a time budget (run.max_minutes, loop.py), and data-parallel
  training over processes (distributed.py): under a launcher every process steps its share of the envs and takes its
  share of each minibatch, DDP averages the gradients, and advantages are normalised over the
  union of the processes' minibatches; with dist.shard the policy is sharded across them
  instead of replicated (sharding.py). One process without a launcher is the plain loop.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import random
import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import cast

import numpy as np
import torch
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from llm_policy import LLMPolicy
from llm_policy.precision import needs_grad_scaler

from . import distributed, imitation, sharding
from .buffer import Batch, Rollout
from .checkpoint import TrainerState, checkpoint_dir, load_training_state, save_checkpoint
from .config import TrainConfig
from .envs import make_envs
from .finite import guard
from .gae import compute_gae
from .history import EpisodeHistory, sentences_of
from .loop import Budget, make_optimizer, set_learning_rate
from .metrics import SUCCESS_MIN_EPISODES, SUCCESS_WINDOW, running_success_rate
from .reporter import ProgressReporter
from .run_directory import RunDirectory
from .sources import load_init_policy
from .update import ppo_update

__all__ = [
    "SAVE_ON_STOP_AFTER_S",
    "STOP_SIGNALS",
    "SUCCESS_MIN_EPISODES",
    "SUCCESS_WINDOW",
    "PPOTrainer",
    "TrainingInterrupted",
    "seed_everything",
]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Signals that stop `PPOTrainer.train` cleanly (Ctrl-C, `kill`, a scheduler's pre-emption)."""
SAVE_ON_STOP_AFTER_S = 300.0
"""A stop signal saves a checkpoint first when the last one is at least this old (seconds): up to
5 minutes of work may be redone, in exchange for not paying a save on every Ctrl-C."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal (`signum`): between two updates, or at once on a second
    signal (`at_once`). A KeyboardInterrupt, so code that handles Ctrl-C handles it too."""

    def __init__(self, signum: int, *, at_once: bool = False) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.at_once = at_once


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class PPOTrainer:
    """Trains `policy` (when not given: the weights of config.run.init_from, else a fresh policy
    built from config.policy) with PPO in config.env."""

    def __init__(self, config: TrainConfig, policy: LLMPolicy | None = None) -> None:
        config.validate_if_changed()  # the command line has checked it, unless changed since
        self.config = config
        self.dist = distributed.get()
        """Rank, world size and collectives (trivial for one process; distributed.py)."""
        distributed.check_sizes(config, self.dist.world_size)
        self.num_envs = config.env.num_envs // self.dist.world_size
        """This process's envs (all of env.num_envs for one process)."""
        self.output_dir = Path(config.run.output_dir)
        if config.run.torch_threads:
            torch.set_num_threads(config.run.torch_threads)
        seed_everything(config.run.seed + self.dist.rank)  # each process samples its own actions

        self.run_dir = RunDirectory(config, main=self.dist.is_main)
        """The run's lock (held until `close()`: a second job in the directory is refused),
        config.json and metrics logger; under a launcher only the main process holds them."""
        self.sharded = self.dist.enabled and config.dist.shard
        """The policy is sharded across the processes (sharding.py), not replicated."""
        resume_from, self.policy = self._policy_to_train(policy)
        """The plain policy: rollouts, values and checkpoints (sharded in place with dist.shard)."""
        self.model = self.dist.prepare(self.policy, shard=self.sharded)
        """What the update runs forward and backward: DDP over `policy` under a launcher
        (gradients averaged across processes), `policy` itself for one process or sharded."""
        self.optimizer = make_optimizer(self.policy.trainable_parameters(), config.ppo)
        self.scaler = (
            torch.amp.GradScaler(self.policy.device.type)
            if needs_grad_scaler(self.policy.config.dtype)
            else None
        )
        """fp16 mixed precision's loss scaler (update.py); None for fp32 and bf16. Not saved in
        checkpoints: a resumed run starts from the default scale, which adapts in a few steps."""
        self.shuffle = torch.Generator().manual_seed(config.run.seed + self.dist.rank)
        """Orders the minibatches (and the warm start's); one stream per process."""
        self.state = TrainerState()
        """Counters saved in checkpoints: update, frames, episodes, time, the success window."""
        if resume_from is not None:
            self._restore(resume_from)
        self._start_envs()
        self.logger = self.run_dir.start_logging(
            keep_until_update=self.state.update if resume_from is not None else None
        )
        self.reporter = ProgressReporter(config, main_process=self.dist.is_main)

    def _policy_to_train(self, given: LLMPolicy | None) -> tuple[Path | None, LLMPolicy]:
        """(the checkpoint this run resumes from or None, the policy to train): the checkpoint's
        policy on a resume; else `given`, or the weights of run.init_from, or a fresh policy
        built from config.policy. The main process goes first (it tidies the run directory and
        builds or fetches the model into the shared cache), then the others."""
        config, dist = self.config, self.dist
        # a sharded policy is built in host memory, then each process moves its shard to its
        # device (sharding.py)
        device = "cpu" if self.sharded else dist.policy_device(config.policy.device)
        with dist.main_first():
            resume_from = self.run_dir.resume_point()
            if resume_from is not None:
                overrides = {"device": device} if dist.enabled else {}
                return resume_from, LLMPolicy.from_pretrained(resume_from / "policy", **overrides)
            if given is not None:
                return None, given
            fresh = dataclasses.replace(config.policy, device=device)
            return None, load_init_policy(config) or LLMPolicy(fresh)

    def _restore(self, checkpoint: Path) -> None:
        """The optimiser, RNG streams and counters of `checkpoint`."""
        load_optimizer = None
        if self.sharded:  # each process takes its shard of the saved (full) state
            load_optimizer = functools.partial(
                sharding.load_optimizer_state, self.policy, self.optimizer
            )
        self.state = load_training_state(
            checkpoint, self.optimizer, self.shuffle, load_optimizer=load_optimizer
        )
        if self.dist.enabled:
            # The checkpoint holds the main process's RNG streams: give each process its own
            # again (any number of processes may resume, the global sizes being the same).
            seed = distributed.resume_seed(self.config.run.seed, self.state.update, self.dist.rank)
            seed_everything(seed)
            self.shuffle.manual_seed(seed)

    def _start_envs(self) -> None:
        """This process's envs, reset, with the episode statistics and prompt histories."""
        config = self.config
        envs = make_envs(config, self.num_envs)
        self.action_names: list[str] = list(envs.get_attr("action_names")[0])
        self.envs = RecordEpisodeStatistics(envs, buffer_length=SUCCESS_WINDOW)
        self.recent_returns: deque[float] = deque(maxlen=SUCCESS_WINDOW)
        """The last SUCCESS_WINDOW returns of every process (multi-process runs; one process
        reads the envs' own queue)."""
        self.history = EpisodeHistory(
            self.num_envs, config.env.num_observations, config.env.language
        )
        # A resumed run cannot restore the envs' internal state: they restart from a seed
        # derived from the checkpoint, so it continues the run, not bit for bit. Process r's
        # envs take the seeds after those of processes 0 .. r-1.
        obs, _ = self.envs.reset(
            seed=config.run.seed
            + config.env.num_envs * self.state.update
            + self.dist.rank * self.num_envs
        )
        self.history.start_all(obs)
        # the success window; gymnasium annotates the queue as float64, a float reads the same
        self.envs.return_queue.extend(self.state.recent_returns)  # type: ignore[arg-type]
        self.recent_returns.extend(self.state.recent_returns)

    # ----------------------------------------------------------------------------------- rollout
    @torch.no_grad()
    def collect_rollout(self) -> tuple[Rollout, dict[str, float]]:
        """Act num_steps times in every env with actions sampled from the policy; returns the
        rollout and its charts/* statistics (episodes finished in it, their mean return and
        length, the action frequencies)."""
        cfg = self.config
        n = self.num_envs
        rollout = Rollout(cfg.ppo.num_steps, n)
        candidates = [self.action_names] * n
        finished_returns: list[float] = []
        finished_lengths: list[int] = []
        self.policy.eval()
        # the weights are fixed for the whole rollout: a prompt seen before is not scored again
        # (sharded, every process runs the model when any must: a forward is collective)
        remember = (
            self.policy.remember_outputs(lockstep=self.dist.any)
            if self.sharded
            else self.policy.remember_outputs()
        )
        with remember:
            for t in range(cfg.ppo.num_steps):
                prompts = self.history.prompts(self.action_names)
                out = self.policy(prompts, candidates)
                dist = out.distribution()
                action = dist.sample()  # (N,)
                rollout.prompts[t] = prompts
                rollout.actions[t] = action
                rollout.logprobs[t] = dist.log_prob(action)
                rollout.values[t] = out.values.float()

                obs, reward, terminated, truncated, info = self.envs.step(action.numpy())
                rollout.rewards[t] = (
                    torch.as_tensor(reward, dtype=torch.float32) * cfg.ppo.reward_scale
                )
                rollout.terminated[t] = torch.as_tensor(terminated)
                rollout.truncated[t] = torch.as_tensor(truncated)
                if "_episode" in info:  # RecordEpisodeStatistics: the unscaled return of each end
                    ended = info["_episode"]
                    finished_returns += info["episode"]["r"][ended].tolist()
                    finished_lengths += info["episode"]["l"][ended].tolist()

                taken = [self.action_names[int(a)] for a in action]
                if cfg.ppo.bootstrap_truncated:
                    # Value the final observation of each timed-out episode before its history is
                    # cleared: GAE continues from it instead of from 0.
                    timed_out = np.flatnonzero(truncated & ~terminated).tolist()
                    final_prompts = [
                        self.history.final_prompt(
                            i,
                            taken[i],
                            sentences_of(info["final_obs"][i]["text"]),
                            self.action_names,
                        )
                        for i in timed_out
                    ]
                    # A sharded forward takes every process: all run it if any must, those
                    # without a timeout on a stand-in prompt whose value they drop.
                    needs_values = bool(final_prompts)
                    if self.sharded:
                        needs_values = self.dist.any(needs_values)
                    if needs_values:
                        values = self.policy.value(final_prompts or prompts[:1]).float()
                        if final_prompts:
                            rollout.truncated_values[t, timed_out] = values
                self.history.advance(obs, taken, terminated | truncated)

        rollout.next_value = self.policy.value(self.history.prompts(self.action_names)).float()
        counts = torch.bincount(rollout.actions.reshape(-1), minlength=len(self.action_names))
        actions_taken = rollout.actions.numel()
        if self.dist.enabled:  # the statistics of every process's rollout
            finished = self.dist.gather_objects(
                list(zip(finished_returns, finished_lengths, strict=True))
            )
            finished_returns = [r for r, _ in finished]
            finished_lengths = [n for _, n in finished]
            self.recent_returns.extend(finished_returns)
            counts = torch.tensor(self.dist.sum(counts.tolist())).round().long()
            actions_taken *= self.dist.world_size
        stats: dict[str, float] = {"charts/episodes_finished": len(finished_returns)}
        if finished_returns:
            stats["charts/episodic_return"] = float(np.mean(finished_returns))
            stats["charts/episodic_length"] = float(np.mean(finished_lengths))
        for name, count in zip(self.action_names, counts.tolist(), strict=True):
            stats[f"charts/action_frac/{name}"] = count / actions_taken
        return rollout, stats

    # ------------------------------------------------------------------------------------ update
    def update(self, rollout: Rollout) -> dict[str, float]:
        """GAE, then PPO epochs over the rollout (update.ppo_update); returns the losses/*
        metrics of this update."""
        p = self.config.ppo
        advantages, returns = compute_gae(
            rollout.rewards,
            rollout.values,
            rollout.next_value,
            rollout.terminated,
            rollout.truncated,
            p.gamma,
            p.gae_lambda,
            rollout.truncated_values if p.bootstrap_truncated else None,
        )
        batch = Batch.from_rollout(rollout, advantages, returns)

        def forward(idx: torch.Tensor) -> tuple[torch.distributions.Distribution, torch.Tensor]:
            prompts = [batch.prompts[i] for i in idx.tolist()]
            out = self.model(prompts, [self.action_names] * len(prompts))  # DDP under a launcher
            return out.distribution(), out.values.float()

        self.policy.train()
        return ppo_update(
            batch,
            forward,
            self.optimizer,
            self.policy.trainable_parameters(),
            p,
            self.shuffle,
            update=self.state.update + 1,
            processes=self.dist,
            scaler=self.scaler,
        )

    # -------------------------------------------------------------------------------------- loop
    _stop_signal: int | None = None
    """The first stop signal received during `train` (None: none); acted on between updates."""
    _saving: bool = False
    """A checkpoint is being written: a second signal waits for it instead of cutting it."""
    _held_gib: float | None = None
    """memory/weights_and_adam_gib, measured after the first update of `train`."""
    _last_save_at: float = 0.0
    """time.monotonic() of the last checkpoint (or of the start of `train`)."""

    def train(self) -> TrainerState:
        """Warm start if asked (and not done yet), then run updates until total_frames (or
        run.max_minutes); checkpoint every run.checkpoint_every updates and at the end.

        SIGINT or SIGTERM stops it after the current update with TrainingInterrupted, saving
        first when the last checkpoint is SAVE_ON_STOP_AFTER_S old; a second signal stops it at
        once, without saving."""
        cfg = self.config
        self._stop_signal = None
        self._last_save_at = time.monotonic()  # the checkpoint resumed from, or none, is as old
        previous_handlers = self._install_stop_handlers()
        try:
            sizes = distributed.describe_sizes(cfg, self.dist.world_size)
            if self.dist.enabled and self.dist.is_main:
                print(sizes, flush=True)  # a launch always says how it shares the batch
                warning = sharding.checkpoint_memory_warning(self.policy) if self.sharded else None
                if warning:
                    print(warning, file=sys.stderr, flush=True)
            else:
                self.reporter.message(sizes)
            if cfg.warm_start.demo_frames and self.state.update == 0 and not self.state.demo_frames:
                self.warm_start()
            self.reporter.start(self.state.frames)
            budget = Budget.of(cfg)
            while budget.allows_more(self.state.frames, self.state.elapsed_s):
                self._stop_if_signalled()  # between two updates (or after the warm start)
                start = time.perf_counter()
                lr = cfg.learning_rate_at(self.state.update)
                set_learning_rate(self.optimizer, lr)
                with guard(self.state.update + 1):  # NaN logits: our error, not torch's
                    rollout, metrics = self.collect_rollout()
                    metrics.update(self.update(rollout))
                elapsed = time.perf_counter() - start
                if self.dist.enabled:  # the slowest process's time: all agree on the budget
                    elapsed = self.dist.max([elapsed])[0]

                self.state.update += 1
                self.state.frames += cfg.batch_size
                # collect_rollout's count of episodes, an int among the float metrics
                self.state.episodes += cast(int, metrics.pop("charts/episodes_finished"))
                self.state.elapsed_s += elapsed
                metrics.update(
                    {
                        "charts/frames": self.state.frames,
                        "charts/episodes": self.state.episodes,
                        "charts/success_rate": self.success_rate(),
                        "charts/SPS": cfg.batch_size / elapsed,
                        "charts/learning_rate": lr,
                        "time/elapsed_s": self.state.elapsed_s,
                    }
                )
                if self._held_gib is None:  # sizes are fixed once the optimiser has stepped
                    held = sharding.held_bytes(self.policy, self.optimizer) / 2**30
                    self._held_gib = self.dist.max([held])[0]
                metrics["memory/weights_and_adam_gib"] = self._held_gib
                if self.policy.device.type == "cuda":  # the fullest device of the run
                    peak = torch.cuda.max_memory_allocated(self.policy.device) / 2**30
                    metrics["memory/device_peak_gib"] = self.dist.max([peak])[0]
                if self.logger is not None:
                    self.logger.log(self.state.update, metrics)
                self.reporter.update(cfg.batch_size, metrics)
                every = cfg.run.checkpoint_every
                if every and self.state.update % every == 0:
                    self.save()
            self.save()
        except BaseException as error:
            if not isinstance(error, KeyboardInterrupt):  # a stop is not a failure
                self.dist.report_failure(error)
            raise
        finally:
            _restore_handlers(previous_handlers)
            self.close()
        return self.state

    def _install_stop_handlers(self) -> dict:
        """Route SIGINT and SIGTERM to `_on_stop_signal` for the loop; returns the handlers they
        replace. Signals can only be handled in the main thread: elsewhere nothing changes."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {signum: signal.signal(signum, self._on_stop_signal) for signum in STOP_SIGNALS}

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        """First signal: only set the flag (an update cut in the middle has nothing worth
        saving, and a save must see a finished update); `_stop_if_signalled` acts on it. A second
        one stops at once, except during a checkpoint save, which it lets finish (the flag stops
        the run right after)."""
        if self._stop_signal is None:
            self._stop_signal = signum
            if self.dist.is_main:
                # os.write, not print: a handler may run in the middle of another print
                note = (
                    f"ppo-grounding: {signal.Signals(signum).name}: stopping after this update "
                    "(send it again to stop at once)\n"
                )
                os.write(2, (("\n" if self.reporter.bar is not None else "") + note).encode())
            return
        if not self._saving:
            raise TrainingInterrupted(signum, at_once=True)

    def _stop_if_signalled(self) -> None:
        """Between two updates: stop if a process got a stop signal, all processes together
        (each checks the others' flags, so none waits in a collective for one that left);
        checkpoint first if the last save is SAVE_ON_STOP_AFTER_S old."""
        signum = self._stop_signal or 0
        if self.dist.enabled:
            signum = int(self.dist.max([float(signum)])[0])
        if not signum:
            return
        if time.monotonic() - self._last_save_at >= SAVE_ON_STOP_AFTER_S:
            self.save()
        raise TrainingInterrupted(signum)

    def close(self) -> None:
        """Release what the trainer holds: progress bar, envs, logger and the run lock. `train`
        calls it when it ends; a trainer driven step by step (collect_rollout, update) is closed
        by its caller, or used as a context manager."""
        self.reporter.close()
        self.envs.close()
        self.run_dir.close()

    def __enter__(self) -> PPOTrainer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def success_rate(self) -> float:
        """Success over the last SUCCESS_WINDOW episodes of every process (metrics.py)."""
        # One process: RecordEpisodeStatistics keeps the last SUCCESS_WINDOW.
        return running_success_rate(
            self.recent_returns if self.dist.enabled else self.envs.return_queue
        )

    def warm_start(self) -> list[dict[str, float]]:
        """Behaviour cloning of the expert before the first PPO update (imitation.warm_start),
        then a checkpoint of update 0; returns the per-epoch stats.

        Its time counts in time/elapsed_s (and so in run.max_minutes).
        """
        done = imitation.warm_start(
            self.model,
            self.config,
            self.action_names,
            self.shuffle,
            output_dir=self.output_dir,
            elapsed_s=self.state.elapsed_s,
            report=self.reporter.message,
            processes=self.dist,
            scaler=self.scaler,
        )
        self.state.demo_frames = done.demo_frames
        self.state.elapsed_s += done.seconds
        self.save()
        return done.epochs

    def save(self) -> Path:
        """Checkpoint the current update (checkpoint.py); returns its directory.

        With several processes the main one writes the run's one checkpoint (the replicas are
        identical) between two barriers: every process has finished the update before it is
        written, and none goes on (or exits) before it is complete."""
        self.dist.barrier()
        path = checkpoint_dir(self.output_dir, self.state.update)
        # a sharded policy's full weights and optimiser state, gathered on the main process
        full = sharding.gather_full_state(self.policy, self.optimizer) if self.sharded else None
        if self.dist.is_main:
            returns = self.recent_returns if self.dist.enabled else self.envs.return_queue
            self.state.recent_returns = [float(r) for r in returns]
            self._saving = True  # a second stop signal lets the save finish
            try:
                path = save_checkpoint(
                    self.output_dir,
                    policy=self.policy,
                    optimizer=self.optimizer,
                    shuffle_generator=self.shuffle,
                    state=self.state,
                    config_json=self.config.to_json(),
                    full_state=full,
                )
            finally:
                self._saving = False
        self.dist.barrier()
        self._last_save_at = time.monotonic()
        return path


def _restore_handlers(handlers: dict) -> None:
    """Put back the signal handlers `_install_stop_handlers` replaced."""
    for signum, handler in handlers.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
