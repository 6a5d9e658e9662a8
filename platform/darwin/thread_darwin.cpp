// Darwin specifics of the thread group: 64-bit thread ids, Mach ports for
// per-thread CPU time, names (self only on Darwin).
#include <mach/mach.h>
#include <pthread.h>
#include <unistd.h>

#include <cstring>

#include "platform/os.h"
#include "platform/posix/posix_internal.h"

namespace keel::os {

namespace posix {
uint64_t kernel_tid_self() noexcept {
  uint64_t tid = 0;
  pthread_threadid_np(nullptr, &tid);
  return tid;
}
// pthread_mach_thread_np does not add a port reference (unlike
// mach_thread_self), so nothing leaks per handle.
uintptr_t thread_aux(pthread_t t) noexcept { return uintptr_t(pthread_mach_thread_np(t)); }
}  // namespace posix

int cpu_count() noexcept {
  // Darwin has no affinity masks; online logical CPUs is the answer.
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}

Error thread_set_name(const char* name) noexcept {
  if (name == nullptr) return Error::invalid_argument;
  char buf[64];  // MAXTHREADNAMESIZE; longer names fail, so truncate
  std::strncpy(buf, name, sizeof buf - 1);
  buf[sizeof buf - 1] = '\0';
  return pthread_setname_np(buf) == 0 ? Error::ok : Error::unknown;
}

Error thread_get_name(char* buf, size_t cap) noexcept {
  if (buf == nullptr || cap == 0) return Error::invalid_argument;
  char tmp[64];
  if (pthread_getname_np(pthread_self(), tmp, sizeof tmp) != 0) return Error::unknown;
  std::strncpy(buf, tmp, cap - 1);
  buf[cap - 1] = '\0';
  return Error::ok;
}

int64_t thread_cpu_time_ns(const Thread& t) noexcept {
  if (!t.valid() || t.aux == 0) return -1;
  thread_basic_info_data_t info;
  mach_msg_type_number_t count = THREAD_BASIC_INFO_COUNT;
  if (thread_info(thread_act_t(t.aux), THREAD_BASIC_INFO, thread_info_t(&info), &count) != KERN_SUCCESS)
    return -1;
  // Microsecond resolution.
  int64_t us = (int64_t(info.user_time.seconds) + info.system_time.seconds) * 1'000'000 +
               info.user_time.microseconds + info.system_time.microseconds;
  return us * 1000;
}

int64_t thread_count() noexcept {
  // task_threads hands back a send right per thread and a VM array: both
  // must be released or every call leaks them.
  thread_act_array_t list = nullptr;
  mach_msg_type_number_t n = 0;
  if (task_threads(mach_task_self(), &list, &n) != KERN_SUCCESS) return -1;
  for (mach_msg_type_number_t i = 0; i < n; i++) mach_port_deallocate(mach_task_self(), list[i]);
  vm_deallocate(mach_task_self(), vm_address_t(list), vm_size_t(n * sizeof(thread_act_t)));
  return int64_t(n);
}

}  // namespace keel::os

