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

}  // namespace keel::os
