#!/usr/bin/env bash
# Refresh constraints.txt, the lock of every version `make demo` and `make test` install.
#
# Installs the project's newest allowed dependencies (pyproject.toml's ranges, all extras) into
# a throw-away virtual environment and writes their exact versions, pip's own included.
# Review the diff, run `make test` (which reinstalls from the new lock) and commit both.
#   usage: make lock      (PYTHON=python3.12 make lock for another interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OUT="${1:-constraints.txt}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$PYTHON" -m venv "$TMP/venv"
"$TMP/venv/bin/python" -m pip install --quiet --upgrade pip
"$TMP/venv/bin/python" -m pip install --quiet '.[dev,web,postgres,research]'
{
    echo "# The exact versions that \`make demo\` and \`make test\` install (pip -c constraints.txt)."
    echo "# Written by scripts/lock.sh (\`make lock\`) with $("$TMP/venv/bin/python" --version)"
    echo "# on $(date -u +%Y-%m-%d); \`make drift\` compares them with the newest releases."
    "$TMP/venv/bin/python" -m pip --version | awk '{print "pip==" $2}'
    "$TMP/venv/bin/python" -m pip freeze --exclude-editable | grep -v '^opennmes[=@ ]' | sort -f
} > "$OUT"
echo "lock: wrote $OUT ($(grep -c '==' "$OUT") pinned versions)"
