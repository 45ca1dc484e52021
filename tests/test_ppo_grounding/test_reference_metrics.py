"""Speed-ups must not change learning: a short fixed-seed run of the offline default's setting
(GoToRedBall, one observation) logs the metrics that commit e4f12c9, before the loop was made
faster, logged. The stored reference is that commit's output; regenerate it only on purpose:

    git archive e4f12c9 | tar -x -C /tmp/e4f12c9
    PYTHONPATH=$(ls -d /tmp/e4f12c9/packages/*/src | paste -sd:) \\
        .venv/bin/python tests/test_ppo_grounding/test_reference_metrics.py --write

The faster loop runs the prompts' shared prefix once, scores each distinct prompt of a minibatch
once and reuses a rollout's outputs for prompts it has already scored (all equal to float
rounding, not bitwise), so
losses differ from the first update's 1e-7 and grow to about 1e-4 by the third: they are compared
to a relative 1e-3. Everything sampled and everything the environment decides (the actions taken,
returns, lengths) must be identical."""

import dataclasses
import json
import math
import sys
from pathlib import Path

REFERENCE = Path(__file__).with_name("reference_metrics.json")
WALL_CLOCK = ("charts/SPS", "time/elapsed_s")
ROUNDED = "losses/"
# metric names changed on purpose since e4f12c9: CleanRL's name is back
RENAMED = {"charts/episode_length": "charts/episodic_length"}
# metrics added since e4f12c9, which its reference cannot hold
ADDED = ("memory/weights_and_adam_gib",)


def reference_run(output_dir):
    """3 updates of 8 envs x 16 steps: the metrics rows, without wall-clock ones."""
    sys.path.insert(0, str(Path(__file__).parent))
    from helpers import tiny_config
    from ppo_grounding import EnvConfig, PPOTrainer

    config = tiny_config(output_dir, total_frames=384, num_steps=16, minibatch_size=32)
    config = dataclasses.replace(
        config,
        env=EnvConfig(env_id="BabyAI-Text-GoToRedBall-v0", num_envs=8, num_observations=1),
    )
    PPOTrainer(config).train()
    rows = [json.loads(line) for line in (Path(output_dir) / "metrics.jsonl").open()]
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK} for row in rows]


def test_a_fixed_seed_run_logs_the_reference_metrics(tmp_path, monkeypatch):
    from llm_policy.decoder_only import DecoderOnlyForwards

    shared_lengths = []
    original = DecoderOnlyForwards._shared_prefix_length

    def spy(self, batch):
        shared_lengths.append(original(self, batch))
        return shared_lengths[-1]

    monkeypatch.setattr(DecoderOnlyForwards, "_shared_prefix_length", spy)
    got = reference_run(tmp_path / "run")
    assert max(shared_lengths) > 0, "the run must exercise the shared-prefix forward"
    assert all(all(name in row for name in ADDED) for row in got)
    got = [{k: v for k, v in row.items() if k not in ADDED} for row in got]

    want = [
        {RENAMED.get(k, k): v for k, v in row.items()} for row in json.loads(REFERENCE.read_text())
    ]
    assert [sorted(r) for r in got] == [sorted(r) for r in want]
    for update, (g, w) in enumerate(zip(got, want, strict=True), start=1):
        for key, value in w.items():
            if key.startswith(ROUNDED) and isinstance(value, float):
                assert math.isclose(g[key], value, rel_tol=1e-3, abs_tol=1e-6), (update, key)
            else:
                assert g[key] == value, (update, key)


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {sys.argv[0]} --write   (see the module docstring)")
    with tempfile.TemporaryDirectory() as tmp:
        rows = reference_run(Path(tmp) / "run")
    REFERENCE.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {REFERENCE} ({len(rows)} updates)")
