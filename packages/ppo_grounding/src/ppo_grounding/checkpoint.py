"""Training checkpoints: directories of safetensors and JSON, no pickles.

    <output_dir>/checkpoints/update_000010/
        policy/                  LLMPolicy.save_pretrained (adapter or weights, heads, config)
        optimizer.safetensors    the optimiser's tensors (Adam moments, step counts)
        optimizer.json           the optimiser's param groups (lr, betas, ...)
        rng.safetensors          torch's RNG state and the minibatch shuffler's
        trainer_state.json       counters: update, frames, episodes, elapsed time, the
                                 success-rate window
        config.json              the TrainConfig of the run
        manifest.json            size and sha256 of every file above (llm_policy.manifest)
    <output_dir>/checkpoints/latest   the name of the newest complete checkpoint

Everything is published with llm_policy.atomic: a checkpoint is written into a hidden sibling
directory, fsynced, and renamed into place; re-saving an existing checkpoint swaps the two
directories in one step, so there is no moment at which `latest` names a missing or partial
directory, and a crash at any point leaves the previous complete checkpoint on disk. Reading is
as careful: a checkpoint is checked against its manifest before anything is loaded from it, and a
damaged or missing `latest` (or one naming anything but a checkpoint directory of this run) falls
back to the newest complete checkpoint, with a CheckpointWarning.

The rest of a run directory (config.json, the rules for starting and resuming a run in it) is
run_directory.py's; loading a policy from a run, a checkpoint or a policy directory is
sources.py's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import stat
import uuid
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from llm_policy.atomic import atomic_directory, atomic_write_text
from llm_policy.manifest import CheckpointCorruptError, verify_manifest, write_manifest
from llm_policy.small_files import (
    MAX_CONFIG_BYTES,
    UnsafeFileError,
    file_kind,
    read_small_file,
    read_small_json,
)
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .finite import check_state

if TYPE_CHECKING:
    from llm_policy import LLMPolicy

CHECKPOINTS = "checkpoints"
LATEST = "latest"
CONFIG_FILE = "config.json"
STATE_FILE = "trainer_state.json"
REQUIRED_FILES = (
    "policy",
    "optimizer.safetensors",
    "optimizer.json",
    "rng.safetensors",
    STATE_FILE,
    CONFIG_FILE,
)
CHECKPOINT_NAME = re.compile(r"update_[0-9]{6,}")
"""What `latest` may hold: the name of a checkpoint directory inside checkpoints/, no path."""
MAX_POINTER_BYTES = 256
"""`latest` holds one name (update_NNNNNN); anything longer is not a pointer of ours."""
MAX_STATE_BYTES = 64 << 20
"""Bound on optimizer.json (param groups list every parameter's index: large models have many)."""


class CheckpointWarning(UserWarning):
    """A run directory needed repair: `latest` was damaged, a checkpoint was put back, ..."""


@dataclass
class TrainerState:
    update: int = 0
    """Updates completed."""
    frames: int = 0
    """Environment steps taken, summed over envs."""
    episodes: int = 0
    """Episodes finished."""
    elapsed_s: float = 0.0
    """Wall-clock seconds spent training (warm start included), summed over resumes."""
    demo_frames: int = 0
    """Expert steps imitated by the warm start before PPO (0: none)."""
    recent_returns: list[float] = field(default_factory=list)
    """The success-rate window: returns of the last episodes (oldest first), restored on resume."""


def read_json_file(path: Path, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """The JSON in `path`, a regular file of at most `max_bytes` (never a pipe, device or link,
    which could block or read without end: llm_policy.small_files); CheckpointCorruptError
    naming the file otherwise."""
    try:
        return read_small_json(path, max_bytes, path.name)
    except UnsafeFileError as error:
        why = f"unreadable ({error.problem})"
        raise CheckpointCorruptError(
            path.parent, {path.name: "unreadable"}, {path.name: why}
        ) from error
    except (OSError, ValueError) as error:
        raise CheckpointCorruptError(
            path.parent, {path.name: "unreadable"}, {path.name: f"unreadable ({error})"}
        ) from error


# ----------------------------------------------------------------------------------- checkpoints
def checkpoint_dir(output_dir: str | os.PathLike, update: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"update_{update:06d}"


def _optimizer_to_files(state_dict: dict) -> tuple[dict, dict]:
    tensors, scalars = {}, {}
    for param_id, param_state in state_dict["state"].items():
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{param_id}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{param_id}.{name}"] = value
    meta = {"param_groups": state_dict["param_groups"], "scalars": scalars}
    return tensors, meta


def _optimizer_from_files(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    for key, value in meta["scalars"].items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    output_dir: str | os.PathLike,
    *,
    policy: LLMPolicy,
    optimizer: torch.optim.Optimizer,
    shuffle_generator: torch.Generator,
    state: TrainerState,
    config_json: str,
    keep_last: int | None = None,
    full_state: tuple[dict[str, torch.Tensor], dict] | None = None,
) -> Path:
    """Write the checkpoint of `state.update` and point `latest` at it; returns its directory.

    If `latest` already names a complete checkpoint of this update (the final save right after a
    checkpoint_every save, or a finished run resumed), nothing is written: rewriting it would
    need room for a second copy, so a nearly full disk would fail a run that has finished, and
    every resume of it. Another existing checkpoint of the same update (one `latest` does not
    name) is replaced in one step: `latest` keeps naming a complete directory throughout. A
    policy or optimiser holding NaN/inf raises finite.NonFiniteError and nothing is written. A
    failed write (a full disk) raises OSError, whatever library wrote the file, and leaves the
    checkpoint of that name and `latest` as they were.

    With `keep_last` N (None: the run.keep_last of `config_json`; absent, every checkpoint is
    kept) the checkpoints before this one are then deleted but the N - 1 newest, never the one
    `latest` names.

    `full_state`: (the policy's weights, the optimiser's state dict) to write instead of the
    objects' own, for a policy sharded across processes (sharding.gather_full_state); the
    checkpoint is the same as one process's.
    """
    final = checkpoint_dir(output_dir, state.update)
    if keep_last is None:
        keep_last = _keep_last(config_json)
    if _already_published(final, state):
        _remove_old_checkpoints(final, keep_last)
        return final
    weights, optimizer_state = full_state or (None, optimizer.state_dict())
    if hasattr(policy, "named_parameters"):  # NaN/inf never reach a checkpoint (finite.py)
        check_state(state.update, policy, optimizer, full_state)
    try:
        with atomic_directory(final, marker=STATE_FILE) as tmp:
            if weights is None:
                policy.save_pretrained(tmp / "policy")
            else:
                policy.save_pretrained(tmp / "policy", state_dict=weights)
            tensors, meta = _optimizer_to_files(optimizer_state)
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            (tmp / "optimizer.json").write_text(json.dumps(meta, indent=1))
            save_file(
                {"torch": torch.get_rng_state(), "shuffle": shuffle_generator.get_state()},
                str(tmp / "rng.safetensors"),
            )
            (tmp / STATE_FILE).write_text(json.dumps(asdict(state), indent=1))
            (tmp / CONFIG_FILE).write_text(config_json)
            write_manifest(tmp)  # last: sizes and hashes of every file above, checked at load
    except SafetensorError as error:
        raise _as_os_error(error, final) from error
    atomic_write_text(final.parent / LATEST, final.name)
    _remove_old_checkpoints(final, keep_last)  # only once the new one is published
    return final


_OS_ERROR = re.compile(r"\(os error ([0-9]+)\)")
"""How safetensors (Rust) words the system error under a failed write."""


def _as_os_error(error: SafetensorError, final: Path) -> Exception:
    """The OSError under a safetensors write failure (e.g. "Error while serializing: I/O error:
    No space left on device (os error 28)"), so a full disk reads like any other failed write
    (`OSError: [Errno 28] No space left on device`); other SafetensorErrors are returned as
    they are."""
    match = _OS_ERROR.search(str(error))
    if match is None:
        return error
    code = int(match.group(1))
    return OSError(code, os.strerror(code), str(final))


def _already_published(final: Path, state: TrainerState) -> bool:
    """`latest` names `final`, which is complete (every file and its manifest, written last)
    and holds update `state.update`."""
    problem, target = _pointer_problem(final.parent)
    if target is None or target.name != final.name or not is_complete(final):
        return False
    if not (final / "manifest.json").is_file():
        return False
    try:
        saved = read_json_file(final / STATE_FILE)
    except CheckpointCorruptError:
        return False
    return isinstance(saved, dict) and saved.get("update") == state.update


def _keep_last(config_json: str) -> int | None:
    """run.keep_last of a config's JSON (None when absent or not a positive int)."""
    try:
        value = json.loads(config_json).get("run", {}).get("keep_last")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _remove_old_checkpoints(newest: Path, keep_last: int | None) -> None:
    """Delete the checkpoints before `newest` but the keep_last - 1 newest of them (nothing with
    keep_last None). Never the one `latest` names; checkpoints after `newest` (left by an
    attempt that resumed from an older one) are left for the run to replace. Each is renamed to
    a hidden temporary name first, so a kill mid-removal never leaves a partial directory under
    a checkpoint's name (`tidy_run_directory` removes the rest). A failure only warns: the new
    checkpoint is safe, and the run goes on."""
    if keep_last is None:
        return
    checkpoints = newest.parent
    _, named = _pointer_problem(checkpoints)
    number = _update_of(newest)
    older = [
        p
        for p in checkpoints.iterdir()
        if CHECKPOINT_NAME.fullmatch(p.name) and p.is_dir() and not p.is_symlink()
    ]
    older = [p for p in older if _update_of(p) < number and (named is None or p != named)]
    older.sort(key=_update_of, reverse=True)
    for path in older[max(keep_last - 1, 0) :]:
        hidden = checkpoints / f".{path.name}.tmp-removed-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, hidden)
            shutil.rmtree(hidden)
        except OSError as error:
            warnings.warn(
                f"run.keep_last {keep_last}: could not remove {path} ({error}); remove it by "
                "hand if the space is needed.",
                CheckpointWarning,
                stacklevel=3,
            )


def _update_of(path: Path) -> int:
    return int(path.name.split("_")[1])


def is_complete(path: Path) -> bool:
    """`path` holds every file of a checkpoint (not checked against its manifest)."""
    return path.is_dir() and all((path / name).exists() for name in REQUIRED_FILES)


def complete_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """The run's checkpoint directories that hold every file, newest first (symlinks ignored)."""
    checkpoints = Path(output_dir) / CHECKPOINTS
    if not checkpoints.is_dir():
        return []
    found = [
        p
        for p in checkpoints.iterdir()
        if CHECKPOINT_NAME.fullmatch(p.name) and not p.is_symlink() and is_complete(p)
    ]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]), reverse=True)


def verify_checkpoint(path: str | os.PathLike) -> Path:
    """Check every file of checkpoint `path` against its manifest (llm_policy.manifest) before
    anything reads it: CheckpointCorruptError names each missing, truncated or changed file.
    A checkpoint written before manifests existed is only checked for its files' presence."""
    path = Path(path)
    missing = [name for name in REQUIRED_FILES if not os.path.lexists(path / name)]
    if not verify_manifest(path) and missing:
        raise FileNotFoundError(f"checkpoint {path} is incomplete: missing {missing}.")
    _check_kinds(path)
    return path


def _check_kinds(path: Path) -> None:
    """Each required entry of checkpoint `path` is what it should be (policy/ a directory, the
    rest regular files; no symbolic links), so no loader opens a pipe or a device. The manifest
    checks the same for every file it lists; this also covers a checkpoint without one."""
    problems, details = {}, {}
    for name in REQUIRED_FILES:
        try:
            mode = os.lstat(path / name).st_mode
        except FileNotFoundError:
            problems[name] = details[name] = "missing"
            continue
        wanted = stat.S_ISDIR if name == "policy" else stat.S_ISREG
        if not wanted(mode):
            problems[name] = "not a regular file"
            details[name] = f"not a {'directory' if name == 'policy' else 'regular file'} ("
            details[name] += f"{file_kind(mode)})"
    if problems:
        raise CheckpointCorruptError(path, problems, details)


def _pointer_problem(checkpoints: Path) -> tuple[str | None, Path | None]:
    """(what is wrong with `latest`, None) or (None, the checkpoint it names)."""
    pointer = checkpoints / LATEST
    if not os.path.lexists(pointer):
        return "is missing", None
    try:  # a regular file of a few bytes: a pipe, a device or a link is refused, never read
        data = read_small_file(pointer, MAX_POINTER_BYTES, "checkpoint pointer")
    except UnsafeFileError as error:
        return error.problem, None
    except OSError as error:
        return f"cannot be read ({error.strerror})", None
    # Its content is never shown: `latest` may be a copy of any file (a key, /etc/passwd).
    try:
        name = data.decode("ascii").strip()
    except UnicodeDecodeError:
        return f"cannot be read (its {len(data)} bytes are not a checkpoint name)", None
    if not name:
        return f"holds '', not the name of a checkpoint inside {checkpoints}", None
    if not CHECKPOINT_NAME.fullmatch(name):
        return (
            f"holds {len(data)} bytes that are not the name of a checkpoint inside "
            f"{checkpoints} (update_NNNNNN; the content is not shown)"
        ), None
    target = checkpoints / name
    if target.is_symlink():
        return f"names {name}, a symbolic link (a checkpoint is a directory of the run)", None
    if not target.is_dir():
        return f"names {name}, which does not exist", None
    return None, target


def latest_checkpoint(output_dir: str | os.PathLike) -> Path:
    """The run's newest complete checkpoint, checked against its manifest.

    That is the one `checkpoints/latest` names. If `latest` is missing, unreadable, names no
    checkpoint directory of this run (a path, `..`, a symbolic link) or a missing one, the
    newest complete checkpoint that passes its manifest is used instead, with a
    CheckpointWarning that says so. A FileNotFoundError says what to do when there is none;
    CheckpointCorruptError names the damaged files of the checkpoint `latest` names.
    """
    checkpoints = Path(output_dir) / CHECKPOINTS
    problem, target = _pointer_problem(checkpoints)
    if target is not None:
        return verify_checkpoint(target)
    skipped = []
    for candidate in complete_checkpoints(output_dir):
        try:
            verify_checkpoint(candidate)
        except (CheckpointCorruptError, FileNotFoundError) as error:
            skipped.append(f"{candidate.name} ({str(error).splitlines()[0]})")
            continue
        warnings.warn(
            f"{checkpoints / LATEST} {problem}: using the newest complete checkpoint, "
            f"{candidate.name}, instead"
            + (f" (skipped, damaged: {'; '.join(skipped)})" if skipped else "")
            + ".",
            CheckpointWarning,
            stacklevel=2,
        )
        return candidate
    if problem == "is missing" and not skipped:
        raise FileNotFoundError(
            f"no checkpoint to resume from in {output_dir!s}: {checkpoints / LATEST} does not "
            "exist. Start the run without --run.resume, or point --run.output-dir at a run that "
            "wrote one."
        )
    raise FileNotFoundError(
        f"no complete checkpoint in {output_dir!s}: {checkpoints / LATEST} {problem}"
        + (f", and every checkpoint is damaged: {'; '.join(skipped)}" if skipped else "")
        + ". Start the run again without --run.resume, in another --run.output-dir."
    )


def load_training_state(
    path: Path,
    optimizer: torch.optim.Optimizer,
    shuffle_generator: torch.Generator,
    *,
    load_optimizer: Callable[[dict], None] | None = None,
) -> TrainerState:
    """Restore the optimiser and RNGs from checkpoint `path` and return its counters.

    `load_optimizer(state_dict)` loads the saved optimiser state in place of
    `optimizer.load_state_dict` (a sharded policy's optimiser takes its shard of it).

    The policy itself is loaded by the caller with LLMPolicy.from_pretrained(path / "policy"),
    before the optimiser is built over its parameters. `path` is checked against its manifest
    first (latest_checkpoint does it; a direct caller should call verify_checkpoint).
    """
    try:
        meta = read_json_file(path / "optimizer.json", MAX_STATE_BYTES)
        saved_optimizer = _optimizer_from_files(
            load_file(str(path / "optimizer.safetensors")), meta
        )
        (load_optimizer or optimizer.load_state_dict)(saved_optimizer)
        rng = load_file(str(path / "rng.safetensors"))
        torch.set_rng_state(rng["torch"])
        shuffle_generator.set_state(rng["shuffle"])
        saved = read_json_file(path / STATE_FILE)
        known = {f.name for f in dataclasses.fields(TrainerState)}
        return TrainerState(**{k: v for k, v in saved.items() if k in known})
    except (SafetensorError, KeyError, TypeError, ValueError, RuntimeError) as error:
        if isinstance(error, CheckpointCorruptError):
            raise
        raise ValueError(
            f"checkpoint {path} cannot be restored ({type(error).__name__}: {error}); it was "
            "written by another version, or damaged without a manifest to tell which file."
        ) from error
