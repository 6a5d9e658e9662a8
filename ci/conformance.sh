#!/usr/bin/env bash
# The main job: build and run the conformance suite for one leg (default:
# host, this machine's compiler) and print its matrix column.
#   ci/conformance.sh [leg]
set -uo pipefail
cd "$(dirname "$0")/.."
leg=${1:-host}
ci/install-deps.sh "$leg" || exit 1
rm -f "build/conformance/$leg.json"
cmake --workflow --preset "$leg"
rc=$?
[ -f "build/conformance/$leg.json" ] || { echo "no results for $leg" >&2; exit 1; }
python3 ci/matrix.py merge --out build/conformance/matrix.md "build/conformance/$leg.json" || rc=1
exit $rc
