"""A run directory: what it holds besides checkpoints, and what it may be used for.

    <output_dir>/config.json                the TrainConfig of the run
    <output_dir>/metrics.jsonl              one row per update (metrics.py)
    <output_dir>/checkpoints/               checkpoint.py
    <output_dir>/run.lock                   held by the job training in it (run_lock.py)

A new run refuses a directory that already holds a run; a resumed run continues from the latest
checkpoint, whose config must be this run's except for RESUMABLE_CHANGES (`resume_point`);
`ppo-grounding train --run.resume` starts from the run's own config (`resume_defaults`).
`RunDirectory` is a training job's hold on its directory, from its start to `close()`: the lock,
the checkpoint it resumes from, config.json and the metrics logger.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

from llm_policy.atomic import atomic_write_text, clean_leftovers
from llm_policy.small_files import MAX_CONFIG_BYTES, read_small_json

from .checkpoint import (
    CHECKPOINT_NAME,
    CHECKPOINTS,
    CONFIG_FILE,
    CheckpointWarning,
    complete_checkpoints,
    is_complete,
    latest_checkpoint,
    read_json_file,
)
from .config import TrainConfig
from .metrics import METRICS_FILE, MetricsLogger, read_metrics
from .run_lock import RunLock

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
        "dist.shard",
    }
)
"""Config fields that may differ between a run and its resumption; anything else must match.
(run.output_dir: the directory the checkpoint was found in is the run, wherever it was moved.)"""


class RunDirectory:
    """One training job's hold on `config.run.output_dir` until `close()`.

    The main process (`main=True`) takes the run's lock at once (run_lock.py: a second job in
    the directory is refused) and later writes config.json and the metrics; the other processes
    of a multi-process run hold nothing here.
    """

    def __init__(self, config: TrainConfig, *, main: bool = True) -> None:
        self.config = config
        self.path = Path(config.run.output_dir)
        self.lock = RunLock(self.path) if main else None
        """Held until `close()`; None on the processes other than the main one."""
        self.logger: MetricsLogger | None = None
        """metrics.jsonl and TensorBoard, once `start_logging` ran on the main process."""

    def resume_point(self) -> Path | None:
        """The checkpoint this run continues from, or None (module function `resume_point`)."""
        return resume_point(self.config)

    def start_logging(self, *, keep_until_update: int | None) -> MetricsLogger | None:
        """Write the run's config.json and open its metrics logger (the main process only;
        None elsewhere). A resumed run keeps the metrics rows up to `keep_until_update`."""
        if self.lock is None:
            return None
        self.path.mkdir(parents=True, exist_ok=True)
        write_run_config(self.path, self.config.to_json())
        self.logger = MetricsLogger(
            self.path, tensorboard=self.config.run.tensorboard, keep_until_update=keep_until_update
        )
        return self.logger

    def close(self) -> None:
        """Close the logger and release the lock (both may be closed again: a no-op)."""
        if self.logger is not None:
            self.logger.close()
        if self.lock is not None:
            self.lock.release()


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
        check_resumable(read_json_file(saved_config), config, source=saved_config)
        warnings.warn(
            f"{output_dir} holds a run that was stopped before its first checkpoint: it starts "
            "again from update 0 (its metrics are rewritten).",
            CheckpointWarning,
            stacklevel=2,
        )
        return None
    check_resumable(
        read_json_file(checkpoint / CONFIG_FILE), config, source=checkpoint / CONFIG_FILE
    )
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
            if CHECKPOINT_NAME.fullmatch(final.name) and not final.exists() and is_complete(entry):
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
            if key not in RESUMABLE_CHANGES and value != now and not same_path(value, now):
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
    saved.run.max_minutes = config.run.max_minutes
    return saved


def parse_saved_config(saved: Any, source: str | os.PathLike) -> TrainConfig:
    """The TrainConfig that the JSON value `saved` (read from `source`) holds; a ValueError
    naming `source` and the fix when it is not a whole config ([], "x", {"ppo": 5}, missing
    sections, unknown fields, values no section accepts)."""
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


def same_path(a: Any, b: Any) -> bool:
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
