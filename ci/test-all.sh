#!/usr/bin/env bash
# Every test leg this machine can run: host, asan, tsan, windows-wine,
# linux-arm64-qemu. Installs what the legs need (Debian/Ubuntu, as root) when
# missing, runs each leg's workflow preset (configure, build, conformance),
# prints how long each took, then prints the merged five-column matrix.
# Exit status is non-zero on any unexpected result or any failed leg.
#
#   ci/test-all.sh              all five legs
#   KEEL_LEGS="host tsan" ci/test-all.sh
set -uo pipefail
cd "$(dirname "$0")/.."
read -r -a legs <<<"${KEEL_LEGS:-host asan tsan windows-wine linux-arm64-qemu}"

ci/install-deps.sh "${legs[@]}" || exit 1

report=build/conformance
mkdir -p "$report"
rm -f "$report"/*.json "$report"/matrix.md

declare -A took status
overall=0
for leg in "${legs[@]}"; do
  echo "=== leg $leg ==="
  start=$(date +%s)
  cmake --workflow --preset "$leg"
  rc=$?
  took[$leg]=$(( $(date +%s) - start ))
  status[$leg]=$rc
  [ "$rc" -eq 0 ] || overall=1
  if [ "$leg" = windows-wine ] && [ -d "build/$leg/wineprefix" ]; then
    WINEPREFIX="$PWD/build/$leg/wineprefix" /usr/lib/wine/wineserver64 -k 2>/dev/null || true
  fi
  if [ ! -f "$report/$leg.json" ]; then
    # The leg never reached its collect step: an empty column shows every
    # test of this leg as MISSING in the matrix.
    printf '{"leg": "%s", "platform": {}, "tests": {}}\n' "$leg" >"$report/$leg.json"
  fi
done

echo
echo "=== leg timings ==="
total=0
for leg in "${legs[@]}"; do
  printf '  %-18s %4ss  %s\n' "$leg" "${took[$leg]}" "$([ "${status[$leg]}" -eq 0 ] && echo ok || echo "FAILED (exit ${status[$leg]})")"
  total=$(( total + took[$leg] ))
done
printf '  %-18s %4ss\n' total "$total"
echo

files=()
for leg in "${legs[@]}"; do files+=("$report/$leg.json"); done
python3 ci/matrix.py merge --out "$report/matrix.md" "${files[@]}" || overall=1
exit $overall
