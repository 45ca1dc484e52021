"""Mixed precision (llm_policy.precision): trainable weights, gradients and Adam state stay fp32 in
every dtype; the forward runs under autocast; a frozen LoRA base is stored in 16 bits.

The failure these tests guard against is silent: Adam stepping bf16 weights in place at the
paper's learning rate (1e-6) rounds almost every update away, and the run looks normal."""

import pytest
import torch
from llm_policy import ENGLISH_ACTION_NAMES, LLMPolicy, PolicyConfig, build_prompt
from llm_policy.precision import check_precision, check_trainable_fp32

ACTIONS = list(ENGLISH_ACTION_NAMES)
PROMPTS = [
    build_prompt("go to the red ball", [["You see a red ball 1 step left"]], [], ACTIONS),
    build_prompt(
        "pick up the blue key",
        [["You see a wall 3 steps forward"], ["You see a blue key 2 steps forward"]],
        ["turn left"],
        ACTIONS,
    ),
]
# Where the bf16 scorer may differ from the fp32 one: a bf16 mantissa has 8 bits (relative
# error 2^-9 per rounding), and a score sums log-probs over a few tokens and layers.
BF16_SCORE_RTOL = 0.05


def make(tiny_model_dir, kind, **kw):
    kw.setdefault("value_head_hidden", 32)
    return LLMPolicy(PolicyConfig(model=tiny_model_dir(kind), **kw))


def adam_steps(policy, steps=5, lr=1e-6):
    """`steps` Adam steps on a PPO-like loss; returns the fraction of trainable elements that
    changed and the optimiser."""
    params = policy.trainable_parameters()
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.Adam(params, lr=lr, eps=1e-5)
    for _ in range(steps):
        out = policy(PROMPTS, [ACTIONS, ACTIONS])
        loss = -out.distribution().log_prob(torch.tensor([2, 0])).mean() + out.values.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    changed = sum(int((p.detach() != b).sum()) for p, b in zip(params, before, strict=True))
    total = sum(b.numel() for b in before)
    return changed / total, optimizer


@pytest.mark.parametrize("finetune", ["full", "lora"])
@pytest.mark.parametrize("kind", ["gpt2", "flan-t5"])
def test_bf16_training_changes_weights_like_fp32_at_the_papers_learning_rate(
    tiny_model_dir, kind, finetune
):
    fractions = {}
    for dtype in ("float32", "bfloat16"):
        policy = make(tiny_model_dir, kind, finetune=finetune, dtype=dtype)
        fractions[dtype], _ = adam_steps(policy)
    assert fractions["float32"] > 0.3, fractions
    # bf16 weights stepped in place change ~1% of elements here; fp32 master weights, all
    assert fractions["bfloat16"] >= 0.5 * fractions["float32"], fractions


def test_bf16_weights_stepped_in_place_lose_the_update(tiny_model_dir):
    """The control for the test above: the same steps on weights stored in bf16 (what
    dtype="bfloat16" did before mixed precision) change almost nothing."""
    policy = make(tiny_model_dir, "gpt2", finetune="full")
    params = policy.trainable_parameters()
    before = [p.detach().to(torch.bfloat16) for p in params]
    with torch.no_grad():
        for p in params:
            p.data = p.data.to(torch.bfloat16)
    after = []
    for p, b in zip(params, before, strict=True):
        p.grad = torch.ones_like(p)
        torch.optim.Adam([p], lr=1e-6, eps=1e-5).step()
        after.append(int((p.detach() != b).sum()))
    assert sum(after) / sum(b.numel() for b in before) < 0.1


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("finetune", ["full", "lora"])
def test_trainable_weights_and_adam_state_are_fp32_in_every_dtype(tiny_model_dir, finetune, dtype):
    policy = make(tiny_model_dir, "gpt2", finetune=finetune, dtype=dtype)
    _, optimizer = adam_steps(policy, steps=1)
    for name, param in policy.named_parameters():
        if param.requires_grad:
            assert param.dtype == torch.float32, name
            assert param.grad is None or param.grad.dtype == torch.float32, name
    for state in optimizer.state.values():
        assert state["exp_avg"].dtype == torch.float32
        assert state["exp_avg_sq"].dtype == torch.float32
    frozen = {p.dtype for p in policy.parameters() if not p.requires_grad}
    if finetune == "lora":  # the frozen base is stored in the compute dtype
        assert frozen == {getattr(torch, dtype)}
    else:
        assert frozen == set()


@pytest.mark.parametrize("kind", ["gpt2", "flan-t5", "qwen2"])
@pytest.mark.parametrize("finetune", ["full", "lora"])
def test_bf16_scores_and_values_are_fp32_and_close_to_fp32(tiny_model_dir, kind, finetune):
    ref = make(tiny_model_dir, kind, finetune=finetune)
    mixed = make(tiny_model_dir, kind, finetune=finetune, dtype="bfloat16")
    want = ref(PROMPTS, [ACTIONS, ACTIONS])
    got = mixed(PROMPTS, [ACTIONS, ACTIONS])
    assert got.logits.dtype == torch.float32 and got.values.dtype == torch.float32
    # scores: within BF16_SCORE_RTOL of their scale
    scale = want.logits.abs().max()
    assert (got.logits - want.logits).abs().max() <= BF16_SCORE_RTOL * scale
    # the policy itself: probabilities within 0.05
    probs = (got.distribution().probs - want.distribution().probs).abs().max()
    assert probs < 0.05, probs
    torch.testing.assert_close(got.values, want.values, atol=0.05, rtol=0.05)
    # the value head runs in fp32 even inside the caller's autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert mixed.value(PROMPTS).dtype == torch.float32


def test_check_trainable_fp32_names_a_16_bit_trainable_weight():
    layer = torch.nn.Linear(2, 2).to(torch.bfloat16)
    with pytest.raises(RuntimeError, match="'weight' is torch.bfloat16"):
        check_trainable_fp32(layer.named_parameters())
    layer.requires_grad_(False)
    check_trainable_fp32(layer.named_parameters())  # frozen 16-bit weights are fine


def test_a_dtype_the_device_cannot_compute_is_refused_before_loading(monkeypatch):
    with pytest.raises(ValueError, match="is not one of"):
        check_precision("float8", "cpu")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    with pytest.raises(ValueError, match="Tesla V100 has none.*float16"):
        check_precision("bfloat16", "cuda:0", "PolicyConfig.dtype")
    check_precision("bfloat16", "cpu")
    check_precision("float16", "cpu")  # CPU autocast computes fp16 (slowly); the scaler works


def test_a_model_directory_without_a_tokenizer_is_refused_before_its_weights_load(
    tiny_model_dir, tmp_path, monkeypatch
):
    import shutil

    from transformers import AutoModelForCausalLM

    source = tmp_path / "no_tokenizer"
    shutil.copytree(tiny_model_dir("gpt2"), source)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (source / name).unlink(missing_ok=True)

    def never(*args, **kwargs):
        raise AssertionError("the weights were loaded before the tokenizer was checked")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", never)
    with pytest.raises(FileNotFoundError, match="has no tokenizer.*save_pretrained"):
        LLMPolicy(PolicyConfig(model=str(source)))


def test_all_finite_checks_every_chunk(monkeypatch):
    from llm_policy import precision

    monkeypatch.setattr(precision, "_FINITE_CHUNK", 4)
    values = torch.zeros(3, 4)
    assert precision.all_finite(values)
    for bad in (float("nan"), float("inf")):
        values[2, 3] = bad  # in the last chunk
        assert not precision.all_finite(values)
        assert not precision.all_finite(values.to(torch.bfloat16))
