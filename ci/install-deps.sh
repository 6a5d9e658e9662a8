#!/usr/bin/env bash
# Install what the given legs need on Debian/Ubuntu (as root), only when
# something is missing. A fresh machine has only what this script installs.
#   ci/install-deps.sh host asan tsan windows-wine linux-arm64-qemu bench perf
set -uo pipefail
pkgs=(cmake ninja-build g++ python3 googletest libgtest-dev libbenchmark-dev)
for leg in "$@"; do
  case $leg in
    # Go: the twins of the benchmarks (bench/go), measured beside keel's on the host.
    host) pkgs+=(golang-go) ;;
    # ci/bench-compare.sh: Go and Boost.Fiber twins (their columns are
    # skipped when these cannot be installed); perf for profiling.
    bench) pkgs+=(golang-go libboost-fiber-dev) ;;
    perf) pkgs+=(linux-perf) ;;
    windows-wine) pkgs+=(g++-mingw-w64-x86-64-posix wine wine64) ;;
    linux-arm64-qemu) pkgs+=(qemu-user g++-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-deps: missing packages and no root apt-get: install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
