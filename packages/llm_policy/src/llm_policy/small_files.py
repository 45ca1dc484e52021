"""Reading the small files of a saved directory (pointers, manifests, configs) without trusting it.

A directory someone sent, or one edited by hand, can hold a named pipe, a device or a symbolic
link where a small regular file belongs. `Path.read_text` on a pipe with no writer blocks forever,
on `/dev/zero` (or a link to it) reads until memory runs out, and through a link reads a file
outside the directory. `read_small_file` never does any of that: it refuses anything but a regular
file (without opening it where it can tell beforehand), opens with O_NOFOLLOW | O_NONBLOCK so
neither a link swapped in nor a pipe can catch it, checks the kind again on the open descriptor,
and refuses a file larger than the caller's bound before reading it. `open_regular_file` is the
same check for callers that stream a large file (hashing a manifest's entries).

Errors are `UnsafeFileError`, a ValueError naming the path, what was expected and the fix: a file
of the wrong kind is damaged content of a saved directory, like JSON that does not parse.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_CONFIG_BYTES",
    "UnsafeFileError",
    "file_kind",
    "open_regular_file",
    "read_small_file",
    "read_small_json",
]

MAX_CONFIG_BYTES = 1 << 20
"""Bound for a config file (a few kilobytes when written by these packages)."""

_FIX = "restore it from a backup or save the directory again; it is not read as it is"
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)  # a symbolic link is refused, not followed
    | getattr(os, "O_NONBLOCK", 0)  # opening a named pipe with no writer returns at once
    | getattr(os, "O_CLOEXEC", 0)
)


class UnsafeFileError(ValueError):
    """A path where a small regular file is expected holds something else, or too much."""

    def __init__(self, path: str | os.PathLike, what: str, problem: str, fix: str = _FIX) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{what} {self.path} {problem}; {fix}")


def file_kind(mode: int) -> str:
    """What `mode` (from stat or lstat) describes, for messages: "a named pipe", ..."""
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _refuse_kind(path: str | os.PathLike, what: str, mode: int) -> UnsafeFileError:
    return UnsafeFileError(path, what, f"is {file_kind(mode)}, not a regular file")


def open_regular_file(path: str | os.PathLike, what: str = "file") -> int:
    """An open read-only descriptor of the regular file `path` (the caller closes it).

    Raises UnsafeFileError for a symbolic link, a pipe, a device, a socket or a directory, and
    FileNotFoundError (or another OSError) when it cannot be opened.
    """
    # lstat first: a device is never opened (opening some has effects, e.g. a tape rewinds)
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _refuse_kind(path, what, mode)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as error:
        if os.path.islink(path):  # replaced by a link since the lstat (ELOOP)
            raise _refuse_kind(path, what, os.lstat(path).st_mode) from error
        raise
    try:
        mode = os.fstat(fd).st_mode  # what was opened, whatever the name points to now
        if not stat.S_ISREG(mode):
            raise _refuse_kind(path, what, mode)
        os.set_blocking(fd, True)  # a regular file: reads behave as usual
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_small_file(path: str | os.PathLike, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of the regular file `path`, refused (UnsafeFileError) if it is anything else
    or holds more than `max_bytes`; FileNotFoundError if it does not exist."""
    fd = open_regular_file(path, what)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise UnsafeFileError(
                path, what, f"is {size} bytes, more than the {max_bytes} such a file may hold"
            )
        chunks, total = [], 0
        while total <= max_bytes:  # it may grow while it is read: never past the bound
            chunk = os.read(fd, max_bytes + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise UnsafeFileError(
                path, what, f"grew past {max_bytes} bytes while it was read (still being written?)"
            )
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_small_json(
    path: str | os.PathLike, max_bytes: int = MAX_CONFIG_BYTES, what: str = "file"
) -> Any:
    """The JSON value of the regular file `path` (read with `read_small_file`).

    Raises UnsafeFileError, ValueError for text that is not UTF-8 JSON (UnicodeDecodeError and
    json.JSONDecodeError are ValueErrors; nesting too deep for the parser is one too), or
    FileNotFoundError.
    """
    data = read_small_file(path, max_bytes, what)
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply to be a config") from None
