#!/usr/bin/env bash
# Build the llm-policy wheel, install it alone in a fresh venv (torch pinned to the CPU wheel this
# machine serves) and score actions with the offline model: no gymnasium, no babyai-text needed.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m build --wheel --outdir "$work/dist" packages/llm_policy >/dev/null
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet torch==2.13.0
"$work/venv/bin/pip" install --quiet "$work"/dist/llm_policy-*.whl
if "$work/venv/bin/python" -c "import gymnasium" 2>/dev/null; then
  echo "llm-policy wheel check: gymnasium got installed alongside llm-policy" >&2
  exit 1
fi
LLM_POLICY_CACHE="$work/cache" HF_HUB_OFFLINE=1 "$work/venv/bin/python" - <<'PY'
import torch
from llm_policy import ENGLISH_ACTION_NAMES, LLMPolicy, PolicyConfig, build_prompt

policy = LLMPolicy(PolicyConfig(model="offline-t5"))
prompt = build_prompt("go to the red ball", [["You see a red ball 2 steps forward"]], [], ENGLISH_ACTION_NAMES)
with torch.no_grad():
    probs = policy([prompt], [list(ENGLISH_ACTION_NAMES)]).distribution().probs[0]
assert abs(float(probs.sum()) - 1.0) < 1e-5
print("llm-policy wheel check: OK", [round(p, 3) for p in probs.tolist()])
PY
