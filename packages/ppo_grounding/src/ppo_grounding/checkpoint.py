"""Training checkpoints: a directory of safetensors and JSON, written atomically; no pickles.

    <output_dir>/checkpoints/update_000010/
        policy/                  LLMPolicy.save_pretrained (adapter or weights, heads, config)
        optimizer.safetensors    the optimiser's tensors (Adam moments, step counts)
        optimizer.json           the optimiser's param groups (lr, betas, ...)
        rng.safetensors          torch's RNG state and the minibatch shuffler's
        trainer_state.json       counters: update, frames, episodes, elapsed time
        config.json              the TrainConfig of the run
    <output_dir>/checkpoints/latest   the name of the newest complete checkpoint

A checkpoint is written into a hidden temporary directory and renamed into place only when
complete, so a crash never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

CHECKPOINTS = "checkpoints"
LATEST = "latest"
REQUIRED_FILES = (
    "policy",
    "optimizer.safetensors",
    "optimizer.json",
    "rng.safetensors",
    "trainer_state.json",
    "config.json",
)


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
    policy,
    optimizer: torch.optim.Optimizer,
    shuffle_generator: torch.Generator,
    state: TrainerState,
    config_json: str,
) -> Path:
    """Write the checkpoint of `state.update` and point `latest` at it; returns its directory."""
    final = checkpoint_dir(output_dir, state.update)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        policy.save_pretrained(tmp / "policy")
        tensors, meta = _optimizer_to_files(optimizer)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "optimizer.json").write_text(json.dumps(meta, indent=1))
        save_file(
            {"torch": torch.get_rng_state(), "shuffle": shuffle_generator.get_state()},
            str(tmp / "rng.safetensors"),
        )
        (tmp / "trainer_state.json").write_text(json.dumps(state.__dict__, indent=1))
        (tmp / "config.json").write_text(config_json)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _write_atomically(final.parent / LATEST, final.name)
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
    return TrainerState(**json.loads((path / "trainer_state.json").read_text()))


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_policy_for_eval(path: str | os.PathLike):
    """(policy, TrainConfig) from a run directory (its latest checkpoint), a checkpoint directory,
    or a bare policy directory written by LLMPolicy.save_pretrained (then the config is the default)."""
    from llm_policy import LLMPolicy

    from .config import TrainConfig

    path = Path(path)
    if (path / CHECKPOINTS / LATEST).is_file():
        path = latest_checkpoint(path)
    if (path / "policy").is_dir() and (path / "config.json").is_file():
        config = TrainConfig.from_dict(json.loads((path / "config.json").read_text()))
        return LLMPolicy.from_pretrained(path / "policy"), config
    if path.is_dir():
        return LLMPolicy.from_pretrained(path), TrainConfig()
    raise FileNotFoundError(
        f"{path} is not a run, checkpoint or policy directory: pass the --run.output-dir of a "
        "training run, one of its checkpoints/update_* directories, or a saved policy."
    )
