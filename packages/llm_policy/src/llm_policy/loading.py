"""Load any model by Hugging Face id, local path or offline name; per-architecture defaults.

One path for every model: resolve the name to something `from_pretrained` accepts, load the config,
switch dropout off (PPO ratios need deterministic forwards), load the weights from safetensors only
(never a pickle), and keep an untied output head untied. `trust_remote_code` goes to every
transformers loader as an explicit bool (False unless asked). Devices and misspelt offline names
are checked here too, before anything is built.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from .offline import OFFLINE_MODELS, offline_model_path, quiet_progress_bars
from .precision import DTYPES
from .tied_weights import protect_untied_output_head, quiet_tie_warning

__all__ = [
    "DTYPES",
    "available_devices",
    "check_device",
    "check_model_name",
    "default_lora_targets",
    "load_model_and_tokenizer",
    "model_fingerprint",
    "parse_device",
    "protect_untied_output_head",
    "resolve_model_source",
]


# LoRA targets per model_type: the attention's query and value projections, as in the LoRA paper
# and GLAM's LoRA examples. Other types fall back to peft's table.
_LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "t5": ("q", "v"),
    "mt5": ("q", "v"),
    "umt5": ("q", "v"),
    "longt5": ("q", "v"),
    "gpt2": ("c_attn",),  # GPT-2 fuses q, k, v into one Conv1D
    "llama": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"),
    "qwen3": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"),
    "gemma": ("q_proj", "v_proj"),
    "gemma2": ("q_proj", "v_proj"),
    "phi3": ("qkv_proj",),
    "bart": ("q_proj", "v_proj"),
    "opt": ("q_proj", "v_proj"),
    "gpt_neox": ("query_key_value",),
}


def default_lora_targets(model_type: str) -> tuple[str, ...]:
    """LoRA target module names for a transformers `model_type`."""
    if model_type in _LORA_TARGETS:
        return _LORA_TARGETS[model_type]
    try:
        from peft.utils.constants import (
            TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as peft_map,
        )
    except ImportError:  # pragma: no cover - depends on the peft version
        peft_map = {}
    if model_type in peft_map:
        return tuple(peft_map[model_type])
    raise ValueError(
        f"no default LoRA target modules for model_type {model_type!r}; set "
        "PolicyConfig.lora_target_modules to the names of its attention projections "
        "(e.g. ('q_proj', 'v_proj'))"
    )


def parse_device(device: Any, field: str = "device") -> str:
    """`device` as a canonical string ("cpu", "cuda", "cuda:1", "mps", ...), checked for syntax
    only (whether this machine has it is `check_device`'s job). ValueError names `field`."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or not device:
        raise ValueError(
            f"{field} must be a device name such as 'cpu', 'cuda', 'cuda:1' or 'mps', "
            f"got {device!r}; available here: {available_devices()}"
        )
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"{field}={device!r} is not a device name (e.g. 'cpu', 'cuda', 'cuda:1', 'mps'); "
            f"available here: {available_devices()}"
        ) from err
    return str(parsed)


def available_devices() -> list[str]:
    """The devices this machine has: "cpu", then "cuda" and "cuda:<i>" per GPU, "mps", "xpu"..."""
    found = ["cpu"]
    for kind in ("cuda", "xpu"):
        backend = getattr(torch, kind, None)
        if backend is not None and backend.is_available():
            found += [kind] + [f"{kind}:{i}" for i in range(backend.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def _device_exists(device: torch.device) -> bool:
    if device.type == "cpu":
        return device.index in (None, 0)
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        return mps is not None and mps.is_available() and device.index in (None, 0)
    backend = getattr(torch, device.type, None)  # torch.cuda, torch.xpu, plug-ins' modules
    is_available = getattr(backend, "is_available", None)
    if not callable(is_available) or not is_available():
        return False
    count = getattr(backend, "device_count", None)
    return device.index is None or not callable(count) or device.index < count()


def check_device(device: Any, field: str = "device") -> torch.device:
    """The `torch.device` for `device` if this machine has it; else a ValueError naming `field`
    and the devices there are (e.g. "cuda" without CUDA, "cuda:3" with two GPUs, "mps" off a Mac)."""
    parsed = torch.device(parse_device(device, field))
    if not _device_exists(parsed):
        raise ValueError(
            f"{field}={str(parsed)!r} does not exist on this machine; available devices: "
            f"{available_devices()}"
        )
    return parsed


def _looks_like_offline_name(name: str) -> list[str]:
    """The offline names `name` is probably a misspelling of ([] if it does not look like one)."""
    if name in OFFLINE_MODELS or "/" in name or os.sep in name or name.startswith((".", "~")):
        return []
    lowered = name.lower()
    close = difflib.get_close_matches(lowered, list(OFFLINE_MODELS), n=3, cutoff=0.75)
    if not close and lowered.startswith("offline"):
        close = sorted(OFFLINE_MODELS)
    return close


def check_model_name(name: Any, field: str = "model") -> None:
    """Refuse a model name that is a misspelt offline name (e.g. "offline-gtp2", "offline_t5"),
    unless a file or directory of that name exists; everything else is left to
    `resolve_model_source` (offline name, local directory or Hub id)."""
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"{field} must be a non-empty str (Hugging Face id, local path or offline name), "
            f"got {name!r}"
        )
    close = _looks_like_offline_name(name)
    if close and not Path(name).expanduser().exists():
        raise ValueError(
            f"{field}={name!r} is not an offline model; did you mean {' or '.join(map(repr, close))}? "
            f"Offline models: {sorted(OFFLINE_MODELS)} (a Hugging Face id looks like "
            "'org/name', a local model is a path to its directory)"
        )


def resolve_model_source(name: str) -> str:
    """An OFFLINE_MODELS name becomes its (built on demand) cache directory; an existing local
    directory stays a path; anything else is taken as a Hugging Face Hub id."""
    check_model_name(name)
    if name in OFFLINE_MODELS:
        return str(offline_model_path(name))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} is a directory but has no config.json: not a Hugging Face model directory"
            )
        return str(path)
    # a Hub id is "name" or "org/name"; anything else that does not exist is a mistyped path
    looks_local = (
        name.startswith(("/", ".", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name
    )
    if looks_local or path.exists():
        raise FileNotFoundError(
            f"no model directory at {path}; pass a Hugging Face id (e.g. 'google/flan-t5-small'), "
            f"a local model directory, or one of {sorted(OFFLINE_MODELS)}"
        )
    return name


def _disable_dropout(config) -> None:
    for key, value in list(config.to_dict().items()):
        if ("dropout" in key or "pdrop" in key) and isinstance(value, float) and value > 0:
            try:
                setattr(config, key, 0.0)
            except (AttributeError, TypeError, ValueError):  # pragma: no cover - exotic configs
                pass


def _hub_offline() -> bool:
    try:
        from huggingface_hub.constants import is_offline_mode
    except ImportError:  # pragma: no cover - older huggingface_hub
        return any(
            os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE")
            for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
        )
    return is_offline_mode()


def load_model_and_tokenizer(
    name: str,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    disable_dropout: bool = True,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
):
    """Load (model, tokenizer) for `name` (offline name, local directory or HF id).

    Encoder-decoder configs load with AutoModelForSeq2SeqLM, others with AutoModelForCausalLM.
    Weights come from safetensors only. `trust_remote_code` is passed to every transformers loader
    (config, model, tokenizer) as the bool given, False by default: a model that needs its own
    Python code is refused rather than run (and never prompts interactively).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}")
    if not isinstance(trust_remote_code, bool):
        raise ValueError(f"trust_remote_code must be True or False, got {trust_remote_code!r}")
    target = check_device(device)
    source = resolve_model_source(name)
    remote = {"trust_remote_code": trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(source, **remote)
    except OSError as err:
        if not Path(source).is_dir() and _hub_offline():
            raise OSError(
                f"model {name!r} could not be found offline: it is not in the local Hugging Face "
                "cache and the Hub is switched off (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is "
                "set). Pass a local model directory, an offline model "
                f"({', '.join(sorted(OFFLINE_MODELS))}), or allow the Hub (unset HF_HUB_OFFLINE "
                "where the Hub can be reached) to download it into the cache once."
            ) from err
        raise
    # The tokenizer first: a directory without one fails in a second, not after the weights load.
    _check_has_tokenizer(name, source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **remote)
    except Exception as err:
        # transformers says only "Expecting value: line 1 column 1", not which file it read
        broken = _unreadable_tokenizer_files(source)
        if not broken:
            raise
        raise ValueError(
            f"{name}: the tokenizer file(s) {', '.join(map(str, broken))} are not valid JSON "
            f"({err}); the file was damaged or is not a tokenizer file: replace it with a good "
            "copy (download or copy the model again, or save the tokenizer with "
            "tokenizer.save_pretrained)."
        ) from err
    if disable_dropout:
        _disable_dropout(config)
    auto_cls = (
        AutoModelForSeq2SeqLM
        if getattr(config, "is_encoder_decoder", False)
        else AutoModelForCausalLM
    )
    kwargs = {"config": config, "dtype": DTYPES[dtype], "use_safetensors": True, **remote}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    offline = name in OFFLINE_MODELS or (Path(source) / "llm_policy_offline.json").is_file()
    quiet = quiet_progress_bars() if offline else contextlib.nullcontext()
    with quiet_tie_warning(), quiet:
        try:
            model = auto_cls.from_pretrained(source, **kwargs)
        except OSError as err:
            if "safetensors" in str(err).lower():
                raise OSError(
                    f"{name}: no safetensors weights found. llm-policy never loads pickled "
                    "(.bin/.pt) weights; convert the checkpoint to safetensors first."
                ) from err
            raise
    protect_untied_output_head(model)
    # transformers wraps PreTrainedModel.to with functools.wraps, whose typeshed type does not
    # bind `self`, so mypy reads `target` as the model argument
    model.to(target)  # type: ignore[arg-type]
    return model, tokenizer


_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "spiece.model",
    "vocab.json",
    "vocab.txt",
)


def _check_has_tokenizer(name: str, source: str) -> None:
    """A local model directory must hold a tokenizer: say so before any weight is read."""
    directory = Path(source)
    if directory.is_dir() and not any((directory / f).is_file() for f in _TOKENIZER_FILES):
        raise FileNotFoundError(
            f"{name}: the model directory {directory} has no tokenizer (none of "
            f"{', '.join(_TOKENIZER_FILES)}); save the model's tokenizer beside it with "
            f"tokenizer.save_pretrained('{directory}')"
        )


def _unreadable_tokenizer_files(source: str) -> list[Path]:
    """The JSON tokenizer files of a local model directory that do not parse as JSON."""
    import json

    broken = []
    for file_name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        path = Path(source) / file_name
        if not path.is_file():
            continue
        try:
            json.loads(path.read_bytes())
        except ValueError:  # JSONDecodeError, and UnicodeDecodeError for binary garbage
            broken.append(path)
    return broken


def model_fingerprint(model, sample: int = 2048) -> str:
    """A cheap identity of a model's weights (names, shapes and the first `sample` values of each
    tensor, rounded to bfloat16 so that loading the same weights in another dtype matches)."""
    h = hashlib.sha256()
    for name, param in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(param.shape)).encode())
        head = param.detach().reshape(-1)[:sample].to("cpu", torch.bfloat16).to(torch.float32)
        h.update(head.numpy().tobytes())
    return h.hexdigest()[:24]
