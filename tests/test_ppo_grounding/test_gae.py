import pytest
import torch
from ppo_grounding.gae import compute_gae

REWARDS = torch.tensor([[1.0], [0.0], [2.0]])
VALUES = torch.tensor([[0.5], [0.4], [0.3]])
NEXT_VALUE = torch.tensor([0.2])
GAMMA, LAMBDA = 0.9, 0.8
NO = torch.zeros(3, 1, dtype=torch.bool)


def at(t):
    flags = NO.clone()
    flags[t] = True
    return flags


def gae(terminated=NO, truncated=NO, truncated_values=None):
    return compute_gae(
        REWARDS, VALUES, NEXT_VALUE, terminated, truncated, GAMMA, LAMBDA, truncated_values
    )


def test_no_episode_end_bootstraps_from_next_value():
    # delta2 = 2 + .9*.2 - .3 = 1.88; delta1 = .9*.3 - .4 = -.13; delta0 = 1 + .9*.4 - .5 = .86
    advantages, returns = gae()
    expected = torch.tensor([[0.86 + 0.72 * (-0.13 + 0.72 * 1.88)], [-0.13 + 0.72 * 1.88], [1.88]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + VALUES)


def test_terminated_step_has_no_future_and_cuts_the_recursion():
    advantages, _ = gae(terminated=at(1))
    # delta1 = 0 + 0 - .4; step 0 sees step 1's advantage; step 2 starts a new episode.
    torch.testing.assert_close(advantages, torch.tensor([[0.86 + 0.72 * -0.4], [-0.4], [1.88]]))


def test_truncated_step_bootstraps_from_the_final_observation_value():
    truncated_values = torch.zeros(3, 1)
    truncated_values[1] = 0.7
    advantages, _ = gae(truncated=at(1), truncated_values=truncated_values)
    # delta1 = .9*.7 - .4 = .23, not bootstrapped from values[2] (another episode).
    torch.testing.assert_close(advantages, torch.tensor([[0.86 + 0.72 * 0.23], [0.23], [1.88]]))


def test_truncated_without_final_values_is_terminal_like_the_paper():
    torch.testing.assert_close(gae(truncated=at(1))[0], gae(terminated=at(1))[0])


def test_terminated_wins_over_truncated_on_the_same_step():
    truncated_values = torch.full((3, 1), 5.0)
    both = gae(terminated=at(2), truncated=at(2), truncated_values=truncated_values)[0]
    torch.testing.assert_close(both, gae(terminated=at(2))[0])


def test_envs_are_independent_columns():
    rewards = torch.cat([REWARDS, REWARDS], 1)
    values = torch.cat([VALUES, VALUES], 1)
    terminated = torch.cat([at(1), NO], 1)
    advantages, _ = compute_gae(
        rewards,
        values,
        NEXT_VALUE.repeat(2),
        terminated,
        torch.zeros_like(terminated),
        GAMMA,
        LAMBDA,
    )
    torch.testing.assert_close(advantages[:, :1], gae(terminated=at(1))[0])
    torch.testing.assert_close(advantages[:, 1:], gae()[0])


def test_lambda_one_gamma_one_gives_the_monte_carlo_return():
    _, returns = compute_gae(REWARDS, VALUES, NEXT_VALUE, NO, NO, 1.0, 1.0)
    torch.testing.assert_close(returns[:, 0], torch.tensor([1.0 + 0.0 + 2.0 + 0.2, 2.2, 2.2]))


def reference_gae(rewards, values, next_value, terminated, truncated, gamma, lam, final_values):
    """GAE by its definition, with plain Python loops: A_t = sum_k (gamma lam)^k delta_{t+k},
    summed until the episode's end or the rollout's; lists of lists [t][n], one column per env."""
    T, N = len(rewards), len(rewards[0])

    def delta(t, n):
        if terminated[t][n]:
            after = 0.0  # nothing follows a termination
        elif truncated[t][n]:
            after = final_values[t][n] if final_values is not None else 0.0
        elif t + 1 < T:
            after = values[t + 1][n]
        else:
            after = next_value[n]
        return rewards[t][n] + gamma * after - values[t][n]

    advantages = [[0.0] * N for _ in range(T)]
    for n in range(N):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                total += weight * delta(k, n)
                if terminated[k][n] or truncated[k][n]:
                    break
                weight *= gamma * lam
            advantages[t][n] = total
    return advantages


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("bootstrap", [False, True])
def test_gae_matches_a_reference_loop_on_random_rollouts(seed, bootstrap):
    generator = torch.Generator().manual_seed(seed)
    T, N = 17, 5

    def uniform(*shape):
        return torch.rand(shape, generator=generator, dtype=torch.float64)

    rewards, values, next_value = uniform(T, N) * 2 - 1, uniform(T, N), uniform(N)
    terminated = uniform(T, N) < 0.15
    truncated = uniform(T, N) < 0.15  # some steps are both: termination wins
    final_values = uniform(T, N) if bootstrap else None
    assert terminated.any() and truncated.any() and (terminated & truncated).any()
    gamma, lam = 0.97, 0.9
    advantages, returns = compute_gae(
        rewards, values, next_value, terminated, truncated, gamma, lam, final_values
    )
    expected = reference_gae(
        rewards.tolist(),
        values.tolist(),
        next_value.tolist(),
        terminated.tolist(),
        truncated.tolist(),
        gamma,
        lam,
        None if final_values is None else final_values.tolist(),
    )
    torch.testing.assert_close(advantages, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(returns, advantages + values)
