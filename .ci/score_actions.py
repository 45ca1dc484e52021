"""Score the actions of one prompt with llm-policy's offline model, from a venv without gymnasium."""

import torch
from llm_policy import ENGLISH_ACTION_NAMES, LLMPolicy, PolicyConfig, build_prompt

policy = LLMPolicy(PolicyConfig(model="offline-t5"))
goal, observation = "go to the red ball", ["You see a red ball 2 steps forward"]
prompt = build_prompt(goal, [observation], [], ENGLISH_ACTION_NAMES)
with torch.no_grad():
    probs = policy([prompt], [list(ENGLISH_ACTION_NAMES)]).distribution().probs[0]
assert abs(float(probs.sum()) - 1.0) < 1e-5
print("llm-policy wheel check: OK", [round(p, 3) for p in probs.tolist()])
