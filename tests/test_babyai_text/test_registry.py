"""Registration from minigrid's registry, and gymnasium's env checker on every ID."""

from __future__ import annotations

import subprocess
import sys
import warnings

import babyai_text
import gymnasium as gym
import minigrid  # noqa: F401
import pytest
from gymnasium.utils.env_checker import check_env

from .conftest import ALL_IDS, MINIGRID_IDS, PAPER_IDS, source_id


def test_one_text_id_per_minigrid_babyai_id():
    minigrid_babyai = [i for i in gym.registry if i.startswith("BabyAI-") and "-Text-" not in i]
    assert len(minigrid_babyai) == 96  # minigrid 3.2
    assert sorted(source_id(i) for i in MINIGRID_IDS) == sorted(minigrid_babyai)
    assert len(ALL_IDS) == 96 + 7


def test_version_suffix_is_kept():
    assert "BabyAI-Text-GoToObjS6-v1" in ALL_IDS
    assert "BabyAI-Text-GoToObjS6-v0" not in ALL_IDS


def test_paper_levels_registered_with_their_num_dists():
    expected = {
        "PickupLocal",
        "PickUpSeqGoToLocal",
        "PickUpThenGoToLocal",
        "GoToAfterPickUpLocal",
        "PickUpSeqPickUpLocal",
        "MixedTrainLocal",
        "MixedTestLocal",
    }
    assert {i[len("BabyAI-Text-") : -len("-v0")] for i in PAPER_IDS} == expected
    for env_id in PAPER_IDS:
        assert gym.spec(env_id).kwargs["num_dists"] == 8


def test_spec_kwargs_follow_minigrid():
    spec = gym.spec("BabyAI-Text-GoToLocalS8N2-v0")
    level = "minigrid.envs.babyai:GoToLocal"
    assert spec.kwargs == {"level": level, "room_size": 8, "num_dists": 2}


def test_register_is_idempotent():
    assert babyai_text.register_envs() == []
    assert babyai_text.registered_ids() == ALL_IDS


def test_make_with_module_prefix_without_prior_import():
    code = (
        "import sys, gymnasium as gym\n"
        "assert 'babyai_text' not in sys.modules\n"
        "env = gym.make('babyai_text:BabyAI-Text-GoToLocal-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(obs['mission'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("go to ")


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        check_env(env.unwrapped)
    env.close()


def test_original_ids_are_opt_in_aliases():
    code = (
        "import gymnasium as gym, babyai_text\n"
        "assert 'BabyAI-MixedTrainLocal-v0' not in gym.registry  # not at import\n"
        "gym.register('BabyAI-PickupLocal-v0', entry_point='someone.else:Level')\n"
        "try:\n"
        "    babyai_text.register_original_ids()\n"
        "except ValueError as e:\n"
        "    assert 'already registered' in str(e)\n"
        "else:\n"
        "    raise AssertionError('clobbered another package s ID')\n"
        "added = babyai_text.register_original_ids(override=True)\n"
        "assert babyai_text.register_original_ids() == []  # idempotent\n"
        "print(sorted(added))\n"
        "assert 'BabyAI-Text-MixedTrainLocal-v0' in babyai_text.registered_ids()\n"
        "assert 'BabyAI-MixedTrainLocal-v0' not in babyai_text.registration.minigrid_ids()\n"
        "for name in ('MixedTrainLocal', 'MixedTestLocal', 'PickupLocal'):\n"
        "    a = gym.make(f'BabyAI-{name}-v0')\n"
        "    # an original Mixed env keeps the kind it drew when built: ours with that one kind\n"
        "    kind = {'tasks': a.unwrapped.action_kinds} if 'Mixed' in name else {}\n"
        "    b = gym.make(f'BabyAI-Text-{name}-v0', **kind)\n"
        "    for seed in range(5):\n"
        "        assert a.reset(seed=seed)[0] == b.reset(seed=seed)[0]\n"
        "# a harness written for the original: make envs until one has the wanted task\n"
        "for _ in range(1000):\n"
        "    env = gym.make('BabyAI-MixedTrainLocal-v0', num_dists=0)\n"
        "    if env.unwrapped.action_kinds[0].replace(' ', '_') == 'pick_up_seq_go_to':\n"
        "        break\n"
        "obs, info = env.reset(seed=0)\n"
        "assert info['task'] == 'pickup_then_goto' and ', then go to' in obs['mission'] or"
        " ' after you pick up ' in obs['mission']\n"
        "done = False\n"
        "while not done:\n"
        "    obs, r, term, trunc, info = env.step(babyai_text.expert_action(env))\n"
        "    done = term or trunc\n"
        "assert term and r > 0\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    names = ["GoToAfterPickUpLocal", "MixedTestLocal", "MixedTrainLocal", "PickUpSeqGoToLocal"]
    names += ["PickUpSeqPickUpLocal", "PickUpThenGoToLocal", "PickupLocal"]
    assert out.stdout.strip() == str(sorted(f"BabyAI-{n}-v0" for n in names))
