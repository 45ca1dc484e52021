"""Run directories and training checkpoints: directories of safetensors and JSON, no pickles.

    <output_dir>/config.json                the TrainConfig of the run
    <output_dir>/metrics.jsonl              one row per update (metrics.py)
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
    <output_dir>/run.lock             held by the job training in it (run_lock.py)

Everything is published with llm_policy.atomic: a checkpoint is written into a hidden sibling
directory, fsynced, and renamed into place; re-saving an existing checkpoint swaps the two
directories in one step, so there is no moment at which `latest` names a missing or partial
directory, and a crash at any point leaves the previous complete checkpoint on disk. Reading is
as careful: a checkpoint is checked against its manifest before anything is loaded from it, and a
damaged or missing `latest` (or one naming anything but a checkpoint directory of this run) falls
back to the newest complete checkpoint, with a CheckpointWarning.

This module also decides what a run directory may be used for: a new run refuses one that
already holds a run, and a resumed run must use the same config as its checkpoint
(`resume_point`); and it loads the weights a new run starts from with run.init_from
(`load_init_policy`: a policy, run or checkpoint directory, checked like the others).
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from llm_policy.atomic import atomic_directory, atomic_write_text, clean_leftovers
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
from .metrics import METRICS_FILE

if TYPE_CHECKING:
    from llm_policy import LLMPolicy

    from .config import TrainConfig

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
RESUMABLE_CHANGES = frozenset(
    {
        "ppo.total_frames",
        "run.resume",
        "run.progress",
        "run.tensorboard",
        "run.torch_threads",
        "run.checkpoint_every",
        "run.keep_last",
        "run.max_minutes",
        "run.output_dir",
    }
)
"""Config fields that may differ between a run and its resumption; anything else must match.
(run.output_dir: the directory the checkpoint was found in is the run, wherever it was moved.)"""

_POINTER = re.compile(r"update_[0-9]{6,}")
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


# ---------------------------------------------------------------------------------- run directory
def resume_point(config: TrainConfig) -> Path | None:
    """The checkpoint that this run continues from, or None for a run that starts at update 0.

    Call it while holding the run's lock (run_lock.py). It first tidies what a killed writer
    left behind (a checkpoint moved aside during a re-save is put back, hidden temporary
    directories are removed). A new run refuses an output directory that already holds a run
    (a complete checkpoint, or metrics rows), so nothing is overwritten; one killed before its
    first update (during the warm start, say) may simply be started again. A resumed run needs a
    complete checkpoint whose config matches this one except for RESUMABLE_CHANGES; a run killed
    before its first checkpoint is resumed from update 0, with a CheckpointWarning.
    """
    from .metrics import read_metrics

    output_dir = Path(config.run.output_dir)
    tidy_run_directory(output_dir)
    if not config.run.resume:
        has_rows = (output_dir / METRICS_FILE).exists() and bool(
            read_metrics(output_dir / METRICS_FILE)
        )
        if complete_checkpoints(output_dir) or has_rows:
            raise FileExistsError(
                f"{output_dir} already holds a run: pass --run.resume to continue it, or "
                "choose another --run.output-dir (nothing was overwritten)."
            )
        return None
    try:
        checkpoint = latest_checkpoint(output_dir)
    except FileNotFoundError:
        saved_config = output_dir / CONFIG_FILE
        if complete_checkpoints(output_dir) or not saved_config.is_file():
            raise
        check_resumable(_read_json(saved_config), config, source=saved_config)
        warnings.warn(
            f"{output_dir} holds a run that was stopped before its first checkpoint: it starts "
            "again from update 0 (its metrics are rewritten).",
            CheckpointWarning,
            stacklevel=2,
        )
        return None
    check_resumable(_read_json(checkpoint / CONFIG_FILE), config, source=checkpoint / CONFIG_FILE)
    return checkpoint


def tidy_run_directory(output_dir: str | os.PathLike) -> None:
    """Undo what a writer killed mid-save left in a run directory (only under the run's lock).

    Where the system cannot swap two directories in one step, re-saving a checkpoint moves the
    old one aside (`.update_N.old-*`) before renaming the new one in; a kill between the two
    renames leaves no `update_N`: the old copy, complete, is put back. Then every hidden
    temporary file or directory (llm_policy.atomic's `.*.tmp-*`, `.*.old-*`) is removed.
    """
    output_dir = Path(output_dir)
    checkpoints = output_dir / CHECKPOINTS
    if checkpoints.is_dir():
        for entry in sorted(checkpoints.iterdir()):
            name = entry.name
            if not (name.startswith(".") and ".old-" in name) or entry.is_symlink():
                continue
            final = checkpoints / name[1:].split(".old-", 1)[0]
            if _POINTER.fullmatch(final.name) and not final.exists() and _complete(entry):
                try:
                    os.rename(entry, final)
                except FileNotFoundError:  # another process of the run put it back first
                    continue
                warnings.warn(
                    f"{final} was moved aside by a save that was killed; it is put back.",
                    CheckpointWarning,
                    stacklevel=2,
                )
    for directory in (output_dir, checkpoints):
        clean_leftovers(directory)


def _read_json(path: Path, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
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


def check_resumable(
    saved: Any, config: TrainConfig, *, source: str | os.PathLike = "the checkpoint"
) -> None:
    """Raise a ValueError listing every field where `config` differs from the `saved` config of
    a checkpoint (read from `source`), other than RESUMABLE_CHANGES.

    `saved` is data from a file: anything but a whole TrainConfig (every section an object of
    known fields; a field missing from a section reads as its default, as `from_dict` reads it
    and as an older version that lacked the field behaved) is refused as damaged, so a partial
    config cannot pass for the same one.
    """
    saved_config = parse_saved_config(saved, source)
    current, before = config.to_dict(), saved_config.to_dict()
    differences = []
    for section, fields in before.items():
        for name, value in fields.items():
            key = f"{section}.{name}"
            now = current[section][name]
            if isinstance(value, list):
                value = tuple(value)
            if isinstance(now, list):
                now = tuple(now)
            if key not in RESUMABLE_CHANGES and value != now and not _same_path(value, now):
                differences.append(f"{key}: checkpoint has {value!r}, this run {now!r}")
    if differences:
        raise ValueError(
            "cannot resume: the config differs from the checkpoint's:\n  - "
            + "\n  - ".join(differences)
            + f"\n{RESUME_OPTIONS} Or start a new run in another --run.output-dir."
        )


RESUME_OPTIONS = (
    "`ppo-grounding train --run.output-dir DIR --run.resume` alone continues the run with its own "
    "config (DIR/config.json); options given beside it must agree with it, except "
    + ", ".join(sorted(RESUMABLE_CHANGES - {"run.resume"}))
    + ", which may change."
)


def resume_defaults(config: TrainConfig) -> TrainConfig:
    """What `ppo-grounding train --run.resume` starts from before its options apply: the run's
    own <output_dir>/config.json, so `--run.output-dir DIR --run.resume` alone continues the run
    as it was configured (`config` itself when DIR has no config.json: then the options given
    must be the run's). A config.json that cannot be read or is not a whole config is a
    ValueError naming it and the fix. run.max_minutes is the one field not taken from it."""
    output_dir = Path(config.run.output_dir)
    path = output_dir / CONFIG_FILE
    if not os.path.lexists(path):
        return config
    try:
        data = read_small_json(path, MAX_CONFIG_BYTES, "run config")
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{path} cannot be read ({error}). Restore it from a backup or from a copy in "
            f"{output_dir / CHECKPOINTS}/update_*/config.json, or start a new run in another "
            "--run.output-dir."
        ) from None
    saved = parse_saved_config(data, path)
    saved.run.output_dir = config.run.output_dir  # the directory given is the run (moved or not)
    saved.run.init_from = None  # recorded, not given: load_init_policy restores it on resume
    saved.run.resume = True
    # A time budget is not carried over (as before): give --run.max-minutes again to keep one.
    # (A cloning run saves a budget of a moment, so that its PPO continuation would stop at once.)
    saved.run.max_minutes = config.run.max_minutes
    return saved


def parse_saved_config(saved: Any, source: str | os.PathLike) -> TrainConfig:
    """The TrainConfig that the JSON value `saved` (read from `source`) holds; a ValueError
    naming `source` and the fix when it is not a whole config ([], "x", {"ppo": 5}, missing
    sections, unknown fields, values no section accepts)."""
    from .config import TrainConfig

    sections = [f.name for f in dataclasses.fields(TrainConfig)]
    problem = None
    if not isinstance(saved, dict):
        problem = f"it holds a JSON {type(saved).__name__}, not an object of sections"
    else:
        missing = [name for name in sections if name not in saved]
        not_objects = [
            name for name in sections if name in saved and not isinstance(saved[name], dict)
        ]
        if missing:
            problem = f"sections {missing} are missing (a partial config)"
        elif not_objects:
            problem = f"sections {not_objects} are not JSON objects"
    if problem is None:
        try:
            return TrainConfig.from_dict(saved)
        except (ValueError, TypeError) as error:
            problem = str(error)
    raise ValueError(
        f"{source} is not a whole run config: {problem}. It was damaged or edited; restore it "
        "from a backup (each checkpoint holds a copy of its run's config.json, checked by its "
        "manifest), or start a new run in another --run.output-dir."
    )


def _same_path(a: Any, b: Any) -> bool:
    """Two spellings of one existing path ("models/m", "./models/m/", "/abs/models/m")."""
    if not (isinstance(a, str) and isinstance(b, str) and a and b):
        return False
    try:
        pa, pb = Path(a).expanduser(), Path(b).expanduser()
        return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()
    except (OSError, ValueError):
        return False


def write_run_config(output_dir: str | os.PathLike, config_json: str) -> None:
    """<output_dir>/config.json, written atomically."""
    atomic_write_text(Path(output_dir) / CONFIG_FILE, config_json)


# ----------------------------------------------------------------------------------- checkpoints
def checkpoint_dir(output_dir: str | os.PathLike, update: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"update_{update:06d}"


def _optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    state_dict = optimizer.state_dict()
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
    """
    final = checkpoint_dir(output_dir, state.update)
    if keep_last is None:
        keep_last = _keep_last(config_json)
    if _already_published(final, state):
        _remove_old_checkpoints(final, keep_last)
        return final
    if hasattr(policy, "named_parameters"):  # NaN/inf never reach a checkpoint (finite.py)
        check_state(state.update, policy, optimizer)
    try:
        with atomic_directory(final, marker=STATE_FILE) as tmp:
            policy.save_pretrained(tmp / "policy")
            tensors, meta = _optimizer_to_files(optimizer)
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
    if target is None or target.name != final.name or not _complete(final):
        return False
    if not (final / "manifest.json").is_file():
        return False
    try:
        saved = _read_json(final / STATE_FILE)
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
        if _POINTER.fullmatch(p.name) and p.is_dir() and not p.is_symlink()
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


def _complete(path: Path) -> bool:
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
        if _POINTER.fullmatch(p.name) and not p.is_symlink() and _complete(p)
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
    if not _POINTER.fullmatch(name):
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
    path: Path, optimizer: torch.optim.Optimizer, shuffle_generator: torch.Generator
) -> TrainerState:
    """Restore the optimiser and RNGs from checkpoint `path` and return its counters.

    The policy itself is loaded by the caller with LLMPolicy.from_pretrained(path / "policy"),
    before the optimiser is built over its parameters. `path` is checked against its manifest
    first (latest_checkpoint does it; a direct caller should call verify_checkpoint).
    """
    try:
        meta = _read_json(path / "optimizer.json", MAX_STATE_BYTES)
        optimizer.load_state_dict(
            _optimizer_from_files(load_file(str(path / "optimizer.safetensors")), meta)
        )
        rng = load_file(str(path / "rng.safetensors"))
        torch.set_rng_state(rng["torch"])
        shuffle_generator.set_state(rng["shuffle"])
        saved = _read_json(path / STATE_FILE)
        known = {f.name for f in dataclasses.fields(TrainerState)}
        return TrainerState(**{k: v for k, v in saved.items() if k in known})
    except (SafetensorError, KeyError, TypeError, ValueError, RuntimeError) as error:
        if isinstance(error, CheckpointCorruptError):
            raise
        raise ValueError(
            f"checkpoint {path} cannot be restored ({type(error).__name__}: {error}); it was "
            "written by another version, or damaged without a manifest to tell which file."
        ) from error


def load_policy_for_eval(path: str | os.PathLike) -> tuple[LLMPolicy, TrainConfig]:
    """(policy, TrainConfig) from a run directory (its latest checkpoint), a checkpoint directory,
    or a bare policy directory written by LLMPolicy.save_pretrained (then the config is the
    default, and a CheckpointWarning says which env, language and history length are assumed).

    A checkpoint is checked against its manifest before anything is loaded. Its config is data
    from whoever wrote the files: its env ID must be a registered BabyAI-Text ID (no
    `module:ID` that would import code) and its policy.trust_remote_code is ignored (False).
    """
    from llm_policy import LLMPolicy

    from .config import TrainConfig, check_env_id

    path = Path(path)
    verified = False
    if (path / CHECKPOINTS).is_dir():
        path, verified = latest_checkpoint(path), True
    if (path / "policy").is_dir() and (path / CONFIG_FILE).is_file():
        if not verified:
            verify_checkpoint(path)
        config = parse_saved_config(_read_json(path / CONFIG_FILE), path / CONFIG_FILE)
        try:
            check_env_id(config.env.env_id, f"env.env_id in {path / CONFIG_FILE}")
            # as `train` checks it (types, ranges: an env.num_observations of "3" or -1 would
            # fail later, far from its cause), but not this machine's devices or paths
            config.validate(check_paths=False, check_device=False)
        except ValueError as error:
            raise ValueError(f"refusing to load {path}: {path / CONFIG_FILE}: {error}") from None
        config = dataclasses.replace(
            config, policy=dataclasses.replace(config.policy, trust_remote_code=False)
        )
        return LLMPolicy.from_pretrained(path / "policy"), config
    if path.is_dir():
        policy = LLMPolicy.from_pretrained(path)
        config = TrainConfig()
        warnings.warn(
            f"{path} is a bare policy directory (no run config): assuming env "
            f"{config.env.env_id}, language {config.env.language!r} and "
            f"{config.env.num_observations} observation(s) per prompt; pass --env-id and "
            "--num-observations to choose others.",
            CheckpointWarning,
            stacklevel=2,
        )
        return policy, config
    raise FileNotFoundError(
        f"{path} is not a run, checkpoint or policy directory: pass the --run.output-dir of a "
        "training run, one of its checkpoints/update_* directories, or a saved policy."
    )


# ------------------------------------------------------------------------------------ init from
POLICY_CONFIG_FILE = "llm_policy_config.json"
"""What marks a policy directory (LLMPolicy.save_pretrained)."""
INIT_FROM_ACCEPTED = (
    "pass a saved policy directory (LLMPolicy.save_pretrained), a run directory (the "
    "--run.output-dir of `ppo-grounding train` or `ppo-grounding clone`: its latest checkpoint's "
    "policy) or one of its checkpoints/update_* directories"
)


def load_init_policy(config: TrainConfig) -> LLMPolicy | None:
    """The policy a new run starts from with `run.init_from` (`--run.init-from PATH`); None
    without it, or when the run resumes from a checkpoint of its own.

    PATH is a policy directory, a run directory (its latest checkpoint) or a checkpoint
    directory, checked against its manifest before anything is loaded. Pass the result to
    `PPOTrainer(config, policy=...)`: the run starts with the given weights and fresh counters
    and optimiser. `config.run.init_from` is set to the directory the weights were read from
    (a checkpoint's, or the policy directory), which the run's config.json then records.

    Refused with a ValueError or FileNotFoundError naming the flag and the fix: a PATH that does
    not exist or holds no policy, a run with no complete checkpoint, a PATH inside this run's
    output directory, an action head whose size is not the env's action count, or weights that
    this run's --policy.* options do not describe (model, finetune, head, ...).

    With `run.resume`: a run that has a checkpoint continues from it and never reloads PATH, so
    giving --run.init-from is refused; without it, the run's recorded init_from is kept. A run
    stopped before its first checkpoint starts again from update 0, from its recorded PATH.
    """
    run = config.run
    output_dir = Path(run.output_dir)
    if run.resume:
        own = complete_checkpoints(output_dir)
        saved = _saved_init_from(own[0] / CONFIG_FILE if own else output_dir / CONFIG_FILE)
        if own and run.init_from is not None:
            raise ValueError(
                f"--run.init-from {run.init_from} starts a new run, but --run.resume continues "
                f"{output_dir} from its own checkpoint ({own[0].name}). Drop --run.init-from to "
                "continue it (its weights come from its checkpoint; the run's config keeps where "
                "it started from), or drop --run.resume and choose a new --run.output-dir to "
                f"start a run from {run.init_from}."
            )
        if run.init_from is None:
            run.init_from = saved  # the run's record (checked again by the resume)
        if own or run.init_from is None:
            return None
    if run.init_from is None:
        return None
    return _load_init_from(config, run.init_from)


def _saved_init_from(config_file: Path) -> str | None:
    """run.init_from of a saved config (None when absent or unreadable: the trainer's resume
    check reports a damaged file)."""
    try:
        value = read_small_json(config_file, MAX_CONFIG_BYTES).get("run", {}).get("init_from")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _load_init_from(config: TrainConfig, text: str) -> LLMPolicy:
    from llm_policy import LLMPolicy
    from llm_policy.policy import LORA, RUN_TIME, WEIGHTS, PolicyConfig

    from . import distributed
    from .config import BABYAI_ACTIONS

    flag = f"--run.init-from {text}"
    path = Path(text).expanduser()
    if not path.is_dir():
        what = "is a file, not a directory" if path.exists() else "does not exist"
        raise FileNotFoundError(f"{flag}: {path} {what}; {INIT_FROM_ACCEPTED}.")
    if (path / CHECKPOINTS).is_dir():
        if not complete_checkpoints(path):
            raise FileNotFoundError(
                f"{flag}: the run {path} has no complete checkpoint to start from (`ppo-grounding "
                "clone` and `train` write one at the end); point it at a run that finished one."
            )
        source = latest_checkpoint(path)  # checked against its manifest (policy/ included)
        policy_dir = source / "policy"
    elif (path / "policy").is_dir() and (path / CONFIG_FILE).is_file():
        source = verify_checkpoint(path)
        policy_dir = source / "policy"
    elif (path / POLICY_CONFIG_FILE).is_file():
        verify_manifest(path)  # before its config is read
        source = policy_dir = path
    else:
        raise ValueError(
            f"{flag}: {path} is not a policy, run or checkpoint directory; {INIT_FROM_ACCEPTED}."
        )
    source = source.resolve()
    own = Path(config.run.output_dir).expanduser().resolve()
    if source == own or own in source.parents:
        raise ValueError(
            f"{flag} is inside this run's --run.output-dir {config.run.output_dir}: a new run "
            "cannot start from its own weights; choose another --run.output-dir (or pass "
            "--run.resume without --run.init-from to continue that run)."
        )
    meta = _read_json(policy_dir / POLICY_CONFIG_FILE)
    saved = meta.get("config") if isinstance(meta, dict) else None
    if not isinstance(saved, dict):
        raise ValueError(f"{flag}: {policy_dir / POLICY_CONFIG_FILE} holds no policy config.")

    wanted = config.policy
    head, size = saved.get("head", "score"), saved.get("num_actions", BABYAI_ACTIONS)
    if head == "action_head" and size != config.env.num_actions:
        fix = (
            f"train with --env.extra-actions {size - BABYAI_ACTIONS} as it was, or start from "
            if isinstance(size, int) and size >= BABYAI_ACTIONS
            else "start from "
        )
        raise ValueError(
            f"{flag}: its action head outputs {size} logits, but this run's env offers "
            f"{config.env.num_actions} actions ({BABYAI_ACTIONS} + --env.extra-actions "
            f"{config.env.extra_actions}): {fix}a policy made for {config.env.num_actions} actions."
        )
    # the fields that describe the saved policy (PolicyConfig declares each field's kind): a run
    # started from it must name the same, so that its config describes what it trains; the
    # run-time fields (device, dtype, normalization, scoring, ...) are the run's own
    names = list(PolicyConfig.field_names(WEIGHTS))
    if "lora" in (saved.get("finetune"), wanted.finetune):
        names += PolicyConfig.field_names(LORA)
    if head != "action_head" and wanted.head != "action_head":
        names.remove("num_actions")  # only the action head has a size
    differences = []
    for name in names:
        value, now = saved.get(name), getattr(wanted, name)
        value = tuple(value) if isinstance(value, list) else value
        if value != now and not (name == "model" and _same_path(value, now)):
            differences.append(
                f"--policy.{name.replace('_', '-')}: {path} has {value!r}, this run {now!r}"
            )
    if differences:
        raise ValueError(
            f"{flag}: the saved policy is not the one this run's options describe:\n  - "
            + "\n  - ".join(differences)
            + "\nPass the --policy.* options it was saved with, so that the run's config "
            "describes the weights it trains."
        )
    # what a run sets on the policy it loads (LLMPolicy.from_pretrained overrides); the device
    # is this process's share of the run's
    overrides = {name: getattr(wanted, name) for name in PolicyConfig.field_names(RUN_TIME)}
    overrides["device"] = distributed.get().policy_device(wanted.device)
    policy = LLMPolicy.from_pretrained(policy_dir, **overrides)
    config.run.init_from = str(source)
    return policy
