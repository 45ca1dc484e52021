"""A manifest of a directory's files (size and sha256 of each), written at save and checked at load.

Any directory these packages publish can carry one: `write_manifest(directory)` is called last,
inside the `atomic.atomic_directory` block, so the manifest is published together with the files it
describes; `verify_manifest(directory)` is called before anything else reads the directory, so a
truncated, bit-flipped, edited or missing file is reported by name instead of surfacing later as a
confusing error from whatever parses it (or not at all).

    with atomic_directory(path, marker=...) as tmp:
        ...  # write every file
        write_manifest(tmp)
    ...
    verify_manifest(path)  # raises CheckpointCorruptError naming each bad file

`manifest.json`:

    {
      "format": "llm-policy-manifest",
      "version": 1,
      "algorithm": "sha256",
      "files": {"heads.safetensors": {"size": 5312, "sha256": "9f2c..."}, "adapter/...": ...}
    }

Paths are relative, with "/" separators, sorted; the manifest does not list itself. A manifest
whose entries are absolute or climb out with `..` is refused as unreadable, and an entry that is a
symbolic link, a pipe or a device is reported as "not a regular file" without being followed or
opened, so checking a directory never reads anything outside it. It is an
integrity check, not a signature: it catches accidents (a disk or copy that lost or changed bytes,
a hand edit, a deleted file), not someone who can rewrite the files and the manifest together.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from pathlib import Path, PurePosixPath
from typing import Any

from .atomic import atomic_write_text
from .small_files import UnsafeFileError, file_kind, open_regular_file, read_small_json

__all__ = [
    "MANIFEST_NAME",
    "CheckpointCorruptError",
    "ManifestWarning",
    "read_manifest",
    "verify_manifest",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
_FORMAT = "llm-policy-manifest"
_VERSION = 1
_CHUNK = 1 << 20
MAX_MANIFEST_BYTES = 64 << 20
"""Bound on manifest.json's size (about 150 bytes an entry: far more files than any model has)."""
_RECOVERY = (
    "Restore the directory from a backup, save it again from the process that wrote it, or use "
    "an older checkpoint; do not load it as it is."
)
_warned_unchecked: set[str] = set()


class CheckpointCorruptError(ValueError):
    """A directory's files do not match its manifest (or the manifest itself is unreadable).

    `directory` is the checked directory; `problems` maps each bad file's relative path to what is
    wrong with it: "missing", "not a regular file" (a symbolic link, pipe, device, ... where the
    manifest lists a file: never followed or read), "truncated", "size changed", "modified" (same
    size, other bytes), "unexpected" (not listed; only with `extra="error"`) or, for manifest.json
    itself, "unreadable".
    """

    def __init__(self, directory: Path, problems: dict[str, str], details: dict[str, str]):
        self.directory = directory
        self.problems = dict(problems)
        lines = [f"  - {name}: {details.get(name, kind)}" for name, kind in problems.items()]
        super().__init__(
            f"{directory} is corrupt: {len(problems)} file(s) differ from what was saved "
            f"(checked against its {MANIFEST_NAME}):\n" + "\n".join(lines) + f"\n{_RECOVERY}"
        )


class ManifestWarning(UserWarning):
    """A directory cannot be fully checked: it has no manifest, or holds files it does not list."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    # a regular file only: a pipe or device swapped in after the checks would block or never end
    with os.fdopen(open_regular_file(path, "listed file"), "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _entry_problem(rel: Any) -> str | None:
    """Why `rel` cannot be a manifest entry, or None: entries are the relative, "/"-separated,
    normalised paths that write_manifest writes, so nothing outside the directory is ever
    checked (an absolute path or `..` would make us stat and hash files anywhere)."""
    if not isinstance(rel, str) or not rel:
        return "an entry that is not a path"
    pure = PurePosixPath(rel)
    if pure.is_absolute():
        return "an absolute path"
    if ".." in pure.parts or pure.as_posix() != rel or "." in pure.parts:
        return "a path that is not a plain relative one (`..`, `.` or doubled separators)"
    return None


def _kind_problem(directory: Path, rel: str) -> str | None:
    """What is wrong with entry `rel` of `directory` ("missing", "not a regular file (...)") or
    None, from lstat alone: no symbolic link is followed, in the entry's directories either, so
    an entry names a file inside `directory` or is refused."""
    path = directory
    parts = PurePosixPath(rel).parts
    for depth, part in enumerate(parts):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return "missing"
        except OSError as error:  # e.g. a component that is a file (ENOTDIR)
            return f"missing ({error.strerror})"
        if depth == len(parts) - 1:
            if not stat.S_ISREG(mode):
                return f"not a regular file ({file_kind(mode)})"
        elif not stat.S_ISDIR(mode):
            return f"not a regular file (its directory {part} is {file_kind(mode)})"
    return None


def _files(directory: Path) -> list[str]:
    """Relative paths ("/"-separated, sorted) of every file under `directory` but the manifest."""
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(directory).as_posix()
            if rel != MANIFEST_NAME:
                found.append(rel)
    return sorted(found)


def write_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """Write `directory/manifest.json` listing every other file under `directory` (size, sha256).

    Call it after every other file is written, inside the `atomic_directory` block, so it is
    published with them. Returns the manifest as written.
    """
    directory = Path(directory)
    files = {}
    for rel in _files(directory):
        file = directory / rel
        files[rel] = {"size": file.stat().st_size, "sha256": _sha256(file)}
    manifest = {"format": _FORMAT, "version": _VERSION, "algorithm": "sha256", "files": files}
    atomic_write_text(directory / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(directory: str | os.PathLike) -> dict[str, dict[str, Any]] | None:
    """The `files` table of `directory`'s manifest, or None if it has no manifest.json.

    Raises CheckpointCorruptError if the manifest exists but cannot be read.
    """
    directory = Path(directory)
    file = directory / MANIFEST_NAME
    if not os.path.lexists(file):  # a dangling link is not "no manifest": it is refused below
        return None

    def unreadable(why: str) -> CheckpointCorruptError:
        return CheckpointCorruptError(
            directory, {MANIFEST_NAME: "unreadable"}, {MANIFEST_NAME: f"unreadable ({why})"}
        )

    try:  # a regular file of bounded size only: never a pipe, a device or a link (small_files)
        manifest = read_small_json(file, MAX_MANIFEST_BYTES, MANIFEST_NAME)
    except UnsafeFileError as err:
        raise unreadable(err.problem) from err
    except (OSError, ValueError) as err:
        raise unreadable(str(err)) from err
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise unreadable(f"not an {_FORMAT} file")
    if manifest.get("version") != _VERSION or manifest.get("algorithm") != "sha256":
        raise unreadable(
            f"version {manifest.get('version')!r}, algorithm {manifest.get('algorithm')!r}; "
            f"this llm-policy reads version {_VERSION}, sha256"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(entry, dict)
        and isinstance(entry.get("size"), int)
        and isinstance(entry.get("sha256"), str)
        for entry in files.values()
    ):
        raise unreadable("its file table is malformed")
    for rel in files:
        problem = _entry_problem(rel)
        if problem is not None:
            raise unreadable(f"it lists {problem}; entries are paths inside the directory")
    return files


def verify_manifest(directory: str | os.PathLike, *, extra: str = "warn") -> bool:
    """Check every file `directory`'s manifest lists: present, same size, same sha256.

    Raises CheckpointCorruptError naming each missing, truncated or modified file (all of them,
    in one message) and saying how to recover. Files the manifest does not list are reported with
    a ManifestWarning (`extra="warn"`), raise too (`"error"`) or pass (`"ignore"`).
    Returns True when the directory was checked, False when it has no manifest (written before
    manifests existed): it is then loaded unchecked, with one ManifestWarning per directory and
    process.
    """
    if extra not in ("warn", "error", "ignore"):
        raise ValueError(f"extra={extra!r} is not one of ('warn', 'error', 'ignore')")
    directory = Path(directory)
    files = read_manifest(directory)
    if files is None:
        key = str(directory.expanduser().absolute())
        if key not in _warned_unchecked:
            _warned_unchecked.add(key)
            warnings.warn(
                f"{directory} has no {MANIFEST_NAME} (saved by an older version): its files "
                "cannot be checked for corruption. Save it again to add one.",
                ManifestWarning,
                stacklevel=2,
            )
        return False
    problems: dict[str, str] = {}
    details: dict[str, str] = {}
    # sizes first (cheap), hashes only of the files whose size is right
    for rel, entry in files.items():
        file = directory / rel
        kind = _kind_problem(directory, rel)
        if kind is not None:
            problems[rel] = "missing" if kind.startswith("missing") else "not a regular file"
            details[rel] = kind
            continue
        size = file.lstat().st_size
        if size < entry["size"]:
            problems[rel] = "truncated"
            details[rel] = f"truncated ({size} of {entry['size']} bytes)"
        elif size > entry["size"]:
            problems[rel] = "size changed"
            details[rel] = f"size changed ({size} bytes, {entry['size']} when saved)"
    for rel, entry in files.items():
        if rel not in problems and _sha256(directory / rel) != entry["sha256"]:
            problems[rel] = "modified"
            details[rel] = "modified (same size, different content: sha256 differs)"
    unlisted = sorted(set(_files(directory)) - set(files)) if extra != "ignore" else []
    if unlisted and extra == "error":
        for rel in unlisted:
            problems[rel] = "unexpected"
            details[rel] = "unexpected (not in the manifest)"
    if problems:
        ordered = {rel: problems[rel] for rel in sorted(problems)}
        raise CheckpointCorruptError(directory, ordered, details)
    if unlisted:
        warnings.warn(
            f"{directory} holds files its {MANIFEST_NAME} does not list (added after it was "
            f"saved; not checked): {unlisted}",
            ManifestWarning,
            stacklevel=2,
        )
    return True
