"""Data-parallel PPO: what the trainer and evaluation need from the process group, in one place.

One process without a launcher is the default, and then nothing here touches torch.distributed:
rank 0 of 1, collectives return their input, the policy stays where `policy.device` put it, so
the run is exactly the single-process run. Under a launcher with N > 1 processes
(`torchrun --nproc_per_node N -m ppo_grounding.cli train ...`, `accelerate launch ...`, or the
multi-machine forms) the work is spread with Hugging Face accelerate:

- `Accelerator` starts the process group (gloo on CPUs, NCCL on GPUs, with a timeout so that a
  collective waiting on a dead peer fails instead of waiting forever) and picks the device: one GPU
  per process (`cuda:LOCAL_RANK`) when CUDA is visible, else the CPU (`ACCELERATE_USE_CPU=1` forces
  the CPU).
- `prepare` wraps the policy in DistributedDataParallel: its construction broadcasts rank 0's
  weights, and every backward averages the gradients of the trainable parameters across
  processes, so each replica applies the same averaged gradient and the replicas stay identical.
  The gradient-norm clip that follows reads that averaged gradient: it is the global norm.
- Rollouts, value estimates and saving use the plain module (`unwrap`); only the update's forward
  passes go through the wrapper.

Sizes. `env.num_envs`, `ppo.minibatch_size` and `ppo.total_frames` are global and split evenly
(`check_sizes` refuses what does not divide); `ppo.num_steps` is per env. Every process steps
num_envs / N envs and takes minibatches of minibatch_size / N transitions, so the global rollout,
minibatch and frame budget of a preset are the same under any N, and one optimiser step of N
processes is one step on the union of their minibatches (advantages are normalised with the
mean and standard deviation of that union, `global_mean_std`).

Only the main process writes (metrics, TensorBoard, the progress bar, checkpoints, run files);
episode statistics are gathered from every process before they are logged.

Failures: torchrun's agent stops the other processes as soon as one exits, and names the failed
rank and its exit code or signal; an exception in the training loop also prints
"rank R of N failed: <error>" (`report_failure`) before the process exits.

`--dist.shard` shards the policy across the processes instead of replicating it (torch FSDP2,
sharding.py); everything else above holds as it is. accelerate's own FSDP and DeepSpeed configs
are refused: the sharded form is ours, so that it runs in lockstep (sharding.py says how).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .config import TrainConfig

TIMEOUT_ENV = "PPO_GROUNDING_DIST_TIMEOUT_S"
"""Seconds a collective may wait for the other processes before it fails (default 600)."""
DEFAULT_TIMEOUT_S = 600.0

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ONE_PROCESS",
    "TIMEOUT_ENV",
    "Distributed",
    "check_sizes",
    "get",
    "is_main_process",
    "launched_world_size",
]


def launched_world_size() -> int:
    """The number of processes the launcher started (WORLD_SIZE; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True in the process that reports (RANK 0 under a launcher, or the only process), read
    from the launcher's environment without joining the process group."""
    return int(os.environ.get("RANK", "0")) == 0


class Distributed:
    """Rank, world size, device and the few collectives the trainer uses.

    With one process every method is the identity (or a no-op) and accelerate is not imported.
    `ONE_PROCESS` is that one process whatever the launcher started (for a trainer that runs
    alone, like the symbolic baseline's `ppo_update`); `get()` is this process's, for the rest.
    """

    def __init__(self, *, one_process: bool = False) -> None:
        self.world_size = 1 if one_process else launched_world_size()
        self.rank = 0
        self.local_rank = 0
        self.accelerator: Any = None
        if self.world_size > 1:
            from accelerate import Accelerator
            from accelerate.utils import DistributedType, InitProcessGroupKwargs

            timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
            self.accelerator = Accelerator(
                cpu=not torch.cuda.is_available(),
                kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(seconds=timeout))],
            )
            kind = self.accelerator.distributed_type
            if kind not in (DistributedType.MULTI_CPU, DistributedType.MULTI_GPU):
                raise NotImplementedError(
                    f"accelerate set up {kind}: ppo-grounding runs DDP, or its own sharding "
                    "with --dist.shard (torch FSDP2). Launch with torchrun, or an accelerate "
                    "config without FSDP or DeepSpeed, and pass --dist.shard to shard."
                )
            self.rank = self.accelerator.process_index
            self.local_rank = self.accelerator.local_process_index
            self.world_size = self.accelerator.num_processes
            # Leave the group before the interpreter tears down: gloo's threads destroyed at
            # exit abort the process ("terminate called without an active exception").
            atexit.register(_leave_process_group)

    @property
    def enabled(self) -> bool:
        """True under a launcher with more than one process."""
        return self.accelerator is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def policy_device(self, configured: str) -> str:
        """The device of this process's policy replica: `configured` for one process; under a
        launcher, this process's GPU (cuda:LOCAL_RANK) when CUDA is visible, else the CPU."""
        if not self.enabled:
            return configured
        device = self.accelerator.device
        return "cpu" if device.type == "cpu" else f"{device.type}:{device.index or 0}"

    # ------------------------------------------------------------------------------ the model
    def prepare(self, module: torch.nn.Module, *, shard: bool = False) -> torch.nn.Module:
        """The module whose backward averages gradients across processes, or `module` for one
        process: DDP's wrapper of it, or with `shard` the module itself sharded in place across
        the processes (torch FSDP2, sharding.py). Either way every process starts from the same
        weights: DDP broadcasts the main process's, sharding checks that they agree."""
        if not self.enabled:
            return module
        if not shard:
            return self.accelerator.prepare_model(module)  # DDP broadcasts rank 0's weights
        from .sharding import shard_policy

        # FSDP keeps each process's own slice: the processes must have built the same weights
        # (they load the same files, or build from the same seed); checked, not assumed
        with torch.no_grad():
            checksum = float(sum(p.sum(dtype=torch.float64) for p in module.parameters()))
        low, high = self.min([checksum])[0], self.max([checksum])[0]
        if low != high:
            raise RuntimeError(
                f"--dist.shard: the processes built different weights (checksums {low} to "
                f"{high}); every process must load the same model and policy.seed."
            )
        return shard_policy(module, self.accelerator.device)  # type: ignore[arg-type]

    def unwrap(self, module: torch.nn.Module) -> torch.nn.Module:
        return module if not self.enabled else self.accelerator.unwrap_model(module)

    def backward(self, loss: torch.Tensor) -> None:
        if self.enabled:
            self.accelerator.backward(loss)
        else:
            loss.backward()

    # ---------------------------------------------------------------------------- collectives
    def _reduce(self, values: torch.Tensor, op: str) -> torch.Tensor:
        if not self.enabled:
            return values
        from accelerate.utils import reduce

        device = self.accelerator.device
        return reduce(values.detach().double().to(device), reduction=op).cpu()

    def mean(self, values: Sequence[float]) -> list[float]:
        """Each value averaged over the processes (one collective for the whole list)."""
        if not self.enabled:
            return list(values)
        return self._reduce(torch.tensor(list(values), dtype=torch.float64), "mean").tolist()

    def sum(self, values: Sequence[float]) -> list[float]:
        if not self.enabled:
            return list(values)
        return self._reduce(torch.tensor(list(values), dtype=torch.float64), "sum").tolist()

    def max(self, values: Sequence[float]) -> list[float]:
        if not self.enabled:
            return list(values)
        return self._reduce(torch.tensor(list(values), dtype=torch.float64), "max").tolist()

    def min(self, values: Sequence[float]) -> list[float]:
        return [-v for v in self.max([-v for v in values])]

    def any(self, flag: bool) -> bool:
        """True on every process if `flag` is true on any."""
        return flag if not self.enabled else self.max([float(flag)])[0] > 0

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """The processes' tensors (same shape on each) concatenated along dim 0, rank order."""
        if not self.enabled:
            return tensor
        from accelerate.utils import gather

        return gather(tensor.detach().to(self.accelerator.device)).cpu()

    def gather_objects(self, items: list) -> list:
        """Every process's list, concatenated in rank order, on every process."""
        if not self.enabled:
            return list(items)
        from accelerate.utils import gather_object

        return gather_object(list(items))

    def broadcast_object(self, obj: Any) -> Any:
        """The main process's `obj`, on every process."""
        if not self.enabled:
            return obj
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([obj], from_process=0)[0]

    def barrier(self) -> None:
        if self.enabled:
            self.accelerator.wait_for_everyone()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """The main process runs the block first (building or downloading a model into a shared
        cache), then the others."""
        if not self.enabled:
            yield
            return
        with self.accelerator.main_process_first():
            yield

    def report_failure(self, error: BaseException) -> None:
        """One line on stderr naming this rank and the error (only under a launcher)."""
        if self.enabled:
            print(
                f"ppo-grounding: rank {self.rank} of {self.world_size} failed: "
                f"{type(error).__name__}: {error}",
                file=sys.stderr,
                flush=True,
            )


SEED_RANGE = 2**32
"""numpy's legacy seeding (np.random.seed, which seed_everything calls) takes 0 .. 2**32 - 1;
torch and gymnasium take more, so this range suits all three."""
RESUME_SEED_STRIDE = 7919
"""A prime: each resumed update count gets its own stream of seeds."""


def resume_seed(seed: int, update: int, rank: int) -> int:
    """The seed of process `rank`'s RNGs when a multi-process run resumes at update `update`.

    The checkpoint holds the main process's RNG states only, so every process is reseeded from
    run.seed, the update count and its rank; the sum is wrapped into SEED_RANGE (run.seed may be
    as large as 2**32 - 1 - num_envs, and run.seed + 7919 * update overflows numpy's range).
    Distinct ranks still get distinct seeds (a world size is far below 2**32)."""
    return (seed + RESUME_SEED_STRIDE * update + rank) % SEED_RANGE


def _leave_process_group() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


ONE_PROCESS = Distributed(one_process=True)
"""One process, whatever the launcher started: the default of the functions that take a
Distributed (`update.ppo_update`, `imitation.warm_start`), for code that runs them alone."""

_STATE: Distributed | None = None


def get() -> Distributed:
    """This process's Distributed (created, and the process group joined, on first use): what
    the trainer and evaluation pass to the functions that take one."""
    global _STATE
    if _STATE is None:
        _STATE = Distributed()
    return _STATE


def global_mean_std(dist: Distributed, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) standard deviation of the union of every process's `values`."""
    union = dist.gather(values.detach().float())
    return union.mean(), union.std()


# -------------------------------------------------------------------------------------- sizes
def check_sizes(config: TrainConfig, world_size: int) -> None:
    """Refuse global sizes that N processes cannot share evenly, saying what would work."""
    if world_size <= 1:
        return
    errors = []
    for name, value in (
        ("env.num_envs", config.env.num_envs),
        ("ppo.minibatch_size", config.ppo.minibatch_size),
    ):
        if value % world_size:
            errors.append(
                f"{name}={value} is global and split evenly over the {world_size} processes: "
                f"use a multiple of {world_size}."
            )
    if errors:
        raise ValueError("Invalid training config for this launch:\n  - " + "\n  - ".join(errors))


def describe_sizes(config: TrainConfig, world_size: int) -> str:
    """The start-of-run line: the global batch and how it is shared."""
    n = world_size
    envs, steps, minibatch = (
        config.env.num_envs // n,
        config.ppo.num_steps,
        config.ppo.minibatch_size,
    )
    line = (
        f"global batch {config.batch_size} = {n} process(es) x {envs} envs x {steps} steps; "
        f"minibatch {minibatch} = {n} x {minibatch // n}; {config.num_updates} updates to "
        f"{config.ppo.total_frames} frames"
    )
    if n > 1:
        held = "sharded across" if config.dist.shard else "replicated in"
        line += f"; the policy {held} the {n} processes"
    elif config.dist.shard:
        line += "; dist.shard has no effect in one process"
    return line
