"""Where a policy comes from: a run directory, one of its checkpoints, or a policy directory.

`source_kind` tells them apart (the one place that does); `load_policy_for_eval` loads any of
them with its run config, for evaluation and replays; `load_init_policy` loads the weights a new
run starts from with `--run.init-from`, checked against the run's options.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from llm_policy import LLMPolicy
from llm_policy.manifest import verify_manifest
from llm_policy.policy import LORA, RUN_TIME, WEIGHTS, PolicyConfig
from llm_policy.small_files import MAX_CONFIG_BYTES, read_small_json

from . import distributed
from .checkpoint import (
    CHECKPOINTS,
    CONFIG_FILE,
    STATE_FILE,
    CheckpointWarning,
    complete_checkpoints,
    latest_checkpoint,
    read_json_file,
    verify_checkpoint,
)
from .config import BABYAI_ACTIONS, TrainConfig, check_env_id
from .run_directory import parse_saved_config, same_path

POLICY_CONFIG_FILE = "llm_policy_config.json"
"""What marks a policy directory (LLMPolicy.save_pretrained)."""

SourceKind = Literal["run", "checkpoint", "policy", "other"]


def source_kind(path: Path) -> SourceKind:
    """What directory `path` is: a "run" (it has checkpoints/, even if its `latest` is
    damaged), a "checkpoint" (policy/ beside the run's config.json), a "policy" directory
    (LLMPolicy.save_pretrained's llm_policy_config.json), or "other" (none of these, or no
    directory at all)."""
    if (path / CHECKPOINTS).is_dir():
        return "run"
    if (path / "policy").is_dir() and (path / CONFIG_FILE).is_file():
        return "checkpoint"
    if (path / POLICY_CONFIG_FILE).is_file():
        return "policy"
    return "other"


def load_policy_for_eval(
    path: str | os.PathLike, *, report: Callable[[str], object] | None = None
) -> tuple[LLMPolicy, TrainConfig]:
    """(policy, TrainConfig) from a run directory (its latest checkpoint), a checkpoint directory,
    or a bare policy directory written by LLMPolicy.save_pretrained (then the config is the
    default, and a CheckpointWarning says which env, language and history length are assumed).

    A checkpoint is checked against its manifest before anything is loaded. Its config is data
    from whoever wrote the files: its env ID must be a registered BabyAI-Text ID (no
    `module:ID` that would import code) and its policy.trust_remote_code is ignored (False).
    `report`, if given, receives one line naming what was loaded (for a checkpoint: its
    directory, update and frames).
    """
    path = Path(path)
    kind = source_kind(path)
    if kind == "run":
        path, kind = latest_checkpoint(path), "checkpoint"  # checked against its manifest
    elif kind == "checkpoint":
        verify_checkpoint(path)
    if kind == "checkpoint":
        config = parse_saved_config(read_json_file(path / CONFIG_FILE), path / CONFIG_FILE)
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
        policy = LLMPolicy.from_pretrained(path / "policy")
        if report is not None:
            report(f"loaded {path}{_counts(path)}")
        return policy, config
    if path.is_dir():
        policy = LLMPolicy.from_pretrained(path)
        if report is not None:
            report(f"loaded the policy directory {path} (no run config)")
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


def _counts(checkpoint: Path) -> str:
    """ " (update U, F frames)" from a checkpoint's trainer state; "" where it cannot be read (the
    checkpoint's name still says which)."""
    try:
        state = read_json_file(checkpoint / STATE_FILE)
        return f" (update {int(state['update'])}, {int(state['frames']):,} frames)"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


# ------------------------------------------------------------------------------------ init from
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
    flag = f"--run.init-from {text}"
    path = Path(text).expanduser()
    if not path.is_dir():
        what = "is a file, not a directory" if path.exists() else "does not exist"
        raise FileNotFoundError(f"{flag}: {path} {what}; {INIT_FROM_ACCEPTED}.")
    kind = source_kind(path)
    if kind == "run":
        if not complete_checkpoints(path):
            raise FileNotFoundError(
                f"{flag}: the run {path} has no complete checkpoint to start from (`ppo-grounding "
                "clone` and `train` write one at the end); point it at a run that finished one."
            )
        source = latest_checkpoint(path)  # checked against its manifest (policy/ included)
        policy_dir = source / "policy"
    elif kind == "checkpoint":
        source = verify_checkpoint(path)
        policy_dir = source / "policy"
    elif kind == "policy":
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
    meta = read_json_file(policy_dir / POLICY_CONFIG_FILE)
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
        if value != now and not (name == "model" and same_path(value, now)):
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
