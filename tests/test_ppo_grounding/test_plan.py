"""`ppo-grounding plan` (plan.py): parameter counts from configs alone, the memory terms of each
precision and fine-tuning mode, the verdict and suggestions, and the command's bad input."""

import dataclasses

import pytest
from ppo_grounding.cli import main
from ppo_grounding.config import paper_preset
from ppo_grounding.plan import GIB, plan_memory, suggestions


def paper(model="flan-t5-large", **policy):
    config = paper_preset()
    config.policy = dataclasses.replace(config.policy, model=model, **policy)
    return config


@pytest.mark.parametrize(
    "model, parameters",
    [
        # the published sizes: Flan-T5-large with its own output head, the two tied decoders
        ("flan-t5-large", 783_150_080),
        ("google/flan-t5-large", 783_150_080),
        ("qwen2.5-0.5b", 494_032_768),
        ("meta-llama/Llama-3.2-1B", 1_235_814_400),
        ("meta-llama/Llama-3.1-8B", 8_030_261_248),
    ],
)
def test_parameters_are_counted_from_the_config_alone(model, parameters):
    assert plan_memory(paper(model)).parameters == parameters


def test_memory_terms_follow_the_precision_recipe():
    full32 = plan_memory(paper(finetune="full", dtype="float32"))
    full16 = plan_memory(paper(finetune="full", dtype="bfloat16"))
    lora16 = plan_memory(paper(finetune="lora", dtype="bfloat16"))
    p = full32.parameters
    # full fine-tuning: fp32 master weights whatever the dtype, plus autocast's 16-bit copies
    assert full32.weights == full16.weights == 4 * full32.trainable
    assert full32.autocast_copies == 0 and full16.autocast_copies == 2 * p
    assert full32.gradients == 4 * full32.trainable and full32.optimizer == 8 * full32.trainable
    # LoRA: the frozen base in 16 bits, adapters and heads (and their state) in fp32
    assert lora16.weights == 2 * p + 4 * lora16.trainable
    assert lora16.trainable < 0.01 * p and lora16.optimizer == 8 * lora16.trainable
    assert full16.activations < full32.activations  # 2-byte activations under autocast


def test_checkpointing_and_processes_shrink_activations_only():
    base = plan_memory(paper())
    ckpt = plan_memory(paper(gradient_checkpointing=True))
    assert ckpt.activations < base.activations / 4 and ckpt.weights == base.weights
    eight = plan_memory(paper(), processes=8)
    assert eight.minibatch_per_process == 8 and eight.activations < base.activations / 4
    assert (eight.weights, eight.gradients, eight.optimizer) == (
        base.weights,
        base.gradients,
        base.optimizer,
    )


def test_the_verdict_and_a_suggestion_that_fits():
    config = paper("llama-3.2-1b", finetune="full")
    tight = plan_memory(config, device_memory_gib=24)
    assert tight.fits is False and tight.total > 24 * GIB
    hints = suggestions(config, tight)
    assert hints and any("lora" in h for h in hints)
    lora = paper("llama-3.2-1b", finetune="lora", dtype="bfloat16")
    assert plan_memory(lora, device_memory_gib=24).fits is True
    assert plan_memory(config, device_memory_gib=None).fits is None


def test_plan_command_prints_the_table(capsys):
    main(["plan", "--preset", "paper", "--processes", "8", "--device-memory-gib", "80"])
    out = capsys.readouterr().out
    assert "model google/flan-t5-large: 783.2M parameters" in out
    assert "8 process(es)" in out and "Adam state" in out
    assert "fits in 80.0 GiB per device" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--policy.model", "someone/not-a-model"], "cannot read the config of model"),
        (["--processes", "3"], "must be >= 1 and divide ppo.minibatch_size=64"),
        (["--device-memory-gib", "lots"], "--device-memory-gib 'lots' is not a float"),
    ],
)
def test_plan_bad_input_is_one_clear_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["plan", "--preset", "paper", *argv])
    text = str(exit_info.value)
    assert message in text and "\n" not in text
    assert "Traceback" not in capsys.readouterr().err


def test_a_gpu_run_is_planned_from_a_machine_without_one(capsys):
    main(["plan", "--preset", "paper", "--policy.device", "cuda", "--device-memory-gib", "80"])
    assert "per process" in capsys.readouterr().out
    cpu, cuda = plan_memory(paper()), plan_memory(paper(device="cuda"))
    # Adam's multi-tensor kernels on CUDA hold an fp32 copy of every trainable parameter
    assert cuda.temporaries == 4 * cuda.trainable > cpu.temporaries


def sharded(config):
    config.dist.shard = True
    return config


def test_sharding_divides_weights_gradients_and_adam_by_the_processes():
    config = paper("meta-llama/Llama-3.2-1B", finetune="full", dtype="bfloat16")
    whole = plan_memory(config, processes=8)
    shards = plan_memory(sharded(config), processes=8)
    assert shards.sharded and not whole.sharded
    assert shards.gradients == whole.gradients / 8 and shards.optimizer == whole.optimizer / 8
    # its shard of the fp32 weights, plus what it gathers: the embeddings (tied to the output
    # layer), the final norm, the heads (about 3.2M parameters) and two of the 16 blocks, in fp32
    gathered = shards.weights - whole.weights / 8
    blocks = 1_235_814_400 - 128_256 * 2048 - 2048  # 16 blocks of 60.8M parameters
    assert (
        4 * (128_256 * 2048 + 2 * blocks / 16)
        < gathered
        < 4 * (128_256 * 2048 + 2 * blocks / 16 + 4e6)
    )
    # autocast's bf16 copies are kept whole for the backward; activations are unchanged
    assert shards.autocast_copies == whole.autocast_copies == 2 * whole.parameters
    assert shards.activations == whole.activations
    # sharding over one process changes nothing
    assert plan_memory(sharded(paper("meta-llama/Llama-3.2-1B")), processes=1).weights == (
        plan_memory(paper("meta-llama/Llama-3.2-1B")).weights
    )


def test_llama_8b_full_fine_tuning_fits_8_gpus_sharded_and_the_plan_says_so(capsys):
    config = paper("meta-llama/Llama-3.1-8B", finetune="full", dtype="bfloat16")
    config.policy.gradient_checkpointing = True
    replicated = plan_memory(config, processes=8, device_memory_gib=80)
    assert replicated.fits is False
    assert any(h.startswith("--dist.shard") for h in suggestions(config, replicated))
    assert plan_memory(sharded(config), processes=8, device_memory_gib=80).fits is True
    main(
        ["plan", "--preset", "paper", "--policy.model", "meta-llama/Llama-3.1-8B"]
        + ["--policy.finetune", "full", "--policy.dtype", "bfloat16"]
        + ["--policy.gradient-checkpointing", "--dist.shard", "--processes", "8"]
        + ["--device-memory-gib", "80"]
    )
    out = capsys.readouterr().out
    assert "8 process(es), the policy sharded across them" in out and "fits in 80.0" in out
