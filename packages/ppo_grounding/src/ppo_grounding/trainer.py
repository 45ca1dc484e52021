"""PPOTrainer: rollout -> advantages -> PPO loss -> optimiser step -> checkpoint.

The update reads like CleanRL's ppo.py. The policy is an LLMPolicy: it scores every action phrase
given the prompt (reusing the prompt's encoder states or key/value cache across the candidates, in
rollouts and in updates alike), a softmax over the scores is the policy, a value head the critic.
"""

from __future__ import annotations

import json
import random
import time
from collections import deque
from pathlib import Path

import babyai_text  # noqa: F401  (registers the BabyAI-Text-* IDs)
import gymnasium as gym
import numpy as np
import torch
from llm_policy import LLMPolicy

from .buffer import Batch, Rollout
from .checkpoint import TrainerState, latest_checkpoint, load_training_state, save_checkpoint
from .config import TrainConfig
from .gae import compute_gae
from .history import EpisodeHistory, sentences_of
from .imitation import clone_epoch, collect_demonstrations
from .losses import explained_variance, ppo_loss
from .metrics import METRICS_FILE, MetricsLogger

SUCCESS_WINDOW = 100
"""charts/success_rate is measured over this many most recent episodes..."""
SUCCESS_MIN_EPISODES = 20
"""...once at least this many have finished (before, the few short episodes that end early are
mostly successes, and the rate would read high)."""
DEMO_SEED_OFFSET = 500_000
"""The warm start's demonstrations are played on seeds run.seed + 500,000 + k: apart from the
training envs' (run.seed + small numbers) and the evaluation's (1,000,000 + k)."""
WARM_START_FILE = "warm_start.json"

# Fields that may differ between a run and its resumption; anything else must match.
RESUMABLE_CHANGES = {
    "ppo.total_frames",
    "run.resume",
    "run.progress",
    "run.tensorboard",
    "run.torch_threads",
    "run.checkpoint_every",
    "run.max_minutes",
}


def make_envs(config: TrainConfig) -> gym.vector.VectorEnv:
    """The vector env of a run. Autoreset is SAME_STEP: the step that ends an episode returns the
    first observation of the next one (the final one is in info["final_obs"]), so the prompt
    history can be cleared right there."""
    return gym.make_vec(
        config.env.env_id,
        num_envs=config.env.num_envs,
        vectorization_mode=config.env.vectorization,
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
        language=config.env.language,
    )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class PPOTrainer:
    """Trains `policy` (built from config.policy when not given) with PPO in config.env."""

    def __init__(self, config: TrainConfig, policy: LLMPolicy | None = None):
        config.validate()
        self.config = config
        self.output_dir = Path(config.run.output_dir)
        if config.run.torch_threads:
            torch.set_num_threads(config.run.torch_threads)
        seed_everything(config.run.seed)

        resume_from = None
        earlier_run = [self.output_dir / n for n in ("checkpoints", METRICS_FILE)]
        if not config.run.resume and any(path.exists() for path in earlier_run):
            raise FileExistsError(
                f"{self.output_dir} already holds a run: pass --run.resume to continue it, or "
                "choose another --run.output-dir (nothing was overwritten)."
            )
        if config.run.resume:
            resume_from = latest_checkpoint(self.output_dir)
            _check_resumable(json.loads((resume_from / "config.json").read_text()), config)
            policy = LLMPolicy.from_pretrained(resume_from / "policy")
        elif policy is None:
            policy = LLMPolicy(config.policy)
        self.policy = policy

        self.optimizer = self._make_optimizer()
        self.shuffle = torch.Generator().manual_seed(config.run.seed)
        self.state = TrainerState()
        if resume_from is not None:
            self.state = load_training_state(resume_from, self.optimizer, self.shuffle)

        self.envs = make_envs(config)
        self.action_names = list(self.envs.get_attr("action_names")[0])
        self.history = EpisodeHistory(
            config.env.num_envs, config.env.num_observations, config.env.language
        )
        # A resumed run cannot restore the envs' internal state: they restart from a seed
        # derived from the checkpoint, so it continues the run, not bit for bit.
        obs, _ = self.envs.reset(seed=config.run.seed + config.env.num_envs * self.state.update)
        self.history.start_all(obs)
        self.episode_returns = np.zeros(config.env.num_envs)
        self.episode_lengths = np.zeros(config.env.num_envs, dtype=int)
        self.recent_successes: deque[bool] = deque(maxlen=SUCCESS_WINDOW)

        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "config.json").write_text(config.to_json())
        self.logger = MetricsLogger(
            self.output_dir,
            tensorboard=config.run.tensorboard,
            keep_until_update=self.state.update if resume_from is not None else None,
        )

    def _make_optimizer(self) -> torch.optim.Optimizer:
        p = self.config.ppo
        params = self.policy.trainable_parameters()
        if p.optimizer == "adamw":
            return torch.optim.AdamW(
                params, lr=p.learning_rate, eps=p.adam_eps, weight_decay=p.weight_decay
            )
        return torch.optim.Adam(params, lr=p.learning_rate, eps=p.adam_eps)

    # ----------------------------------------------------------------------------------- rollout
    @torch.no_grad()
    def collect_rollout(self) -> tuple[Rollout, dict[str, float]]:
        """Act num_steps times in every env with actions sampled from the policy."""
        cfg = self.config
        n = cfg.env.num_envs
        rollout = Rollout(cfg.ppo.num_steps, n)
        candidates = [self.action_names] * n
        finished_returns, finished_lengths = [], []
        self.policy.eval()
        for t in range(cfg.ppo.num_steps):
            prompts = self.history.prompts(self.action_names)
            out = self.policy(prompts, candidates)
            dist = out.distribution()
            action = dist.sample()
            rollout.prompts[t] = prompts
            rollout.actions[t] = action
            rollout.logprobs[t] = dist.log_prob(action)
            rollout.values[t] = out.values.float()

            obs, reward, terminated, truncated, info = self.envs.step(action.numpy())
            rollout.rewards[t] = torch.as_tensor(reward, dtype=torch.float32) * cfg.ppo.reward_scale
            rollout.terminated[t] = torch.as_tensor(terminated)
            rollout.truncated[t] = torch.as_tensor(truncated)
            self.episode_returns += reward
            self.episode_lengths += 1

            final_prompts = {}
            taken = [self.action_names[int(a)] for a in action]
            for i in range(n):
                if terminated[i] or truncated[i]:
                    if truncated[i] and not terminated[i] and cfg.ppo.bootstrap_truncated:
                        final_text = info["final_obs"]["text"][i]
                        final_prompts[i] = self.history.final_prompt(
                            i, taken[i], sentences_of(final_text), self.action_names
                        )
                    finished_returns.append(self.episode_returns[i])
                    finished_lengths.append(self.episode_lengths[i])
                    self.recent_successes.append(bool(self.episode_returns[i] > 0))
                    self.episode_returns[i], self.episode_lengths[i] = 0.0, 0
            self.history.advance(obs, taken, terminated | truncated)
            if final_prompts:
                envs_truncated = list(final_prompts)
                values = self.policy.value(list(final_prompts.values()))
                rollout.truncated_values[t, envs_truncated] = values.float()

        rollout.next_value = self.policy.value(self.history.prompts(self.action_names)).float()
        stats = {"charts/episodes_finished": len(finished_returns)}
        if finished_returns:
            stats["charts/episodic_return"] = float(np.mean(finished_returns))
            stats["charts/episode_length"] = float(np.mean(finished_lengths))
        counts = torch.bincount(rollout.actions.reshape(-1), minlength=len(self.action_names))
        for name, count in zip(self.action_names, counts.tolist(), strict=False):
            stats[f"charts/action_frac/{name}"] = count / rollout.actions.numel()
        return rollout, stats

    # ------------------------------------------------------------------------------------ update
    def update(self, rollout: Rollout) -> dict[str, float]:
        """PPO epochs over the rollout; returns the losses and diagnostics of this update."""
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
        params = self.policy.trainable_parameters()
        self.policy.train()
        sums: dict[str, float] = {}
        steps = 0
        stop = False
        for _epoch in range(p.update_epochs):
            for idx in batch.minibatches(p.minibatch_size, self.shuffle):
                prompts = [batch.prompts[i] for i in idx.tolist()]
                out = self.policy(prompts, [self.action_names] * len(prompts))
                dist = out.distribution()
                loss = ppo_loss(
                    dist.log_prob(batch.actions[idx]),
                    batch.logprobs[idx],
                    batch.advantages[idx],
                    dist.entropy(),
                    out.values.float(),
                    batch.values[idx],
                    batch.returns[idx],
                    clip_coef=p.clip_coef,
                    clip_vloss=p.clip_vloss,
                    vf_coef=p.vf_coef,
                    ent_coef=p.ent_coef,
                    norm_adv=p.norm_adv,
                )
                self.optimizer.zero_grad(set_to_none=True)
                loss.loss.backward()
                # A list, not a generator: clip_grad_norm_ must see (and scale) every gradient.
                grad_norm = torch.nn.utils.clip_grad_norm_(params, p.max_grad_norm)
                self.optimizer.step()

                steps += 1
                for name, value in (
                    ("losses/policy_loss", loss.policy_loss),
                    ("losses/value_loss", loss.value_loss),
                    ("losses/entropy", loss.entropy),
                    ("losses/clipfrac", loss.clipfrac),
                    ("losses/grad_norm", grad_norm),
                ):
                    sums[name] = sums.get(name, 0.0) + float(value.detach())
                last_kl, last_old_kl = float(loss.approx_kl), float(loss.old_approx_kl)
                if p.target_kl is not None and last_kl > p.target_kl:
                    stop = True
                    break
            if stop:
                break
        metrics = {name: total / steps for name, total in sums.items()}
        metrics["losses/approx_kl"] = last_kl
        metrics["losses/old_approx_kl"] = last_old_kl
        metrics["losses/explained_variance"] = explained_variance(batch.values, batch.returns)
        metrics["losses/minibatch_steps"] = steps
        return metrics

    # -------------------------------------------------------------------------------------- loop
    def learning_rate_at(self, update: int) -> float:
        """Learning rate for update number `update` (0-based)."""
        p = self.config.ppo
        if not p.anneal_lr:
            return p.learning_rate
        return p.learning_rate * (1.0 - update / self.config.num_updates)

    def warm_start(self) -> list[dict[str, float]]:
        """Behaviour cloning of the expert bot before the first PPO update (imitation.py).

        Its time counts in time/elapsed_s (and so in run.max_minutes); its per-epoch loss and
        accuracy go to <output_dir>/warm_start.json, and a checkpoint of update 0 follows it.
        """
        cfg, w = self.config, self.config.warm_start
        start = time.perf_counter()
        envs = make_envs(cfg)
        try:
            history = EpisodeHistory(cfg.env.num_envs, cfg.env.num_observations, cfg.env.language)
            demos = collect_demonstrations(
                envs,
                history,
                self.action_names,
                w.demo_frames,
                gamma=cfg.ppo.gamma,
                reward_scale=cfg.ppo.reward_scale,
                seed=cfg.run.seed + DEMO_SEED_OFFSET,
            )
        finally:
            envs.close()
        if not len(demos):
            raise ValueError(
                f"warm_start.demo_frames={w.demo_frames}: no expert episode finished in that many "
                f"steps of {cfg.env.num_envs} envs; raise it to a few episodes per env."
            )
        optimizer = torch.optim.Adam(
            self.policy.trainable_parameters(), lr=w.learning_rate, eps=cfg.ppo.adam_eps
        )
        epochs = []
        for epoch in range(1, w.epochs + 1):
            stats = clone_epoch(
                self.policy,
                optimizer,
                demos,
                self.action_names,
                minibatch_size=cfg.ppo.minibatch_size,
                value_coef=w.value_coef,
                max_grad_norm=cfg.ppo.max_grad_norm,
                generator=self.shuffle,
            )
            stats = {"warm_start/epoch": epoch, **stats}
            stats["time/elapsed_s"] = self.state.elapsed_s + time.perf_counter() - start
            epochs.append(stats)
            if cfg.run.progress:
                print(
                    f"warm start epoch {epoch}/{w.epochs}: imitation accuracy "
                    f"{stats['warm_start/accuracy']:.3f}, loss {stats['warm_start/loss']:.3f} "
                    f"({len(demos)} expert steps, {stats['time/elapsed_s']:.0f} s)",
                    flush=True,
                )
        self.state.demo_frames = demos.frames
        self.state.elapsed_s += time.perf_counter() - start
        summary = {
            "demo_frames": self.state.demo_frames,
            "transitions": len(demos),
            "epochs": epochs,
        }
        (self.output_dir / WARM_START_FILE).write_text(json.dumps(summary, indent=1) + "\n")
        self.save()
        return epochs

    def train(self) -> TrainerState:
        """Warm start if asked (and not done yet), then run updates until total_frames;
        checkpoint every run.checkpoint_every and at the end."""
        cfg = self.config
        bar = None
        try:
            if cfg.warm_start.demo_frames and self.state.update == 0 and not self.state.demo_frames:
                self.warm_start()
            if cfg.run.progress:
                from tqdm.auto import tqdm

                # With a time budget the frame total is not what ends the run: count frames only.
                total = (
                    None if cfg.run.max_minutes is not None else cfg.num_updates * cfg.batch_size
                )
                bar = tqdm(
                    total=total,
                    initial=self.state.frames,
                    unit="frame",
                    desc="train",
                    dynamic_ncols=True,
                )
            while self.state.frames < cfg.ppo.total_frames and not self._out_of_time():
                start = time.perf_counter()
                lr = self.learning_rate_at(self.state.update)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                rollout, metrics = self.collect_rollout()
                metrics.update(self.update(rollout))
                elapsed = time.perf_counter() - start
                self.state.update += 1
                self.state.frames += cfg.batch_size
                self.state.episodes += metrics.pop("charts/episodes_finished")
                self.state.elapsed_s += elapsed
                enough = len(self.recent_successes) >= SUCCESS_MIN_EPISODES
                success = float(np.mean(self.recent_successes)) if enough else float("nan")
                metrics.update(
                    {
                        "charts/frames": self.state.frames,
                        "charts/episodes": self.state.episodes,
                        "charts/success_rate": success,
                        "charts/SPS": cfg.batch_size / elapsed,
                        "charts/learning_rate": lr,
                        "time/elapsed_s": self.state.elapsed_s,
                    }
                )
                self.logger.log(self.state.update, metrics)
                if bar is not None:
                    bar.update(cfg.batch_size)
                    bar.set_postfix(
                        fps=f"{cfg.batch_size / elapsed:.0f}",
                        success=f"{success:.2f}",
                        kl=f"{metrics['losses/approx_kl']:.3f}",
                    )
                every = cfg.run.checkpoint_every
                if every and self.state.update % every == 0:
                    self.save()
            self.save()
        finally:
            if bar is not None:
                bar.close()
            self.logger.close()
            self.envs.close()
        return self.state

    def _out_of_time(self) -> bool:
        limit = self.config.run.max_minutes
        return limit is not None and self.state.elapsed_s >= 60 * limit

    def save(self) -> Path:
        return save_checkpoint(
            self.output_dir,
            policy=self.policy,
            optimizer=self.optimizer,
            shuffle_generator=self.shuffle,
            state=self.state,
            config_json=self.config.to_json(),
        )


def _check_resumable(saved: dict, config: TrainConfig) -> None:
    current = config.to_dict()
    differences = []
    for section, fields in saved.items():
        for name, value in fields.items():
            key = f"{section}.{name}"
            now = current.get(section, {}).get(name)
            if isinstance(value, list):
                value = tuple(value)
            if isinstance(now, list):
                now = tuple(now)
            if key not in RESUMABLE_CHANGES and value != now:
                differences.append(f"{key}: checkpoint has {value!r}, this run {now!r}")
    if differences:
        raise ValueError(
            "cannot resume: the config differs from the checkpoint's:\n  - "
            + "\n  - ".join(differences)
            + "\nPass the same options as the original run (only total_frames and run.* display "
            "options may change), or start a new run in another --run.output-dir."
        )
