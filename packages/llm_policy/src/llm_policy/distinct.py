"""Computing each distinct input once: PPO's batches repeat prompts (in GoToRedBall with one
observation, a 128-frame minibatch holds about 80 distinct prompts, a 512-frame rollout about 150),
and a deterministic forward gives a repeated prompt the same output wherever it stands.

- `distinct_rows`: the first row of each distinct (prompt, candidates) and, for every row, which
  of those it repeats. `LLMPolicy.forward` scores the distinct rows and gathers: the gradient of a
  repeated row flows back to the one computation, summed, as it would to separate ones.
- `OutputMemo`: outputs remembered across calls while the weights stay fixed (a rollout).
- `has_active_dropout`: a forward with dropout is random, so neither applies there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["OutputMemo", "distinct_rows", "has_active_dropout"]

RowKey = tuple[str, tuple[str, ...] | None]


def row_keys(prompts: Sequence[str], lists: Sequence[Sequence[str]] | None) -> list[RowKey]:
    """(prompt, its candidates as a tuple) per row; `lists` holds one checked candidate list per
    prompt, or is None where the output depends on the prompt alone (an action head)."""
    if lists is None:
        return [(p, None) for p in prompts]
    as_tuples: dict[int, tuple[str, ...]] = {}  # `[actions] * n` holds one list n times
    keys: list[RowKey] = []
    for prompt, listed in zip(prompts, lists, strict=True):
        if id(listed) not in as_tuples:
            as_tuples[id(listed)] = tuple(listed)
        keys.append((prompt, as_tuples[id(listed)]))
    return keys


def distinct_rows(keys: Sequence[RowKey]) -> tuple[list[int], torch.Tensor]:
    """The first index of each distinct key, in order, and (B,) long: for each row, the position
    of its key among them."""
    position: dict[RowKey, int] = {}
    first: list[int] = []
    inverse = []
    for i, key in enumerate(keys):
        slot = position.setdefault(key, len(first))
        if slot == len(first):
            first.append(i)
        inverse.append(slot)
    return first, torch.tensor(inverse, dtype=torch.long)


def has_active_dropout(model: nn.Module) -> bool:
    """Whether a forward of `model` in its current mode drops anything at random: a dropout
    module with p > 0, or an attention layer's `attention_dropout`, in training mode."""
    for module in model.modules():
        if not module.training:
            continue
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            return True
        rate = getattr(module, "attention_dropout", 0.0)
        if isinstance(rate, float) and rate > 0:
            return True
    return False


class OutputMemo:
    """Logits rows and values by (prompt, candidates), valid while the weights do not change."""

    def __init__(self) -> None:
        self.logits: dict[RowKey, torch.Tensor] = {}  # (A,) this row's candidates only
        self.values: dict[RowKey, torch.Tensor] = {}  # () scalar

    def missing(self, keys: Sequence[RowKey]) -> list[int]:
        """The first index of each distinct key not yet remembered."""
        first, _ = distinct_rows(keys)
        return [i for i in first if keys[i] not in self.logits]

    def store(self, keys: Sequence[RowKey], logits: torch.Tensor, values: torch.Tensor) -> None:
        for row, key in enumerate(keys):
            width = logits.shape[1] if key[1] is None else len(key[1])
            self.logits[key] = logits[row, :width]
            self.values[key] = values[row]

    def gather(self, keys: Sequence[RowKey]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, A_max) logits, -inf past a row's candidates, and (B,) values."""
        rows = [self.logits[key] for key in keys]
        width = max(row.shape[0] for row in rows)
        logits = rows[0].new_full((len(rows), width), float("-inf"))
        for i, row in enumerate(rows):
            logits[i, : row.shape[0]] = row
        return logits, torch.stack([self.values[key] for key in keys])
