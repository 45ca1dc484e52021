"""Stopping a run whose numbers stopped being numbers: NaN/inf never reach a checkpoint.

The trainer calls `check_step` after each backward pass, before the optimiser steps (the loss and
the gradient norm), and `check_state` before each checkpoint is written (every parameter and every
optimiser tensor). Rollouts and updates run inside `guard`, which turns torch's own complaint about
NaN action logits (raised while building the softmax distribution) into the same error. Each
raises `NonFiniteError`, which names the update and the quantity; nothing of that update is saved,
so the run's `latest` checkpoint is still the last good one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from llm_policy.precision import all_finite

if TYPE_CHECKING:
    from torch import nn

__all__ = ["NonFiniteError", "check_state", "check_step", "guard"]

_ADVICE = (
    "Training diverged and was stopped; nothing of this update was saved. Resume from the last "
    "good checkpoint with a lower --ppo.learning-rate (or a smaller --ppo.max-grad-norm or "
    "--ppo.reward-scale), or start again from an earlier checkpoint."
)


class NonFiniteError(ArithmeticError):
    """A NaN or inf in training: `update` is the update (1-based) that produced it, `quantity`
    what held it (e.g. "loss", "gradient norm", "parameter 'lm.wte.weight'"). The message reads
    "update 7: non-finite loss (nan). Training diverged and was stopped; ..."."""

    def __init__(self, update: int, quantity: str, detail: str = "") -> None:
        self.update = update
        self.quantity = quantity
        super().__init__(
            f"update {update}: non-finite {quantity}"
            + (f" ({detail})" if detail else "")
            + f". {_ADVICE}"
        )


def _describe(values: torch.Tensor) -> str:
    values = values.detach()
    if values.numel() == 1:
        return f"{values.item()!r}"
    nan = int(torch.isnan(values).sum())
    inf = int(torch.isinf(values).sum())
    return f"{nan} NaN, {inf} inf of {values.numel()} values"


def _finite(value: torch.Tensor | float) -> bool:
    if isinstance(value, torch.Tensor):
        return all_finite(value)
    return math.isfinite(float(value))


def check_step(
    update: int, *, loss: torch.Tensor | float, grad_norm: torch.Tensor | float | None = None
) -> None:
    """Raise NonFiniteError if the minibatch loss or the gradient norm (before clipping) of
    update `update` is NaN or inf. Call it before optimizer.step(): a NaN gradient never moves a
    parameter."""
    for quantity, value in (("loss", loss), ("gradient norm", grad_norm)):
        if value is not None and not _finite(value):
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(float(value))
            raise NonFiniteError(update, quantity, _describe(tensor))


def check_state(
    update: int,
    policy: nn.Module,
    optimizer: torch.optim.Optimizer,
    full_state: tuple[dict[str, torch.Tensor], dict] | None = None,
) -> None:
    """Raise NonFiniteError naming the first trainable parameter or optimiser state tensor (Adam
    moments) that holds a NaN or inf. Call it before a checkpoint is written. (A frozen base
    never changes: checking it would cost time and, in 16 bits, memory.)

    `full_state`: (weights by name, the optimiser's state dict, parameters numbered in
    trainable order) to check instead of the objects' own: a sharded policy's, gathered."""
    trainable = [name for name, p in policy.named_parameters() if p.requires_grad]
    if full_state is None:
        weights: dict[str, torch.Tensor] = dict(policy.named_parameters())
        by_id = {id(p): n for n, p in policy.named_parameters()}
        moments = [
            (by_id.get(id(param), "a parameter"), optimizer.state.get(param, {}))
            for group in optimizer.param_groups
            for param in group["params"]
        ]
        groups: list[dict] = optimizer.param_groups
    else:
        weights, saved = full_state
        moments = [(trainable[int(i)], state) for i, state in saved["state"].items()]
        groups = saved["param_groups"]
    for name in trainable:
        param = weights[name]
        if param.is_floating_point() and not _finite(param):
            raise NonFiniteError(update, f"parameter {name!r}", _describe(param))
    for owner, state in moments:
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                if not _finite(value):
                    raise NonFiniteError(
                        update, f"optimizer state {key!r} of {owner!r}", _describe(value)
                    )
    for group in groups:
        lr = group.get("lr")
        if isinstance(lr, (int, float)) and not math.isfinite(lr):
            raise NonFiniteError(update, "learning rate", repr(lr))


def _from_torch_distributions(error: BaseException) -> bool:
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith("torch.distributions"):
            return True
        tb = tb.tb_next
    return False


@contextmanager
def guard(update: int) -> Iterator[None]:
    """Run a rollout or an update: torch.distributions' ValueError about invalid (NaN) logits
    becomes a NonFiniteError naming `update` and the policy's action scores."""
    try:
        yield
    except ValueError as error:
        if not _from_torch_distributions(error):
            raise
        raise NonFiniteError(
            update,
            "action scores (logits) of the policy",
            "NaN, refused by torch.distributions: the parameters have grown too large",
        ) from error
