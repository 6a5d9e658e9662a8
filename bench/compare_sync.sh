#!/usr/bin/env bash
# Sync benchmarks side by side with Go (issue 6), interleaved in one run:
# keel, Go, keel, Go, ... three rounds, each benchmark in a fresh process on
# both sides; prints every run, the medians and keel/Go (time per item: below
# 1 means keel is faster).
#   bench/compare_sync.sh [build-dir]     (default build/host)
# Needs the host preset built (keel-bench) and `go` (ci/install-deps.sh).
# Ps: keel's default (the CPU count) and GOMAXPROCS = the CPU count.
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
procs=$(nproc)

keel_ns() {  # <filter>: real ns per item (lock, goroutine) or per iteration
  "$bench" --benchmark_filter="$1" --benchmark_min_time=1 --benchmark_format=json 2>/dev/null |
    python3 -c 'import json,sys
b=json.load(sys.stdin)["benchmarks"][0]
if "items_per_second" in b: print(1e9/b["items_per_second"])
else: print(b["real_time"]*{"ns":1,"us":1e3,"ms":1e6,"s":1e9}[b["time_unit"]])'
}
go_ns() {  # <regex> <items per op>
  "$tmp/gobench" -test.run '^$' -test.bench "$1" -test.cpu "$procs" -test.benchtime 1s 2>/dev/null |
    awk -v n="$2" '/ns\/op/ {for (i = 1; i <= NF; i++) if ($(i+1) == "ns/op") {print $i / n; exit}}'
}

names=(mutex1 mutex4 mutex16 wg100 wg1000 uncontended)
declare -A kf=([mutex1]='^BM_mutex_contended/1/' [mutex4]='^BM_mutex_contended/4/' [mutex16]='^BM_mutex_contended/16/'
  [wg100]='^BM_waitgroup_fanout/100/' [wg1000]='^BM_waitgroup_fanout/1000/' [uncontended]='^BM_mutex_uncontended_goroutine/')
declare -A gf=([mutex1]='^BenchmarkMutexContended/1$' [mutex4]='^BenchmarkMutexContended/4$'
  [mutex16]='^BenchmarkMutexContended/16$' [wg100]='^BenchmarkWaitGroupFanout/100$'
  [wg1000]='^BenchmarkWaitGroupFanout/1000$' [uncontended]='^BenchmarkMutexUncontended$')
declare -A gn=([mutex1]=10000 [mutex4]=10000 [mutex16]=10000 [wg100]=100 [wg1000]=1000 [uncontended]=1)
declare -A label=([mutex1]='contended Mutex, 1 goroutine' [mutex4]='contended Mutex, 4 goroutines'
  [mutex16]='contended Mutex, 16 goroutines' [wg100]='WaitGroup fan-out 100' [wg1000]='WaitGroup fan-out 1000'
  [uncontended]='uncontended lock+unlock')
declare -A unit=([mutex1]=ns/lock [mutex4]=ns/lock [mutex16]=ns/lock [wg100]=ns/goroutine [wg1000]=ns/goroutine
  [uncontended]=ns/op)

declare -A res
for round in 1 2 3; do
  for b in "${names[@]}"; do
    res[${b}_keel]+="$(keel_ns "${kf[$b]}") "
    res[${b}_go]+="$(go_ns "${gf[$b]}" "${gn[$b]}") "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-32s %-13s %-26s %-26s %9s %9s %8s\n' benchmark unit "keel runs" "Go runs" "keel med" "Go med" keel/Go
for b in "${names[@]}"; do
  k=$(echo "${res[${b}_keel]}" | median)
  g=$(echo "${res[${b}_go]}" | median)
  printf '%-32s %-13s %-26s %-26s %9.2f %9.2f %8.3f\n' "${label[$b]}" "${unit[$b]}" \
    "$(printf '%.2f ' ${res[${b}_keel]})" "$(printf '%.2f ' ${res[${b}_go]})" "$k" "$g" "$(python3 -c "print($k/$g)")"
done
