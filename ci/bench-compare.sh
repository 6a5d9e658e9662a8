#!/usr/bin/env bash
# keel side by side with Go, Boost.Fiber and the OS floor, in one command
# (issue 8, docs/PERFORMANCE.md). Builds every benchmark in Release in
# build/bench-release, compiles the Go twins, runs each row of bench/rows.txt
# on each system alternately, each run a fresh process, and prints a
# Markdown table of medians and per-round ratios with their spread; the same
# goes to build/bench/compare.md and build/bench/compare.json.
#
#   ci/bench-compare.sh            full: 5 rounds (under 15 min on 2 cores)
#   ci/bench-compare.sh --quick    3 rounds, short runs (under 3 min)
#   ci/bench-compare.sh --only 'Mutex' --rounds 7   (any bench_compare.py option)
#
# Installs what it needs when missing (Debian/Ubuntu, as root: ci/install-deps.sh
# bench); without Go or Boost.Fiber their column is empty and says why.
# Numbers only: benchmarks never gate CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=build/bench-release
jobs=${KEEL_BENCH_JOBS:-2}

ci/install-deps.sh bench || echo "bench-compare: could not install everything; missing columns will say so" >&2

echo "=== build (Release, $build)" >&2
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKEEL_BUILD_CONFORMANCE=OFF -DKEEL_INSTALL=OFF \
  -DKEEL_BUILD_BENCH=ON -DKEEL_BENCH_FIBER=ON >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j "$jobs" >&2

fiber_reason=""
if [ ! -x "$build/bench/fiber/keel-bench-fiber" ]; then
  fiber_reason="Boost.Fiber not installed (Debian: libboost-fiber-dev), keel-bench-fiber not built"
fi

gobin="$root/$build/go/keel-bench-go"
go_reason=""
if command -v go >/dev/null; then
  mkdir -p "$build/go"
  if ! (cd bench/go && go test -c -o "$gobin" .) >&2; then
    go_reason="the Go twins did not compile (go test -c in bench/go)"
    gobin=""
  fi
else
  go_reason="Go not installed (Debian: golang-go)"
  gobin=""
fi

meta=$(python3 - "$build" <<'PY'
import json, subprocess, sys
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except Exception:
        return ""
cache = {}
try:
    for l in open(sys.argv[1] + "/CMakeCache.txt"):
        if l.startswith(("CMAKE_CXX_COMPILER:", "CMAKE_BUILD_TYPE:")):
            k, v = l.strip().split("=", 1)
            cache[k.split(":")[0]] = v
except OSError:
    pass
print(json.dumps({"git": out("git", "rev-parse", "HEAD"), "go": out("go", "version"),
                  "cxx": out(cache.get("CMAKE_CXX_COMPILER", "c++"), "--version"),
                  "build_type": cache.get("CMAKE_BUILD_TYPE", ""),
                  "boost_fiber": out("dpkg-query", "-W", "-f=${Version}", "libboost-fiber-dev"),
                  "kernel": out("uname", "-r")}))
PY
)

echo "=== run" >&2
exec python3 ci/bench_compare.py --build "$build" --go "$gobin" --go-reason "$go_reason" \
  --fiber-reason "$fiber_reason" --out build/bench --meta "$meta" "$@"
