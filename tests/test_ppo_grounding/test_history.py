from ppo_grounding.history import EpisodeHistory, sentences_of

ACTIONS = ["turn left", "turn right", "go forward", "pick up", "drop", "toggle"]


def test_prompt_keeps_the_last_observations_and_the_actions_between_them():
    history = EpisodeHistory(num_envs=1, num_observations=2)
    history.start(0, "go to the red ball", ["You see a wall 5 steps forward"])
    history.record(0, "go forward", ["You see a wall 4 steps forward"])
    history.record(0, "turn left", ["You see a wall 1 step forward"])
    prompt = history.prompt(0, ACTIONS)
    assert prompt.splitlines() == [
        "Possible action of the agent: turn left, turn right, go forward, pick up, drop, toggle",
        "Goal of the agent: go to the red ball",
        "Observation 0: You see a wall 4 steps forward,",
        "Action 0: turn left",
        "Observation 1: You see a wall 1 step forward,",
        "Action 1:",
    ]
    final = history.final_prompt(0, "go forward", ["You see a red ball 1 step forward"], ACTIONS)
    assert final.splitlines()[2:5] == [
        "Observation 0: You see a wall 1 step forward,",
        "Action 0: go forward",
        "Observation 1: You see a red ball 1 step forward,",
    ]
    assert history.prompt(0, ACTIONS) == prompt, "final_prompt records nothing"


def test_start_clears_the_previous_episode():
    history = EpisodeHistory(num_envs=2, num_observations=3)
    for env in range(2):
        history.start(env, "open the door", ["You see a closed red door 2 steps forward"])
        history.record(env, "go forward", ["You see a closed red door 1 step forward"])
    history.start(1, "pick up the key", ["You see a wall 3 steps forward"])
    assert "Observation 1:" in history.prompt(0, ACTIONS)
    new = history.prompt(1, ACTIONS)
    assert "Observation 1:" not in new and "door" not in new and "pick up the key" in new


def test_french_prompts_follow_the_language():
    history = EpisodeHistory(num_envs=1, num_observations=1, template="fr")
    history.start(0, "va à la balle rouge", ["Tu vois un mur à 2 pas devant"])
    prompt = history.prompt(
        0,
        [
            "tourner à gauche",
            "tourner à droite",
            "aller tout droit",
            "attraper",
            "lâcher",
            "basculer",
        ],
    )
    assert prompt.splitlines()[1] == "But de l'agent: va à la balle rouge"


def test_sentences_of_splits_the_env_text():
    assert sentences_of("You see a wall 1 step left\nYou carry a red key\n") == [
        "You see a wall 1 step left",
        "You carry a red key",
    ]
    assert sentences_of("") == []


def test_start_all_and_advance_follow_a_vector_step():
    history = EpisodeHistory(2, 2)
    history.start_all(
        {"mission": ("go to the red ball", "open the door"), "text": ("You see a wall", "A\nB")}
    )
    assert history.observations[1][-1] == ["A", "B"]
    # env 0 goes on; env 1's episode ended and obs holds the next episode's first observation
    history.advance(
        {"mission": ("go to the red ball", "pick up the key"), "text": ("C", "D")},
        ["go forward", "turn left"],
        [False, True],
    )
    assert list(history.observations[0]) == [["You see a wall"], ["C"]]
    assert list(history.actions[0]) == ["go forward"]
    assert history.missions[1] == "pick up the key"
    assert list(history.observations[1]) == [["D"]] and not history.actions[1]
