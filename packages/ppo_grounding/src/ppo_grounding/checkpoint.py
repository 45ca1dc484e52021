"""Run directories and training checkpoints: directories of safetensors and JSON, no pickles.

    <output_dir>/config.json                the TrainConfig of the run
    <output_dir>/metrics.jsonl              one row per update (metrics.py)
    <output_dir>/checkpoints/update_000010/
        policy/                  LLMPolicy.save_pretrained (adapter or weights, heads, config)
        optimizer.safetensors    the optimiser's tensors (Adam moments, step counts)
        optimizer.json           the optimiser's param groups (lr, betas, ...)
        rng.safetensors          torch's RNG state and the minibatch shuffler's
        trainer_state.json       counters: update, frames, episodes, elapsed time
        config.json              the TrainConfig of the run
    <output_dir>/checkpoints/latest   the name of the newest complete checkpoint

Everything is published with llm_policy.atomic: a checkpoint is written into a hidden sibling
directory, fsynced, and renamed into place; re-saving an existing checkpoint swaps the two
directories in one step, so there is no moment at which `latest` names a missing or partial
directory, and a crash at any point leaves the previous complete checkpoint on disk.

This module also decides what a run directory may be used for: a new run refuses one that
already holds a run, and a resumed run must use the same config as its checkpoint
(`resume_point`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from llm_policy.atomic import atomic_directory, atomic_write_text, clean_leftovers
from safetensors.torch import load_file, save_file

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
        "run.max_minutes",
    }
)
"""Config fields that may differ between a run and its resumption; anything else must match."""


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


# ---------------------------------------------------------------------------------- run directory
def resume_point(config: TrainConfig) -> Path | None:
    """The checkpoint that this run continues from, or None for a new run.

    A new run refuses an output directory that already holds a run (checkpoints or metrics), so
    nothing is overwritten; a resumed run needs a complete checkpoint whose config matches this
    one except for RESUMABLE_CHANGES. What a killed writer left behind (hidden temporary
    directories) is removed before resuming.
    """
    output_dir = Path(config.run.output_dir)
    if not config.run.resume:
        if any((output_dir / name).exists() for name in (CHECKPOINTS, METRICS_FILE)):
            raise FileExistsError(
                f"{output_dir} already holds a run: pass --run.resume to continue it, or "
                "choose another --run.output-dir (nothing was overwritten)."
            )
        return None
    for directory in (output_dir, output_dir / CHECKPOINTS):
        clean_leftovers(directory)
    checkpoint = latest_checkpoint(output_dir)
    check_resumable(json.loads((checkpoint / CONFIG_FILE).read_text()), config)
    return checkpoint


def check_resumable(saved: dict[str, dict[str, Any]], config: TrainConfig) -> None:
    """Raise a ValueError listing every field where `config` differs from the `saved` config of
    a checkpoint, other than RESUMABLE_CHANGES."""
    current = config.to_dict()
    differences = []
    for section, fields in saved.items():
        for name, value in fields.items():
            key = f"{section}.{name}"
            now = current.get(section, {}).get(name)
            if isinstance(value, list):
                value = tuple(value)
            if isinstance(now, list):
                now = tuple(now)
            if key not in RESUMABLE_CHANGES and value != now:
                differences.append(f"{key}: checkpoint has {value!r}, this run {now!r}")
    if differences:
        raise ValueError(
            "cannot resume: the config differs from the checkpoint's:\n  - "
            + "\n  - ".join(differences)
            + "\nPass the same options as the original run (only total_frames and run.* display "
            "options may change), or start a new run in another --run.output-dir."
        )


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
) -> Path:
    """Write the checkpoint of `state.update` and point `latest` at it; returns its directory.

    An existing checkpoint of the same update (the final save right after a checkpoint_every
    save) is replaced in one step: `latest` keeps naming a complete directory throughout.
    """
    final = checkpoint_dir(output_dir, state.update)
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
    atomic_write_text(final.parent / LATEST, final.name)
    return final


def latest_checkpoint(output_dir: str | os.PathLike) -> Path:
    """The newest complete checkpoint of a run, or a FileNotFoundError that says what to do."""
    pointer = Path(output_dir) / CHECKPOINTS / LATEST
    if not pointer.is_file():
        raise FileNotFoundError(
            f"no checkpoint to resume from in {output_dir!s}: {pointer} does not exist. "
            "Start the run without --run.resume, or point --run.output-dir at a run that wrote one."
        )
    path = pointer.parent / pointer.read_text().strip()
    missing = [name for name in REQUIRED_FILES if not (path / name).exists()]
    if missing:
        raise FileNotFoundError(f"checkpoint {path} is incomplete: missing {missing}.")
    return path


def load_training_state(
    path: Path, optimizer: torch.optim.Optimizer, shuffle_generator: torch.Generator
) -> TrainerState:
    """Restore the optimiser and RNGs from checkpoint `path` and return its counters.

    The policy itself is loaded by the caller with LLMPolicy.from_pretrained(path / "policy"),
    before the optimiser is built over its parameters.
    """
    meta = json.loads((path / "optimizer.json").read_text())
    optimizer.load_state_dict(
        _optimizer_from_files(load_file(str(path / "optimizer.safetensors")), meta)
    )
    rng = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(rng["torch"])
    shuffle_generator.set_state(rng["shuffle"])
    return TrainerState(**json.loads((path / STATE_FILE).read_text()))


def load_policy_for_eval(path: str | os.PathLike) -> tuple[LLMPolicy, TrainConfig]:
    """(policy, TrainConfig) from a run directory (its latest checkpoint), a checkpoint directory,
    or a bare policy directory written by LLMPolicy.save_pretrained (then the config is the default)."""
    from llm_policy import LLMPolicy

    from .config import TrainConfig

    path = Path(path)
    if (path / CHECKPOINTS / LATEST).is_file():
        path = latest_checkpoint(path)
    if (path / "policy").is_dir() and (path / CONFIG_FILE).is_file():
        config = TrainConfig.from_dict(json.loads((path / CONFIG_FILE).read_text()))
        return LLMPolicy.from_pretrained(path / "policy"), config
    if path.is_dir():
        return LLMPolicy.from_pretrained(path), TrainConfig()
    raise FileNotFoundError(
        f"{path} is not a run, checkpoint or policy directory: pass the --run.output-dir of a "
        "training run, one of its checkpoints/update_* directories, or a saved policy."
    )
