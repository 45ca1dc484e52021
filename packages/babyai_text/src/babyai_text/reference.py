"""A slow reference describer, for tests and benchmarks only (not exported by `babyai_text`).

`reference_describe(grid, vis_mask)` writes the English descriptions the obvious way: one Python
pass over the cells of a `gen_obs_grid` view, with `grid.get` and the visibility mask. The envs
use `babyai_text.describe_view`, which reads minigrid's encoded view and is several times
faster; the tests check that the two agree on real views, and `benchmarks/env_throughput.py`
times one against the other.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from minigrid.core.grid import Grid
from minigrid.core.world_object import Door

__all__ = ["reference_describe"]


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def _where(dx: int, dy: int) -> str:
    side = "left" if dx < 0 else "right"
    if dx == 0:
        return f"{_steps(dy)} forward"
    if dy == 0:
        return f"{_steps(abs(dx))} {side}"
    return f"{_steps(abs(dx))} {side} and {_steps(dy)} forward"


def reference_describe(grid: Grid, vis_mask: np.ndarray) -> list[str]:
    """English descriptions of a `gen_obs_grid` view (agent at the bottom centre), cell by cell."""
    size = grid.width
    ax, ay = size // 2, size - 1
    out = []
    carried = grid.get(ax, ay)
    if carried is not None:
        out.append(f"You carry a {carried.color} {carried.type}")
    lines = (
        ("forward", [(ax, j) for j in range(ay - 1, -1, -1)]),
        ("left", [(i, ay) for i in range(ax - 1, -1, -1)]),
        ("right", [(i, ay) for i in range(ax + 1, size)]),
    )
    for name, cells in lines:
        for i, j in cells:
            if not vis_mask[i, j]:
                continue
            cell = grid.get(i, j)
            if cell is None:
                continue
            if cell.type == "wall":
                d = ay - j if name == "forward" else abs(i - ax)
                out.append(f"You see a wall {_steps(d)} {name}")
            break
    for i in range(size):
        for j in range(size):
            if (i, j) == (ax, ay) or not vis_mask[i, j]:
                continue
            cell = grid.get(i, j)
            if cell is None or cell.type == "wall":
                continue
            where = _where(i - ax, ay - j)
            if cell.type == "door":
                door = cast(Door, cell)  # minigrid's only object of type "door"
                state = "open" if door.is_open else "locked" if door.is_locked else "closed"
                article = "an" if state == "open" else "a"
                out.append(f"You see {article} {state} {cell.color} door {where}")
            else:
                out.append(f"You see a {cell.color} {cell.type} {where}")
    return out
