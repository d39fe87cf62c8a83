#!/usr/bin/env bash
# Runs one quality gate and prints one line a CI log reader can grep for:
#   GATE <name>: PASS (12s)   or   GATE <name>: FAIL (exit 2, 12s) - <command>
# Usage: tools/gate.sh NAME COMMAND [ARG...]; exits with the command's status.
set -uo pipefail
name=$1
shift
echo "=== GATE ${name}: $*"
start=$SECONDS
"$@"
status=$?
elapsed=$((SECONDS - start))
if [ "$status" -eq 0 ]; then
    echo "GATE ${name}: PASS (${elapsed}s)"
else
    echo "GATE ${name}: FAIL (exit ${status}, ${elapsed}s) - $*"
fi
exit "$status"
