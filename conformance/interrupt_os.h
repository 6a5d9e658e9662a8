// OS-specific helpers for conformance/interrupt_test.cpp: the blocking
// operations an interrupted thread sits in, the "unrelated signals" of the
// storm test, and re-running the binary under another emulator. The tests
// are the same on every target; only these helpers differ.
//
// The blocking operations stand in for contract groups that do not exist
// yet (parking, poller): each retries EINTR with the remaining time, which
// is exactly what those contract functions must do (docs/PORTING.md,
// group 7), and counts the EINTRs it absorbed so the tests can show which
// operations the kernel restarts by itself (SA_RESTART) and which it fails.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "platform/os.h"

namespace keel::conformance::ios {

// --- the register-check loop (conformance/arch/regs_*.S) ---------------------
// False where the test loops are not built (MSVC: no GNU assembler).
bool have_test_loop();
// 0 = SSE only, 1 = AVX, 2 = AVX-512 (x86_64); 0 elsewhere.
int vector_level();
const char* vector_level_name();

// Monotonic nanoseconds usable in interrupt context everywhere, sanitizers
// included: Linux reads CLOCK_MONOTONIC through syscall(2) because TSan
// intercepts clock_gettime, and an interrupt may land inside TSan's runtime.
KEEL_INTERRUPT_CONTEXT int64_t raw_now_ns();

// keel_test_regs.in_loop = 0, from interrupt context (see raw_now_ns).
KEEL_INTERRUPT_CONTEXT void clear_in_loop();

// --- blocking operations -------------------------------------------------------
struct Blocked {
  int result = -1;      // 1 = completed as asked, 0 = timed out, -1 = error
  int eintr = 0;        // EINTRs absorbed (posix); always 0 on Windows
  std::string error;    // set when result == -1
};

// Address wait: block while *word == 0 (Linux futex, Darwin __ulock_wait,
// Windows WaitOnAddress), at most timeout_ns. futex_wake_all wakes it.
Blocked futex_wait_while_zero(uint32_t* word, int64_t timeout_ns);
void futex_wake_all(uint32_t* word);

// A pipe: blocking read of one byte, and a readiness wait with a timeout
// (posix poll(2) on the read end; Windows: a pipe cannot be waited on, so the
// readiness wait is GetQueuedCompletionStatusEx on an I/O completion port
// that write_byte also posts to, the shape of keel's Windows poller).
class Pipe {
 public:
  Pipe();
  ~Pipe();
  bool ok() const { return ok_; }
  Blocked read_byte(char* out);
  Blocked wait_readable(int64_t timeout_ns);
  bool write_byte(char c);

 private:
  bool ok_ = false;
  intptr_t r_ = -1, w_ = -1, port_ = 0;
};

// --- unrelated asynchronous events ---------------------------------------------
// posix: counting handlers for SIGUSR1 (on the interrupted stack) and SIGCHLD
// (SA_ONSTACK, so it nests on the signal stack), each doing C library work
// that uses plenty of registers. windows: nothing to install.
void storm_install();
// One burst at t: posix sends SIGUSR1 and SIGCHLD to t; windows suspends t,
// reads its context and resumes it without keel's lock, as a debugger,
// profiler or anti-virus would.
void storm_hit(const os::Thread& t);
uint64_t storm_events();
const char* storm_kind();

// --- processes ---------------------------------------------------------------------
// Absolute path of this executable (under qemu-user: of the emulated binary).
std::string self_exe();
// Run argv with env_set added ("K=V") and env_unset removed; capture stdout
// and stderr into *output; kill it after timeout_ns. Returns the exit status,
// or -1 if it could not run or was killed.
int run(const std::vector<std::string>& argv, const std::vector<std::string>& env_set,
        const std::vector<std::string>& env_unset, std::string* output, int64_t timeout_ns);

}  // namespace keel::conformance::ios
