"""`ppo-grounding train --run.init-from PATH`: a new run that starts from saved weights.

The usual source is behaviour cloning (`ppo-grounding clone`, a run of update 0). The new run has
its own directory, fresh counters and optimiser, the source's weights, and records where they
came from; resuming it continues from its own checkpoint, never from PATH again.
"""

import json

import pytest
import torch
from llm_policy import LLMPolicy, PolicyConfig
from ppo_grounding import PPOTrainer
from ppo_grounding.checkpoint import latest_checkpoint
from ppo_grounding.cli import main
from ppo_grounding.metrics import read_metrics

from .test_cli import TINY


@pytest.fixture(scope="module")
def cloned(tmp_path_factory):
    """A tiny behaviour-cloning run (update 0), shared by the tests of this module."""
    run = tmp_path_factory.mktemp("init_from") / "cloned"
    cache = tmp_path_factory.getbasetemp() / "llm_policy_cache"  # conftest's offline cache
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLM_POLICY_CACHE", str(cache))
        patch.setenv("HF_HUB_OFFLINE", "1")
        main(["clone", *TINY, "--warm-start.demo-frames", "64", "--warm-start.epochs", "1",
              "--run.output-dir", str(run)])  # fmt: skip
    return run


def _weights(policy):
    return {k: v.detach().clone() for k, v in policy.state_dict().items()}


@pytest.fixture
def at_start(monkeypatch):
    """What every PPOTrainer.train of the test sees before its first update."""
    seen = []
    real_train = PPOTrainer.train

    def spy(self):
        seen.append(
            {
                "weights": _weights(self.policy),
                "update": self.state.update,
                "frames": self.state.frames,
                "optimizer_state": dict(self.optimizer.state),
            }
        )
        return real_train(self)

    monkeypatch.setattr(PPOTrainer, "train", spy)
    return seen


@pytest.mark.slow
def test_a_run_from_a_clone_starts_fresh_with_its_weights_and_resumes_from_its_own(
    tmp_path, cloned, at_start, capsys
):
    source = latest_checkpoint(cloned)
    clone_weights = _weights(LLMPolicy.from_pretrained(source / "policy"))
    fresh = _weights(LLMPolicy(PolicyConfig(model="offline-gpt2", finetune="full")))
    assert any(not torch.equal(clone_weights[k], fresh[k]) for k in fresh)  # cloning changed it

    run = tmp_path / "ppo"
    main(["train", *TINY, "--run.init-from", str(cloned), "--run.output-dir", str(run)])
    assert f"starting from the weights in {source.resolve()}" in capsys.readouterr().out
    start = at_start[0]
    assert start["weights"].keys() == clone_weights.keys()
    assert all(torch.equal(start["weights"][k], clone_weights[k]) for k in clone_weights)
    assert (start["update"], start["frames"], start["optimizer_state"]) == (0, 0, {})
    assert [row["update"] for row in read_metrics(run)] == [1]
    assert sorted(p.name for p in (run / "checkpoints").glob("update_*")) == ["update_000001"]
    assert not (run / "warm_start.json").exists()
    recorded = json.loads((run / "config.json").read_text())["run"]["init_from"]
    assert recorded == str(source.resolve())
    assert read_metrics(cloned) == []  # the source is left as it was

    # Resuming continues from the run's own checkpoint, not from the clone, and keeps the record.
    own = _weights(LLMPolicy.from_pretrained(latest_checkpoint(run) / "policy"))
    main(["train", *TINY, "--ppo.total-frames", "32", "--run.output-dir", str(run),
          "--run.resume"])  # fmt: skip
    assert all(torch.equal(at_start[1]["weights"][k], own[k]) for k in own)
    assert at_start[1]["update"] == 1
    assert [row["update"] for row in read_metrics(run)] == [1, 2]
    assert json.loads((run / "config.json").read_text())["run"]["init_from"] == recorded

    with pytest.raises(SystemExit, match="Drop --run.init-from to continue it"):
        main(["train", *TINY, "--ppo.total-frames", "48", "--run.output-dir", str(run),
              "--run.resume", "--run.init-from", str(cloned)])  # fmt: skip


@pytest.mark.slow
def test_a_checkpoint_or_a_policy_directory_is_accepted_too(tmp_path, cloned, at_start):
    checkpoint = latest_checkpoint(cloned)
    expected = _weights(LLMPolicy.from_pretrained(checkpoint / "policy"))
    for name, source in (("from_checkpoint", checkpoint), ("from_policy", checkpoint / "policy")):
        main(["train", *TINY, "--run.init-from", str(source), "--run.output-dir",
              str(tmp_path / name)])  # fmt: skip
        assert all(torch.equal(at_start[-1]["weights"][k], expected[k]) for k in expected)
        saved = json.loads((tmp_path / name / "config.json").read_text())
        assert saved["run"]["init_from"] == str(source.resolve())


@pytest.mark.slow
def test_the_python_api_reads_init_from_as_the_command_does(tmp_path, cloned, at_start):
    """PPOTrainer(config) with run.init_from set and no policy loads the source's weights."""
    from ppo_grounding.cli import _train_config

    source = latest_checkpoint(cloned)
    expected = _weights(LLMPolicy.from_pretrained(source / "policy"))
    config = _train_config([*TINY, "--run.output-dir", str(tmp_path / "api")], "train", "Train")
    config.run.init_from = str(cloned)
    trainer = PPOTrainer(config)
    assert all(torch.equal(_weights(trainer.policy)[k], expected[k]) for k in expected)
    assert config.run.init_from == str(source.resolve())  # recorded as the command records it
    trainer.train()
    saved = json.loads((tmp_path / "api" / "config.json").read_text())
    assert saved["run"]["init_from"] == str(source.resolve())


def test_a_missing_or_wrong_source_is_refused_naming_the_flag(tmp_path, at_start):
    run = ["--run.output-dir", str(tmp_path / "run")]
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit, match=r"--run.init-from .*nowhere: .* does not exist; pass"):
        main(["train", *TINY, "--run.init-from", str(missing), *run])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="is not a policy, run or checkpoint directory"):
        main(["train", *TINY, "--run.init-from", str(tmp_path / "empty"), *run])
    (tmp_path / "note.txt").write_text("not a model")
    with pytest.raises(SystemExit, match="is a file, not a directory"):
        main(["train", *TINY, "--run.init-from", str(tmp_path / "note.txt"), *run])
    (tmp_path / "unfinished" / "checkpoints").mkdir(parents=True)
    with pytest.raises(SystemExit, match="has no complete checkpoint to start from"):
        main(["train", *TINY, "--run.init-from", str(tmp_path / "unfinished"), *run])
    with pytest.raises(SystemExit, match="run.init_from is empty"):
        main(["train", *TINY, "--run.init-from", "", *run])
    assert at_start == [] and not (tmp_path / "run").exists()  # refused before any training


@pytest.mark.slow
def test_a_source_that_does_not_fit_the_run_is_refused_before_training(tmp_path, cloned, at_start):
    run = ["--run.output-dir", str(tmp_path / "run")]
    with pytest.raises(SystemExit, match=r"--policy.head: .* has 'score', this run 'action_head'"):
        main(["train", *TINY, "--run.init-from", str(cloned), "--policy.head", "action_head", *run])
    with pytest.raises(SystemExit, match=r"--policy.model: .* has 'offline-gpt2'"):
        main(["train", *TINY, "--run.init-from", str(cloned), "--policy.model", "offline-t5", *run])

    npae = tmp_path / "npae"  # an action head of 6 logits: for an env without extra actions
    LLMPolicy(
        PolicyConfig(model="offline-gpt2", finetune="full", normalization="token",
                     head="action_head", value_head_hidden=16)
    ).save_pretrained(npae)  # fmt: skip
    npae_options = ["--policy.head", "action_head", "--policy.value-head-hidden", "16"]
    with pytest.raises(SystemExit, match=r"outputs 6 logits, but this run's env offers 8 actions"):
        main(["train", *TINY, *npae_options, "--env.extra-actions", "2",
              "--run.init-from", str(npae), *run])  # fmt: skip

    with pytest.raises(SystemExit, match="a new run cannot start from its own weights"):
        main(["train", *TINY, "--run.init-from", str(cloned), "--run.output-dir", str(cloned)])
    assert at_start == [] and not (tmp_path / "run").exists()

    lora = tmp_path / "lora"
    LLMPolicy(
        PolicyConfig(model="offline-gpt2", finetune="lora", normalization="token", lora_r=4,
                     value_head_hidden=16)
    ).save_pretrained(lora)  # fmt: skip
    lora_options = ["--policy.finetune", "lora", "--policy.value-head-hidden", "16"]
    with pytest.raises(SystemExit, match=r"--policy.lora-r: .* has 4, this run 16"):
        main(["train", *TINY, *lora_options, "--run.init-from", str(lora), *run])
    assert at_start == [] and not (tmp_path / "run").exists()

    # the same policies, with options that describe them, train
    main(["train", *TINY, *npae_options, "--run.init-from", str(npae), *run])
    assert [row["update"] for row in read_metrics(tmp_path / "run")] == [1]
    main(["train", *TINY, *lora_options, "--policy.lora-r", "4", "--run.init-from", str(lora),
          "--run.output-dir", str(tmp_path / "lora-run")])  # fmt: skip
    assert [row["update"] for row in read_metrics(tmp_path / "lora-run")] == [1]


def test_clone_refuses_init_from(tmp_path):
    with pytest.raises(SystemExit, match="--run.init-from is for `train`"):
        main(["clone", *TINY, "--warm-start.demo-frames", "64", "--run.init-from", str(tmp_path),
              "--run.output-dir", str(tmp_path / "run")])  # fmt: skip
