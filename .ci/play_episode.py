"""Play one short episode of a BabyAI-Text env from a script that imports only gymnasium."""

import gymnasium as gym

env = gym.make("babyai_text:BabyAI-Text-GoToLocal-v0")
obs, info = env.reset(seed=0)
print("mission:", obs["mission"])
print("text:", obs["text"])
for _ in range(10):
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    if terminated or truncated:
        break
assert isinstance(info["descriptions"], list) and info["descriptions"]
print("babyai-text wheel check: OK")
