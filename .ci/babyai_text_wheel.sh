#!/usr/bin/env bash
# Build the babyai-text wheel, install it alone in a fresh venv (no torch) and play an episode
# from a script that imports only gymnasium.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m build --wheel --outdir "$work/dist" packages/babyai_text >/dev/null
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$work"/dist/babyai_text-*.whl
if "$work/venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "babyai-text wheel check: torch got installed alongside babyai-text" >&2
  exit 1
fi
"$work/venv/bin/python" .ci/play_episode.py
