"""`ppo-grounding plan`: the memory a training run needs per process, before it is started.

For a TrainConfig (a preset and options, as `train` takes them), the number of processes and the
memory of one device, `plan_memory` counts the model's parameters from its config alone (the
model is built on torch's "meta" device: no weights are loaded or downloaded when the config is
known here) and adds up, per process:

- weights: fp32 for every weight that trains; a frozen LoRA base in the compute dtype
  (llm_policy.precision);
- autocast's weight copies: under bf16/fp16 autocast, each fp32 weight a forward uses is cast to
  16 bits once and kept until the backward is done (full fine-tuning: 2 bytes a parameter);
- gradients (fp32, trainable parameters only) and Adam's two moments (fp32);
- activations of the update's forward and backward on one minibatch share, from the prompt's
  token count: per token and layer the tensors the backward keeps (see ACTIVATION_ELEMENTS), the
  attention scores, and the fp32 log-softmax over the vocabulary of each scored position;
  gradient checkpointing keeps each layer's input alone and recomputes the rest;
- step temporaries: on CPU the largest trainable tensor's gradient being accumulated (a tied
  embedding gets one from the input side and one from the output head) and Adam's per-tensor
  temporaries, two fp32 copies of the largest trainable tensor; on CUDA Adam's multi-tensor
  kernels, one fp32 copy of every trainable parameter;
- runtime: the interpreter, torch and the libraries (RUNTIME_GIB, measured on CPU).

Under data parallelism every process holds a full replica, so N processes change the
activations (each takes minibatch/N) and nothing else. Sharded (`--dist.shard`, sharding.py),
each process holds 1/N of the weights, gradients and Adam state, plus the weights it gathers
while it computes: the policy's own group (embeddings, output layer, heads) and two transformer
blocks (the one running and the next, prefetched), in their stored dtype. Autocast's 16-bit
weight copies are kept for the backward whole, sharded or not. The estimate is checked against
the peak memory that benchmarks/paper_scale.py measures on CPU (one process).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from .config import TrainConfig

__all__ = ["MemoryPlan", "plan_memory", "format_plan", "model_config"]

GIB = 1024**3
RUNTIME_GIB = 1.0
"""Python, torch, transformers, gymnasium and the envs: the resident memory of a process before
any model is built, rounded up (measured on CPU; a CUDA context adds about 0.5 GiB on the
device)."""
ACTIVATION_ELEMENTS = (8, 4)
"""Elements kept per token and layer for the backward: 8 x hidden size (the normalised inputs,
queries, keys, values, attention output and residuals) + 4 x feed-forward size (gated MLPs keep
their input projections, activation and product)."""
WORDS_PER_OBSERVATION = 34
"""Words in one BabyAI-Text observation line (about four sentences of eight words)."""
WORDS_FIXED = 30
"""Words of the prompt's action list and goal."""
TOKENS_PER_WORD = 1.3
"""Subword tokens per word of BabyAI text (SentencePiece and BPE tokenizers)."""
CANDIDATE_TOKENS = 3
"""Tokens of one action phrase ("go forward", "pick up": two or three)."""


def model_config(model: str) -> tuple[Any, dict[str, Any]]:
    """(transformers config, raw config.json dict) for a stored architecture (name or hub id),
    a model directory, an offline model, or a Hugging Face id in the local cache / on the Hub."""
    from llm_policy.architectures import (
        architecture_config,
        find_architecture,
        stored_config_dict,
    )
    from llm_policy.loading import resolve_model_source
    from llm_policy.small_files import read_small_json
    from transformers import AutoConfig

    arch = find_architecture(model)
    if arch is not None:
        return architecture_config(arch.name), stored_config_dict(arch.name)
    source = resolve_model_source(model)
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"plan: cannot read the config of model {model!r} ({error.__class__.__name__}); "
            "pass a model directory, a stored architecture (flan-t5-large, qwen2.5-0.5b, "
            "llama-3.2-1b, llama-3.1-8b), an offline model, or a Hub id reachable from here"
        ) from None
    raw_file = Path(source) / "config.json"
    raw = read_small_json(raw_file, what="model config") if raw_file.is_file() else config.to_dict()
    return config, raw


@dataclass
class MemoryPlan:
    """Bytes per process, and the sizes they come from."""

    model: str
    processes: int
    sharded: bool
    dtype: str
    finetune: str
    gradient_checkpointing: bool
    parameters: int
    trainable: int
    minibatch_per_process: int
    tokens_per_prompt: int
    weights: float
    """This process's weights: all of them, or its shards and the weights it gathers."""
    autocast_copies: float
    gradients: float
    optimizer: float
    activations: float
    temporaries: float
    runtime: float
    device_memory: float | None

    @property
    def total(self) -> float:
        return (
            self.weights
            + self.autocast_copies
            + self.gradients
            + self.optimizer
            + self.activations
            + self.temporaries
            + self.runtime
        )

    @property
    def fits(self) -> bool | None:
        return None if self.device_memory is None else self.total <= self.device_memory


def _count(config: Any, raw: dict[str, Any]) -> tuple[int, int, int, int, int, int, int, int]:
    """(parameters, hidden size, layers, LoRA parameters per unit rank, largest tensor, largest
    LoRA input or output width, parameters of the largest transformer block, parameters outside
    the blocks) of the model."""
    import torch
    from llm_policy.loading import default_lora_targets
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    with torch.device("meta"):
        model = auto.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    largest = max(p.numel() for p in model.parameters())
    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    if raw.get("tie_word_embeddings") is False and head.weight is embed.weight:
        params += head.weight.numel()  # transformers 5 ties T5's head; Flan-T5 has its own
    targets = set(default_lora_targets(config.model_type))
    per_rank = largest_lora = 0
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if name.rsplit(".", 1)[-1] in targets and weight is not None and weight.dim() == 2:
            per_rank += sum(weight.shape)  # A (r x in) + B (out x r)
            largest_lora = max(largest_lora, max(weight.shape))
    hidden = config.get_text_config().hidden_size
    layers = getattr(config, "num_hidden_layers", None) or config.num_layers
    kinds = set(getattr(model, "_no_split_modules", None) or ())
    blocks = [
        sum(p.numel() for p in m.parameters()) for m in model.modules() if type(m).__name__ in kinds
    ]
    outside = params - sum(blocks)
    return params, hidden, layers, per_rank, largest, largest_lora, max(blocks, default=0), outside


def _step_temporaries(device: str, trainable: int, largest: int) -> int:
    """Bytes of the optimiser step's temporaries: torch's Adam runs tensor by tensor on CPU (two
    fp32 copies of the largest tensor at most) and as multi-tensor (foreach) kernels on CUDA,
    whose intermediate lists hold one fp32 copy of every trainable parameter."""
    if str(device).startswith("cuda"):
        return 4 * trainable
    return 2 * 4 * largest


def plan_memory(
    config: TrainConfig,
    *,
    processes: int = 1,
    device_memory_gib: float | None = None,
    tokens_per_prompt: int | None = None,
) -> MemoryPlan:
    """The memory per process of training `config` with `processes` data-parallel processes
    (sharded with config.dist.shard)."""
    if processes < 1 or config.ppo.minibatch_size % processes:
        raise ValueError(
            f"plan: --processes {processes} must be >= 1 and divide ppo.minibatch_size="
            f"{config.ppo.minibatch_size}"
        )
    pol = config.policy
    model_cfg, raw = model_config(pol.model)
    params, hidden, layers, per_rank, largest, largest_lora, block, outside = _count(model_cfg, raw)
    text = model_cfg.get_text_config()
    ff = getattr(text, "intermediate_size", None) or getattr(text, "d_ff", None) or 4 * hidden
    # An int: the `or` never yields getattr's None default, which mypy cannot see.
    heads = cast(int, getattr(text, "num_attention_heads", None) or getattr(text, "num_heads", 1))
    vocab = text.vocab_size
    h = pol.value_head_hidden
    head_params = 2 * hidden + hidden * h + h + h * h + h + h + 1  # LayerNorm + 3 Linear
    lora_params = pol.lora_r * per_rank
    full = pol.finetune == "full"
    trainable = (params if full else lora_params) + head_params
    largest_trainable = max(largest if full else largest_lora * pol.lora_r, h * h)
    low = pol.dtype != "float32"
    weights: float = 4 * trainable + (0 if full else (2 if low else 4) * params)
    copies = 2 * params if (full and low) else 0
    states: float = 4 * trainable  # gradients; Adam holds two of these
    temporaries: float = _step_temporaries(pol.device, trainable, largest_trainable)
    sharded = config.dist.shard and processes > 1
    if sharded:
        stored = 4 if full or not low else 2  # bytes a weight is gathered in
        gathered = stored * (outside + 2 * block) + 4 * head_params  # heads: fp32
        weights = weights / processes + gathered
        states /= processes
        temporaries /= processes
    if tokens_per_prompt is None:
        words = WORDS_FIXED + WORDS_PER_OBSERVATION * config.env.num_observations
        tokens_per_prompt = round(TOKENS_PER_WORD * words)
    m = config.ppo.minibatch_size // processes
    candidates = config.env.num_actions
    act_bytes = 2 if low else 4
    tokens = m * (tokens_per_prompt + candidates * CANDIDATE_TOKENS)
    per_token_layer = ACTIVATION_ELEMENTS[0] * hidden + ACTIVATION_ELEMENTS[1] * ff
    if pol.gradient_checkpointing:
        act = tokens * layers * hidden * act_bytes + tokens * per_token_layer * act_bytes
        act += m * heads * tokens_per_prompt**2 * act_bytes
    else:
        act = tokens * layers * per_token_layer * act_bytes
        act += layers * m * heads * tokens_per_prompt**2 * act_bytes  # attention scores
    # fp32 logits and their log-softmax at every scored position
    act += 2 * 4 * vocab * m * (1 + candidates * (CANDIDATE_TOKENS - 1))
    return MemoryPlan(
        model=pol.model,
        processes=processes,
        sharded=sharded,
        dtype=pol.dtype,
        finetune=pol.finetune,
        gradient_checkpointing=pol.gradient_checkpointing,
        parameters=params,
        trainable=trainable,
        minibatch_per_process=m,
        tokens_per_prompt=tokens_per_prompt,
        weights=weights,
        autocast_copies=copies,
        gradients=states,
        optimizer=2 * states,
        activations=act,
        temporaries=temporaries,
        runtime=RUNTIME_GIB * GIB,
        device_memory=None if device_memory_gib is None else device_memory_gib * GIB,
    )


def suggestions(config: TrainConfig, plan: MemoryPlan) -> list[str]:
    """Settings that would fit the device, tried in the order a user would: gradient
    checkpointing, a smaller minibatch share (more processes), LoRA, bf16."""
    if plan.fits is not False:
        return []
    kw = {"processes": plan.processes, "tokens_per_prompt": plan.tokens_per_prompt}
    assert plan.device_memory is not None  # fits is False only when the device memory is known
    gib = plan.device_memory / GIB

    def fits(cfg: TrainConfig, **override: Any) -> MemoryPlan:
        return plan_memory(cfg, device_memory_gib=gib, **{**kw, **override})

    out = []
    pol = config.policy
    ckpt = dataclasses.replace(config, policy=dataclasses.replace(pol, gradient_checkpointing=True))
    if not pol.gradient_checkpointing and fits(ckpt).fits:
        out.append("--policy.gradient-checkpointing (recompute activations in the backward)")
    sharded = dataclasses.replace(config, dist=dataclasses.replace(config.dist, shard=True))
    if plan.processes > 1 and not plan.sharded and fits(sharded).fits:
        out.append(f"--dist.shard (the policy sharded across the {plan.processes} processes)")
    n = plan.processes * 2
    while n <= 64 and config.ppo.minibatch_size % n == 0:
        if fits(config, processes=n).fits:
            out.append(
                f"{n} processes (each takes {config.ppo.minibatch_size // n} of a minibatch)"
            )
            break
        n *= 2
    options: tuple[tuple[Literal["lora", "full"], Literal["float32", "bfloat16", "float16"]], ...]
    options = (("full", "bfloat16"), ("lora", pol.dtype), ("lora", "bfloat16"))
    for finetune, dtype in options:
        if (finetune, dtype) == (pol.finetune, pol.dtype):
            continue
        other = dataclasses.replace(
            config, policy=dataclasses.replace(pol, finetune=finetune, dtype=dtype)
        )
        if fits(other).fits:
            out.append(f"--policy.finetune {finetune} --policy.dtype {dtype}")
            break
    if not out:
        out.append("none of gradient checkpointing, more processes, LoRA or bf16 fits alone")
    return out


def format_plan(plan: MemoryPlan, hints: list[str] | None = None) -> str:
    """A table a person reads: sizes, then GiB per process by kind."""

    def gib(x: float) -> str:
        return f"{x / GIB:8.2f} GiB"

    lines = [
        f"model {plan.model}: {plan.parameters / 1e6:,.1f}M parameters, "
        f"{plan.trainable / 1e6:,.2f}M trainable ({plan.finetune}, dtype {plan.dtype}"
        f"{', gradient checkpointing' if plan.gradient_checkpointing else ''})",
        f"{plan.processes} process(es){', the policy sharded across them' if plan.sharded else ''}"
        f"; per process a minibatch share of "
        f"{plan.minibatch_per_process} prompts of about {plan.tokens_per_prompt} tokens",
        f"  weights          {gib(plan.weights)}",
        f"  autocast copies  {gib(plan.autocast_copies)}",
        f"  gradients        {gib(plan.gradients)}",
        f"  Adam state       {gib(plan.optimizer)}",
        f"  activations      {gib(plan.activations)}",
        f"  step temporaries {gib(plan.temporaries)}",
        f"  runtime          {gib(plan.runtime)}",
        f"  total            {gib(plan.total)} per process",
    ]
    if plan.device_memory is not None:
        verdict = "fits" if plan.fits else "does NOT fit"
        lines.append(f"{verdict} in {plan.device_memory / GIB:.1f} GiB per device")
    for hint in hints or []:
        lines.append(f"would fit: {hint}")
    return "\n".join(lines)
