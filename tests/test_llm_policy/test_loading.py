"""What reaches transformers, and what is refused before any model is built: trust_remote_code,
devices, misspelt offline names, Hub ids and the offline-mode message."""

import json
import shutil

import pytest
import torch
import transformers
from llm_policy import LLMPolicy, PolicyConfig, write_manifest
from llm_policy import loading as loading_module
from llm_policy.loading import available_devices, check_device, load_model_and_tokenizer

LOADERS = (
    transformers.AutoConfig,
    transformers.AutoTokenizer,
    transformers.AutoModelForCausalLM,
    transformers.AutoModelForSeq2SeqLM,
)


class Stop(Exception):
    """Raised by a stub loader: the call got that far, and no further."""


@pytest.fixture
def recorded(monkeypatch):
    """Every transformers from_pretrained call, as (class name, first argument, kwargs); the
    calls still go through to transformers."""
    calls = []
    for cls in LOADERS:
        original = cls.from_pretrained

        def spy(source, *args, _original=original, _name=cls.__name__, **kwargs):
            calls.append((_name, source, kwargs))
            return _original(source, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    return calls


@pytest.fixture
def nothing_built(monkeypatch):
    """Fail the test if any model, config or tokenizer is loaded (or an offline model built)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the error")

    for cls in LOADERS:
        monkeypatch.setattr(cls, "from_pretrained", refuse)
    monkeypatch.setattr(loading_module, "offline_model_path", refuse)


# ---------------------------------------------------------------------- trust_remote_code


def test_trust_remote_code_is_false_by_default_and_passed_to_every_loader(tiny_model_dir, recorded):
    assert PolicyConfig().trust_remote_code is False
    LLMPolicy(PolicyConfig(model=tiny_model_dir("gpt2"), value_head_hidden=8))
    names = [name for name, _, _ in recorded]
    # the tokenizer loads before the weights (a broken one fails fast); AutoTokenizer reads the
    # config again itself, passing the flag on
    assert names[0] == "AutoConfig" and names[-1] == "AutoModelForCausalLM"
    assert set(names) == {"AutoConfig", "AutoModelForCausalLM", "AutoTokenizer"}
    assert all(kwargs["trust_remote_code"] is False for _, _, kwargs in recorded)


def test_trust_remote_code_true_is_passed_when_asked(tiny_model_dir, recorded):
    LLMPolicy(PolicyConfig(model=tiny_model_dir("t5"), value_head_hidden=8, trust_remote_code=True))
    names = [name for name, _, _ in recorded]
    assert names[0] == "AutoConfig" and names[-1] == "AutoModelForSeq2SeqLM"
    assert "AutoTokenizer" in names
    assert all(kwargs["trust_remote_code"] is True for _, _, kwargs in recorded)


@pytest.mark.parametrize("value", [None, "yes", 1])
def test_trust_remote_code_must_be_a_bool(value):
    with pytest.raises(ValueError, match="PolicyConfig.trust_remote_code must be True or False"):
        PolicyConfig(trust_remote_code=value)
    with pytest.raises(ValueError, match="trust_remote_code must be True or False"):
        load_model_and_tokenizer("offline-gpt2", trust_remote_code=value)


def test_a_checkpoint_cannot_switch_trust_remote_code_on(tiny_model_dir, tmp_path, recorded):
    policy = LLMPolicy(PolicyConfig(model=tiny_model_dir("gpt2"), value_head_hidden=8))
    ckpt = policy.save_pretrained(tmp_path / "ckpt")
    meta = json.loads((ckpt / "llm_policy_config.json").read_text())
    assert "trust_remote_code" not in meta["config"]  # never saved ...
    meta["config"]["trust_remote_code"] = True  # ... nor read (a checkpoint from elsewhere)
    (ckpt / "llm_policy_config.json").write_text(json.dumps(meta))
    write_manifest(ckpt)
    recorded.clear()
    loaded = LLMPolicy.from_pretrained(ckpt)
    assert loaded.config.trust_remote_code is False
    assert recorded and all(kwargs["trust_remote_code"] is False for _, _, kwargs in recorded)
    recorded.clear()
    assert LLMPolicy.from_pretrained(ckpt, trust_remote_code=True).config.trust_remote_code
    assert all(kwargs["trust_remote_code"] is True for _, _, kwargs in recorded)


# ---------------------------------------------------------------------- devices


def fake_cuda(monkeypatch, count):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize("device", ["gpu", "cuda0", "cuda:x", "", 3])
def test_a_device_that_is_no_device_name_is_refused_by_the_config(device):
    with pytest.raises(ValueError, match=r"PolicyConfig.device.*available here: \['cpu'"):
        PolicyConfig(device=device)


def test_device_names_are_canonical_and_accept_torch_devices():
    assert PolicyConfig(device=torch.device("cpu")).device == "cpu"
    assert PolicyConfig(device="cuda:1").device == "cuda:1"  # a config may name another machine's
    assert PolicyConfig(device="cpu").to_dict()["device"] == "cpu"


@pytest.mark.parametrize(
    "device, gpus, available",
    [
        ("cuda", 0, "['cpu']"),
        ("cuda:0", 0, "['cpu']"),
        ("cuda:3", 2, "['cpu', 'cuda', 'cuda:0', 'cuda:1']"),
        ("mps", 0, "['cpu']"),
        ("cpu:1", 0, "['cpu']"),
        ("meta", 0, "['cpu']"),
    ],
)
def test_a_device_this_machine_lacks_is_refused_before_any_model_loads(
    monkeypatch, nothing_built, device, gpus, available
):
    fake_cuda(monkeypatch, gpus)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    config = PolicyConfig(model="offline-gpt2", device=device)
    with pytest.raises(ValueError) as info:
        LLMPolicy(config)
    message = str(info.value)
    assert f"PolicyConfig.device={device!r} does not exist on this machine" in message
    assert f"available devices: {available}" in message


def test_available_devices_lists_each_gpu(monkeypatch):
    fake_cuda(monkeypatch, 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert available_devices()[:4] == ["cpu", "cuda", "cuda:0", "cuda:1"]
    assert check_device("cuda:1") == torch.device("cuda", 1)
    assert check_device("cpu") == torch.device("cpu")


def test_a_checkpoint_saved_for_a_gpu_says_how_to_load_it_here(
    tiny_model_dir, tmp_path, monkeypatch
):
    policy = LLMPolicy(PolicyConfig(model=tiny_model_dir("gpt2"), value_head_hidden=8))
    ckpt = policy.save_pretrained(tmp_path / "ckpt")
    meta = json.loads((ckpt / "llm_policy_config.json").read_text())
    meta["config"]["device"] = "cuda"  # as written on a GPU machine
    (ckpt / "llm_policy_config.json").write_text(json.dumps(meta))
    write_manifest(ckpt)
    fake_cuda(monkeypatch, 0)
    with pytest.raises(ValueError, match="saved for device='cuda': pass device="):
        LLMPolicy.from_pretrained(ckpt)
    assert LLMPolicy.from_pretrained(ckpt, device="cpu").config.device == "cpu"


# ---------------------------------------------------------------------- model names


@pytest.mark.parametrize(
    "name, suggestion",
    [
        ("offline-gtp2", "offline-gpt2"),
        ("offline_t5", "offline-t5"),
        ("offline-gpt", "offline-gpt2"),
        ("Offline-T5", "offline-t5"),
        ("offline-llama", "offline-gpt2"),
    ],
)
def test_a_misspelt_offline_name_is_refused_with_the_offline_names(name, suggestion, nothing_built):
    with pytest.raises(ValueError) as info:
        PolicyConfig(model=name)
    message = str(info.value)
    assert f"PolicyConfig.model={name!r} is not an offline model" in message
    assert repr(suggestion) in message and "['offline-gpt2', 'offline-t5']" in message
    with pytest.raises(ValueError, match="is not an offline model"):
        load_model_and_tokenizer(name)


def test_a_local_directory_with_an_offline_like_name_is_a_path(
    tiny_model_dir, tmp_path, monkeypatch
):
    shutil.copytree(tiny_model_dir("gpt2"), tmp_path / "offline_t5")
    monkeypatch.chdir(tmp_path)
    policy = LLMPolicy(PolicyConfig(model="offline_t5", value_head_hidden=8))
    assert policy.config.model == "offline_t5" and policy._lm.config.model_type == "gpt2"


@pytest.mark.parametrize("name", ["google/flan-t5-small", "gpt2", "t5-small", "Qwen/Qwen2.5-0.5B"])
def test_a_hub_id_goes_to_transformers_unchanged(name, monkeypatch):
    seen = []

    def stub(source, *args, **kwargs):
        seen.append((source, kwargs))
        raise Stop

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", stub)
    with pytest.raises(Stop):
        LLMPolicy(PolicyConfig(model=name))
    assert seen == [(name, {"trust_remote_code": False})]


def test_an_uncached_hub_id_offline_says_how_to_fix_it():
    # conftest sets HF_HUB_OFFLINE=1: transformers looks in the local cache only
    with pytest.raises(OSError) as info:
        LLMPolicy(PolicyConfig(model="llm-policy-tests/no-such-model"))
    message = str(info.value)
    assert "'llm-policy-tests/no-such-model' could not be found offline" in message
    assert "HF_HUB_OFFLINE" in message and "local model directory" in message
    assert "offline-gpt2" in message


def test_online_errors_from_transformers_are_left_alone(monkeypatch):
    def stub(source, *args, **kwargs):
        raise OSError("transformers' own explanation")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", stub)
    monkeypatch.setattr(loading_module, "_hub_offline", lambda: False)
    with pytest.raises(OSError, match="^transformers' own explanation$"):
        load_model_and_tokenizer("google/flan-t5-small")


def with_custom_code(source, directory, model_type):
    """A copy of `source` whose config points at its own Python code, which leaves a mark if run."""
    shutil.copytree(source, directory)
    config = json.loads((directory / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {"AutoConfig": "custom.Config", "AutoModelForCausalLM": "custom.Model"}
    (directory / "config.json").write_text(json.dumps(config))
    mark = directory.parent / f"{directory.name}.code-ran"
    (directory / "custom.py").write_text(f"open({str(mark)!r}, 'w').close()\n")
    return mark


def test_code_shipped_with_a_model_is_never_run(tiny_model_dir, tmp_path):
    unknown = tmp_path / "custom_arch"
    mark = with_custom_code(tiny_model_dir("gpt2"), unknown, "llm_policy_custom")
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        LLMPolicy(PolicyConfig(model=str(unknown), value_head_hidden=8))
    assert not mark.exists()
    # an architecture transformers knows loads with transformers' own code, not the shipped one
    known = tmp_path / "known_arch"
    mark = with_custom_code(tiny_model_dir("gpt2"), known, "gpt2")
    policy = LLMPolicy(PolicyConfig(model=str(known), value_head_hidden=8))
    assert type(policy._lm).__module__.startswith("transformers.")
    assert not mark.exists()
