// Linux specifics of the memory group.
#include <cstdio>

#include "platform/os.h"

namespace keel::os {

int64_t resident_memory_bytes() noexcept {
  // statm: size resident shared text lib data dt, in pages.
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long long size = 0, resident = 0;
  int n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * int64_t(page_size()) : -1;
}

int64_t max_memory_mappings() noexcept {
  // vm.max_map_count (default 65530): mmap and mprotect fail with ENOMEM once
  // the process has that many VMAs. Read once; it rarely changes at run time.
  static const int64_t n = [] {
    FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r");
    if (f == nullptr) return int64_t(-1);
    long long v = -1;
    if (std::fscanf(f, "%lld", &v) != 1 || v <= 0) v = -1;
    std::fclose(f);
    return int64_t(v);
  }();
  return n;
}

}  // namespace keel::os
