#!/usr/bin/env bash
# Build one package's wheel, install it alone in a fresh venv and run a check script there.
#   .ci/install_alone.sh PACKAGE_DIR FORBIDDEN_MODULE CHECK_SCRIPT [PIP_ARGS...]
# FORBIDDEN_MODULE must not get installed with the package (e.g. torch for babyai-text);
# PIP_ARGS are installed first (e.g. the torch pin for llm-policy).
set -euo pipefail
cd "$(dirname "$0")/.."
package=$1 forbidden=$2 check=$3
shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m build --wheel --outdir "$work/dist" "$package" >/dev/null
# A wheel ships its licence and its py.typed marker. (The listing is read whole first: `grep -q`
# on a pipe exits at its first match, and the lister's broken pipe then fails the pipeline.)
members=$(.venv/bin/python -m zipfile -l "$work"/dist/*.whl)
for member in py.typed LICENSE; do
  if ! grep -q "$member" <<<"$members"; then
    echo "$package: the wheel lacks $member" >&2
    exit 1
  fi
done
python3 -m venv "$work/venv"
if [ $# -gt 0 ]; then "$work/venv/bin/pip" install --quiet "$@"; fi
"$work/venv/bin/pip" install --quiet "$work"/dist/*.whl
if "$work/venv/bin/python" -c "import $forbidden" 2>/dev/null; then
  echo "$package installed alone: $forbidden got installed with it" >&2
  exit 1
fi
# The installed version is the one __init__.py declares (one source for it).
module=$(basename "$package")
"$work/venv/bin/python" - "$module" <<'PY'
import importlib, importlib.metadata, sys
module = importlib.import_module(sys.argv[1])
installed = importlib.metadata.version(sys.argv[1].replace("_", "-"))
assert module.__version__ == installed, (module.__version__, installed)
PY
LLM_POLICY_CACHE="$work/cache" HF_HUB_OFFLINE=1 "$work/venv/bin/python" "$check"
