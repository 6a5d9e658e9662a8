#include "conformance/support/poke.h"

#include <atomic>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <pthread.h>
#include <signal.h>
#include <string.h>
#endif

namespace keel::conformance {
namespace {
std::atomic<int> g_delivered{0};
}

int pokes_delivered() { return g_delivered.load(); }

#if defined(_WIN32)
namespace {
void CALLBACK apc_noop(ULONG_PTR) { g_delivered.fetch_add(1); }
}  // namespace
void poke_setup() {}
bool poke(const os::Thread& t) {
  return QueueUserAPC(apc_noop, reinterpret_cast<HANDLE>(t.native), 0) != 0;
}
#else
namespace {
void on_sigusr2(int) { g_delivered.fetch_add(1); }
}  // namespace
void poke_setup() {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigusr2;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR
  sigaction(SIGUSR2, &sa, nullptr);
}
bool poke(const os::Thread& t) {
  pthread_t pt;
  static_assert(sizeof pt <= sizeof t.native);
  memcpy(&pt, &t.native, sizeof pt);
  return pthread_kill(pt, SIGUSR2) == 0;
}
#endif

}  // namespace keel::conformance
