// Memory group on VirtualAlloc / VirtualFree. Reservations start on the 64 KiB
// allocation granularity; commit and decommit work on pages inside one.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <psapi.h>

#include <cstdint>

#include "platform/os.h"

namespace keel::os {

namespace {

const SYSTEM_INFO& system_info() noexcept {
  static const SYSTEM_INFO si = [] {
    SYSTEM_INFO s;
    GetSystemInfo(&s);
    return s;
  }();
  return si;
}

// VirtualAlloc and VirtualFree would round an unaligned range outward to
// whole pages and touch memory the caller did not name; reject it instead,
// as the posix backend does.
bool page_range(const void* p, size_t size) noexcept {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const size_t ps = page_size();
  return p != nullptr && size != 0 && a % ps == 0 && size % ps == 0 && a <= UINTPTR_MAX - size;
}

Error from_last_error() noexcept {
  switch (GetLastError()) {
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT: return Error::no_resources;
    // Free memory, a range crossing two reservations, a bad address.
    case ERROR_INVALID_ADDRESS:
    case ERROR_INVALID_PARAMETER: return Error::invalid_argument;
    default: return Error::unknown;
  }
}

// Total size of the reservation that starts at base, or 0 if base is not the
// start of one. A reservation may have been split into regions of different
// state and protection by commits, so walk them all.
size_t reservation_size(void* base) noexcept {
  size_t total = 0;
  auto* q = static_cast<char*>(base);
  MEMORY_BASIC_INFORMATION m;
  while (VirtualQuery(q, &m, sizeof m) == sizeof m && m.State != MEM_FREE && m.AllocationBase == base) {
    total += m.RegionSize;
    q += m.RegionSize;
  }
  return total;
}

}  // namespace

size_t page_size() noexcept { return system_info().dwPageSize; }

size_t alloc_granularity() noexcept { return system_info().dwAllocationGranularity; }

void* mem_reserve(size_t size) noexcept {
  if (size == 0) return nullptr;
  const size_t g = alloc_granularity();
  if (size > SIZE_MAX - g) return nullptr;
  size = (size + g - 1) / g * g;
  // MEM_RESERVE alone takes address space only: no commit charge, no pages.
  return VirtualAlloc(nullptr, size, MEM_RESERVE, PAGE_NOACCESS);
}

Error mem_commit(void* p, size_t size) noexcept {
  if (!page_range(p, size)) return Error::invalid_argument;
  // Committing already-committed pages succeeds and keeps their contents;
  // fresh and decommitted pages arrive zero-filled.
  if (VirtualAlloc(p, size, MEM_COMMIT, PAGE_READWRITE) == nullptr) return from_last_error();
  return Error::ok;
}

Error mem_decommit(void* p, size_t size) noexcept {
  if (!page_range(p, size)) return Error::invalid_argument;
  // size != 0 is essential: MEM_DECOMMIT with size 0 at a reservation base
  // decommits the whole reservation.
  return VirtualFree(p, size, MEM_DECOMMIT) ? Error::ok : from_last_error();
}

Error mem_discard(void* p, size_t size) noexcept {
  if (!page_range(p, size)) return Error::invalid_argument;
  // MEM_RESET keeps the contents' fate unspecified and the working set
  // untouched; decommit and commit again frees the pages at once and reads
  // zero after — the contract. No mapping limit to mind on Windows.
  if (!VirtualFree(p, size, MEM_DECOMMIT)) return from_last_error();
  return VirtualAlloc(p, size, MEM_COMMIT, PAGE_READWRITE) == p ? Error::ok : from_last_error();
}

Error mem_guard(void* p, size_t size) noexcept {
  if (!page_range(p, size)) return Error::invalid_argument;
  // PAGE_GUARD is one-shot (the first access clears it and raises
  // STATUS_GUARD_PAGE_VIOLATION, the next succeeds), so use no-access.
  // Decommit first: contents are discarded and resident memory freed, as on
  // posix; then commit as PAGE_NOACCESS so the range shows as a guard
  // (committed, no access) rather than plain reserved space. Every access
  // faults either way, also between the two calls.
  if (!VirtualFree(p, size, MEM_DECOMMIT)) return from_last_error();
  if (VirtualAlloc(p, size, MEM_COMMIT, PAGE_NOACCESS) == nullptr) return from_last_error();
  return Error::ok;
}

Error mem_release(void* p, size_t size) noexcept {
  const size_t g = alloc_granularity();
  if (p == nullptr || size == 0 || size > SIZE_MAX - g || reinterpret_cast<uintptr_t>(p) % g != 0) {
    return Error::invalid_argument;
  }
  // MEM_RELEASE frees the whole reservation and takes no size, so check here
  // what munmap would honour: p is a reservation base and size is its size
  // (as passed to mem_reserve, before or after rounding).
  const size_t total = reservation_size(p);
  if (total == 0 || (size + g - 1) / g * g != (total + g - 1) / g * g) return Error::invalid_argument;
  return VirtualFree(p, 0, MEM_RELEASE) ? Error::ok : from_last_error();
}

int64_t resident_memory_bytes() noexcept {
  // K32GetProcessMemoryInfo lives in kernel32 (Windows 7+), so no psapi.dll.
  PROCESS_MEMORY_COUNTERS pmc;
  pmc.cb = sizeof pmc;
  if (!K32GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) return -1;
  return static_cast<int64_t>(pmc.WorkingSetSize);
}

// Windows has no limit on the number of VADs (reservations) per process
// beyond address space and commit charge. Under Wine, though, the process is
// a Linux process: every reservation is a host mapping and every protection
// change inside one splits it, so the host's vm.max_map_count applies (a
// guarded goroutine stack is four host mappings there: guard page, stack
// below the armed PAGE_GUARD page, that page, the rest). Report half the
// host limit, so that core's guard budget (a quarter of this, at two
// mappings per stack) stays within half of the real one.
int64_t max_memory_mappings() noexcept {
  static const int64_t n = [] {
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    if (ntdll == nullptr || GetProcAddress(ntdll, "wine_get_version") == nullptr) return int64_t(-1);
    // Wine maps the host's root directory as drive Z: by default, and
    // \\?\unix\ always.
    const wchar_t* paths[] = {L"\\\\?\\unix\\proc\\sys\\vm\\max_map_count", L"Z:\\proc\\sys\\vm\\max_map_count"};
    for (const wchar_t* path : paths) {
      HANDLE f = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr, OPEN_EXISTING,
                             FILE_ATTRIBUTE_NORMAL, nullptr);
      if (f == INVALID_HANDLE_VALUE) continue;
      char buf[32] = {};
      DWORD got = 0;
      const BOOL ok = ReadFile(f, buf, sizeof buf - 1, &got, nullptr);
      CloseHandle(f);
      if (!ok || got == 0) continue;
      int64_t v = 0;
      for (DWORD i = 0; i < got && buf[i] >= '0' && buf[i] <= '9'; ++i) v = v * 10 + (buf[i] - '0');
      if (v > 0) return v / 2;
    }
    // Wine, but the host limit is unreadable: assume Linux's default.
    return int64_t(65530 / 2);
  }();
  return n;
}

}  // namespace keel::os
