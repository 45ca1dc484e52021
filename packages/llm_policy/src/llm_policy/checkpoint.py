"""Writing checkpoint directories atomically.

A checkpoint is written into a temporary sibling directory and renamed into place only once every
file is complete, so an exception or a crash never leaves a half-written checkpoint under the
final name (at worst a `.<name>.tmp-*` directory beside it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_directory"]


@contextmanager
def atomic_directory(path: str | os.PathLike, *, marker: str) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces `path`.

    An existing `path` is replaced only if it holds `marker` (i.e. it is a checkpoint of ours) or
    is empty, so a mistyped path never wipes unrelated files.
    """
    final = Path(path).expanduser().absolute()
    if final.exists():
        if not final.is_dir():
            raise FileExistsError(f"{final} exists and is not a directory")
        if any(final.iterdir()) and not (final / marker).is_file():
            raise FileExistsError(
                f"refusing to overwrite {final}: it is not empty and holds no {marker} "
                "(not a checkpoint written by llm-policy); choose another directory"
            )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
