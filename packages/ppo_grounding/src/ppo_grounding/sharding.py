"""Sharded data-parallel training (`--dist.shard`): the policy split across processes with torch FSDP2.

Under a launcher with N processes, `shard_policy` applies torch's `fully_shard` to every
transformer block (the model's `_no_split_modules`, Hugging Face's own list of the modules that
must stay whole) and then to the whole `LLMPolicy`. Each process then holds 1/N of every
parameter, of its gradient and of the optimiser's moments. A forward all-gathers one block's
parameters at a time (the embeddings, the output layer and the heads belong to the policy's own
group, gathered while a policy method runs) and frees them after; the backward reduce-scatters
the gradients, averaged over the processes. Precision is the policy's own, as in one process:
weights are gathered in the dtype they are stored in (fp32 for what trains, bf16 for the frozen
base of a bf16 LoRA run), bf16 autocast runs the forward, and gradients and the optimiser's
moments are fp32.

Lockstep. Every forward of a sharded block is a collective, so every process must run the
model's forward the same number of times. The policy is made to do so by design:

- the scorer runs one forward per call, whatever the prompts (no length groups, no shared-prefix
  pass, no chunking: `lockstep_scorer`);
- the rollout reuses the outputs of prompts already scored (`LLMPolicy.remember_outputs`) in
  lockstep: when any process has a new prompt to score, every process runs the model, one with
  none on a stand-in row;
- every process calls the policy once per env step and once per minibatch (equal shares);
- the value of a timed-out episode's last observation, which only some processes need at a given
  step, is computed on every process when any needs it, a process with none valuing a stand-in
  prompt (`Distributed.any`, trainer.py).

The policy's own methods other than `forward` (`value`, `score`) are registered with FSDP
(`register_fsdp_forward_method`) so that they gather the policy's parameters as `forward` does.

Checkpoints are the ordinary format: `gather_full_state` assembles the full trained weights and
the optimiser state on the main process, one tensor at a time, into host (CPU) memory, and the
main process writes them as one process would. The main process therefore needs host memory for
one full copy of the trained weights and Adam's two moments (a LoRA's frozen base is not
gathered); the devices never hold more than their shard and one gathered tensor
(`checkpoint_memory_warning` says at start when the host memory falls short). Resuming (under
any number of processes, sharded or not) loads the checkpoint in every process, into host
memory, before it is sharded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from llm_policy import LLMPolicy

__all__ = [
    "checkpoint_memory_warning",
    "gather_full_state",
    "held_bytes",
    "load_optimizer_state",
    "lockstep_scorer",
    "shard_policy",
    "sharded_blocks",
]

POLICY_METHODS = ("value", "score")
"""LLMPolicy methods besides `forward` that run the model: FSDP gathers the policy's parameters
around them too."""


def sharded_blocks(policy: LLMPolicy) -> list[torch.nn.Module]:
    """The transformer blocks of the policy's model: the modules whose class the model lists in
    `_no_split_modules` (Hugging Face's name for the units that are kept whole)."""
    lm = policy._lm
    names = set(getattr(lm, "_no_split_modules", None) or ())
    blocks = [m for m in lm.modules() if type(m).__name__ in names]
    if not blocks:
        raise ValueError(
            f"--dist.shard: the model {type(lm).__name__} names no transformer blocks "
            "(_no_split_modules), so it cannot be sharded block by block; train it data "
            "parallel (without --dist.shard)."
        )
    return blocks


def lockstep_scorer(policy: LLMPolicy) -> None:
    """One model forward per scorer call, whatever the prompts: what lockstep needs."""
    scorer = policy.scorer
    scorer.length_bucketing = False
    scorer.share_prefixes = False
    scorer.max_batch_prompts = None


def shard_policy(policy: LLMPolicy, device: torch.device) -> LLMPolicy:
    """Shard `policy` in place over the default process group (every process must call this with
    identical weights); returns it, now an FSDP module that trains as the plain policy does."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import (
        MixedPrecisionPolicy,
        fully_shard,
        register_fsdp_forward_method,
    )

    if policy.config.dtype == "float16":
        raise ValueError(
            "--dist.shard with policy.dtype=float16: fp16's gradient scaler does not run on "
            "sharded gradients here; use policy.dtype=bfloat16 (or float32)."
        )
    mesh = init_device_mesh(device.type, (torch.distributed.get_world_size(),))
    # bf16 is the policy's own autocast, as in one process: FSDP gathers every weight in the
    # dtype it is stored in (fp32 for what trains, bf16 for a LoRA's frozen base) and reduces
    # the gradients in fp32, their dtype
    precision = MixedPrecisionPolicy(reduce_dtype=torch.float32)
    lockstep_scorer(policy)
    for block in sharded_blocks(policy):
        fully_shard(block, mesh=mesh, mp_policy=precision)
    # The policy's own group too is freed after every forward (FSDP keeps a root's weights
    # gathered by default): a forward without gradients (a rollout) followed by one with them
    # (the update) would otherwise reuse weights gathered without autograd, and the embeddings
    # and the heads would get no gradient.
    fully_shard(policy, mesh=mesh, mp_policy=precision, reshard_after_forward=True)
    for name in POLICY_METHODS:
        register_fsdp_forward_method(policy, name)
    return policy


def held_bytes(policy: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the weights (trained and frozen) and optimiser state this process holds: its
    shards of a sharded policy, everything of a replica."""

    def local(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to_local() if hasattr(tensor, "to_local") else tensor

    tensors = [local(p) for p in policy.parameters()]
    tensors += [
        local(v)
        for state in optimizer.state.values()
        for v in state.values()
        if isinstance(v, torch.Tensor)
    ]
    return sum(t.numel() * t.element_size() for t in tensors)


def gathered_bytes(policy: torch.nn.Module) -> int:
    """Bytes a checkpoint gathers into the main process's host memory: every trained weight
    whole, and Adam's two moments of it (same dtype)."""
    return sum(3 * p.numel() * p.element_size() for p in policy.parameters() if p.requires_grad)


def host_memory_available() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None where there is none: not Linux)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def checkpoint_memory_warning(policy: torch.nn.Module) -> str | None:
    """A warning for the start of a sharded run whose checkpoints will not fit the main
    process's host memory (None when they fit, or where the memory cannot be read)."""
    needed, available = gathered_bytes(policy), host_memory_available()
    if available is None or needed <= available:
        return None
    return (
        f"ppo-grounding: warning: each checkpoint of this sharded run gathers "
        f"{needed / 2**30:.1f} GiB (the trained weights and Adam state, whole) into the main "
        f"process's host memory, which has {available / 2**30:.1f} GiB available now: the "
        "system would stop the save (the previous checkpoint stays, and `latest` names it). "
        "Free host memory, or train with LoRA (--policy.finetune lora)."
    )


def trainable_names(policy: torch.nn.Module) -> list[str]:
    """The trainable parameters' names in the optimiser's order (`trainable_parameters`)."""
    return [name for name, p in policy.named_parameters() if p.requires_grad]


def gather_full_state(
    policy: LLMPolicy, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(the policy's full state dict, the optimiser's state dict as one process's
    `optimizer.state_dict()` numbers it) on the main process, in host memory; None on the others.
    With LoRA the state dict holds the trained weights only (what the checkpoint saves).
    Collective: every process calls it."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    # a LoRA checkpoint holds the adapters and heads: the frozen base is not gathered
    weights = StateDictOptions(
        full_state_dict=True,
        cpu_offload=True,
        ignore_frozen_params=policy.config.finetune == "lora",
    )
    model_state: dict[str, Any] = get_model_state_dict(policy, options=weights)
    optimizer_state: Any = get_optimizer_state_dict(policy, optimizer, options=options)
    if torch.distributed.get_rank() != 0:
        return None
    index = {name: i for i, name in enumerate(trainable_names(policy))}
    numbered = {
        "state": {index[name]: dict(state) for name, state in optimizer_state["state"].items()},
        "param_groups": [
            {**group, "params": [index[name] for name in group["params"]]}
            for group in optimizer_state["param_groups"]
        ],
    }
    return model_state, numbered


def load_optimizer_state(
    policy: LLMPolicy, optimizer: torch.optim.Optimizer, numbered: dict[str, Any]
) -> None:
    """Load a one-process optimiser state dict (parameters numbered in `trainable_parameters`
    order, as checkpoints hold it) into the optimiser of the sharded `policy`; each process keeps
    its shard. Collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    names = trainable_names(policy)
    by_name: Any = {
        "state": {names[int(i)]: state for i, state in numbered["state"].items()},
        "param_groups": [
            {**group, "params": [names[int(i)] for i in group["params"]]}
            for group in numbered["param_groups"]
        ],
    }
    set_optimizer_state_dict(
        policy, optimizer, by_name, options=StateDictOptions(full_state_dict=True)
    )
