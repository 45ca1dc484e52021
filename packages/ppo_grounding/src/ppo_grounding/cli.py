"""The `ppo-grounding` command: train, clone, evaluate, replay, plot, plan.

ppo-grounding train [--preset offline|paper] [--ppo.learning-rate 1e-4 ...] --run.output-dir runs/a
ppo-grounding clone --warm-start.demo-frames 20000 --run.output-dir runs/cloned
ppo-grounding train --run.init-from runs/cloned --run.output-dir runs/cloned-ppo
ppo-grounding evaluate --checkpoint runs/a --episodes 200
ppo-grounding evaluate --checkpoint runs/a/checkpoints/update_000010 --episodes 200
ppo-grounding evaluate --checkpoint runs/a --suite generalisation --out results/
ppo-grounding replay --checkpoint runs/a --episodes 3 --out replays/
ppo-grounding plot runs/a runs/quickstart-* --out curves.png
ppo-grounding plan --preset paper --processes 8 --device-memory-gib 80
"""

from __future__ import annotations

import shlex
import signal
import sys
import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import tyro

from .config import PRESETS, TrainConfig, check_env_id
from .evaluate import EVAL_SEED_OFFSET


@dataclass
class EvaluateArgs:
    checkpoint: str
    """A run directory (its latest checkpoint), a checkpoint directory, a policy directory (LLMPolicy.save_pretrained), or an untrained model for zero-shot: a Hugging Face id or directory, or an offline model name (offline-gpt2, offline-t5)."""
    env_id: str | None = None
    """Environment to evaluate in (default: the one the run trained in; for --suite without a run, BabyAI-Text-MixedTrainLocal-v0)."""
    episodes: int = 100
    """Episodes to play."""
    seed_offset: int = EVAL_SEED_OFFSET
    """Seed of the first episode; episode k uses seed_offset + k."""
    num_envs: int = 16
    """Episodes played side by side."""
    greedy: bool = False
    """Take the most likely action instead of sampling (the paper samples)."""
    baseline: bool = True
    """Also evaluate a uniformly random agent on the same seeds."""
    num_observations: int | None = None
    """Observations kept in the prompt (default: the run's; 1 for an untrained model)."""
    extra_actions: int | None = None
    """Also offer the first N useless phrases (sleep, dance, sing, ...; evaluate.EXTRA_ACTION_PHRASES), executed as no-ops: the action-space experiment (default: the run's --env.extra-actions; 0 for an untrained model or a bare policy directory)."""
    suite: Literal["generalisation"] | None = None
    """Run a suite of tests instead of one evaluation: "generalisation" (the paper's tests)."""
    suite_tests: str | None = None
    """With --suite: comma-separated tests to run (default: all; e.g. baseline,new_nouns,french)."""
    baselines: str = "random"
    """With --suite: comma-separated comparison agents on the same episodes: random, expert (the bot); "" for none."""
    out: str = "generalisation"
    """With --suite: directory for generalisation.md and generalisation.csv."""


@dataclass
class ReplayArgs:
    checkpoint: str
    """A run directory (its latest checkpoint), a checkpoint directory, a policy directory (LLMPolicy.save_pretrained), or an untrained model for zero-shot: a Hugging Face id or directory, or an offline model name (offline-gpt2, offline-t5)."""
    env_id: str | None = None
    """Environment (default: the one the run trained in, else BabyAI-Text-MixedTrainLocal-v0)."""
    episodes: int = 3
    """Episodes to replay, one file each."""
    out: str = "replays"
    """Directory for the episode files and episodes.csv."""
    format: Literal["gif", "mp4"] = "gif"
    """File format of each episode: an animated GIF, or an H.264 MP4 (needs the video extra: pip install './packages/ppo_grounding[video]' from a clone)."""
    test: str | None = None
    """Replay under a generalisation test (its env, language, action names, word map), e.g. new_nouns."""
    seed_offset: int = EVAL_SEED_OFFSET
    """Seed of the first episode; episode k uses seed_offset + k (the episodes of evaluate)."""
    greedy: bool = False
    """Take the most likely action instead of sampling."""
    max_steps: int | None = None
    """Stop each replay after this many steps (default: the whole episode)."""
    fps: float = 2.0
    """Frames per second of the GIFs or videos."""
    extra_actions: int | None = None
    """Also offer the first N useless phrases (sleep, dance, sing, ...; evaluate.EXTRA_ACTION_PHRASES), executed as no-ops: the action-space experiment (default: the run's --env.extra-actions; 0 for an untrained model or a bare policy directory)."""
    num_observations: int | None = None
    """Observations kept in the prompt (default: the run's; 1 for an untrained model)."""


@dataclass
class PlotArgs:
    runs: tyro.conf.Positional[list[str]] = field(default_factory=list)
    """Run directories (each holding metrics.jsonl)."""
    out: str = "learning_curve.png"
    """PNG file to write."""


def _train_config(
    argv: list[str],
    command: str,
    description: str,
    *,
    resume_own_config: bool = False,
    check_device: bool = True,
) -> TrainConfig:
    """A TrainConfig from `--preset NAME` and the options, checked before anything is built.

    With `resume_own_config` and --run.resume, the run's own config.json takes the preset's
    place: the options given change it (checked against the checkpoint when the run starts)."""
    preset = "offline"
    if "--preset" in argv:
        i = argv.index("--preset")
        if i + 1 >= len(argv) or argv[i + 1] not in PRESETS:
            raise SystemExit(f"--preset needs one of {sorted(PRESETS)}")
        preset = argv[i + 1]
        argv = argv[:i] + argv[i + 2 :]

    # tyro never sees --preset (it is taken out above), so --help would not list it: the
    # description does, with each preset's purpose (its docstring's first paragraph; every
    # preset has one).
    presets = "\n".join(
        textwrap.fill(
            f"{name}{' (default)' if name == 'offline' else ''}: "
            + " ".join(cast(str, make.__doc__).split("\n\n")[0].split()),
            width=96,
            initial_indent="  ",
            subsequent_indent="    ",
        )
        for name, make in PRESETS.items()
    )
    help_text = (
        f"{description}.\n--preset NAME sets the defaults that the options below change "
        f"(those shown are {preset}'s):\n{presets}"
    )

    def parse(default: TrainConfig) -> TrainConfig:
        return tyro.cli(
            TrainConfig,
            default=default,
            args=argv,
            prog=f"ppo-grounding {command}",
            description=help_text,
        )

    config = parse(PRESETS[preset]())
    if resume_own_config and config.run.resume:
        from .run_directory import resume_defaults

        try:
            config = parse(resume_defaults(config))
        except ValueError as error:  # a damaged config.json: the message says what to do
            raise SystemExit(f"ppo-grounding {command}: {error}") from None
    if config.policy.head == "action_head" and not _given(argv, "--policy.num-actions"):
        config.policy.num_actions = config.env.num_actions  # one logit per action of the env
    from .distributed import check_sizes, launched_world_size

    try:
        config.validate(check_device=check_device)
        check_sizes(config, launched_world_size())  # global sizes N processes must share
    except ValueError as error:
        raise SystemExit(str(error)) from None
    return config


def _given(argv: list[str], option: str) -> bool:
    """`option` (either spelling, hyphens or underscores; `--opt V` or `--opt=V`) is in argv."""
    spellings = {option, option.replace("-", "_").replace("__", "--", 1)}
    return any(arg.split("=", 1)[0] in spellings for arg in argv)


def clone(argv: list[str]) -> None:
    """Behaviour cloning of the expert alone, saved as update 0 of a normal run."""
    config = _train_config(
        argv,
        "clone",
        "Clone the expert bot on --warm-start.demo-frames steps and save the policy as a run "
        "checkpoint that `evaluate` reads and `train --run.resume` continues with PPO",
    )
    if config.warm_start.demo_frames < 1:
        raise SystemExit(
            "ppo-grounding clone: pass --warm-start.demo-frames N (expert steps to imitate, "
            "e.g. 20000)."
        )
    if config.run.init_from is not None:
        raise SystemExit(
            "ppo-grounding clone: --run.init-from is for `train` (clone starts from a fresh "
            "policy); drop it, or clone first and then `train --run.init-from` the clone."
        )
    from .baselines import clone_expert
    from .run_lock import RunLockedError

    try:
        checkpoint = clone_expert(config)
    except (OSError, RunLockedError, ValueError) as error:
        raise SystemExit(f"ppo-grounding clone: {error}") from None
    _report(
        f"cloned the expert on {config.warm_start.demo_frames} steps: {checkpoint}\n"
        f"evaluate it: ppo-grounding evaluate --checkpoint {config.run.output_dir}\n"
        "continue it with PPO: ppo-grounding train <the same options> --run.resume\n"
        f"or start a new PPO run from it: ppo-grounding train --run.init-from "
        f"{config.run.output_dir} --run.output-dir <a new directory>"
    )


def train(argv: list[str]) -> None:
    config = _train_config(argv, "train", "Train with PPO", resume_own_config=True)
    from .distributed import is_main_process
    from .reporter import hf_progress_bars, stderr_is_terminal
    from .trainer import TrainingInterrupted

    # transformers' "Loading weights" bar: on a terminal with progress on, from one process;
    # never in a log (a bar in a file is a line per redraw) nor with --run.no-progress
    show_hf_bars = config.run.progress and stderr_is_terminal() and is_main_process()
    previous = _stop_at_once_on_signals()  # until the loop takes over (PPOTrainer.train)
    try:
        with hf_progress_bars(show_hf_bars):
            _train(config)
    except KeyboardInterrupt as stop:  # TrainingInterrupted, or a Ctrl-C from elsewhere
        for signum in previous:  # on the way out: a further signal must not cut the message
            signal.signal(signum, signal.SIG_IGN)
        signum = stop.signum if isinstance(stop, TrainingInterrupted) else signal.SIGINT
        _print_main(_interrupted_note(config.run.output_dir, signum))
        raise SystemExit(128 + signum) from None  # the shell's code for death by that signal
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop_at_once_on_signals() -> dict:
    """SIGINT and SIGTERM raise TrainingInterrupted while the model loads and the trainer is
    built: the run lock is then released on the way out, the message says what survives, and
    SIGTERM does not kill the process before its `finally` blocks run. Returns the handlers
    replaced."""
    from .trainer import STOP_SIGNALS, TrainingInterrupted

    def stop(signum: int, frame: object) -> None:
        raise TrainingInterrupted(signum, at_once=True)

    return {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}


def _interrupted_note(output_dir: str, signum: int) -> str:
    """One line: which checkpoint survives a stop by `signum` (with its update and frames) and
    the command that continues the run."""
    from .checkpoint import CONFIG_FILE, MAX_STATE_BYTES, STATE_FILE, latest_checkpoint

    name = signal.Signals(signum).name
    resume = f"ppo-grounding train --run.output-dir {shlex.quote(output_dir)} --run.resume"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = latest_checkpoint(output_dir)
    except (FileNotFoundError, ValueError):
        if not (Path(output_dir) / CONFIG_FILE).is_file():  # stopped before anything was written
            return (
                f"ppo-grounding train: stopped by {name} before the run wrote anything to "
                f"{output_dir}; start it again with the same command."
            )
        return (
            f"ppo-grounding train: stopped by {name}; no checkpoint exists yet in {output_dir}; "
            f"start over with: {resume}"
        )
    from llm_policy.small_files import read_small_json

    try:
        state = read_small_json(path / STATE_FILE, MAX_STATE_BYTES, "trainer state")
        counts = f" (update {state['update']}, {state['frames']} frames)"
    except (OSError, ValueError, KeyError, TypeError):  # the name alone still says which
        counts = ""
    return (
        f"ppo-grounding train: stopped by {name}; the latest checkpoint is {path}{counts}; "
        f"resume with: {resume}"
    )


def _train(config: TrainConfig) -> None:
    from llm_policy import CheckpointCorruptError

    from .finite import NonFiniteError
    from .run_lock import RunLockedError
    from .sources import load_init_policy
    from .trainer import PPOTrainer

    try:
        policy = load_init_policy(config)  # --run.init-from: None without it, or on a resume
        if policy is not None:
            _report(f"starting from the weights in {config.run.init_from}")
        trainer = PPOTrainer(config, policy=policy)
    except (OSError, RunLockedError, ValueError) as error:
        # a run directory in use or already used (FileExistsError), no checkpoint to resume
        # (FileNotFoundError), a damaged checkpoint (CheckpointCorruptError is a ValueError), a
        # config that differs from the checkpoint's, a filesystem without locks, an init-from
        # source that is missing or does not fit the run: the message says what to do
        raise SystemExit(f"ppo-grounding train: {error}") from None
    try:
        state = trainer.train()
    except NonFiniteError as error:
        raise SystemExit(
            f"ppo-grounding train: stopped at {error}\n{_latest_note(config.run.output_dir)}"
        ) from None
    except CheckpointCorruptError as error:
        raise SystemExit(f"ppo-grounding train: {error}") from None
    except OSError as error:  # a full disk, a directory gone read-only, ...
        raise SystemExit(
            f"ppo-grounding train: stopped: {error}\nNothing half-written was published. "
            f"{_latest_note(config.run.output_dir)} Fix the cause and pass --run.resume to "
            "continue."
        ) from None
    _report(
        f"trained {state.update} updates, {state.frames} frames in {state.elapsed_s / 60:.1f} min; "
        f"checkpoints in {Path(config.run.output_dir) / 'checkpoints'}"
    )


def _report(*values) -> None:
    """Print a result once: under a launcher only the main process reports."""
    from .distributed import is_main_process

    if is_main_process():
        print(*values)


def _print_main(line: str) -> None:
    """One line on stderr from the main process only (under a launcher)."""
    from .distributed import is_main_process

    if is_main_process():
        print(line, file=sys.stderr, flush=True)


def _latest_note(output_dir: str) -> str:
    """Which checkpoint a stopped run left as `latest`."""
    from .checkpoint import latest_checkpoint

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = latest_checkpoint(output_dir)
    except (FileNotFoundError, ValueError):
        return f"No checkpoint was written in {output_dir}."
    return f"The last good checkpoint, {path}, is the run's latest."


def _extra_actions(n: int | None, command: str, run_config: TrainConfig | None = None):
    """The phrases of --extra-actions N; with N None, the run's env.extra_actions (checked the
    same way: a saved config is data from whoever wrote it)."""
    from .evaluate import extra_action_phrases

    if n is None:
        n = 0 if run_config is None else run_config.env.extra_actions
    try:
        return extra_action_phrases(n)
    except ValueError as error:
        raise SystemExit(f"ppo-grounding {command}: --extra-actions: {error}") from None


def _load(source: str):
    from .evaluate import load_policy

    try:
        return load_policy(source, report=_report)
    except (FileNotFoundError, ValueError) as error:  # CheckpointCorruptError too
        raise SystemExit(str(error)) from None


def _check_env_id_option(env_id: str) -> None:
    """--env-id must be a registered BabyAI-Text ID (close matches suggested), never `module:ID`."""
    from . import suite

    suite.check_env_id(env_id)
    check_env_id(env_id, "--env-id")


def _check_counts(args, command: str) -> None:
    """Counts that must be positive, before any model loads."""
    problems = []
    for name in ("episodes", "num_envs", "num_observations"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            problems.append(f"--{name.replace('_', '-')} {value}: use at least 1")
    if getattr(args, "seed_offset", 0) < 0:
        problems.append(f"--seed-offset {args.seed_offset}: seeds are >= 0")
    if problems:
        raise SystemExit(f"ppo-grounding {command}: " + "; ".join(problems))


def evaluate(argv: list[str]) -> None:
    args = tyro.cli(EvaluateArgs, args=argv, prog="ppo-grounding evaluate")
    _check_counts(args, "evaluate")
    if args.suite is not None:
        return generalisation_suite(args)
    from . import suite
    from .evaluate import PolicyAgent, RandomAgent
    from .evaluate import evaluate as run_evaluation

    _extra_actions(args.extra_actions, "evaluate")  # a bad count fails before the model loads
    if args.env_id is not None:
        try:
            _check_env_id_option(args.env_id)
        except ValueError as error:
            raise SystemExit(f"ppo-grounding evaluate: {error}") from None
    policy, run_config, _ = _load(args.checkpoint)
    extra_actions = _extra_actions(args.extra_actions, "evaluate", run_config)
    env_id = args.env_id or run_config.env.env_id
    try:
        suite.check_env_id(env_id)
        setting = suite.get_test(None, run_config.env.language)
        suite.check_setup([setting], env_id, args.seed_offset, policy, extra_actions)
    except ValueError as error:
        raise SystemExit(f"ppo-grounding evaluate: {error}") from None
    common = dict(
        episodes=args.episodes,
        seed_offset=args.seed_offset,
        num_envs=args.num_envs,
        num_observations=args.num_observations or run_config.env.num_observations,
        language=run_config.env.language,
        extra_actions=extra_actions,
    )
    result = run_evaluation(
        PolicyAgent(policy, greedy=args.greedy), env_id, progress=True, **common
    )
    _report(f"{env_id}\n  policy: {result.summary()}")
    if args.baseline:
        random_result = run_evaluation(RandomAgent(seed=args.seed_offset), env_id, **common)
        _report(f"  random: {random_result.summary()}")


def generalisation_suite(args: EvaluateArgs) -> None:
    from . import suite

    try:  # names first: a typo fails before the model loads
        tests = suite.resolve_names(args.suite_tests, suite.TESTS, "generalisation test(s)")
        baselines = suite.resolve_names(args.baselines, suite.BASELINES, "baseline(s)")
        if args.env_id is not None:
            _check_env_id_option(args.env_id)
        check_out_dir(args.out)  # before the model loads: the tables must have somewhere to go
    except ValueError as error:
        raise SystemExit(f"ppo-grounding evaluate: {error}") from None
    _extra_actions(args.extra_actions, "evaluate")
    model = _model_identity(args.checkpoint)  # before loading: a run may publish a newer one
    policy, run_config, kind = _load(args.checkpoint)
    extra_actions = _extra_actions(args.extra_actions, "evaluate", run_config)
    env_id = args.env_id or (run_config.env.env_id if kind == "trained" else suite.DEFAULT_ENV_ID)
    num_observations = args.num_observations or run_config.env.num_observations
    last_seed = args.seed_offset + args.episodes - 1
    heading = (
        "# Generalisation suite\n\n"
        f"Model `{args.checkpoint}` ({'trained' if kind == 'trained' else 'untrained: zero-shot'}); "
        f"suite env `{env_id}`; {args.episodes} episodes per test and agent, seeds "
        f"{args.seed_offset}-{last_seed}; actions {'greedy' if args.greedy else 'sampled'}; "
        f"{num_observations} observation(s) per prompt. Success: return > 0, with its 95% "
        "Wilson interval."
        + (f" Extra no-op actions offered: {', '.join(extra_actions)}." if extra_actions else "")
        + "\n\n"
        + suite.describe_tests(tests)
    )
    # What makes a row of an earlier, interrupted run of this command reusable as it is.
    settings = dict(
        model=model,
        env_id=env_id,
        episodes=args.episodes,
        seed_offset=args.seed_offset,
        num_envs=args.num_envs,
        num_observations=num_observations,
        greedy=args.greedy,
        extra_actions=list(extra_actions),
    )
    output = suite.SuiteOutput(Path(args.out), settings, heading=heading)
    try:
        rows = suite.run_suite(
            policy,
            env_id=env_id,
            tests=tests,
            baselines=baselines,
            episodes=args.episodes,
            seed_offset=args.seed_offset,
            num_envs=args.num_envs,
            num_observations=num_observations,
            greedy=args.greedy,
            extra_actions=extra_actions,
            progress=True,
            output=output,
        )
    except ValueError as error:
        raise SystemExit(f"ppo-grounding evaluate: {error}") from None
    if output.note:
        _report(output.note)
    md, table = output.write(rows)
    _report(suite.markdown_table(rows))
    _report(f"wrote {md} and {table}")


def _model_identity(source: str) -> dict:
    """What names the weights a suite plays, for reusing an earlier run's rows: for a run, its
    latest checkpoint then (a run that goes on training publishes another), and the sha256 of
    that checkpoint's manifest (a checkpoint re-saved under the same name differs); for a model
    name or a directory without a manifest, the source as given."""
    import hashlib

    from .checkpoint import latest_checkpoint

    path = Path(source).expanduser()
    if (path / "checkpoints").is_dir():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                path = latest_checkpoint(path)
        except (FileNotFoundError, ValueError):  # loading it says what is wrong
            return {"source": source}
    for manifest in (path / "manifest.json", path / "policy" / "manifest.json"):
        if manifest.is_file():
            digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
            return {"source": str(path.resolve()), "manifest_sha256": digest}
    return {"source": source}


def check_out_dir(path: str | Path, option: str = "--out", *, what: str | None = None) -> Path:
    """`path` as a directory this process can write files in, created if needed, checked before
    any long work (a model load, episodes) so that its results are never lost at the end.
    Raises a ValueError naming the path and the fix; examples/quickstart.py uses it too."""
    import os
    import tempfile

    out = Path(path)
    what = what or f"{option} {out}"
    for part in (out, *out.parents):  # the first existing one must be a directory
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                where = "is" if part == out else f"is inside {part}, which is"
                raise ValueError(
                    f"{what} {where} a file, not a directory: remove or rename it, or pass "
                    f"another {option}"
                )
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(
            f"{what} cannot be written ({error.strerror or error}): make it writable "
            f"(chmod u+w {shlex.quote(str(out))}) or pass another {option}"
        ) from None
    return out


def check_out_file(path: str | Path, option: str = "--out") -> Path:
    """`path` as a file this process can write (its directory created if needed), checked before
    any work; a ValueError naming the path and the fix otherwise."""
    out = Path(path)
    if out.is_dir():
        raise ValueError(
            f"{option} {out} is a directory, not a file: name the file to write, e.g. "
            f"{out / 'learning_curve.png'}"
        )
    check_out_dir(out.parent, option, what=f"the directory of {option} {out}, {out.parent},")
    return out


def replay(argv: list[str]) -> None:
    args = tyro.cli(ReplayArgs, args=argv, prog="ppo-grounding replay")
    _check_counts(args, "replay")
    from . import suite
    from .replay import replay as write_replays
    from .replay import require_ffmpeg

    try:
        if args.format == "mp4":
            require_ffmpeg()
        test = suite.get_test(args.test or "baseline")
        if args.env_id is not None:
            _check_env_id_option(args.env_id)
        check_out_dir(args.out)  # before the model loads and the episodes play
    except (ValueError, ImportError) as error:
        raise SystemExit(f"ppo-grounding replay: {error}") from None
    _extra_actions(args.extra_actions, "replay")
    policy, run_config, kind = _load(args.checkpoint)
    extra_actions = _extra_actions(args.extra_actions, "replay", run_config)
    test = suite.get_test(args.test, run_config.env.language)
    env_id = test.env_id or args.env_id
    env_id = env_id or (run_config.env.env_id if kind == "trained" else suite.DEFAULT_ENV_ID)
    try:
        suite.check_setup([test], env_id, args.seed_offset, policy, extra_actions)
    except ValueError as error:
        raise SystemExit(f"ppo-grounding replay: {error}") from None
    paths = write_replays(
        policy,
        env_id,
        args.out,
        episodes=args.episodes,
        seed_offset=args.seed_offset,
        num_observations=args.num_observations or run_config.env.num_observations,
        greedy=args.greedy,
        max_steps=args.max_steps,
        extra_actions=extra_actions,
        fps=args.fps,
        video_format=args.format,
        title=args.checkpoint if args.test is None else f"{args.checkpoint}, test {test.name}",
        progress=True,
        **test.evaluate_kwargs(),
    )
    for path in paths:
        _report(f"wrote {path}")
    _report(f"wrote {Path(args.out) / 'episodes.csv'}")


def plot(argv: list[str]) -> None:
    args = tyro.cli(PlotArgs, args=argv, prog="ppo-grounding plot")
    if not args.runs:
        raise SystemExit(
            "ppo-grounding plot: name at least one run directory, e.g. ppo-grounding plot runs/quickstart-*"
        )
    from .plot import plot_runs

    try:
        check_out_file(args.out)  # before the runs are read and drawn
        print(f"wrote {plot_runs(args.runs, args.out)}")
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"ppo-grounding plot: {error}") from None


def _pop_option(argv: list[str], option: str, kind: type) -> tuple[list[str], Any]:
    """Remove `--option VALUE` (or `--option=VALUE`) from argv; returns (argv, value or None)."""
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name != option:
            continue
        if not eq:
            if i + 1 >= len(argv):
                raise SystemExit(f"ppo-grounding plan: {option} needs a value")
            value, rest = argv[i + 1], argv[:i] + argv[i + 2 :]
        else:
            rest = argv[:i] + argv[i + 1 :]
        try:
            return rest, kind(value)
        except ValueError:
            message = f"ppo-grounding plan: {option} {value!r} is not a {kind.__name__}"
            raise SystemExit(message) from None
    return argv, None


def plan(argv: list[str]) -> None:
    """Memory per process of a training run (plan.py), before anything is loaded."""
    argv, processes = _pop_option(argv, "--processes", int)
    argv, memory = _pop_option(argv, "--device-memory-gib", float)
    argv, tokens = _pop_option(argv, "--tokens-per-prompt", int)
    config = _train_config(
        argv,
        "plan",
        "Memory per process of `train` with these options, and whether it fits; plan's own "
        "options: --processes N (data-parallel processes, default 1), --device-memory-gib GIB "
        "(memory of one device), --tokens-per-prompt N (default: estimated from "
        "--env.num-observations)",
        check_device=False,  # plan a GPU run from a machine without one
    )
    from .plan import format_plan, plan_memory, suggestions

    try:
        result = plan_memory(
            config, processes=processes or 1, device_memory_gib=memory, tokens_per_prompt=tokens
        )
    except ValueError as error:
        raise SystemExit(str(error)) from None
    print(format_plan(result, suggestions(config, result)))


COMMANDS = {
    "train": train,
    "plan": plan,
    "clone": clone,
    "evaluate": evaluate,
    "replay": replay,
    "plot": plot,
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip())
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        COMMANDS[argv[0]](argv[1:])


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr: `ppo-grounding: CheckpointWarning: ...`."""
    print(f"ppo-grounding: {category.__name__}: {message}", file=file or sys.stderr)


if __name__ == "__main__":
    main()
