#!/usr/bin/env bash
# The newest-versions check: does main still pass with the newest releases of its dependencies?
#
# Installs the project with no lock (the newest versions pyproject.toml allows) into .venv-drift,
# lists every package whose newest version differs from constraints.txt, runs the test suite
# there and writes both to bench/DRIFT.md (machine and date included). Exit status is the
# suite's, so a drift that breaks a fresh clone shows before anyone refreshes the lock.
#   usage: make drift      (PYTEST_ARGS="-x tests/sensing" make drift for a part of the suite)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv-drift
OUT=bench/DRIFT.md
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[dev,web,postgres,research]' || exit 1
NEWEST="$(mktemp)"; trap 'rm -f "$NEWEST"' EXIT
{ "$VENV/bin/python" -m pip --version | awk '{print "pip==" $2}'
  "$VENV/bin/python" -m pip freeze --exclude-editable; } | sort -f > "$NEWEST"
DIFF="$(join -t= -j1 -a2 -e '(not locked)' -o 0,1.2,2.2 \
        <(grep '==' constraints.txt | sed 's/==/=/' | tr 'A-Z_' 'a-z-' | sort -t= -k1,1) \
        <(grep '==' "$NEWEST" | sed 's/==/=/' | tr 'A-Z_' 'a-z-' | sort -t= -k1,1) \
        | awk -F= '$2 != $3 {printf "| %s | %s | %s |\n", $1, $2, $3}')"
LOG="$(mktemp)"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:-} > "$LOG" 2>&1
RC=$?
{
    echo "# Newest-versions check (\`make drift\`)"
    echo
    echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -m), $("$PYTHON" --version)."
    echo
    if [ -n "$DIFF" ]; then
        echo "| package | locked (constraints.txt) | newest |"
        echo "| --- | --- | --- |"
        echo "$DIFF"
    else
        echo "Every locked version is the newest allowed."
    fi
    echo
    echo "Test suite on the newest versions (exit $RC):"
    echo
    echo '```'
    grep -E '^(FAILED|ERROR)|passed|failed|error' "$LOG" | tail -n 30
    echo '```'
} > "$OUT"
cat "$OUT"
exit $RC
