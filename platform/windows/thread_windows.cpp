// Windows threads: _beginthreadex, duplicated self handles, thread names via
// SetThreadDescription (Windows 10 1607+, looked up at run time).
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
// after windows.h, which it needs
#include <tlhelp32.h>

#include <process.h>

#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>

#include "platform/os.h"
#include "platform/windows/win_internal.h"

namespace keel::os {

namespace {

// Longest name kept, in UTF-8 bytes. info_windows.cpp reports the same value
// as caps().thread_name_max. The OS limit is far larger (32767 UTF-16 units);
// this bound lets names live in fixed stack buffers, so no allocation.
constexpr size_t kNameMax = 255;
constexpr size_t kMinStack = 256 * 1024;

// Longest prefix of s with at most max bytes that does not split a UTF-8
// sequence (a split one would become U+FFFD in the converted name).
size_t utf8_prefix(const char* s, size_t max) noexcept {
  size_t n = 0;
  while (n <= max && s[n] != '\0') n++;
  if (n <= max) return n;
  n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) n--;
  return n;
}

// SetThreadDescription/GetThreadDescription are missing before Windows 10
// 1607 and, on some versions, exported only by kernelbase.dll.
using SetDescFn = HRESULT(WINAPI*)(HANDLE, PCWSTR);
using GetDescFn = HRESULT(WINAPI*)(HANDLE, PWSTR*);
struct DescApi {
  SetDescFn set = nullptr;
  GetDescFn get = nullptr;
};

const DescApi& desc_api() noexcept {
  static const DescApi api = [] {
    for (const wchar_t* dll : {L"kernel32.dll", L"kernelbase.dll"}) {
      HMODULE m = GetModuleHandleW(dll);
      if (m == nullptr) continue;
      auto s = reinterpret_cast<SetDescFn>(reinterpret_cast<void*>(GetProcAddress(m, "SetThreadDescription")));
      auto g = reinterpret_cast<GetDescFn>(reinterpret_cast<void*>(GetProcAddress(m, "GetThreadDescription")));
      if (s != nullptr && g != nullptr) return DescApi{s, g};
    }
    return DescApi{};
  }();
  return api;
}

// The name is copied: the caller's string need not outlive thread_start.
struct StartBlock {
  ThreadFn fn;
  void* arg;
  char name[kNameMax + 1];
};

unsigned __stdcall thread_entry(void* p) {
  StartBlock* b = static_cast<StartBlock*>(p);
  if (b->name[0] != '\0') thread_set_name(b->name);
  ThreadFn fn = b->fn;
  void* arg = b->arg;
  delete b;
  fn(arg);
  return 0;
}

// A stack-size argument of 0 means the reserve in the exe's PE header, which
// a linker flag (/STACK, --stack) may have set below keel's minimum.
size_t default_stack_reserve() noexcept {
  auto base = reinterpret_cast<const unsigned char*>(GetModuleHandleW(nullptr));
  auto dos = reinterpret_cast<const IMAGE_DOS_HEADER*>(base);
  auto nt = reinterpret_cast<const IMAGE_NT_HEADERS*>(base + dos->e_lfanew);
  size_t reserve = static_cast<size_t>(nt->OptionalHeader.SizeOfStackReserve);
  return reserve < kMinStack ? kMinStack : reserve;
}

// GetCurrentThread() is a pseudo-handle meaning "the caller" wherever it is
// used, so it cannot be handed to another thread. Duplicate a real one once
// per thread and close it when the thread exits (through FLS, not a
// thread_local destructor: see win::thread_exit_slot).
struct SelfHandle {
  HANDLE h = nullptr;
};
thread_local SelfHandle self_handle;

void WINAPI close_self_handle(void* h) noexcept {
  if (h != nullptr) CloseHandle(static_cast<HANDLE>(h));
}

}  // namespace

Error thread_start(Thread* out, ThreadFn fn, void* arg, const ThreadOptions& opts) noexcept {
  if (out == nullptr || fn == nullptr) return Error::invalid_argument;
  const size_t stack = opts.stack_size != 0 ? opts.stack_size : default_stack_reserve();
  if (stack > UINT_MAX) return Error::invalid_argument;

  StartBlock* b = new (std::nothrow) StartBlock{fn, arg, {}};
  if (b == nullptr) return Error::no_resources;
  if (opts.name != nullptr) std::memcpy(b->name, opts.name, utf8_prefix(opts.name, kNameMax));

  // _beginthreadex rather than CreateThread: the CRT sets up and frees its
  // per-thread data (errno, strtok state, locale) only for threads it starts.
  unsigned tid = 0;
  uintptr_t h = _beginthreadex(nullptr, static_cast<unsigned>(stack), thread_entry, b,
                               STACK_SIZE_PARAM_IS_A_RESERVATION, &tid);
  if (h == 0) {
    const int err = errno;
    delete b;
    return err == EINVAL ? Error::invalid_argument : Error::no_resources;
  }
  out->native = h;
  out->id = tid;
  out->aux = 0;
  return Error::ok;
}

Error thread_join(Thread t) noexcept {
  HANDLE h = reinterpret_cast<HANDLE>(t.native);
  if (h == nullptr || h == INVALID_HANDLE_VALUE) return Error::invalid_argument;
  // GetThreadId is 0 for a closed or non-thread handle; a different id means a
  // second join whose closed handle value was reused. Joining oneself would
  // wait forever.
  const DWORD id = GetThreadId(h);
  if (id == 0 || id != t.id || id == GetCurrentThreadId()) return Error::invalid_argument;
  if (WaitForSingleObject(h, INFINITE) != WAIT_OBJECT_0) return Error::invalid_argument;
  CloseHandle(h);
  return Error::ok;
}

Thread thread_self() noexcept {
  if (self_handle.h == nullptr) {
    HANDLE h = nullptr;
    if (DuplicateHandle(GetCurrentProcess(), GetCurrentThread(), GetCurrentProcess(), &h, 0,
                        FALSE, DUPLICATE_SAME_ACCESS)) {
      self_handle.h = h;
      static const unsigned long slot = win::thread_exit_slot(&close_self_handle);
      win::thread_exit_set(slot, h);
    }
  }
  Thread t;
  t.native = reinterpret_cast<uintptr_t>(self_handle.h);
  t.id = GetCurrentThreadId();
  return t;
}

uint64_t thread_id() noexcept { return GetCurrentThreadId(); }

namespace win {
unsigned long thread_exit_slot(ThreadExitFn fn) noexcept { return FlsAlloc(fn); }

void thread_exit_set(unsigned long slot, void* value) noexcept {
  if (slot != FLS_OUT_OF_INDEXES) FlsSetValue(slot, value);
}
}  // namespace win

void thread_yield() noexcept { SwitchToThread(); }

int64_t thread_count() noexcept {
  // A snapshot of every thread in the system, filtered to ours: the only
  // documented way (NtQuerySystemInformation is internal). Wine implements
  // it exactly (measured: 1 at start, 2 with one extra thread).
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
  if (snap == INVALID_HANDLE_VALUE) return -1;
  THREADENTRY32 te;
  te.dwSize = sizeof te;
  const DWORD pid = GetCurrentProcessId();
  int64_t n = 0;
  if (Thread32First(snap, &te)) {
    do {
      if (te.th32OwnerProcessID == pid) n++;
    } while (Thread32Next(snap, &te));
  }
  CloseHandle(snap);
  return n;
}

int cpu_count() noexcept {
  // ALL_PROCESSOR_GROUPS: a plain affinity mask sees at most 64 CPUs.
  DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
  // The masks are 0 when the process spans several groups: then the group
  // count is all we know.
  DWORD_PTR proc = 0, sys = 0;
  if (GetProcessAffinityMask(GetCurrentProcess(), &proc, &sys) && proc != 0) {
    const DWORD allowed = static_cast<DWORD>(std::popcount(static_cast<uint64_t>(proc)));
    if (allowed < n) n = allowed;
  }
  return n < 1 ? 1 : static_cast<int>(n);
}

Error thread_set_name(const char* name) noexcept {
  if (name == nullptr) return Error::invalid_argument;
  const DescApi& api = desc_api();
  if (api.set == nullptr) return Error::not_supported;
  // At most one UTF-16 unit per UTF-8 byte, so kNameMax units always suffice.
  wchar_t wide[kNameMax + 1];
  const int n = static_cast<int>(utf8_prefix(name, kNameMax));
  const int w = n == 0 ? 0 : MultiByteToWideChar(CP_UTF8, 0, name, n, wide, static_cast<int>(kNameMax));
  if (n != 0 && w == 0) return Error::invalid_argument;
  wide[w] = L'\0';
  return SUCCEEDED(api.set(GetCurrentThread(), wide)) ? Error::ok : Error::unknown;
}

Error thread_get_name(char* buf, size_t cap) noexcept {
  if (buf == nullptr || cap == 0) return Error::invalid_argument;
  buf[0] = '\0';
  const DescApi& api = desc_api();
  if (api.get == nullptr) return Error::not_supported;
  PWSTR wide = nullptr;
  if (FAILED(api.get(GetCurrentThread(), &wide)) || wide == nullptr) return Error::unknown;
  // Another component may have set a name longer than cap: keep whole code
  // points (a surrogate pair is one) while they fit, so the result is valid
  // UTF-8. Sizing each code point with WideCharToMultiByte avoids allocating.
  const int limit = cap - 1 > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(cap - 1);
  int units = 0, bytes = 0;
  while (wide[units] != L'\0') {
    const int k = (IS_HIGH_SURROGATE(wide[units]) && IS_LOW_SURROGATE(wide[units + 1])) ? 2 : 1;
    const int b = WideCharToMultiByte(CP_UTF8, 0, wide + units, k, nullptr, 0, nullptr, nullptr);
    if (b <= 0 || bytes + b > limit) break;
    bytes += b;
    units += k;
  }
  if (units > 0) WideCharToMultiByte(CP_UTF8, 0, wide, units, buf, bytes, nullptr, nullptr);
  buf[bytes] = '\0';
  LocalFree(wide);
  return Error::ok;
}

int64_t thread_cpu_time_ns(const Thread& t) noexcept {
  HANDLE h = reinterpret_cast<HANDLE>(t.native);
  if (h == nullptr) return -1;
  FILETIME created, exited, kernel, user;
  if (!GetThreadTimes(h, &created, &exited, &kernel, &user)) return -1;
  auto ticks = [](const FILETIME& f) {
    return (static_cast<int64_t>(f.dwHighDateTime) << 32) | static_cast<int64_t>(f.dwLowDateTime);
  };
  return (ticks(kernel) + ticks(user)) * 100;
}

int64_t process_cpu_time_ns() noexcept {
  FILETIME created, exited, kernel, user;
  if (!GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user)) return -1;
  auto ticks = [](const FILETIME& f) {
    return (static_cast<int64_t>(f.dwHighDateTime) << 32) | static_cast<int64_t>(f.dwLowDateTime);
  };
  return (ticks(kernel) + ticks(user)) * 100;
}

}  // namespace keel::os
