// Windows capabilities and platform description. Needs advapi32 (RegGetValueA).
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <string>

#include "platform/os.h"
#include "platform/poller_internal.h"
#include "platform/windows/win_internal.h"

namespace keel::os {

namespace {

// ntdll exports these without an import library in every SDK; Wine adds
// wine_get_version, which is the reliable way to tell we run under Wine
// (it reports whatever Windows version the prefix is configured as).
template <class Fn>
Fn ntdll_fn(const char* name) noexcept {
  HMODULE m = GetModuleHandleW(L"ntdll.dll");
  return m == nullptr ? nullptr : reinterpret_cast<Fn>(reinterpret_cast<void*>(GetProcAddress(m, name)));
}

// The current system timer period, which coarse waits (Sleep, plain timers)
// round to. Any process may lower it with timeBeginPeriod, so this is only a
// snapshot. 15.625 ms is the Windows default tick.
int64_t timer_granularity_ns() noexcept {
  using Fn = LONG(NTAPI*)(PULONG, PULONG, PULONG);
  ULONG coarsest = 0, finest = 0, current = 0;
  if (auto f = ntdll_fn<Fn>("NtQueryTimerResolution"); f != nullptr && f(&coarsest, &finest, &current) >= 0 && current != 0) {
    return static_cast<int64_t>(current) * 100;
  }
  return 15'625'000;
}

// GetVersionEx lies (it reports the version in the exe's manifest);
// RtlGetVersion does not.
std::string os_build() {
  using Fn = LONG(NTAPI*)(PRTL_OSVERSIONINFOW);
  RTL_OSVERSIONINFOW v{};
  v.dwOSVersionInfoSize = sizeof v;
  auto f = ntdll_fn<Fn>("RtlGetVersion");
  if (f == nullptr || f(&v) < 0) return "";
  return std::to_string(v.dwMajorVersion) + "." + std::to_string(v.dwMinorVersion) + "." +
         std::to_string(v.dwBuildNumber);
}

std::string cpu_model() {
  char buf[256];
  DWORD size = sizeof buf;
  if (RegGetValueA(HKEY_LOCAL_MACHINE, "HARDWARE\\DESCRIPTION\\System\\CentralProcessor\\0",
                   "ProcessorNameString", RRF_RT_REG_SZ, nullptr, buf, &size) != ERROR_SUCCESS) {
    return "";
  }
  // Intel pads the brand string with leading spaces.
  std::string s(buf);
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

const char* arch() noexcept {
  // The native machine, not this process's: an x86 build under WOW64 still
  // reports the real CPU.
  SYSTEM_INFO si;
  GetNativeSystemInfo(&si);
  switch (si.wProcessorArchitecture) {
    case PROCESSOR_ARCHITECTURE_AMD64: return "x86_64";
    case PROCESSOR_ARCHITECTURE_ARM64: return "aarch64";
    case PROCESSOR_ARCHITECTURE_INTEL: return "x86";
    case PROCESSOR_ARCHITECTURE_ARM: return "arm";
    default: return "unknown";
  }
}

}  // namespace

const Caps& caps() noexcept {
  static const Caps c = [] {
    Caps r;
    r.futex = true;  // park_waitonaddress.cpp
    r.sema = true;   // sema_win32.cpp
    r.thread_cpu_time = true;
    char probe[1];
    r.thread_names = thread_get_name(probe, sizeof probe) != Error::not_supported;
    r.thread_name_max = r.thread_names ? 255 : 0;  // thread_windows.cpp truncates here
    r.timer_granularity_ns = timer_granularity_ns();
    r.interrupt = true;
    r.interrupt_context = true;
    r.interrupt_push_call = win::interrupt_push_call_available();
    r.interrupt_absent = win::interrupt_absent();
    r.interrupt_mechanism = win::interrupt_mechanism();
    return r;
  }();
  return c;
}

PlatformInfo platform_info() {
  PlatformInfo p;
  p.os = "Windows";
  p.os_version = os_build();
  p.kernel = p.os_version;
  using WineVersionFn = const char*(__cdecl*)();
  if (auto wine = ntdll_fn<WineVersionFn>("wine_get_version")) p.emulation = std::string("Wine ") + wine();
  p.arch = arch();
  p.cpu_model = cpu_model();
  p.cpu_count = cpu_count();
  p.clock_resolution_ns = clock_resolution_ns();
  p.backends = {{"clock", "QueryPerformanceCounter"},
                {"threads", "win32 _beginthreadex"},
                {"sleep", win::sleep_backend_name()},
                {"thread_cpu_time", "GetThreadTimes (scheduler-tick granularity)"},
                {"park.address", "WaitOnAddress"},
                {"park.sema", "Win32 semaphore (alertable wait)"},
                {"memory", "VirtualAlloc reserve/commit, PAGE_NOACCESS guard"},
                {"poller", detail::poller_banner()},
                {"interrupt", win::interrupt_mechanism()}};
  return p;
}

}  // namespace keel::os
