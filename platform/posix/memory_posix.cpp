// Memory group on mmap/mprotect, shared by Linux and Darwin.
#include <sys/mman.h>
#include <unistd.h>

#include "platform/os.h"

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0  // Darwin never reserves swap for a mapping anyway
#endif

namespace keel::os {
namespace {

bool aligned(const void* p, size_t size) {
  const size_t ps = page_size();
  return p != nullptr && size != 0 && reinterpret_cast<uintptr_t>(p) % ps == 0 && size % ps == 0;
}

// Replace the range with a fresh inaccessible mapping: the old pages are
// freed (resident memory drops at once) and the next commit sees zeros.
// Go's sysFault/sysUnused do the same; madvise(DONTNEED) alone would keep the
// range accessible.
Error remap_inaccessible(void* p, size_t size) {
  void* r = mmap(p, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  return r == p ? Error::ok : Error::no_resources;
}

}  // namespace

size_t page_size() noexcept {
  static const size_t ps = size_t(sysconf(_SC_PAGESIZE));
  return ps;
}

size_t alloc_granularity() noexcept { return page_size(); }

void* mem_reserve(size_t size) noexcept {
  if (size == 0) return nullptr;
  const size_t g = alloc_granularity();
  if (size > SIZE_MAX - g) return nullptr;
  size = (size + g - 1) / g * g;
  // PROT_NONE + MAP_NORESERVE: address space only, no commit charge, so a
  // 64 GiB reservation works even with strict overcommit.
  void* p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

Error mem_commit(void* p, size_t size) noexcept {
  if (!aligned(p, size)) return Error::invalid_argument;
  return mprotect(p, size, PROT_READ | PROT_WRITE) == 0 ? Error::ok : Error::no_resources;
}

Error mem_decommit(void* p, size_t size) noexcept {
  if (!aligned(p, size)) return Error::invalid_argument;
  return remap_inaccessible(p, size);
}

Error mem_discard(void* p, size_t size) noexcept {
  if (!aligned(p, size)) return Error::invalid_argument;
#if defined(__linux__)
  // Private anonymous memory: the pages go at once and read as zero after,
  // and the mapping is untouched (no split, nothing for vm.max_map_count).
  return madvise(p, size, MADV_DONTNEED) == 0 ? Error::ok : Error::no_resources;
#else
  // Darwin's MADV_DONTNEED keeps contents and MADV_FREE frees lazily: map
  // fresh zero pages over the range instead (Darwin has no mapping limit).
  void* r = mmap(p, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  return r == p ? Error::ok : Error::no_resources;
#endif
}

Error mem_guard(void* p, size_t size) noexcept {
  if (!aligned(p, size)) return Error::invalid_argument;
  return remap_inaccessible(p, size);
}

Error mem_release(void* p, size_t size) noexcept {
  if (!aligned(p, size)) return Error::invalid_argument;
  return munmap(p, size) == 0 ? Error::ok : Error::invalid_argument;
}

}  // namespace keel::os
