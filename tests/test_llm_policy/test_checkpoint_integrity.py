"""Policy directories carry a manifest that from_pretrained checks before transformers or peft read
a byte; non-finite weights are never saved."""

import json
import os
import shutil
import warnings

import pytest
import torch
import transformers
from llm_policy import (
    ENGLISH_ACTION_NAMES,
    CheckpointCorruptError,
    LLMPolicy,
    ManifestWarning,
    PolicyConfig,
)

ACTIONS = list(ENGLISH_ACTION_NAMES)
PROMPT = "Goal of the agent: go to the red ball\nAction 0:"


@pytest.fixture(scope="module")
def saved(tiny_model_dir, tmp_path_factory):
    """saved(kind) -> a checkpoint directory: "lora" (tiny GPT-2 + adapter) or "full" (tiny T5,
    model/ with its tokenizer). Tests damage copies, never these."""
    root = tmp_path_factory.mktemp("integrity")
    made = {}

    def get(kind):
        if kind not in made:
            model = tiny_model_dir("gpt2" if kind == "lora" else "t5")
            policy = LLMPolicy(PolicyConfig(model=model, finetune=kind, value_head_hidden=16))
            made[kind] = policy.save_pretrained(root / kind)
        return made[kind]

    return get


def copy_of(saved, kind, tmp_path):
    return shutil.copytree(saved(kind), tmp_path / "ckpt")


@pytest.fixture
def no_transformers(monkeypatch):
    """Any attempt to hand a file to transformers fails the test: errors must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"transformers was asked to load {args}")

    for cls in (
        transformers.AutoConfig,
        transformers.AutoTokenizer,
        transformers.AutoModelForCausalLM,
        transformers.AutoModelForSeq2SeqLM,
    ):
        monkeypatch.setattr(cls, "from_pretrained", refuse)


def test_save_pretrained_writes_a_manifest_of_every_file(saved):
    for kind in ("lora", "full"):
        path = saved(kind)
        files = json.loads((path / "manifest.json").read_text())["files"]
        on_disk = sorted(
            p.relative_to(path).as_posix()
            for p in path.rglob("*")
            if p.is_file() and p.name != "manifest.json"
        )
        assert sorted(files) == on_disk
        assert "llm_policy_config.json" in files and "heads.safetensors" in files
    assert "model/tokenizer.json" in files and "model/config.json" in files


def test_a_truncated_safetensors_file_is_named(saved, tmp_path, no_transformers):
    ckpt = copy_of(saved, "full", tmp_path)
    weights = ckpt / "model" / "model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(CheckpointCorruptError, match=r"model/model.safetensors: truncated") as info:
        LLMPolicy.from_pretrained(ckpt)
    assert info.value.problems == {"model/model.safetensors": "truncated"}
    assert f"{size // 2} of {size} bytes" in str(info.value)


def test_a_flipped_byte_is_named(saved, tmp_path, no_transformers):
    ckpt = copy_of(saved, "lora", tmp_path)
    adapter = ckpt / "adapter" / "adapter_model.safetensors"
    data = bytearray(adapter.read_bytes())
    data[-7] ^= 0xFF  # inside a tensor: safetensors would load it without complaint
    adapter.write_bytes(bytes(data))
    with pytest.raises(CheckpointCorruptError, match=r"adapter_model.safetensors: modified"):
        LLMPolicy.from_pretrained(ckpt)


def test_an_edited_model_config_is_named(saved, tmp_path, no_transformers):
    ckpt = copy_of(saved, "full", tmp_path)
    config = ckpt / "model" / "config.json"
    text = config.read_text()
    assert '"model_type": "t5"' in text
    # same size, other bytes; transformers would say the architecture is not supported
    config.write_text(text.replace('"model_type": "t5"', '"model_type": "t6"'))
    with pytest.raises(CheckpointCorruptError, match=r"model/config.json: ") as info:
        LLMPolicy.from_pretrained(ckpt)
    assert info.value.problems == {"model/config.json": "modified"}
    assert "not supported" not in str(info.value)


def test_a_deleted_tokenizer_is_named(saved, tmp_path, no_transformers):
    ckpt = copy_of(saved, "full", tmp_path)
    (ckpt / "model" / "tokenizer.json").unlink()
    with pytest.raises(CheckpointCorruptError, match=r"model/tokenizer.json: missing") as info:
        LLMPolicy.from_pretrained(ckpt)
    assert "sentencepiece" not in str(info.value)


def test_an_edited_policy_config_is_named(saved, tmp_path, no_transformers):
    ckpt = copy_of(saved, "lora", tmp_path)
    meta = json.loads((ckpt / "llm_policy_config.json").read_text())
    meta["config"]["normalization"] = "word"
    (ckpt / "llm_policy_config.json").write_text(json.dumps(meta, indent=2) + "\n")
    with pytest.raises(CheckpointCorruptError, match="llm_policy_config.json"):
        LLMPolicy.from_pretrained(ckpt)


def test_without_a_manifest_a_policy_loads_with_one_warning(saved, tmp_path):
    ckpt = copy_of(saved, "lora", tmp_path)
    (ckpt / "manifest.json").unlink()  # a directory saved before manifests existed
    with pytest.warns(ManifestWarning, match="no manifest.json.*cannot be checked"):
        first = LLMPolicy.from_pretrained(ckpt)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ManifestWarning)
        second = LLMPolicy.from_pretrained(ckpt)  # warned once already
    want = LLMPolicy.from_pretrained(saved("lora"))
    with torch.no_grad():
        expected = want([PROMPT], [ACTIONS]).logits
        torch.testing.assert_close(first([PROMPT], [ACTIONS]).logits, expected)
        torch.testing.assert_close(second([PROMPT], [ACTIONS]).logits, expected)


def test_a_resaved_directory_verifies_again(saved, tmp_path):
    ckpt = copy_of(saved, "lora", tmp_path)
    (ckpt / "manifest.json").unlink()
    with pytest.warns(ManifestWarning):
        policy = LLMPolicy.from_pretrained(ckpt)
    policy.save_pretrained(ckpt)  # overwriting our own directory adds the manifest
    with warnings.catch_warnings():
        warnings.simplefilter("error", ManifestWarning)
        LLMPolicy.from_pretrained(ckpt)


# ---------------------------------------------------------------------- non-finite weights


@pytest.mark.parametrize(
    "value, what", [(float("nan"), "1 NaN, 0 inf"), (float("inf"), "0 NaN, 1 inf")]
)
def test_non_finite_heads_are_never_saved(tiny_model_dir, tmp_path, value, what):
    policy = LLMPolicy(PolicyConfig(model=tiny_model_dir("gpt2"), value_head_hidden=16))
    good = policy.save_pretrained(tmp_path / "good")
    before = {p.relative_to(good): p.read_bytes() for p in good.rglob("*") if p.is_file()}
    name, param = next(iter(policy.value_head.named_parameters()))
    with torch.no_grad():
        param.view(-1)[3] = value
    with pytest.raises(ValueError, match=rf"value_head\.{name}.*{what}.*left as it was"):
        policy.save_pretrained(good)
    after = {p.relative_to(good): p.read_bytes() for p in good.rglob("*") if p.is_file()}
    assert after == before  # the existing checkpoint is untouched
    with pytest.raises(ValueError, match="nothing was written"):
        policy.save_pretrained(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]  # no leftovers either


def test_non_finite_adapter_weights_are_named(tiny_model_dir, tmp_path):
    policy = LLMPolicy(PolicyConfig(model=tiny_model_dir("gpt2"), value_head_hidden=16))
    lora = [(n, p) for n, p in policy.named_parameters() if "lora_B" in n]
    with torch.no_grad():
        lora[1][1].view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match=rf"parameter '{lora[1][0]}' holds non-finite"):
        policy.save_pretrained(tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()


def test_a_saved_policy_follows_the_umask(saved, tmp_path):
    policy = LLMPolicy.from_pretrained(saved("lora"))
    old = os.umask(0o027)
    try:
        path = policy.save_pretrained(tmp_path / "ckpt")
    finally:
        os.umask(old)
    modes = {
        p.relative_to(path).as_posix(): p.stat().st_mode & 0o777 for p in [path, *path.rglob("*")]
    }
    assert modes["heads.safetensors"] == 0o640  # safetensors alone would have written 0600
    assert all(m == (0o750 if (path / n).is_dir() else 0o640) for n, m in modes.items()), modes
