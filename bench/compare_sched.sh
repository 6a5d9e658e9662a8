#!/usr/bin/env bash
# Scheduler benchmarks side by side with Go (issue 6), interleaved in one
# run: keel, Go, keel, Go, ... three rounds; prints the medians and keel/Go.
#   bench/compare_sched.sh [build-dir]     (default build/host)
# Needs the host preset built (keel-bench) and `go` (ci/install-deps.sh).
# Numbers only: nothing here gates CI. Issue 8 replaces this with the full
# harness.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/host}
bench=$build/bench/keel-bench
[ -x "$bench" ] || { echo "no $bench: build the host preset first" >&2; exit 1; }
command -v go >/dev/null || { echo "go not installed (ci/install-deps.sh installs golang-go)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root/bench/go" && go test -c -o "$tmp/gobench" . >/dev/null)

keel_ns() {  # <procs> <filter>: real ns per iteration
  KEEL_MAXPROCS=$1 "$bench" --benchmark_filter="$2" --benchmark_format=json 2>/dev/null |
    python3 -c 'import json,sys; b=json.load(sys.stdin)["benchmarks"][0]; u={"ns":1,"us":1e3,"ms":1e6,"s":1e9}[b["time_unit"]]; print(b["real_time"]*u)'
}
go_ns() {  # <procs> <regex>
  "$tmp/gobench" -test.run '^$' -test.bench "$2" -test.cpu "$1" -test.benchtime 1s 2>/dev/null |
    awk '/ns\/op/ {for (i = 1; i <= NF; i++) if ($(i+1) == "ns/op") {print $i; exit}}'
}

declare -A res
for round in 1 2 3; do
  res[spawn_keel]+="$(keel_ns "" '^BM_spawn_join/') "
  res[spawn_go]+="$(go_ns 2 '^BenchmarkSpawnJoin$') "
  res[sched_keel]+="$(keel_ns 1 '^BM_gosched_pingpong_manual/') "
  res[sched_go]+="$(go_ns 1 '^BenchmarkGoschedPingPong$') "
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-32s %12s %12s %8s\n' benchmark "keel ns" "Go ns" keel/Go
for b in spawn sched; do
  k=$(echo "${res[${b}_keel]}" | median)
  g=$(echo "${res[${b}_go]}" | median)
  name=$([ $b = spawn ] && echo "spawn+join (2 Ps)" || echo "gosched ping-pong round (1 P)")
  printf '%-32s %12.1f %12.1f %8.3f\n' "$name" "$k" "$g" "$(python3 -c "print($k/$g)")"
done
echo "(runs per cell: 3, median; keel: ${res[spawn_keel]}| ${res[sched_keel]}; Go: ${res[spawn_go]}| ${res[sched_go]})"
