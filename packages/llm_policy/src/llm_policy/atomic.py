"""Publishing files and directories atomically: write beside, fsync, rename.

Every file or directory the three packages publish (a saved policy, an offline model build, a run
checkpoint, a metrics file, the `latest` pointer) goes through this module, so a reader never sees
a half-written one and a crash at any moment leaves the previous complete version in place:

1. the content is written into a temporary sibling (`.<name>.tmp-*`, same directory, so the
   final rename never crosses a filesystem);
2. every file and directory in it is fsynced, so the rename cannot reach the disk before the data;
3. it is renamed over the final name, and the parent directory is fsynced so the rename is durable.

Replacing an existing directory uses Linux's `renameat2(RENAME_EXCHANGE)`, which swaps the two
names in one step: there is no moment at which the final name is missing or partial. Where that
call does not exist (other systems, old kernels) the old directory is renamed aside first and the
new one renamed in; between those two renames the final name is briefly missing, but the complete
old copy is still on disk as `.<name>.old-*`, and `clean_leftovers` removes it later.

Temporary names start with a dot and carry `.tmp-` or `.old-`, so `clean_leftovers` can remove
what a killed writer left behind without touching anything else. Files are created with the
permissions the user's umask gives (0666 & ~umask), not `mkstemp`'s private 0600; so is everything
published with `atomic_directory`, whatever wrote it (safetensors writes 0600 files, a copy keeps
its source's mode).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "apply_umask",
    "atomic_directory",
    "atomic_write_bytes",
    "atomic_write_text",
    "clean_leftovers",
    "fsync_tree",
]

_TMP_TAG = ".tmp-"
_OLD_TAG = ".old-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_path(path: Path) -> None:
    """fsync one file or directory (directories: so the names in it are durable)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # e.g. directories cannot be opened on some systems: nothing more we can do
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike) -> None:
    """fsync every file and directory under `root`, deepest first, `root` last."""
    root = Path(root)
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            _fsync_path(Path(dirpath) / name)
        _fsync_path(Path(dirpath))


def apply_umask(root: str | os.PathLike[str]) -> None:
    """Give every file and directory under `root` (and `root`) the permissions a plain `open` or
    `mkdir` would under the user's umask: 0666 & ~umask for files (0777 for files that had an
    execute bit), 0777 & ~umask for directories. Some writers (safetensors, mkstemp) create private
    0600 files; copies keep their source's mode. Symlinks are left alone."""
    mask = _umask()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            file = Path(dirpath) / name
            if file.is_symlink():
                continue
            base = 0o777 if file.stat().st_mode & 0o111 else 0o666
            os.chmod(file, base & ~mask)
        for name in dirnames:
            if not (Path(dirpath) / name).is_symlink():
                os.chmod(Path(dirpath) / name, 0o777 & ~mask)
    os.chmod(root, 0o777 & ~mask)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace the file `path` with `data` atomically and durably."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}{_TMP_TAG}", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_path(final.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replace the text file `path` with `text` (UTF-8) atomically and durably."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _load_renameat2():
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _load_renameat2()
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names `a` and `b` in one step; False where the system cannot."""
    if _RENAMEAT2 is None:
        return False
    result = _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this filesystem or kernel cannot
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def _publish_directory(tmp: Path, final: Path) -> None:
    if not final.exists():
        os.rename(tmp, final)
    elif _exchange(tmp, final):
        shutil.rmtree(tmp, ignore_errors=True)  # `tmp` now holds the old version
    else:
        old = final.parent / f".{final.name}{_OLD_TAG}{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    _fsync_path(final.parent)


@contextmanager
def atomic_directory(path: str | os.PathLike, *, marker: str | None = None) -> Iterator[Path]:
    """Yield an empty temporary directory beside `path`; when the block ends without an
    exception, its contents are fsynced and it replaces `path` in one step.

    With `marker`, an existing non-empty `path` is replaced only if it holds that file (i.e. it
    was written by us), so a mistyped path never wipes unrelated files. On an exception the
    temporary directory is removed and `path` is left as it was.
    """
    final = Path(path).expanduser().absolute()
    if final.exists():
        if not final.is_dir():
            raise FileExistsError(f"{final} exists and is not a directory; choose another path")
        if marker is not None and any(final.iterdir()) and not (final / marker).is_file():
            raise FileExistsError(
                f"refusing to overwrite {final}: it is not empty and holds no {marker} "
                "(not a directory written by these packages); choose another path"
            )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}{_TMP_TAG}", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        apply_umask(tmp)
        fsync_tree(tmp)
        _publish_directory(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def clean_leftovers(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporary siblings that killed writers left in `directory`; returns them.

    Only call it where no other process is writing at the same time (e.g. under a run's lock).
    """
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        if entry.name.startswith(".") and (_TMP_TAG in entry.name or _OLD_TAG in entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
