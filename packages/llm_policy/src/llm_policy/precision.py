"""Mixed precision: what `PolicyConfig.dtype` does to weights, gradients, optimiser state and the
forward.

The field's recipe (automatic mixed precision): every weight that trains is stored in fp32, so its
gradient and the optimiser's state are fp32 too and small updates are not rounded away; the
forward runs under `torch.autocast` in the chosen 16-bit type. Weights that never train (the
frozen base under LoRA) may be stored in 16 bits to halve their memory.

| dtype      | trainable weights, grads, Adam state | frozen base (LoRA) | forward                  |
|------------|--------------------------------------|--------------------|--------------------------|
| "float32"  | fp32                                 | fp32               | fp32                     |
| "bfloat16" | fp32                                 | bf16               | bf16 autocast            |
| "float16"  | fp32                                 | fp16               | fp16 autocast; the loss  |
|            |                                      |                    | needs a gradient scaler  |

Storing trainable weights in bf16 and stepping Adam on them is what this module prevents: at a
learning rate of 1e-6 most updates are smaller than half a bf16 ulp of the weight and vanish.
The heads' inputs and outputs are always fp32 (value_head.py runs them outside autocast), and
scores are log-softmaxed in fp32 (logprobs.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch

__all__ = [
    "DTYPES",
    "all_finite",
    "autocast",
    "check_precision",
    "check_trainable_fp32",
    "needs_grad_scaler",
    "storage_dtype",
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""PolicyConfig.dtype names -> the forward's compute dtype."""


def storage_dtype(dtype: str, *, trains: bool) -> str:
    """The dtype (name) a model's weights are loaded in: fp32 for weights that train, the compute
    dtype for a base that stays frozen (LoRA)."""
    return "float32" if trains else dtype


def autocast(dtype: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The forward's precision context: `torch.autocast` for 16-bit dtypes, nothing for fp32."""
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[dtype])


def needs_grad_scaler(dtype: str) -> bool:
    """fp16's range is narrow: small gradients underflow unless the loss is scaled up first
    (torch.amp.GradScaler). bf16 has fp32's range and needs no scaler."""
    return dtype == "float16"


def check_precision(dtype: str, device: torch.device | str, what: str = "dtype") -> None:
    """Refuse a dtype the device cannot compute in, before any model is loaded."""
    if dtype not in DTYPES:
        raise ValueError(f"{what}={dtype!r} is not one of {tuple(DTYPES)}")
    device = torch.device(device)
    if dtype == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise ValueError(
            f"{what}='bfloat16' needs a GPU with bf16 support (Ampere or newer); {name} has none. "
            "Use dtype='float16' (mixed precision with a gradient scaler) or 'float32'."
        )


_FINITE_CHUNK = 1 << 24


def all_finite(tensor: torch.Tensor) -> bool:
    """No NaN or inf in `tensor`, checked in slices of 16M elements: a whole-tensor isfinite
    materialises a temporary as large as the tensor (fp32-sized for 16-bit inputs on CPU), which
    for a 1B-parameter model's embedding is a gigabyte at checkpoint time."""
    flat = tensor.detach().reshape(-1)
    return all(bool(torch.isfinite(part).all()) for part in flat.split(_FINITE_CHUNK))


def check_trainable_fp32(named_parameters: Iterable[tuple[str, torch.nn.Parameter]]) -> None:
    """Every trainable parameter is fp32 (so are its gradient and optimiser state): an optimiser
    that steps 16-bit weights in place rounds small updates away. RuntimeError names the first
    offender."""
    for name, param in named_parameters:
        if param.requires_grad and param.dtype != torch.float32:
            raise RuntimeError(
                f"trainable parameter {name!r} is {param.dtype}, not torch.float32: 16-bit weights "
                "updated in place lose small updates. Load trainable weights in fp32 and run the "
                "forward under autocast (llm_policy.precision)."
            )
