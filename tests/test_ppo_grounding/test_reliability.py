"""Runs survive kills, damaged files and NaNs: each test breaks a run one way and checks what the
user gets (a resumable run, a message naming the problem, the last good checkpoint kept).

Kills are real SIGKILLs of a child process, at points chosen by patching the function that runs
there (KILLER below), so where the kill lands never depends on timing.
"""

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from llm_policy import CheckpointCorruptError, write_manifest
from ppo_grounding import PPOTrainer
from ppo_grounding.checkpoint import CheckpointWarning, checkpoint_dir, latest_checkpoint
from ppo_grounding.cli import main
from ppo_grounding.config import TrainConfig, WarmStartConfig
from ppo_grounding.finite import NonFiniteError, check_state, check_step, guard
from ppo_grounding.metrics import MetricsWarning, read_metrics
from ppo_grounding.run_lock import StaleLockWarning
from ppo_grounding.sources import load_policy_for_eval

from .helpers import save_tagged_checkpoint, tiny_config

KILLER = textwrap.dedent(
    """
    import json, os, signal, sys

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    point = sys.argv[2]
    if point == "warm_start":  # in the middle of behaviour cloning
        import ppo_grounding.imitation as imitation
        imitation.clone_epoch = lambda *args, **kwargs: die()
    elif point == "first_save":  # inside the first checkpoint's temporary directory
        import ppo_grounding.checkpoint as checkpoint
        checkpoint.write_manifest = lambda directory: die()
    elif point == "between_delete_and_rename":
        # where renameat2(RENAME_EXCHANGE) is missing, a re-save moves the old checkpoint aside
        # and then renames the new one in: die between the two (the final save re-saves the
        # last checkpoint only when forced: it skips one that `latest` already names)
        import ppo_grounding.checkpoint as checkpoint
        checkpoint._already_published = lambda *args: False
        from llm_policy import atomic
        atomic._exchange = lambda a, b: False
        rename = os.rename
        def killing_rename(src, dst):
            rename(src, dst)
            if ".old-" in os.fspath(dst):
                die()
        os.rename = killing_rename
    elif point == "metrics_line":  # halfway through the row of update 2
        from ppo_grounding import metrics
        log = metrics.MetricsLogger.log
        def killing_log(self, update, values):
            if update == 2:
                with self.path.open("a") as f:
                    f.write('{"update": 2, "charts/fra')
                die()
            log(self, update, values)
        metrics.MetricsLogger.log = killing_log

    from ppo_grounding import PPOTrainer
    from ppo_grounding.config import TrainConfig
    PPOTrainer(TrainConfig.from_dict(json.loads(sys.argv[1]))).train()
    print("finished without being killed")
    """
)


def run_killed(config: TrainConfig, point: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", KILLER, config.to_json(), point], capture_output=True, text=True
    )
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr


def resumed(config: TrainConfig, **ppo) -> TrainConfig:
    config = dataclasses.replace(config, ppo=dataclasses.replace(config.ppo, **ppo))
    config.run = dataclasses.replace(config.run, resume=True)
    return config


# ------------------------------------------------------------------------------------------ kills
@pytest.mark.slow
def test_a_run_killed_during_the_warm_start_can_be_started_again_or_resumed(tmp_path):
    config = tiny_config(tmp_path / "run", total_frames=16)
    config.warm_start = WarmStartConfig(demo_frames=16, epochs=1)
    run_killed(config, "warm_start")
    assert not (tmp_path / "run" / "checkpoints").exists()
    shutil.copytree(tmp_path / "run", tmp_path / "copy")

    with pytest.warns(StaleLockWarning, match="no longer running"):
        trainer = PPOTrainer(config)  # started again, not resumed
    assert trainer.train().update == 1

    copy = dataclasses.replace(config, run=dataclasses.replace(config.run, resume=True))
    copy.run.output_dir = str(tmp_path / "copy")
    with pytest.warns(CheckpointWarning, match="stopped before its first checkpoint"):
        trainer = PPOTrainer(copy)
    assert trainer.state.update == 0
    assert trainer.train().demo_frames == 16  # the warm start was done again
    assert [r["update"] for r in read_metrics(tmp_path / "copy")] == [1]


@pytest.mark.slow
def test_a_run_killed_inside_its_first_save_resumes_from_the_start(tmp_path):
    config = tiny_config(tmp_path / "run", total_frames=16)
    run_killed(config, "first_save")
    checkpoints = tmp_path / "run" / "checkpoints"
    assert [p.name.split(".tmp-")[0] for p in checkpoints.iterdir()] == [".update_000001"]
    assert len(read_metrics(tmp_path / "run")) == 1
    with pytest.raises(FileExistsError, match="--run.resume"), warnings.catch_warnings():
        warnings.simplefilter("ignore", StaleLockWarning)
        PPOTrainer(config)  # its metrics are kept: a new run is refused
    with pytest.warns(CheckpointWarning, match="stopped before its first checkpoint"):
        trainer = PPOTrainer(resumed(config))
    assert list(checkpoints.iterdir()) == []  # the killed save's leftovers are gone
    assert trainer.train().update == 1
    assert [r["update"] for r in read_metrics(tmp_path / "run")] == [1]
    assert latest_checkpoint(tmp_path / "run").name == "update_000001"


@pytest.mark.slow
def test_a_kill_between_moving_a_checkpoint_aside_and_renaming_its_new_copy_in(tmp_path):
    config = tiny_config(tmp_path / "run", total_frames=32)  # saves 1, 2, then 2 again
    run_killed(config, "between_delete_and_rename")
    checkpoints = tmp_path / "run" / "checkpoints"
    assert not checkpoint_dir(tmp_path / "run", 2).exists()
    assert (checkpoints / "latest").read_text() == "update_000002"

    # evaluation (which must not repair a run another job may be writing) falls back
    with pytest.warns(
        CheckpointWarning, match="update_000002, which does not exist.*update_000001"
    ):
        assert latest_checkpoint(tmp_path / "run").name == "update_000001"
    with pytest.warns(CheckpointWarning):
        _, saved = load_policy_for_eval(tmp_path / "run")
    assert saved.ppo.total_frames == 32

    # resuming (under the run's lock) puts the complete old copy back and continues from it
    with pytest.warns(CheckpointWarning, match="is put back"):
        trainer = PPOTrainer(resumed(config, total_frames=48))
    assert trainer.state.update == 2
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "latest",
        "update_000001",
        "update_000002",
    ]
    assert trainer.train().update == 3


@pytest.mark.slow
def test_a_kill_in_the_middle_of_a_metrics_line_blocks_neither_plot_nor_resume(tmp_path):
    config = tiny_config(tmp_path / "run", total_frames=32)
    run_killed(config, "metrics_line")
    with pytest.warns(MetricsWarning, match="last line, which is incomplete"):
        assert [r["update"] for r in read_metrics(tmp_path / "run")] == [1]
    main(["plot", str(tmp_path / "run"), "--out", str(tmp_path / "curve.png")])
    assert (tmp_path / "curve.png").stat().st_size > 0
    with pytest.warns(StaleLockWarning):
        trainer = PPOTrainer(resumed(config))
    assert trainer.train().update == 2
    assert [r["update"] for r in read_metrics(tmp_path / "run")] == [1, 2]


def test_a_metrics_line_damaged_in_the_middle_is_reported_by_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"update": 1}\n{"upd\n{"update": 3}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_metrics(tmp_path)


# --------------------------------------------------------------------------- moved directories
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A finished one-update run (its checkpoint has a real policy), copied by each test."""
    run = tmp_path_factory.mktemp("trained") / "run"
    PPOTrainer(tiny_config(run, total_frames=16)).train()
    return run


def copy_of(trained_run, tmp_path, name="run"):
    target = tmp_path / name
    shutil.copytree(trained_run, target)
    return target


@pytest.mark.slow
@pytest.mark.parametrize("spelling", ["relative", "absolute", "trailing slash"])
def test_a_moved_or_copied_run_directory_resumes(trained_run, tmp_path, monkeypatch, spelling):
    moved = copy_of(trained_run, tmp_path, "elsewhere")
    monkeypatch.chdir(tmp_path)
    output_dir = {
        "relative": "elsewhere",
        "absolute": str(moved),
        "trailing slash": "./elsewhere/",
    }[spelling]
    config = tiny_config(output_dir, total_frames=32)
    config.run.resume = True
    trainer = PPOTrainer(config)
    assert trainer.state.update == 1
    assert trainer.train().update == 2
    assert json.loads((moved / "config.json").read_text())["run"]["output_dir"] == output_dir


@pytest.mark.slow
def test_the_success_window_is_saved_with_the_checkpoint_and_restored(tmp_path):
    trainer = PPOTrainer(tiny_config(tmp_path / "run", total_frames=16))
    trainer.envs.return_queue.extend([0.9, 0.0, 0.5])
    trainer.train()
    saved = json.loads((latest_checkpoint(tmp_path / "run") / "trainer_state.json").read_text())
    assert saved["recent_returns"][:3] == [0.9, 0.0, 0.5]
    config = tiny_config(tmp_path / "run", total_frames=32)
    config.run.resume = True
    assert list(PPOTrainer(config).envs.return_queue) == saved["recent_returns"]


# ----------------------------------------------------------------------------- latest pointer
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "is missing"),
        ("empty", "holds '', not the name of a checkpoint"),
        ("absolute", "not the name of a checkpoint"),
        ("parent", "not the name of a checkpoint"),
        ("symlink out", "a symbolic link"),
        ("names a missing one", "update_000007, which does not exist"),
        ("binary", "cannot be read"),
    ],
)
def test_a_damaged_latest_falls_back_to_the_newest_complete_checkpoint(tmp_path, damage, message):
    run = tmp_path / "run"
    save_tagged_checkpoint(run, 1)
    save_tagged_checkpoint(run, 2)
    pointer = run / "checkpoints" / "latest"
    outside = tmp_path / "outside"
    shutil.copytree(checkpoint_dir(run, 2), outside)
    if damage == "missing":
        pointer.unlink()
    elif damage == "empty":
        pointer.write_text("")
    elif damage == "absolute":
        pointer.write_text(str(outside))
    elif damage == "parent":
        pointer.write_text("../../outside")
    elif damage == "symlink out":
        (run / "checkpoints" / "update_000009").symlink_to(outside)
        pointer.write_text("update_000009")
    elif damage == "names a missing one":
        pointer.write_text("update_000007")
    elif damage == "binary":
        pointer.write_bytes(b"\xff\xfe\x00update")
    with pytest.warns(CheckpointWarning, match=message) as record:
        assert latest_checkpoint(run) == checkpoint_dir(run, 2)
    assert "using the newest complete checkpoint, update_000002" in str(record[0].message)


def test_the_fallback_skips_a_damaged_checkpoint_and_says_so(tmp_path):
    run = tmp_path / "run"
    save_tagged_checkpoint(run, 1, "good")
    save_tagged_checkpoint(run, 2, "bad")
    (run / "checkpoints" / "latest").unlink()
    (checkpoint_dir(run, 2) / "policy" / "weights").write_text("BAD")  # same size, other bytes
    with pytest.warns(CheckpointWarning, match="skipped, damaged: update_000002"):
        assert latest_checkpoint(run) == checkpoint_dir(run, 1)


def test_no_complete_checkpoint_at_all_says_what_to_do(tmp_path):
    run = tmp_path / "run"
    save_tagged_checkpoint(run, 1)
    (run / "checkpoints" / "latest").write_text("../x")
    shutil.rmtree(checkpoint_dir(run, 1))
    with pytest.raises(FileNotFoundError, match="no complete checkpoint.*without --run.resume"):
        latest_checkpoint(run)


# --------------------------------------------------------------------------------- manifests
@pytest.mark.parametrize(
    ("target", "damage", "problem"),
    [
        ("optimizer.safetensors", "truncate", "truncated"),
        ("rng.safetensors", "flip", "modified"),
        ("config.json", "edit", "size changed"),
        ("trainer_state.json", "delete", "missing"),
    ],
)
def test_a_damaged_checkpoint_file_is_reported_by_name(tmp_path, target, damage, problem):
    run = tmp_path / "run"
    save_tagged_checkpoint(run, 1)
    file = checkpoint_dir(run, 1) / target
    data = file.read_bytes()
    if damage == "truncate":
        file.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        file.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "edit":
        file.write_text(data.decode() + " ")
    else:
        file.unlink()
    with pytest.raises(CheckpointCorruptError, match=f"{target}: {problem}") as error:
        latest_checkpoint(run)
    assert error.value.problems[target].startswith(problem.split()[0])


@pytest.mark.slow
def test_an_edited_model_config_or_a_missing_tokenizer_stops_resume_and_evaluate(
    trained_run, tmp_path
):
    run = copy_of(trained_run, tmp_path)
    model = latest_checkpoint(run) / "policy" / "model"
    (model / "config.json").write_text((model / "config.json").read_text().replace("2", "3"))
    tokenizer = next(model.glob("tokenizer*.json"))
    tokenizer.unlink()
    config = tiny_config(run, total_frames=32)
    config.run.resume = True
    with pytest.raises(CheckpointCorruptError) as error:
        PPOTrainer(config)
    problems = error.value.problems
    assert problems[f"policy/model/{tokenizer.name}"] == "missing"
    assert problems["policy/model/config.json"] in ("modified", "size changed", "truncated")
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--checkpoint", str(run), "--episodes", "1", "--num-envs", "1"])
    assert f"policy/model/{tokenizer.name}: missing" in str(exit_.value.code)
    with pytest.raises(CheckpointCorruptError, match="policy/model/config.json"):
        load_policy_for_eval(checkpoint_dir(run, 1))  # a checkpoint directory named directly
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--run.output-dir", str(run), "--run.resume", "--run.no-progress"])
    assert "is corrupt" in str(exit_.value.code)


def test_checkpoints_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        save_tagged_checkpoint(tmp_path / "run", 1)
        save_tagged_checkpoint(tmp_path / "run", 1)  # a re-save too
    finally:
        os.umask(previous)
    for path in [tmp_path / "run" / "checkpoints", *(tmp_path / "run").rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o750 if path.is_dir() else 0o640), (path, oct(mode))


@pytest.mark.slow
# ------------------------------------------------------------------------------ untrusted data
def test_an_env_id_from_a_checkpoints_config_must_be_a_registered_babyai_text_id(
    trained_run, tmp_path
):
    run = copy_of(trained_run, tmp_path)
    checkpoint = latest_checkpoint(run)
    saved = json.loads((checkpoint / "config.json").read_text())
    saved["env"]["env_id"] = "os:BabyAI-Text-GoToLocal-v0"
    saved["policy"]["trust_remote_code"] = True
    (checkpoint / "config.json").write_text(json.dumps(saved))
    with pytest.raises(CheckpointCorruptError, match="config.json"):
        load_policy_for_eval(run)  # the manifest notices the edit...
    write_manifest(checkpoint)  # ...unless whoever edited it rewrote the manifest too
    with pytest.raises(ValueError, match="refusing to load.*drop the 'module:' prefix"):
        load_policy_for_eval(run)
    saved["env"]["env_id"] = "BabyAI-Text-GoToLocal-v0"
    (checkpoint / "config.json").write_text(json.dumps(saved))
    write_manifest(checkpoint)
    _, config = load_policy_for_eval(run)
    assert config.env.env_id == "BabyAI-Text-GoToLocal-v0"
    assert config.policy.trust_remote_code is False


@pytest.mark.slow
def test_evaluate_on_a_bare_policy_directory_says_what_it_assumed(trained_run, tmp_path, capsys):
    policy = tmp_path / "policy"
    shutil.copytree(latest_checkpoint(trained_run) / "policy", policy)
    main(["evaluate", "--checkpoint", str(policy), "--episodes", "1", "--num-envs", "1"])
    err = capsys.readouterr().err
    assert "bare policy directory" in err
    assert "BabyAI-Text-GoToRedBallNoDists-v0, language 'en' and 1 observation(s)" in err


@pytest.mark.slow
# ------------------------------------------------------------------------------------- NaN/inf
def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from ppo_grounding import update as update_module

    trainer = PPOTrainer(tiny_config(tmp_path / "run", total_frames=48))
    real_loss = update_module.ppo_loss

    def poisoned(*args, **kwargs):
        out = real_loss(*args, **kwargs)
        if trainer.state.update == 1:  # during update 2
            out.loss = out.loss * math.nan
        return out

    monkeypatch.setattr(update_module, "ppo_loss", poisoned)
    before = [p.detach().clone() for p in trainer.policy.trainable_parameters()]
    with pytest.raises(NonFiniteError, match=r"update 2: non-finite loss \(nan\)") as error:
        trainer.train()
    assert (error.value.update, error.value.quantity) == (2, "loss")
    assert latest_checkpoint(tmp_path / "run").name == "update_000001"
    assert not checkpoint_dir(tmp_path / "run", 2).exists()
    assert [r["update"] for r in read_metrics(tmp_path / "run")] == [1]
    after = list(trainer.policy.trainable_parameters())
    assert all(torch.isfinite(p).all() for p in after), "the NaN gradient was never applied"
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.slow
def test_nan_parameters_never_reach_a_checkpoint(tmp_path):
    trainer = PPOTrainer(tiny_config(tmp_path / "run", total_frames=32))
    real_update = trainer.update

    def update(rollout):
        metrics = real_update(rollout)
        if trainer.state.update == 1:
            with torch.no_grad():
                next(iter(trainer.policy.trainable_parameters())).view(-1)[0] = math.inf
        return metrics

    trainer.update = update
    with pytest.raises(NonFiniteError, match=r"update 2: non-finite parameter '.*' \(0 NaN, 1 inf"):
        trainer.train()
    assert latest_checkpoint(tmp_path / "run").name == "update_000001"


def test_each_quantity_is_named():
    with pytest.raises(NonFiniteError, match="update 4: non-finite gradient norm"):
        check_step(4, loss=torch.tensor(0.3), grad_norm=torch.tensor(math.inf))
    check_step(4, loss=0.3, grad_norm=2.0)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    check_state(5, model, optimizer)
    optimizer.state[model.weight]["exp_avg_sq"][0, 0] = math.nan
    with pytest.raises(NonFiniteError, match="optimizer state 'exp_avg_sq' of 'weight'"):
        check_state(5, model, optimizer)


def test_nan_logits_become_our_error_and_other_value_errors_pass():
    with pytest.raises(NonFiniteError, match="update 3: non-finite action scores"):
        with guard(3):
            torch.distributions.Categorical(logits=torch.tensor([math.nan, 0.0]))
    with pytest.raises(ValueError, match="unrelated"), guard(3):
        raise ValueError("unrelated")


@pytest.mark.slow
def test_divergence_ends_with_our_message_and_a_nonzero_exit(tmp_path):
    child = subprocess.run(
        [sys.executable, "-m", "ppo_grounding.cli", "train"]
        + ["--env.num-envs", "2", "--ppo.num-steps", "8", "--ppo.minibatch-size", "8"]
        + ["--ppo.total-frames", "160", "--ppo.learning-rate", "1e6"]
        + ["--run.no-progress", "--run.no-tensorboard", "--run.output-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert child.returncode == 1
    assert "Traceback" not in child.stderr
    assert "ppo-grounding train: stopped at update" in child.stderr
    assert "non-finite" in child.stderr and "lower --ppo.learning-rate" in child.stderr
    for path in Path(tmp_path / "r").rglob("*.safetensors"):  # whatever was saved is finite
        from safetensors.torch import load_file

        assert all(
            torch.isfinite(t).all() for t in load_file(path).values() if t.is_floating_point()
        )


@pytest.mark.slow
def test_a_full_disk_stops_the_run_with_the_last_checkpoint_kept(tmp_path, monkeypatch):
    from ppo_grounding import checkpoint

    real_save_file = checkpoint.save_file
    calls = []

    def save_file(tensors, path):
        calls.append(path)
        if len(calls) > 2:  # the second checkpoint's first file (the first wrote two)
            raise OSError(28, "No space left on device")
        return real_save_file(tensors, path)

    monkeypatch.setattr(checkpoint, "save_file", save_file)
    run = tmp_path / "run"
    args = ["--env.num-envs", "2", "--ppo.num-steps", "8", "--ppo.minibatch-size", "8"]
    args += ["--ppo.total-frames", "32", "--run.checkpoint-every", "1"]
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "train",
                *args,
                "--run.no-progress",
                "--run.no-tensorboard",
                "--run.output-dir",
                str(run),
            ]
        )
    message = str(exit_.value.code)
    assert "No space left on device" in message and "update_000001" in message
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "update_000001"]
    monkeypatch.undo()
    main(
        [
            "train",
            *args,
            "--run.no-progress",
            "--run.no-tensorboard",
            "--run.output-dir",
            str(run),
            "--run.resume",
        ]
    )
    assert latest_checkpoint(run).name == "update_000002"


def test_every_file_of_a_checkpoint_and_latest_are_fsynced(tmp_path, monkeypatch):
    from llm_policy import atomic

    synced = []
    real_path_sync = atomic._fsync_path

    def spy(path):
        synced.append(Path(path))
        real_path_sync(path)

    monkeypatch.setattr(atomic, "_fsync_path", spy)
    fds = []
    real_fsync = os.fsync

    def fsync(fd):
        fds.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    final = save_tagged_checkpoint(tmp_path / "run", 1)
    saved = {f.relative_to(final).as_posix() for f in final.rglob("*") if f.is_file()}
    roots = [p for p in synced if p.name.startswith(".update_000001.tmp-")]
    assert roots, "the checkpoint was fsynced before it was renamed into place"
    synced_files = {p.relative_to(roots[0]).as_posix() for p in synced if roots[0] in p.parents}
    assert saved <= synced_files
    assert "manifest.json" in saved and "policy/weights" in saved
    assert any(".latest.tmp-" in name for name in fds)
