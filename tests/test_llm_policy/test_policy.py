"""LLMPolicy: outputs, heads, adapters, critic variants, checkpoints and bad input."""

import json
import pickle

import pytest
import torch
from llm_policy import (
    ENGLISH_ACTION_NAMES,
    CheckpointCorruptError,
    LLMPolicy,
    ManifestWarning,
    PolicyConfig,
    PolicyOutput,
    build_prompt,
    write_manifest,
)
from llm_policy.reference import naive_scores

ACTIONS = list(ENGLISH_ACTION_NAMES)


def prompts(n=3):
    obs = [
        ["You see a wall 3 steps forward", "You see a red ball 1 step left"],
        ["You see a red ball 1 step left"],
    ]
    goals = [
        "go to the red ball",
        "pick up the blue key",
        "open the yellow door",
        "put the red box next to the key",
    ]
    return [
        build_prompt(goals[i % 4], obs[: 1 + i % 2], ["turn left"][: i % 2], ACTIONS)
        for i in range(n)
    ]


def make(tiny_model_dir, kind, **kw):
    kw.setdefault("value_head_hidden", 32)
    return LLMPolicy(PolicyConfig(model=tiny_model_dir(kind), **kw))


def perturb_trainable(policy, scale=0.05, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in policy.trainable_parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


@pytest.mark.parametrize("kind", ["flan-t5", "gpt2", "qwen2"])
def test_forward_gives_logits_values_and_a_distribution(tiny_model_dir, kind):
    policy = make(tiny_model_dir, kind)
    cands = [ACTIONS, ["go forward", "turn left"], ["toggle"]]
    out = policy(prompts(3), cands)
    assert isinstance(out, PolicyOutput)
    assert out.logits.shape == (3, 6) and out.values.shape == (3,)
    assert out.values.dtype == torch.float32 and out.logits.dtype == torch.float32
    assert torch.isinf(out.logits[1, 2:]).all() and torch.isinf(out.logits[2, 1:]).all()
    dist = out.distribution()
    torch.testing.assert_close(dist.probs.sum(-1), torch.ones(3))
    assert (dist.probs[1, 2:] == 0).all() and dist.probs[2, 0] == 1
    assert torch.isfinite(dist.entropy()).all()
    a = dist.sample()
    assert (a < torch.tensor([6, 2, 1])).all()
    # the logits are the scorer's log P(action | prompt): equal to the per-pair forward
    with torch.no_grad():
        ref = naive_scores(policy.scorer, prompts(3), cands)
    fin = torch.isfinite(ref)
    torch.testing.assert_close(out.logits.detach()[fin], ref[fin], atol=1e-4, rtol=0)
    torch.testing.assert_close(policy.value(prompts(3)), out.values)


@pytest.mark.parametrize(
    "kind, targets", [("t5", {"q", "v"}), ("gpt2", {"c_attn"}), ("llama", {"q_proj", "v_proj"})]
)
def test_lora_trains_only_adapters_and_heads(tiny_model_dir, kind, targets):
    policy = make(tiny_model_dir, kind, lora_r=4, lora_alpha=8)
    names = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or n.startswith("value_head.") for n in names)
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names if "lora_A" in n}
    assert adapted == targets
    trainable = policy.trainable_parameters()
    assert {id(p) for p in trainable} == {
        id(p) for n, p in policy.named_parameters() if "lora_" in n or n.startswith("value_head.")
    }
    assert sum(p.numel() for p in trainable) < sum(p.numel() for p in policy.parameters())
    out = policy(prompts(2), [ACTIONS, ACTIONS])
    loss = -out.distribution().log_prob(torch.tensor([0, 2])).mean() + out.values.pow(2).mean()
    loss.backward()
    grads = {n: p.grad for n, p in policy.named_parameters() if p.requires_grad}
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)
    assert all(grads[n] is not None for n in grads if n.startswith("value_head."))
    frozen = [p for n, p in policy.named_parameters() if not p.requires_grad]
    assert all(p.grad is None for p in frozen)


def test_full_finetuning_trains_every_weight(tiny_model_dir):
    policy = make(tiny_model_dir, "gpt2", finetune="full")
    assert all(p.requires_grad for p in policy.parameters())
    assert not any("lora_" in n for n, _ in policy.named_parameters())
    out = policy(prompts(2), [ACTIONS, ACTIONS])
    out.distribution().log_prob(torch.tensor([1, 2])).sum().backward()
    assert policy.model.get_input_embeddings().weight.grad.abs().sum() > 0


def test_lora_targets_can_be_chosen(tiny_model_dir):
    policy = make(tiny_model_dir, "llama", lora_target_modules=["q_proj", "k_proj", "o_proj"])
    adapted = {
        n.split(".lora_")[0].rsplit(".", 1)[-1]
        for n, _ in policy.named_parameters()
        if "lora_A" in n
    }
    assert adapted == {"q_proj", "k_proj", "o_proj"}
    assert policy.config.lora_target_modules == ("q_proj", "k_proj", "o_proj")


@pytest.mark.parametrize("kind", ["t5", "gpt2"])
def test_action_head_variant(tiny_model_dir, kind):
    policy = make(tiny_model_dir, kind, head="action_head", num_actions=6)
    out = policy(prompts(3))
    assert out.logits.shape == (3, 6) and torch.isfinite(out.logits).all()
    assert out.values.shape == (3,)
    assert out.distribution().probs.max() < 0.5  # small output gain: starts near uniform
    assert policy(prompts(3), [ACTIONS] * 3).logits.shape == (3, 6)
    with pytest.raises(ValueError, match="num_actions=6"):
        policy(prompts(2), [ACTIONS, ACTIONS[:3]])
    names = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert any(n.startswith("action_head.") for n in names)


@pytest.mark.parametrize("kind", ["flan-t5", "gpt2"])
def test_frozen_base_critic_ignores_the_adapters(tiny_model_dir, kind):
    policy = make(tiny_model_dir, kind, critic="frozen_base")
    before = policy(prompts(2), [ACTIONS, ACTIONS])
    with torch.no_grad():
        for n, p in policy.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    after = policy(prompts(2), [ACTIONS, ACTIONS])
    assert not torch.allclose(before.logits, after.logits)  # the actor uses the adapters
    torch.testing.assert_close(after.values, before.values)  # the critic does not
    assert after.values.requires_grad  # the value head still trains
    with torch.no_grad(), policy.model.disable_adapter():
        base = policy.value_head(policy.scorer.prompt_features(prompts(2)))
    torch.testing.assert_close(after.values, base)
    with pytest.raises(ValueError, match="frozen_base.*lora"):
        PolicyConfig(critic="frozen_base", finetune="full")


@pytest.mark.parametrize("kind", ["flan-t5", "gpt2"])
def test_gradient_checkpointing_gives_the_same_scores_and_gradients(tiny_model_dir, kind):
    results = []
    for ckpt in (False, True):
        policy = make(tiny_model_dir, kind, gradient_checkpointing=ckpt, finetune="full")
        policy.train()
        out = policy(prompts(2), [ACTIONS, ["go forward", "pick up"]])
        loss = -out.distribution().log_prob(torch.tensor([2, 1])).sum() + out.values.sum()
        loss.backward()
        grad = policy.model.get_input_embeddings().weight.grad.clone()
        results.append((out.logits.detach(), out.values.detach(), grad))
    (l0, v0, g0), (l1, v1, g1) = results
    torch.testing.assert_close(l1, l0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v1, v0)
    torch.testing.assert_close(g1, g0, atol=1e-5, rtol=1e-4)


def test_bfloat16_weights_with_fp32_outputs(tiny_model_dir):
    policy = make(tiny_model_dir, "gpt2", dtype="bfloat16")
    assert policy.model.get_input_embeddings().weight.dtype == torch.bfloat16
    out = policy(prompts(2), [ACTIONS, ACTIONS])
    assert out.logits.dtype == torch.float32 and out.values.dtype == torch.float32
    ref = make(tiny_model_dir, "gpt2")(prompts(2), [ACTIONS, ACTIONS]).logits
    assert (out.logits - ref).abs().max() < 0.1 * ref.abs().max()


# ---------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize(
    "kind, options",
    [
        ("gpt2", {}),
        ("flan-t5", {"head": "action_head", "critic": "frozen_base", "normalization": "token"}),
        ("t5", {"finetune": "full", "normalization": "word"}),
    ],
)
def test_save_and_load_restore_the_exact_policy(tiny_model_dir, tmp_path, kind, options):
    policy = make(tiny_model_dir, kind, **options)
    perturb_trainable(policy)
    p, c = prompts(3), [ACTIONS, ["go forward", "drop"], ACTIONS]
    if options.get("head") == "action_head":
        c = [ACTIONS] * 3
    with torch.no_grad():
        want = policy(p, c)
    path = policy.save_pretrained(tmp_path / "ckpt")
    files = sorted(str(f.relative_to(path)) for f in path.rglob("*") if f.is_file())
    assert "llm_policy_config.json" in files and "heads.safetensors" in files
    weights = [f for f in files if not f.endswith((".json", ".md", ".txt", ".jinja"))]
    assert weights and all(f.endswith(".safetensors") for f in weights), files
    loaded = LLMPolicy.from_pretrained(path)
    assert loaded.config == policy.config
    # bit-identical weights ...
    saved_state, loaded_state = policy.state_dict(), loaded.state_dict()
    assert saved_state.keys() == loaded_state.keys()
    assert all(torch.equal(saved_state[k], loaded_state[k]) for k in saved_state)
    # ... hence the same outputs (up to kernels rounding differently on other memory buffers)
    with torch.no_grad():
        got = loaded(p, c)
    torch.testing.assert_close(got.logits, want.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.values, want.values, atol=1e-6, rtol=0)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ckpt"]  # no temporary leftovers


def test_lora_checkpoints_of_offline_models_carry_their_base(tmp_path, monkeypatch):
    policy = LLMPolicy(PolicyConfig(model="offline-gpt2", value_head_hidden=8))
    perturb_trainable(policy)
    ckpt = policy.save_pretrained(tmp_path / "ckpt")
    assert (ckpt / "base" / "model.safetensors").is_file()
    with torch.no_grad():
        want = policy(prompts(2), [ACTIONS, ACTIONS]).logits
    monkeypatch.setenv("LLM_POLICY_CACHE", str(tmp_path / "elsewhere"))  # an empty cache
    loaded = LLMPolicy.from_pretrained(ckpt)
    assert not (tmp_path / "elsewhere").exists()  # nothing rebuilt: the saved base was used
    assert loaded.config.model == "offline-gpt2"
    with torch.no_grad():
        got = loaded(prompts(2), [ACTIONS, ACTIONS]).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_loading_never_unpickles(tiny_model_dir, tmp_path, monkeypatch):
    policy = make(tiny_model_dir, "gpt2")
    perturb_trainable(policy)
    policy.save_pretrained(tmp_path / "ckpt")
    with torch.no_grad():
        want = policy(prompts(1), [ACTIONS]).logits

    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    loaded = LLMPolicy.from_pretrained(tmp_path / "ckpt")
    with torch.no_grad():
        torch.testing.assert_close(loaded(prompts(1), [ACTIONS]).logits, want, atol=1e-5, rtol=0)


def test_missing_or_mismatched_checkpoints_are_explained(tiny_model_dir, tmp_path):
    policy = make(tiny_model_dir, "gpt2")
    ckpt = policy.save_pretrained(tmp_path / "ckpt")

    with pytest.raises(FileNotFoundError, match="no checkpoint directory"):
        LLMPolicy.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not an llm-policy checkpoint"):
        LLMPolicy.from_pretrained(tmp_path / "empty")
    with pytest.raises(ValueError, match="cannot override \\['lora_r'\\]"):
        LLMPolicy.from_pretrained(ckpt, lora_r=8)

    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(ckpt, broken)
    (broken / "heads.safetensors").unlink()
    (broken / "adapter" / "adapter_model.safetensors").unlink()
    with pytest.raises(
        CheckpointCorruptError,
        match=r"(?s)adapter/adapter_model.safetensors: missing.*heads.safetensors: missing",
    ):
        LLMPolicy.from_pretrained(broken)
    (broken / "manifest.json").unlink()  # as saved before manifests: the file check still runs
    with pytest.warns(ManifestWarning, match="cannot be checked"):
        with pytest.raises(
            FileNotFoundError, match="missing.*heads.safetensors.*adapter_model.safetensors"
        ):
            LLMPolicy.from_pretrained(broken)

    # a config that does not describe the saved weights (edited, and the manifest rewritten, as
    # someone who edits on purpose would: the deeper checks must still catch it)
    edited = tmp_path / "edited"
    shutil.copytree(ckpt, edited)
    meta = json.loads((edited / "llm_policy_config.json").read_text())
    meta["config"]["lora_r"] = 8
    (edited / "llm_policy_config.json").write_text(json.dumps(meta))
    write_manifest(edited)
    with pytest.raises(ValueError, match="adapter .* does not match.*wrong shapes"):
        LLMPolicy.from_pretrained(edited)
    meta["config"]["lora_r"] = 16
    meta["config"]["value_head_hidden"] = 64
    (edited / "llm_policy_config.json").write_text(json.dumps(meta))
    write_manifest(edited)
    with pytest.raises(ValueError, match="heads.*wrong shapes"):
        LLMPolicy.from_pretrained(edited)

    # the adapter on another base model
    with pytest.raises(ValueError, match="base model mismatch"):
        LLMPolicy.from_pretrained(ckpt, model=tiny_model_dir("qwen2"))

    meta["format_version"] = 99
    (edited / "llm_policy_config.json").write_text(json.dumps(meta))
    write_manifest(edited)
    with pytest.raises(ValueError, match="unsupported checkpoint format"):
        LLMPolicy.from_pretrained(edited)


def test_a_failed_save_leaves_no_half_written_checkpoint(tiny_model_dir, tmp_path, monkeypatch):
    import safetensors.torch

    policy = make(tiny_model_dir, "gpt2")
    good = policy.save_pretrained(tmp_path / "ckpt")
    with torch.no_grad():
        want = LLMPolicy.from_pretrained(good)(prompts(1), [ACTIONS]).logits
    perturb_trainable(policy)

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(OSError, match="No space"):
        policy.save_pretrained(tmp_path / "new")
    with pytest.raises(OSError, match="No space"):
        policy.save_pretrained(good)  # overwriting: the old checkpoint must survive
    monkeypatch.undo()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ckpt"]
    with torch.no_grad():
        assert torch.equal(LLMPolicy.from_pretrained(good)(prompts(1), [ACTIONS]).logits, want)

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        policy.save_pretrained(tmp_path / "notes")


def test_overrides_change_run_time_settings(tiny_model_dir, tmp_path):
    policy = make(tiny_model_dir, "gpt2")
    ckpt = policy.save_pretrained(tmp_path / "ckpt")
    loaded = LLMPolicy.from_pretrained(
        ckpt, normalization="token", max_prompt_tokens=40, scoring="packed"
    )
    assert loaded.config.normalization == "token" and loaded.scorer.max_prompt_tokens == 40
    assert loaded.scorer.resolve_method() == "packed"


# ---------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"normalization": "mean"}, "normalization"),
        ({"head": "mlp"}, "head"),
        ({"critic": "twin"}, "critic"),
        ({"finetune": "qlora"}, "finetune"),
        ({"dtype": "float64"}, "dtype"),
        ({"scoring": "fast"}, "scoring"),
        ({"lora_r": 0}, "lora_r"),
        ({"num_actions": 0}, "num_actions"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
        ({"max_prompt_tokens": 0}, "max_prompt_tokens"),
        ({"lora_target_modules": []}, "lora_target_modules"),
        ({"model": ""}, "model"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PolicyConfig(**kwargs)


def test_config_round_trips_through_json():
    cfg = PolicyConfig(model="offline-gpt2", lora_target_modules=["c_attn"], max_prompt_tokens=200)
    assert cfg.lora_target_modules == ("c_attn",)
    assert PolicyConfig(**json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_unknown_model_paths_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model directory"):
        LLMPolicy(PolicyConfig(model=str(tmp_path / "missing")))
    (tmp_path / "not_a_model").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        LLMPolicy(PolicyConfig(model=str(tmp_path / "not_a_model")))
    with pytest.raises(ValueError, match="candidates"):
        LLMPolicy(PolicyConfig(model="offline-gpt2", value_head_hidden=8))(prompts(1))


@pytest.mark.parametrize("name", ["offline-t5", "offline-gpt2"])
def test_offline_defaults_work_out_of_the_box(name):
    policy = LLMPolicy(PolicyConfig(model=name))
    out = policy(prompts(2), [ACTIONS, ACTIONS])
    assert out.logits.shape == (2, 6) and torch.isfinite(out.logits).all()
    assert policy.config.model == name


def test_token_normalisation_removes_the_length_bias_of_random_models():
    """At random init, one-token actions win under "sum"; "token" evens it out."""
    policy = LLMPolicy(PolicyConfig(model="offline-gpt2", value_head_hidden=8))
    with torch.no_grad():
        out = policy.score(prompts(4), [ACTIONS] * 4)
        token = policy.score(prompts(4), [ACTIONS] * 4, normalization="token")
    lengths = out.token_mask.sum(-1).view(4, 6)[0]
    one, two = lengths == 1, lengths == 2
    assert one.any() and two.any()
    gap_sum = out.scores[:, one].mean() - out.scores[:, two].mean()
    gap_token = token.scores[:, one].mean() - token.scores[:, two].mean()
    assert gap_sum > 2 and abs(gap_token) < gap_sum / 2
