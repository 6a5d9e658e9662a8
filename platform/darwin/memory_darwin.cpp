// Darwin specifics of the memory group.
#include <mach/mach.h>

#include "platform/os.h"

namespace keel::os {

int64_t resident_memory_bytes() noexcept {
  mach_task_basic_info_data_t info;
  mach_msg_type_number_t count = MACH_TASK_BASIC_INFO_COUNT;
  if (task_info(mach_task_self(), MACH_TASK_BASIC_INFO, task_info_t(&info), &count) != KERN_SUCCESS) return -1;
  return int64_t(info.resident_size);
}

// XNU has no per-process limit on VM map entries comparable to Linux's
// vm.max_map_count.
int64_t max_memory_mappings() noexcept { return -1; }

}  // namespace keel::os
