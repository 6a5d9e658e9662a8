#!/usr/bin/env bash
# CMAKE_CROSSCOMPILING_EMULATOR for the windows-wine leg:
#   wine-run.sh <wineprefix> <program.exe> [args...]
# Runs a Windows program under Wine 64-bit with a private prefix (created once,
# headless, under a lock so parallel ctest jobs don't race wineboot) and no
# Wine debug chatter. See PLATFORM-NOTES.md for the Wine facts behind this.
set -euo pipefail
prefix=$1
shift
export WINEPREFIX=$prefix
export WINEDEBUG=${WINEDEBUG:--all}
# No Mono/Gecko installer prompts: keel's tests need neither.
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree=;mshtml=}
unset DISPLAY WAYLAND_DISPLAY
wine=/usr/lib/wine/wine64
server=/usr/lib/wine/wineserver64
[ -x "$wine" ] || wine=$(command -v wine64 || command -v wine)
[ -x "$server" ] || server=$(command -v wineserver64 || command -v wineserver)

mkdir -p "$(dirname "$prefix")"
if [ ! -f "$prefix/.keel-ready" ]; then
  exec 9>"$prefix.lock"
  flock 9
  if [ ! -f "$prefix/.keel-ready" ]; then
    rm -rf "$prefix"
    "$wine" wineboot -i >/dev/null 2>&1 || true
    # Report as Windows 10 (Wine defaults to 7), as the runtime targets 10+.
    "$wine" winecfg /v win10 >/dev/null 2>&1 || true
    "$server" -w || true
    touch "$prefix/.keel-ready"
  fi
  flock -u 9
fi
# Keep the server warm between test processes (cold start ~1 s, warm ~0.1 s);
# it exits by itself 60 s after the last client. Wine's system processes
# (services.exe, winedevice.exe, ...) live as long as the server and inherit
# the stdout/stderr of whichever program started them: if a test started
# them, ctest would wait for that test's output pipe until the server exits.
# So whoever starts the server (wineserver -p exits 0; 2 = already running)
# also starts those processes with /dev/null, under the lock.
exec 9>"$prefix.lock"
flock 9
if "$server" -p60 </dev/null >/dev/null 2>&1; then
  "$wine" wineboot </dev/null >/dev/null 2>&1 || true
fi
flock -u 9
exec 9>&-
exec "$wine" "$@"
