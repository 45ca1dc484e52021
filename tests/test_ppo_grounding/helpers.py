from llm_policy import PolicyConfig
from ppo_grounding import EnvConfig, PPOConfig, RunConfig, TrainConfig


def tiny_config(output_dir, **ppo) -> TrainConfig:
    """A run small enough for a unit test: 2 envs x 8 steps per update, the tiny offline model."""
    settings = dict(
        total_frames=32, num_steps=8, minibatch_size=8, update_epochs=2, learning_rate=1e-3
    )
    settings.update(ppo)
    return TrainConfig(
        env=EnvConfig(env_id="BabyAI-Text-GoToRedBallNoDists-v0", num_envs=2, num_observations=3),
        policy=PolicyConfig(model="offline-gpt2", finetune="full", normalization="token"),
        ppo=PPOConfig(**settings),
        run=RunConfig(
            output_dir=str(output_dir),
            checkpoint_every=1,
            progress=False,
            tensorboard=False,
            seed=3,
        ),
    )


class TaggedPolicy:
    """Stands in for an LLMPolicy in checkpoint tests: its save is one file naming which save
    it was."""

    def __init__(self, tag):
        self.tag = tag

    def save_pretrained(self, path):
        path.mkdir()
        (path / "weights").write_text(self.tag)


def save_tagged_checkpoint(output_dir, update, tag="x"):
    """A run checkpoint of update `update` holding a TaggedPolicy(tag) and a throwaway optimiser."""
    import torch
    from ppo_grounding.checkpoint import TrainerState, save_checkpoint

    return save_checkpoint(
        output_dir,
        policy=TaggedPolicy(tag),
        optimizer=torch.optim.Adam(torch.nn.Linear(2, 2).parameters()),
        shuffle_generator=torch.Generator(),
        state=TrainerState(update=update),
        config_json="{}",
    )
