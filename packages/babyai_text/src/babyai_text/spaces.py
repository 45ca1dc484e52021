"""`TextSpace`: gymnasium's `Text`, made to work in `AsyncVectorEnv`'s shared memory.

Why: in gymnasium 1.4, `AsyncVectorEnv(shared_memory=True)` (the default, and what
`gym.make_vec(..., vectorization_mode="async")` builds) reads its observation buffer once, at
construction. For arrays that read is a live view, but for `Text` it decodes the strings then and
there, so every later `reset`/`step` returns the strings of that first read (empty buffers, i.e.
"\\n" * max_length with our charset). Its per-step `Text` encoding is also a Python loop over every
character. `TextSpace` is a `Text` (same contract, same checks) for which this module registers
gymnasium's shared-memory hooks: the buffer stores code points with a length prefix, writing is one
numpy copy, and the batch read is a live sequence that decodes on access and deep-copies to a plain
tuple of `str` (what `SyncVectorEnv` returns). Nothing changes for any other space.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator, Sequence
from types import ModuleType

import numpy as np
from gymnasium.spaces import Text
from gymnasium.vector.utils import (
    create_shared_memory,
    read_from_shared_memory,
    write_to_shared_memory,
)

__all__ = ["TextSpace", "SharedTextBatch"]


class TextSpace(Text):
    """`gymnasium.spaces.Text` whose batches work through `AsyncVectorEnv`'s shared memory."""


class SharedTextBatch(Sequence):
    """Live view of `n` strings in shared memory (what `AsyncVectorEnv` keeps as its buffer).

    Indexing decodes the current string; `copy.deepcopy`, `copy.copy` and pickling give a plain
    tuple of `str`, so `AsyncVectorEnv(copy=True)` (the default) returns tuples, like
    `SyncVectorEnv`.
    """

    def __init__(self, shared_memory, n: int, max_length: int) -> None:
        self._memory = shared_memory
        self._n = n
        self._stride = max_length + 1

    def _buffer(self) -> np.ndarray:
        return np.frombuffer(self._memory.get_obj(), dtype=np.int32)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self)[index]
        if not -self._n <= index < self._n:
            raise IndexError(index)
        index %= self._n
        buf = self._buffer()
        start = index * self._stride
        length = int(buf[start])
        return buf[start + 1 : start + 1 + length].tobytes().decode("utf-32-le")

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(self._n))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (SharedTextBatch, tuple, list)):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"SharedTextBatch({tuple(self)!r})"

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return tuple(self)

    def __copy__(self) -> tuple[str, ...]:
        return tuple(self)

    def __reduce__(self):
        return (tuple, (tuple(self),))


@create_shared_memory.register(TextSpace)
def _create_text_shared_memory(space: TextSpace, n: int = 1, ctx: ModuleType = mp):
    # per string: its length, then up to max_length code points
    return ctx.Array(np.dtype(np.int32).char, n * (space.max_length + 1))


@read_from_shared_memory.register(TextSpace)
def _read_text_shared_memory(space: TextSpace, shared_memory, n: int = 1) -> SharedTextBatch:
    return SharedTextBatch(shared_memory, n, space.max_length)


@write_to_shared_memory.register(TextSpace)
def _write_text_shared_memory(space: TextSpace, index: int, values: str, shared_memory) -> None:
    code_points = np.frombuffer(values.encode("utf-32-le"), dtype=np.int32)
    if len(code_points) > space.max_length:
        raise ValueError(
            f"text of {len(code_points)} characters exceeds the space's max_length "
            f"{space.max_length}"
        )
    buf = np.frombuffer(shared_memory.get_obj(), dtype=np.int32)
    start = index * (space.max_length + 1)
    buf[start] = len(code_points)
    buf[start + 1 : start + 1 + len(code_points)] = code_points
