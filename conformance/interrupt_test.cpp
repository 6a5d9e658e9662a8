// Contract group 7: thread interruption (interrupt, InterruptContext,
// push_call). Every property of issue 5's conformance list, on every leg.
//
// Most targets run conformance/arch/regs_*.S: a call-free loop with every
// general-purpose and vector register, the flags and the FP control/status
// registers seeded with random values, stored back when the loop ends so
// they can be compared bit for bit. The injected function clobbers every
// register its ABI allows (keel_test_clobber), so an incomplete save in a
// trampoline shows up as a changed register.
//
// Handlers and injected functions run in interrupt context (on the target
// at an arbitrary instruction, or on the sender while the target is
// suspended): they only touch atomics and preallocated memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "conformance/arch/test_regs.h"
#include "conformance/harness.h"
#include "conformance/interrupt_os.h"
#include "platform/os.h"

namespace kc = keel::conformance;
namespace ios = keel::conformance::ios;
namespace os = keel::os;

#ifndef KEEL_SINGLESTEP_EMULATOR
#define KEEL_SINGLESTEP_EMULATOR ""
#endif

namespace {

// ----------------------------------------------------------------- skipping
#define REQUIRE_INTERRUPT()                                                      \
  do {                                                                           \
    if (!os::caps().interrupt) {                                                 \
      GTEST_SKIP() << "no thread interruption: " << os::caps().interrupt_absent; \
    }                                                                            \
  } while (0)
#define REQUIRE_CONTEXT()                                                        \
  do {                                                                           \
    REQUIRE_INTERRUPT();                                                         \
    if (!os::caps().interrupt_context) {                                         \
      GTEST_SKIP() << "no context access: " << os::caps().interrupt_absent;      \
    }                                                                            \
  } while (0)
#define REQUIRE_PUSH_CALL()                                                      \
  do {                                                                           \
    REQUIRE_CONTEXT();                                                           \
    if (!os::caps().interrupt_push_call) {                                       \
      GTEST_SKIP() << "no push_call: " << os::caps().interrupt_absent;           \
    }                                                                            \
  } while (0)
#define REQUIRE_TEST_LOOP()                                                                  \
  do {                                                                                       \
    if (!ios::have_test_loop()) {                                                            \
      GTEST_SKIP() << "the register-check loops are GNU assembler (conformance/arch/*.S), "  \
                      "which this compiler cannot build";                                    \
    }                                                                                        \
  } while (0)

// Handlers and injected calls may run inside a sanitizer's runtime: they
// call nothing a sanitizer intercepts or instruments out of line (no
// clock_gettime, no std::vector, and of std::atomic only the members
// libstdc++ forces inline: load, store, fetch_add — not operator=, not
// atomic_ref).
KEEL_INTERRUPT_CONTEXT int64_t now_ns() { return ios::raw_now_ns(); }

template <class T>
T ld(const T& v) {
  return std::atomic_ref<T>(const_cast<T&>(v)).load();
}
template <class T>
void st(T& v, T x) {
  std::atomic_ref<T>(v).store(x);
}

// ------------------------------------------------------------------ probe
// What the handler checks and counts. One per test, never freed: a late
// signal (a withdrawn request delivered after its test) may still read it.
enum Mode { kContextOnly = 0, kPushCall = 1, kArgChecks = 2 };

struct Probe {
  std::atomic<int> mode{kContextOnly};
  // expectations; 0 = not checked
  std::atomic<uintptr_t> pc_lo{0}, pc_hi{0}, sp_exact{0}, stack_lo{0}, stack_hi{0};
  std::atomic<uint64_t> tid{0};
  // observations
  std::atomic<uint64_t> runs{0}, pc_bad{0}, sp_bad{0}, stack_bad{0}, tid_bad{0};
  std::atomic<uintptr_t> bad_pc{0}, bad_sp{0};
  std::atomic<uint32_t> pc_hits[64] = {};  // by byte offset of pc in [pc_lo, pc_hi)
  std::atomic<uint64_t> pushed{0}, push_again{0}, push_failed{0}, calls{0};
  std::atomic<int> push_error{0};
  std::atomic<int> arg_null{-1}, arg_second{-1};  // kArgChecks: errors of push_call(nullptr) and a second push
  // latency, by request index
  std::atomic<int> index{-1};
  std::atomic<int64_t> t_request{0};
  int64_t* to_handler = nullptr;  // [latency_n], -1 = not recorded
  int64_t* to_call = nullptr;
  size_t latency_n = 0;
};

std::atomic<Probe*> g_probe{nullptr};

Probe* new_probe(Mode mode, int n) {
  auto* p = new Probe;
  p->mode = mode;
  p->latency_n = size_t(n);
  p->to_handler = new int64_t[size_t(n) + 1];
  p->to_call = new int64_t[size_t(n) + 1];
  std::fill(p->to_handler, p->to_handler + n, int64_t{-1});
  std::fill(p->to_call, p->to_call + n, int64_t{-1});
  g_probe.store(p);
  return p;
}

KEEL_INTERRUPT_CONTEXT void probe_call(void* arg) {
  auto* p = static_cast<Probe*>(arg);
  const int64_t now = now_ns();
  const int i = p->index.load();
  if (i >= 0 && size_t(i) < p->latency_n) p->to_call[i] = now - p->t_request.load();
  // The loop sets in_loop again only once the trampoline has returned into
  // it: the sender waits for that before its next request.
  ios::clear_in_loop();
  p->calls.fetch_add(1);
  keel_test_clobber();
}

KEEL_INTERRUPT_CONTEXT void probe_handler(os::InterruptContext& ctx) {
  Probe* p = g_probe.load();
  if (p == nullptr) return;
  const int64_t now = now_ns();
  const int i = p->index.load();
  if (i >= 0 && size_t(i) < p->latency_n) p->to_handler[i] = now - p->t_request.load();
  p->runs.fetch_add(1);
  if (p->pc_lo.load() != 0 && (ctx.pc < p->pc_lo.load() || ctx.pc >= p->pc_hi.load())) {
    p->pc_bad.fetch_add(1);
    p->bad_pc.store(ctx.pc);
  } else if (p->pc_lo.load() != 0 && ctx.pc - p->pc_lo.load() < 64) {
    p->pc_hits[ctx.pc - p->pc_lo.load()].fetch_add(1);
  }
  if (p->sp_exact.load() != 0 && ctx.sp != p->sp_exact.load()) {
    p->sp_bad.fetch_add(1);
    p->bad_sp.store(ctx.sp);
  }
  if (p->stack_lo.load() != 0 && (ctx.sp < p->stack_lo.load() || ctx.sp >= p->stack_hi.load())) p->stack_bad.fetch_add(1);
  if (p->tid.load() != 0 && ctx.thread_id != p->tid.load()) p->tid_bad.fetch_add(1);
  const int mode = p->mode.load();
  if (mode == kArgChecks) p->arg_null.store(int(ctx.push_call(nullptr, p)));
  if (mode == kPushCall || mode == kArgChecks) {
    const os::Error e = ctx.push_call(probe_call, p);
    if (e == os::Error::ok) {
      p->pushed.fetch_add(1);
    } else if (e == os::Error::try_again) {
      p->push_again.fetch_add(1);
    } else {
      p->push_failed.fetch_add(1);
      p->push_error.store(int(e));
    }
  }
  if (mode == kArgChecks) p->arg_second.store(int(ctx.push_call(probe_call, p)));
}

void record_latency(const char* name, const int64_t* data, size_t n) {
  std::vector<int64_t> v(data, data + n);
  v.erase(std::remove(v.begin(), v.end(), int64_t{-1}), v.end());
  if (v.empty()) return;
  std::sort(v.begin(), v.end());
  kc::record_metric(std::string(name) + ".p50", double(v[v.size() / 2]) / 1000.0, "us");
  kc::record_metric(std::string(name) + ".p99", double(v[std::min(v.size() - 1, v.size() * 99 / 100)]) / 1000.0, "us");
}

// Bounded wait for a condition the target fulfils within microseconds:
// poll for 100 µs (a yield on a busy machine may cost a time slice), then
// yield, then sleep in small steps.
bool spin_until(const std::function<bool()>& pred, int64_t timeout_ns) {
  const int64_t start = os::nanotime();
  for (int round = 0;; ++round) {
    if (pred()) return true;
    const int64_t now = os::nanotime();
    if (now - start >= timeout_ns) return pred();
    if (now - start < 100'000) continue;
    if (round < 100'000) os::thread_yield();
    else os::sleep_ns(50'000);
  }
}

// -------------------------------------------------------------- registers
void seed_registers(uint64_t seed) {
  KeelTestRegs& r = keel_test_regs;
  std::mt19937_64 rng(seed);
  std::memset(&r, 0, sizeof r);
  r.level = uint64_t(ios::vector_level());
  for (uint64_t& g : r.seed_gp) g = rng();
  for (uint64_t& k : r.seed_k) k = rng();
  for (auto& v : r.seed_vec)
    for (uint8_t& b : v) b = uint8_t(rng());
#if defined(__aarch64__)
  r.seed_gp[15] = 1;                                     // stored as in_loop
  r.seed_gp[16] = reinterpret_cast<uintptr_t>(&r);       // the loop's base register
  r.seed_gp[17] = 1;                                     // the stop byte it read last
  r.seed_flags = (rng() & 0xF) << 28;                    // NZCV
  r.seed_fpcr = (uint64_t{3} << 22) | (uint64_t{1} << 24) | (uint64_t{1} << 25);  // RZ, FZ, DN
  r.seed_fpsr = 0x9;                                     // IOC | UFC sticky flags
#else
  // MXCSR: all exceptions masked, round toward zero, FTZ, DAZ, IE flag set.
  r.seed_fpcr = 0x1F80 | 0x6000 | 0x8000 | 0x40 | 0x1;
#endif
}

::testing::AssertionResult registers_intact() {
  const KeelTestRegs& r = keel_test_regs;
  std::ostringstream bad;
  int n = 0;
  auto diff = [&](const char* what, int i, uint64_t want, uint64_t got) {
    if (want == got) return;
    if (n++ < 6) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s%d: want %016" PRIx64 " got %016" PRIx64 "; ", what, i, want, got);
      bad << buf;
    }
  };
#if defined(__aarch64__)
  for (int i = 0; i <= 30; ++i) {
#if defined(__APPLE__)
    if (i == 18) continue;  // reserved for the OS on Darwin
#endif
    diff("x", i, r.seed_gp[i], r.out_gp[i]);
  }
  diff("nzcv", 0, r.seed_flags, r.out_flags);
  diff("fpcr", 0, r.seed_fpcr, r.out_fpcr);
  diff("fpsr", 0, r.seed_fpsr, r.out_fpsr);
  for (int v = 0; v < 32; ++v)
    for (int q = 0; q < 2; ++q) {
      uint64_t want, got;
      std::memcpy(&want, r.seed_vec[v] + 8 * q, 8);
      std::memcpy(&got, r.out_vec[v] + 8 * q, 8);
      diff(q == 0 ? "v(lo)" : "v(hi)", v, want, got);
    }
#else
  static const char* const names[15] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8",
                                         "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  for (int i = 0; i < 15; ++i) diff(names[i], 0, r.seed_gp[i], r.out_gp[i]);
  diff("rflags.DF", 0, 1, (r.out_flags >> 10) & 1);
  diff("rflags.ZF", 0, 0, (r.out_flags >> 6) & 1);
  diff("mxcsr", 0, r.seed_fpcr, r.out_fpcr);
  const int regs = r.level == 2 ? 32 : 16;
  const int bytes = r.level == 2 ? 64 : r.level == 1 ? 32 : 16;
  for (int v = 0; v < regs; ++v)
    for (int q = 0; q < bytes / 8; ++q) {
      uint64_t want, got;
      std::memcpy(&want, r.seed_vec[v] + 8 * q, 8);
      std::memcpy(&got, r.out_vec[v] + 8 * q, 8);
      diff(r.level == 2 ? "zmm(qword) " : r.level == 1 ? "ymm(qword) " : "xmm(qword) ", v * 100 + q, want, got);
    }
  if (r.level == 2)
    for (int k = 0; k < 8; ++k) diff("k", k, r.seed_k[k], r.out_k[k]);
#endif
  diff("sp", 0, r.sp_before, r.sp_after);
  if (n == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << n << " register(s) changed: " << bad.str();
}

// ------------------------------------------------------------------ targets
// A registered thread spinning in the register-check loop.
struct LoopTarget {
  static constexpr size_t kStack = 1 << 20;
  os::Thread thread{};
  std::atomic<int> state{0};  // 1 registered, 2 finished
  os::Error init = os::Error::unknown;
  uintptr_t frame = 0;        // a local of the thread function: the stack's top end
  bool running = false;

  static void body(void* arg) {
    auto* t = static_cast<LoopTarget*>(arg);
    volatile int here = 0;
    t->frame = reinterpret_cast<uintptr_t>(&here);
    t->init = os::interrupt_thread_init();
    t->state = 1;
    if (t->init == os::Error::ok) keel_test_reg_loop();
    os::interrupt_thread_fini();
    t->state = 2;
  }

  ::testing::AssertionResult start(uint64_t seed) {
    seed_registers(seed);
    os::ThreadOptions o;
    o.stack_size = kStack;
    o.name = "keel-int-loop";
    if (os::thread_start(&thread, body, this, o) != os::Error::ok) return ::testing::AssertionFailure() << "thread_start";
    running = true;
    if (!spin_until([&] { return state.load() != 0; }, kc::scaled_ns(10 * kc::kSec)))
      return ::testing::AssertionFailure() << "target never registered";
    if (init != os::Error::ok)
      return ::testing::AssertionFailure() << "interrupt_thread_init: " << os::error_name(init);
    if (!spin_until([] { return ld(keel_test_regs.in_loop) != 0; }, kc::scaled_ns(10 * kc::kSec)))
      return ::testing::AssertionFailure() << "target never entered the loop";
    return ::testing::AssertionSuccess();
  }

  // Arm the probe with what the handler must see for this target.
  void expect_in_loop(Probe* p) {
    p->pc_lo = reinterpret_cast<uintptr_t>(&keel_test_loop_begin);
    p->pc_hi = reinterpret_cast<uintptr_t>(&keel_test_loop_end);
    p->sp_exact = uintptr_t(ld(keel_test_regs.sp_before));
    p->stack_lo = frame - kStack;
    p->stack_hi = frame;
    p->tid = thread.id;
  }

  // Returns whether the loop ended because we asked (not early).
  bool stop() {
    if (!running) return true;
    running = false;
    st(keel_test_regs.stop, uint8_t{1});
    os::thread_join(thread);
    return true;
  }
  ~LoopTarget() { stop(); }
};

// A registered thread spinning in plain C++.
struct SpinTarget {
  os::Thread thread{};
  std::atomic<int> state{0};
  std::atomic<bool> quit{false};
  os::Error init = os::Error::unknown;
  bool running = false;

  static void body(void* arg) {
    auto* t = static_cast<SpinTarget*>(arg);
    t->init = os::interrupt_thread_init();
    t->state = 1;
    while (!t->quit.load(std::memory_order_relaxed)) {
    }
    os::interrupt_thread_fini();
  }
  ::testing::AssertionResult start() {
    if (os::thread_start(&thread, body, this) != os::Error::ok) return ::testing::AssertionFailure() << "thread_start";
    running = true;
    if (!spin_until([&] { return state.load() != 0; }, kc::scaled_ns(10 * kc::kSec)) || init != os::Error::ok)
      return ::testing::AssertionFailure() << "target did not register: " << os::error_name(init);
    return ::testing::AssertionSuccess();
  }
  void stop() {
    if (!running) return;
    running = false;
    quit = true;
    os::thread_join(thread);
  }
  ~SpinTarget() { stop(); }
};

// n requests to a spinning loop target, one at a time, each waited for.
void interrupt_loop_n_times(bool push, int n, const char* handler_metric, const char* call_metric) {
  Probe* p = new_probe(push ? kPushCall : kContextOnly, n);
  ASSERT_EQ(os::interrupt_install(probe_handler), os::Error::ok);
  LoopTarget target;
  ASSERT_TRUE(target.start(0x6b65656c + uint64_t(n) + (push ? 1 : 0)));
  target.expect_in_loop(p);

  int handled = 0;
  std::string failure;
  for (int i = 0; i < n && failure.empty(); ++i) {
    p->index = i;
    p->t_request = now_ns();
    uint32_t ticket = 0;
    const os::Error e = os::interrupt(target.thread, &ticket);
    if (e != os::Error::ok) {
      failure = std::string("interrupt #") + std::to_string(i) + ": " + os::error_name(e);
      break;
    }
    const os::InterruptStatus s = os::interrupt_wait(target.thread, ticket, kc::scaled_ns(10 * kc::kSec));
    if (s != os::InterruptStatus::handled) {
      failure = "request #" + std::to_string(i) + " not handled (status " + std::to_string(int(s)) + ")";
      break;
    }
    ++handled;
    // The injected call runs when the target continues: wait for it, and for
    // the target to be back in its loop, so a missing or doubled call is
    // pinned to this request and the next one lands in the loop again.
    if (push && !spin_until([&] { return p->calls.load() >= p->pushed.load() && ld(keel_test_regs.in_loop) != 0; },
                            kc::scaled_ns(10 * kc::kSec)))
      failure = "request #" + std::to_string(i) + ": the injected call never ran or never returned";
    if (push && p->calls.load() != p->pushed.load())
      failure = "request #" + std::to_string(i) + ": " + std::to_string(p->calls.load()) + " calls for " +
                std::to_string(p->pushed.load()) + " push_calls";
  }
  const bool in_loop_at_end = ld(keel_test_regs.stop) == 0;
  target.stop();
  int distinct = 0;
  for (const auto& h : p->pc_hits) distinct += h.load() != 0;
  kc::record_metric("interrupts", handled, "");
  // How many of the loop's instruction boundaries the interrupts hit (qemu
  // without -singlestep: always the same one).
  kc::record_metric("distinct_pcs", distinct, "");
  record_latency(handler_metric, p->to_handler, p->latency_n);
  if (push) record_latency(call_metric, p->to_call, p->latency_n);
  kc::record_info("vector_state", ios::vector_level_name());

  ASSERT_TRUE(failure.empty()) << failure;
  EXPECT_TRUE(in_loop_at_end) << "the loop ended before it was asked to (corrupted flags?)";
  EXPECT_EQ(p->runs.load(), uint64_t(n)) << "handler runs";
  EXPECT_EQ(p->tid_bad.load(), 0u) << "handler saw another thread id";
  EXPECT_EQ(p->pc_bad.load(), 0u) << "pc outside the loop, e.g. 0x" << std::hex << p->bad_pc.load() << " not in [0x"
                                  << p->pc_lo.load() << ", 0x" << p->pc_hi.load() << ")";
  EXPECT_EQ(p->sp_bad.load(), 0u) << "sp differs from the loop's, e.g. 0x" << std::hex << p->bad_sp.load()
                                  << " instead of 0x" << p->sp_exact.load();
  EXPECT_EQ(p->stack_bad.load(), 0u) << "sp outside the thread's stack";
  if (push) {
    EXPECT_EQ(p->pushed.load(), uint64_t(n)) << "push_call refused " << p->push_again.load() << " (try_again), failed "
                                              << p->push_failed.load() << " (last: "
                                              << os::error_name(os::Error(p->push_error.load())) << ")";
    EXPECT_EQ(p->calls.load(), p->pushed.load()) << "injected calls vs push_calls";
  }
  EXPECT_TRUE(registers_intact());
}

}  // namespace

// ====================================================================== tests

TEST(interrupt_caps, consistent_and_described) {
  const os::Caps& c = os::caps();
  kc::record_info("mechanism", c.interrupt_mechanism);
  kc::record_info("interrupt", c.interrupt ? "yes" : "no");
  kc::record_info("context", c.interrupt_context ? "yes" : "no");
  kc::record_info("push_call", c.interrupt_push_call ? "yes" : "no");
  EXPECT_TRUE(!c.interrupt_push_call || c.interrupt_context) << "push_call needs context access";
  EXPECT_TRUE(!c.interrupt_context || c.interrupt) << "context access needs interruption";
  const bool all = c.interrupt && c.interrupt_context && c.interrupt_push_call;
  EXPECT_EQ(all, std::strlen(c.interrupt_absent) == 0) << "interrupt_absent must say why exactly when something is missing: '"
                                                      << c.interrupt_absent << "'";
  EXPECT_TRUE(!c.interrupt || std::strlen(c.interrupt_mechanism) > 0) << "no mechanism described";
  if (!all) GTEST_SKIP() << "part of thread interruption is absent: " << c.interrupt_absent;
}

// "A thread spinning in a call-free loop is interrupted 10,000 times; each
// time the handler sees a pc inside the loop and an sp inside the thread's
// stack" — and, since the loop never moves sp, exactly the loop's sp. The
// registers are checked too: interruption alone must not disturb them.
TEST(interrupt_context, pc_and_sp_inside_spinning_loop_10000) {
  REQUIRE_CONTEXT();
  REQUIRE_TEST_LOOP();
  interrupt_loop_n_times(false, 10'000, "request_to_handler", "");
}

// "... with push_call, the injected function runs exactly once per request
// and the loop's register state is bit-for-bit intact."
TEST(interrupt_push_call, runs_once_per_request_registers_intact_10000) {
  REQUIRE_PUSH_CALL();
  REQUIRE_TEST_LOOP();
  interrupt_loop_n_times(true, 10'000, "request_to_handler", "request_to_call");
}

TEST(interrupt_api, self_and_bad_arguments_rejected) {
  REQUIRE_INTERRUPT();
  EXPECT_EQ(os::interrupt_install(nullptr), os::Error::invalid_argument);
  Probe* p = new_probe(kArgChecks, 1);
  ASSERT_EQ(os::interrupt_install(probe_handler), os::Error::ok);
  // Self-interruption is rejected on every target (SuspendThread on oneself
  // never returns), registered or not.
  EXPECT_EQ(os::interrupt(os::thread_self()), os::Error::invalid_argument);
  ASSERT_EQ(os::interrupt_thread_init(), os::Error::ok);
  EXPECT_EQ(os::interrupt_thread_init(), os::Error::ok) << "init is idempotent";
  uint32_t ticket = 0;
  EXPECT_EQ(os::interrupt(os::thread_self(), &ticket), os::Error::invalid_argument);
  EXPECT_EQ(os::interrupt(os::Thread{}), os::Error::invalid_argument);
  os::interrupt_thread_fini();
  os::interrupt_thread_fini();  // twice is harmless
  EXPECT_EQ(p->runs.load(), 0u);
  EXPECT_STREQ(os::error_name(os::Error::try_again), "try_again");

  // push_call's own argument checks run inside a handler.
  if (!os::caps().interrupt_context) return;
  SpinTarget target;
  ASSERT_TRUE(target.start());
  ASSERT_EQ(os::interrupt(target.thread, &ticket), os::Error::ok);
  EXPECT_EQ(os::interrupt_wait(target.thread, ticket, kc::scaled_ns(10 * kc::kSec)), os::InterruptStatus::handled);
  EXPECT_EQ(os::Error(p->arg_null.load()), os::Error::invalid_argument) << "push_call(nullptr)";
  if (os::caps().interrupt_push_call) {
    EXPECT_EQ(p->pushed.load(), 1u);
    EXPECT_EQ(os::Error(p->arg_second.load()), os::Error::invalid_argument) << "a second push_call in one handler run";
    EXPECT_TRUE(spin_until([&] { return p->calls.load() == 1; }, kc::scaled_ns(10 * kc::kSec)));
  } else {
    EXPECT_EQ(os::Error(p->push_error.load()), os::Error::not_supported);
  }
  target.stop();
}

// "A target that has exited ... gives a defined error, not a crash or hang."
TEST(interrupt_target, exited_thread_is_a_defined_error) {
  REQUIRE_INTERRUPT();
  Probe* p = new_probe(kContextOnly, 1);
  ASSERT_EQ(os::interrupt_install(probe_handler), os::Error::ok);
  struct Once {
    os::Error init = os::Error::unknown;
    static void body(void* a) { static_cast<Once*>(a)->init = os::interrupt_thread_init(); }  // fini at thread exit
  } once;
  os::Thread t;
  ASSERT_EQ(os::thread_start(&t, Once::body, &once), os::Error::ok);
  ASSERT_EQ(os::thread_join(t), os::Error::ok);
  ASSERT_EQ(once.init, os::Error::ok);
  uint32_t ticket = 0;
  EXPECT_EQ(os::interrupt(t, &ticket), os::Error::no_such_thread);
  EXPECT_EQ(os::interrupt_status(t, 1), os::InterruptStatus::impossible);
  EXPECT_EQ(os::interrupt_wait(t, 1, kc::kSec), os::InterruptStatus::impossible);
  // A thread that is alive but never registered.
  std::atomic<bool> quit{false};
  os::Thread plain;
  ASSERT_EQ(os::thread_start(&plain, [](void* q) { while (!static_cast<std::atomic<bool>*>(q)->load()) os::sleep_ns(kc::kMs); }, &quit),
            os::Error::ok);
  EXPECT_EQ(os::interrupt(plain, &ticket), os::Error::no_such_thread);
  quit = true;
  os::thread_join(plain);
  EXPECT_EQ(p->runs.load(), 0u);
}

// "... or that is still starting": until it registers, a defined error.
TEST(interrupt_target, starting_thread_is_a_defined_error) {
  REQUIRE_INTERRUPT();
  Probe* p = new_probe(kContextOnly, 1);
  ASSERT_EQ(os::interrupt_install(probe_handler), os::Error::ok);
  struct Starting {
    std::atomic<bool> gate{false}, quit{false};
    std::atomic<int> state{0};
    static void body(void* a) {
      auto* s = static_cast<Starting*>(a);
      while (!s->gate.load()) os::sleep_ns(100'000);
      s->state = os::interrupt_thread_init() == os::Error::ok ? 1 : -1;
      while (!s->quit.load(std::memory_order_relaxed)) {
      }
    }
  } s;
  os::Thread t;
  ASSERT_EQ(os::thread_start(&t, Starting::body, &s), os::Error::ok);
  uint32_t ticket = 0;
  EXPECT_EQ(os::interrupt(t, &ticket), os::Error::no_such_thread);
  s.gate = true;
  EXPECT_TRUE(spin_until([&] { return s.state.load() != 0; }, kc::scaled_ns(10 * kc::kSec)));
  EXPECT_EQ(s.state.load(), 1);
  EXPECT_EQ(os::interrupt(t, &ticket), os::Error::ok);
  EXPECT_EQ(os::interrupt_wait(t, ticket, kc::scaled_ns(10 * kc::kSec)), os::InterruptStatus::handled);
  s.quit = true;
  os::thread_join(t);
  EXPECT_EQ(p->runs.load(), 1u);
}

// "A target with the interrupt signal blocked gives a bounded failure
// (acknowledged as impossible)." And a withdrawn request never runs later,
// even when the target unblocks.
TEST(interrupt_target, blocked_is_bounded_and_withdrawn) {
  REQUIRE_INTERRUPT();
  Probe* p = new_probe(kContextOnly, 1);
  ASSERT_EQ(os::interrupt_install(probe_handler), os::Error::ok);
  struct Blocker {
    std::atomic<int> phase{0};  // 1 blocked, 2 asked to unblock, 3 unblocked, 4 quit
    static void body(void* a) {
      auto* b = static_cast<Blocker*>(a);
      if (os::interrupt_thread_init() != os::Error::ok) return void(b->phase = -1);
      os::interrupt_block(true);
      b->phase = 1;
      while (b->phase.load() == 1) {
      }
      os::interrupt_block(false);
      os::sleep_ns(50 * kc::kMs);  // a pending signal is delivered now
      b->phase = 3;
      while (b->phase.load() != 4) {
      }
    }
  } b;
  os::Thread t;
  ASSERT_EQ(os::thread_start(&t, Blocker::body, &b), os::Error::ok);
  ASSERT_TRUE(spin_until([&] { return b.phase.load() != 0; }, kc::scaled_ns(10 * kc::kSec)));
  ASSERT_EQ(b.phase.load(), 1);

  uint32_t ticket = 0;
  ASSERT_EQ(os::interrupt(t, &ticket), os::Error::ok);
  const int64_t t0 = os::nanotime();
  const os::InterruptStatus s = os::interrupt_wait(t, ticket, 200 * kc::kMs);
  const int64_t waited = os::nanotime() - t0;
  kc::record_metric("wait_for_impossible", double(waited) / 1e6, "ms");
  EXPECT_EQ(s, os::InterruptStatus::impossible);
  EXPECT_LT(waited, kc::scaled_ns(5 * kc::kSec)) << "not bounded";
  EXPECT_EQ(p->runs.load(), 0u) << "the handler ran while interruption was blocked";

  b.phase = 2;
  EXPECT_TRUE(spin_until([&] { return b.phase.load() == 3; }, kc::scaled_ns(10 * kc::kSec)));
  EXPECT_EQ(p->runs.load(), 0u) << "a withdrawn request ran after the target unblocked";
  EXPECT_EQ(os::interrupt_status(t, ticket), os::InterruptStatus::impossible);
  ASSERT_EQ(os::interrupt(t, &ticket), os::Error::ok);
  EXPECT_EQ(os::interrupt_wait(t, ticket, kc::scaled_ns(10 * kc::kSec)), os::InterruptStatus::handled);
  EXPECT_EQ(p->runs.load(), 1u);
  b.phase = 4;
  os::thread_join(t);
}

// A request still pending when its target exits is acknowledged impossible
// by the exit itself, not by the waiter's bound.
TEST(interrupt_target, exit_acknowledges_pending_request) {
  REQUIRE_INTERRUPT();
  Probe* p = new_probe(kContextOnly, 1);
  ASSERT_EQ(os::interrupt_install(probe_handler), os::Error::ok);
  struct Leaver {
    std::atomic<int> state{0};
    std::atomic<bool> go{false};
    static void body(void* a) {
      auto* l = static_cast<Leaver*>(a);
      if (os::interrupt_thread_init() != os::Error::ok) return void(l->state = -1);
      os::interrupt_block(true);
      l->state = 1;
      while (!l->go.load()) os::sleep_ns(100'000);
    }  // deregisters at thread exit
  } l;
  os::Thread t;
  ASSERT_EQ(os::thread_start(&t, Leaver::body, &l), os::Error::ok);
  ASSERT_TRUE(spin_until([&] { return l.state.load() != 0; }, kc::scaled_ns(10 * kc::kSec)));
  ASSERT_EQ(l.state.load(), 1);
  uint32_t ticket = 0;
  ASSERT_EQ(os::interrupt(t, &ticket), os::Error::ok);
  l.go = true;
  const int64_t t0 = os::nanotime();
  const os::InterruptStatus s = os::interrupt_wait(t, ticket, kc::scaled_ns(20 * kc::kSec));
  const int64_t waited = os::nanotime() - t0;
  os::thread_join(t);
  kc::record_metric("wait_for_impossible", double(waited) / 1e6, "ms");
  EXPECT_EQ(s, os::InterruptStatus::impossible);
  EXPECT_LT(waited, kc::scaled_ns(2 * kc::kSec)) << "acknowledged by the waiter's bound, not by the exit";
  EXPECT_EQ(p->runs.load(), 0u);
}

namespace {

// A registered thread blocked in one operation; the test interrupts it,
// then lets the operation complete and checks its outcome.
struct BlockedTarget {
  std::function<ios::Blocked()> op;
  os::Thread thread{};
  std::atomic<int> state{0};  // 1 about to block, 2 done
  ios::Blocked result;
  int64_t elapsed = 0;
  os::Error init = os::Error::unknown;

  static void body(void* arg) {
    auto* t = static_cast<BlockedTarget*>(arg);
    t->init = os::interrupt_thread_init();
    t->state = 1;
    const int64_t t0 = os::nanotime();
    if (t->init == os::Error::ok) t->result = t->op();
    t->elapsed = os::nanotime() - t0;
    os::interrupt_thread_fini();
    t->state = 2;
  }
};

struct Interrupted {
  int requests = 0, handled = 0, other = 0;
};

// Interrupt t while it blocks: up to max requests within budget_ns.
Interrupted interrupt_while_blocked(BlockedTarget& t, int max, int64_t budget_ns) {
  Interrupted r;
  os::sleep_ns(20 * kc::kMs);  // let it reach the kernel
  const int64_t end = os::nanotime() + budget_ns;
  while (r.requests < max && (r.requests == 0 || os::nanotime() < end) && t.state.load() == 1) {
    uint32_t ticket = 0;
    ++r.requests;
    if (os::interrupt(t.thread, &ticket) != os::Error::ok) {
      ++r.other;
      continue;
    }
    if (os::interrupt_wait(t.thread, ticket, kc::scaled_ns(10 * kc::kSec)) == os::InterruptStatus::handled) ++r.handled;
    else ++r.other;
  }
  return r;
}

// The shared frame of the four "blocked in ..." tests.
void blocked_test(const std::function<ios::Blocked()>& op, const std::function<void()>& complete, int64_t budget_ns,
                  const std::function<void(const BlockedTarget&)>& check) {
  Probe* p = new_probe(os::caps().interrupt_push_call ? kPushCall : kContextOnly, 0);
  ASSERT_EQ(os::interrupt_install(probe_handler), os::Error::ok);
  BlockedTarget t;
  t.op = op;
  ASSERT_EQ(os::thread_start(&t.thread, BlockedTarget::body, &t), os::Error::ok);
  ASSERT_TRUE(spin_until([&] { return t.state.load() != 0; }, kc::scaled_ns(10 * kc::kSec)));
  const Interrupted r = interrupt_while_blocked(t, 50, budget_ns);
  const bool still_blocked = t.state.load() == 1;
  if (complete) complete();
  const bool finished = spin_until([&] { return t.state.load() == 2; }, kc::scaled_ns(10 * kc::kSec));
  if (!finished) {
    ADD_FAILURE() << "the interrupted operation never completed (lost wakeup?)";
    std::fflush(nullptr);
    os::abort_process();  // cannot join a thread that never returns
  }
  os::thread_join(t.thread);
  EXPECT_TRUE(spin_until([&] { return p->calls.load() == p->pushed.load(); }, kc::scaled_ns(10 * kc::kSec)));

  kc::record_metric("requests", r.requests, "");
  kc::record_metric("push_calls", double(p->pushed.load()), "");
  kc::record_metric("eintr_absorbed", t.result.eintr, "");
  EXPECT_EQ(t.init, os::Error::ok);
  EXPECT_GE(r.requests, 1);
  EXPECT_EQ(r.handled, r.requests) << r.other << " request(s) not handled";
  EXPECT_TRUE(still_blocked || !complete) << "the operation completed on its own while being interrupted";
  EXPECT_EQ(t.result.error, "");
  EXPECT_EQ(p->calls.load(), p->pushed.load()) << "injected calls vs push_calls";
  EXPECT_EQ(p->push_failed.load(), 0u) << "push_call failed: " << os::error_name(os::Error(p->push_error.load()));
  check(t);
}

}  // namespace

// "A target blocked in a futex wait, a poll, a read on a pipe and a sleep is
// interrupted and then completes its operation normally — no lost wakeup,
// no spurious error reaching the caller, no early timeout."
TEST(interrupt_blocked, futex_wait_completes_normally) {
  REQUIRE_INTERRUPT();
  alignas(8) static uint32_t word = 0;
  word = 0;
  blocked_test([] { return ios::futex_wait_while_zero(&word, 30 * kc::kSec); },
               [] {
                 st(word, 1u);
                 ios::futex_wake_all(&word);
               },
               kc::scaled_ns(300 * kc::kMs),
               [](const BlockedTarget& t) { EXPECT_EQ(t.result.result, 1) << "woken, not timed out"; });
}

TEST(interrupt_blocked, poll_completes_normally) {
  REQUIRE_INTERRUPT();
  static ios::Pipe* pipe = nullptr;
  ios::Pipe p;
  ASSERT_TRUE(p.ok());
  pipe = &p;
  blocked_test([] { return pipe->wait_readable(30 * kc::kSec); }, [] { pipe->write_byte('p'); },
               kc::scaled_ns(300 * kc::kMs), [](const BlockedTarget& t) {
                 EXPECT_EQ(t.result.result, 1) << "readable, not timed out";
                 char c = 0;
                 EXPECT_EQ(pipe->read_byte(&c).result, 1);
                 EXPECT_EQ(c, 'p');
               });
}

TEST(interrupt_blocked, pipe_read_completes_normally) {
  REQUIRE_INTERRUPT();
  static ios::Pipe* pipe = nullptr;
  static char got = 0;
  ios::Pipe p;
  ASSERT_TRUE(p.ok());
  pipe = &p;
  got = 0;
  blocked_test([] { return pipe->read_byte(&got); }, [] { pipe->write_byte('k'); }, kc::scaled_ns(300 * kc::kMs),
               [](const BlockedTarget& t) {
                 EXPECT_EQ(t.result.result, 1);
                 EXPECT_EQ(got, 'k');
                 // SA_RESTART: the kernel restarts a pipe read, so not even
                 // keel's callers see EINTR.
                 EXPECT_EQ(t.result.eintr, 0) << "read failed with EINTR: SA_RESTART missing";
               });
}

constexpr int64_t kSleep = 500 * kc::kMs;

TEST(interrupt_blocked, sleep_completes_never_early) {
  REQUIRE_INTERRUPT();
  blocked_test([] {
                 os::sleep_ns(kSleep);
                 ios::Blocked b;
                 b.result = 1;
                 return b;
               },
               nullptr, 250 * kc::kMs, [](const BlockedTarget& t) {
                 kc::record_metric("overshoot", double(t.elapsed - kSleep) / 1e6, "ms");
                 EXPECT_GE(t.elapsed, kSleep) << "sleep_ns returned early after being interrupted";
                 EXPECT_LT(t.elapsed, kSleep + kc::scaled_ns(5 * kc::kSec));
               });
}

// "A storm of unrelated signals (SIGCHLD, SIGUSR1 with a handler) during
// interruption corrupts nothing."
TEST(interrupt_storm, unrelated_signals_corrupt_nothing) {
  REQUIRE_PUSH_CALL();
  REQUIRE_TEST_LOOP();
  ios::storm_install();
  const int n = 2'000;
  Probe* p = new_probe(kPushCall, n);
  ASSERT_EQ(os::interrupt_install(probe_handler), os::Error::ok);
  LoopTarget target;
  ASSERT_TRUE(target.start(0x73746f726dull));
  // Not expect_in_loop: an interrupt may land inside one of the unrelated
  // handlers, whose pc and sp are elsewhere; push_call may then refuse
  // (try_again: interrupted on the signal stack).
  p->tid = target.thread.id;

  struct Storm {
    const os::Thread* target;
    std::atomic<bool> quit{false};
    static void body(void* a) {
      auto* s = static_cast<Storm*>(a);
      while (!s->quit.load()) {
        ios::storm_hit(*s->target);
        os::sleep_ns(50'000);
      }
    }
  } storm;
  storm.target = &target.thread;
  const uint64_t events_before = ios::storm_events();
  os::Thread storm_thread;
  ASSERT_EQ(os::thread_start(&storm_thread, Storm::body, &storm), os::Error::ok);

  int handled = 0;
  for (int i = 0; i < n; ++i) {
    p->index = i;
    p->t_request = now_ns();
    uint32_t ticket = 0;
    if (os::interrupt(target.thread, &ticket) != os::Error::ok) break;
    if (os::interrupt_wait(target.thread, ticket, kc::scaled_ns(10 * kc::kSec)) != os::InterruptStatus::handled) break;
    ++handled;
    if (!spin_until([&] { return p->calls.load() >= p->pushed.load(); }, kc::scaled_ns(10 * kc::kSec))) break;
  }
  storm.quit = true;
  os::thread_join(storm_thread);
  const bool in_loop_at_end = ld(keel_test_regs.stop) == 0;
  target.stop();
  const uint64_t events = ios::storm_events() - events_before;
  kc::record_metric("unrelated_events", double(events), "");
  kc::record_info("storm", ios::storm_kind());
  kc::record_metric("push_call_try_again", double(p->push_again.load()), "");
  EXPECT_EQ(handled, n);
  EXPECT_GT(events, 0u);
  EXPECT_TRUE(in_loop_at_end) << "the loop ended before it was asked to";
  EXPECT_EQ(p->tid_bad.load(), 0u);
  EXPECT_EQ(p->push_failed.load(), 0u) << "push_call failed: " << os::error_name(os::Error(p->push_error.load()));
  EXPECT_EQ(p->pushed.load() + p->push_again.load(), uint64_t(n));
  // Interrupts that land inside an unrelated handler on the signal stack are
  // refused (try_again); slow (sanitized) handlers make that common.
  EXPECT_GE(p->pushed.load(), uint64_t(n) / 10) << "too few injections to prove anything";
  EXPECT_EQ(p->calls.load(), p->pushed.load());
  EXPECT_TRUE(registers_intact());
}

// "Two threads interrupting each other concurrently never deadlock (1 s
// stress)." Windows is the interesting case: one global suspend lock.
TEST(interrupt_mutual, two_threads_interrupting_each_other_never_deadlock) {
  REQUIRE_INTERRUPT();
  Probe* p = new_probe(os::caps().interrupt_push_call ? kPushCall : kContextOnly, 0);
  ASSERT_EQ(os::interrupt_install(probe_handler), os::Error::ok);
  struct Shared {
    std::atomic<int> ready{0}, done{0};
    std::atomic<bool> go{false}, release{false};
  } shared;
  struct Peer {
    Shared* shared;
    os::Thread self{}, other{};
    uint64_t handled = 0, impossible = 0, pending = 0, errors = 0;
    static void body(void* a) {
      auto* me = static_cast<Peer*>(a);
      Shared& sh = *me->shared;
      if (os::interrupt_thread_init() != os::Error::ok) ++me->errors;
      sh.ready.fetch_add(1);
      while (!sh.go.load()) os::thread_yield();
      const int64_t end = os::nanotime() + kc::kSec;
      while (os::nanotime() < end) {
        uint32_t ticket = 0;
        if (os::interrupt(me->other, &ticket) != os::Error::ok) {
          ++me->errors;
          continue;
        }
        switch (os::interrupt_wait(me->other, ticket, kc::scaled_ns(10 * kc::kSec))) {
          case os::InterruptStatus::handled: ++me->handled; break;
          case os::InterruptStatus::impossible: ++me->impossible; break;
          case os::InterruptStatus::pending: ++me->pending; break;
        }
      }
      sh.done.fetch_add(1);
      while (!sh.release.load()) os::sleep_ns(kc::kMs);  // still interruptible meanwhile
      os::interrupt_thread_fini();
    }
  };
  Peer a{&shared}, b{&shared};
  ASSERT_EQ(os::thread_start(&a.self, Peer::body, &a), os::Error::ok);
  ASSERT_EQ(os::thread_start(&b.self, Peer::body, &b), os::Error::ok);
  a.other = b.self;
  b.other = a.self;
  ASSERT_TRUE(spin_until([&] { return shared.ready.load() == 2; }, kc::scaled_ns(10 * kc::kSec)));
  shared.go = true;
  if (!spin_until([&] { return shared.done.load() == 2; }, kc::kSec + kc::scaled_ns(30 * kc::kSec))) {
    ADD_FAILURE() << "deadlock: the peers did not finish";
    std::fflush(nullptr);
    os::abort_process();
  }
  shared.release = true;
  os::thread_join(a.self);
  os::thread_join(b.self);
  EXPECT_TRUE(spin_until([&] { return p->calls.load() == p->pushed.load(); }, kc::scaled_ns(10 * kc::kSec)));
  kc::record_metric("a_to_b", double(a.handled), "");
  kc::record_metric("b_to_a", double(b.handled), "");
  for (const Peer* peer : {&a, &b}) {
    EXPECT_GT(peer->handled, 0u);
    EXPECT_EQ(peer->impossible, 0u);
    EXPECT_EQ(peer->pending, 0u);
    EXPECT_EQ(peer->errors, 0u);
  }
  EXPECT_EQ(p->runs.load(), a.handled + b.handled) << "one handler run per request when requests never overlap";
  EXPECT_EQ(p->calls.load(), p->pushed.load());
}

// Several senders at once: every request acknowledged handled; overlapping
// requests coalesce (fewer handler runs than requests is allowed, more is not).
TEST(interrupt_request, concurrent_requests_all_acknowledged) {
  REQUIRE_INTERRUPT();
  Probe* p = new_probe(os::caps().interrupt_push_call ? kPushCall : kContextOnly, 0);
  ASSERT_EQ(os::interrupt_install(probe_handler), os::Error::ok);
  SpinTarget target;
  ASSERT_TRUE(target.start());
  struct Sender {
    const os::Thread* target;
    int n;
    int handled = 0, other = 0;
    static void body(void* a) {
      auto* s = static_cast<Sender*>(a);
      for (int i = 0; i < s->n; ++i) {
        uint32_t ticket = 0;
        if (os::interrupt(*s->target, &ticket) == os::Error::ok &&
            os::interrupt_wait(*s->target, ticket, kc::scaled_ns(10 * kc::kSec)) == os::InterruptStatus::handled)
          ++s->handled;
        else
          ++s->other;
      }
    }
  };
  const int per = 250;
  Sender senders[4] = {{&target.thread, per}, {&target.thread, per}, {&target.thread, per}, {&target.thread, per}};
  os::Thread threads[4];
  for (int i = 0; i < 4; ++i) ASSERT_EQ(os::thread_start(&threads[i], Sender::body, &senders[i]), os::Error::ok);
  for (os::Thread& t : threads) os::thread_join(t);
  target.stop();
  EXPECT_TRUE(spin_until([&] { return p->calls.load() == p->pushed.load(); }, kc::scaled_ns(10 * kc::kSec)));
  uint64_t handled = 0;
  for (const Sender& s : senders) {
    EXPECT_EQ(s.other, 0);
    handled += uint64_t(s.handled);
  }
  kc::record_metric("requests", double(4 * per), "");
  kc::record_metric("handler_runs", double(p->runs.load()), "");
  EXPECT_EQ(handled, uint64_t(4 * per));
  EXPECT_GE(p->runs.load(), 1u);
  EXPECT_LE(p->runs.load(), uint64_t(4 * per));
  EXPECT_EQ(p->calls.load(), p->pushed.load());
}

namespace {
// The body of the exit test's child process: another thread keeps
// interrupting (suspending, on Windows) the main thread, with push_call
// where available, and the main thread ends the process meanwhile.
[[noreturn]] void exit_while_interrupted(bool via_abort) {
  new_probe(os::caps().interrupt_push_call ? kPushCall : kContextOnly, 0);
  if (os::interrupt_install(probe_handler) != os::Error::ok) std::_Exit(90);
  if (os::interrupt_thread_init() != os::Error::ok) std::_Exit(91);
  static os::Thread main_thread;
  main_thread = os::thread_self();
  struct Sender {
    static void body(void*) {
      for (;;) {
        uint32_t ticket = 0;
        if (os::interrupt(main_thread, &ticket) == os::Error::ok) os::interrupt_wait(main_thread, ticket, kc::kSec);
      }
    }
  };
  os::Thread sender;
  if (os::thread_start(&sender, Sender::body, nullptr) != os::Error::ok) std::_Exit(92);
  const int64_t end = os::nanotime() + 100 * kc::kMs;
  while (os::nanotime() < end) {
  }
  if (via_abort) os::abort_process();  // exit status 2
  std::exit(7);                        // runs atexit handlers: the Windows exit hook among them
}
}  // namespace

// The exit path takes the suspend lock for good first (Windows, Go #35775):
// a thread that ends the process while another thread is interrupting it
// ends it promptly, with its own status, and is never left suspended.
TEST(interrupt_exit, process_exits_while_interrupting) {
  REQUIRE_INTERRUPT();
#if defined(__SANITIZE_THREAD__)
  // TSan cannot start threads in a forked child: re-execute instead.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
#endif
  const int64_t t0 = os::nanotime();
  EXPECT_EXIT(exit_while_interrupted(false), ::testing::ExitedWithCode(7), "");
  EXPECT_EXIT(exit_while_interrupted(true), ::testing::ExitedWithCode(2), "");
  kc::record_metric("two_exits", double(os::nanotime() - t0) / 1e6, "ms");
}

// qemu-user delivers asynchronous signals only at translation-block
// boundaries, so the passes above always interrupt the same instruction.
// Re-run every interruption test under `qemu-aarch64 -singlestep`, where a
// signal can land on any instruction boundary (inside the trampoline and the
// trap handler's return path included). Only the linux-arm64-qemu build
// knows an emulator (KEEL_SINGLESTEP_EMULATOR, set by conformance/CMakeLists.txt).
TEST(interrupt_singlestep, all_interrupt_tests_pass_at_every_instruction) {
  const std::string emu = KEEL_SINGLESTEP_EMULATOR;
  if (emu.empty())
    GTEST_SKIP() << "no single-step emulator on this leg: only linux-arm64-qemu re-runs the interruption tests "
                    "under qemu -singlestep";
  REQUIRE_INTERRUPT();
  std::vector<std::string> argv;
  for (size_t b = 0, e; b <= emu.size(); b = e + 1) {
    e = emu.find('|', b);
    if (e == std::string::npos) e = emu.size();
    argv.push_back(emu.substr(b, e - b));
  }
  argv.push_back(ios::self_exe());
  argv.push_back("--gtest_filter=interrupt_*-interrupt_singlestep.*");
  // The child's own records (not the leg's): read back for its metrics.
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("keel-singlestep-" + std::to_string(os::thread_id()));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  argv.push_back("--keel-results=" + dir.string());
  const int64_t t0 = os::nanotime();
  std::string out;
  const int rc = ios::run(argv, {}, {"KEEL_RESULTS_DIR"}, &out, kc::scaled_ns(50 * kc::kSec));
  const double secs = double(os::nanotime() - t0) / 1e9;
  int ran = 0;
  std::string unexpected;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("[keel] ", 0) != 0) continue;
    ++ran;
    if (line.find("UNEXPECTED") != std::string::npos) unexpected += line.substr(7) + "; ";
  }
  // Evidence that single-stepping spread the interrupts over the loop.
  auto child_metric = [&](const char* id, const char* key) -> std::string {
    std::ifstream f(dir / (std::string(id) + ".json"));
    const std::string rec((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const std::string tag = std::string("\"metric.") + key + "\":\"";
    const size_t at = rec.find(tag);
    return at == std::string::npos ? std::string() : rec.substr(at + tag.size(), rec.find('"', at + tag.size()) - at - tag.size());
  };
  const std::string distinct = child_metric("interrupt.context.pc_and_sp_inside_spinning_loop_10000", "distinct_pcs");
  kc::record_metric("distinct_pcs_in_loop", std::atof(distinct.c_str()), "");
  for (const char* q : {"request_to_call.p50", "request_to_call.p99"})
    kc::record_metric(q, std::atof(child_metric("interrupt.push_call.runs_once_per_request_registers_intact_10000", q).c_str()),
                      "us");
  std::filesystem::remove_all(dir, ec);
  kc::record_metric("tests", ran, "");
  kc::record_metric("duration", secs, "s");
  EXPECT_GE(std::atoi(distinct.c_str()), 2) << "single-stepping did not spread the interrupts over the loop";
  EXPECT_GE(ran, 10) << "the single-step run did not run the interruption tests; output tail: "
                     << out.substr(out.size() > 1500 ? out.size() - 1500 : 0);
  EXPECT_TRUE(unexpected.empty()) << "under qemu -singlestep: " << unexpected;
  EXPECT_EQ(rc, 0) << "exit status; output tail: " << out.substr(out.size() > 1500 ? out.size() - 1500 : 0);
}
