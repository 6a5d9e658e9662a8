// The G/M/P scheduler (Go's proc.go): run queues, work stealing, spinning
// and idle Ms, gopark/goready, goroutine start and exit, lock_os_thread,
// keel::run, plain-thread parking and deadlock detection. docs/SCHEDULER.md
// explains the design; comments here say why a step is where it is.
#include "core/sched.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "core/fatal.h"
#include "core/spin.h"
#include "core/stack.h"
#include "core/tls.h"
#include "platform/os.h"
#include "platform/tsan_annotations.h"

#if defined(__GNUC__)
#define KEEL_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define KEEL_NOINLINE __declspec(noinline)
#else
#define KEEL_NOINLINE
#endif

namespace keel::core {
namespace {

// ------------------------------------------------------------ global state
struct Sched {
  Lock lock;
  M* midle = nullptr;                   // idle Ms (lock)
  int32_t nmidle = 0;
  std::atomic<int32_t> mcount{0};       // Ms the runtime created (threads it owns)
  P* pidle = nullptr;                   // idle Ps (lock)
  std::atomic<int32_t> npidle{0};
  std::atomic<int32_t> nmspinning{0};
  G* runqhead = nullptr;                // global run queue (lock)
  G* runqtail = nullptr;
  std::atomic<int32_t> runqsize{0};
  G* gfree = nullptr;                   // dead Gs with stacks (lock)
  std::atomic<int32_t> ngfree{0};    // read without the lock as a hint
  std::atomic<int64_t> ngoroutines{0};
  // The most goroutines alive at once in this one-second epoch and the last
  // (gfput keeps that many dead Gs with their stacks).
  std::atomic<int64_t> gpeak{0};
  int64_t gpeak_prev = 0;          // (lock)
  int64_t gpeak_epoch = 0;         // nanotime() the epoch began (lock)
  std::atomic<uint64_t> goidgen{0};
  std::atomic<uint64_t> midgen{0};
  std::atomic<uint64_t> nsteals{0};     // successful steals (diagnostics)
  std::atomic<int64_t> coarse_now{0};   // nanotime() at the last idle/slow park
  int32_t nprocs = 0;
  P* allp = nullptr;
  std::atomic<bool> started{false};
  // keel::run (lock)
  bool run_active = false;
  M* m0 = nullptr;
  std::atomic<bool> main_done{false};
  bool main_goexited = false;
  std::atomic<bool> paused{false};
  // Plain threads parked in gopark right now.
  std::atomic<int32_t> nthreads_blocked{0};
  // Timers: the M (at most one) sleeping until the earliest timer of any P
  // while every other M is idle (Go's netpoll(delay) sleeper), the deadline
  // it sleeps until, and its note. timer_woken is true while a wakeup is on
  // its way or nobody may be woken (see timer_sleep).
  std::atomic<M*> timer_sleeper{nullptr};
  std::atomic<int64_t> timer_sleep_until{0};
  std::atomic<bool> timer_woken{true};
  Note timer_note;
  // Every goroutine G ever made (they are reused, never freed), for dumps.
  Lock allglock;
  G* allgs = nullptr;
};
Sched S;

std::atomic<int32_t> g_requested_procs{0};
std::atomic<int64_t> g_sanitizer_threads{0};  // see sanitizer_helper_threads

// ---------------------------------------------------------- thread-locals
// Read through non-inlined accessors: a goroutine may resume on another
// thread, and compilers cache a thread-local's address across calls
// (llvm#98479). Never keep the result across a switch.
thread_local M* t_m = nullptr;
KEEL_NOINLINE M* getm() noexcept { return t_m; }
KEEL_NOINLINE void setm(M* m) noexcept { t_m = m; }

// The thread G goes with its thread — except on mingw, whose thread_local
// destructors run on freed storage (core/tls.h): there it is leaked, and the
// holder stays trivially destructible so no destructor is registered at all.
struct ThreadGHolder {
  G* g = nullptr;
#if KEEL_TLS_DTORS
  ~ThreadGHolder() { delete g; }
#endif
};
thread_local ThreadGHolder t_threadg;
KEEL_NOINLINE G* thread_g() noexcept {
  G* g = t_threadg.g;
  if (g == nullptr) {
    g = new G;
    g->is_thread = true;
    g->status.store(GStatus::running, std::memory_order_relaxed);
    t_threadg.g = g;
  }
  return g;
}

KEEL_NOINLINE uint64_t* rand_state() noexcept {
  thread_local uint64_t s = 0;
  return &s;
}

// ------------------------------------------------------------------ misc
int default_procs() noexcept {
  int n = g_requested_procs.load(std::memory_order_relaxed);
  if (n > 0) return n;
#if defined(_MSC_VER)
  char* env = nullptr;
  size_t len = 0;
  if (_dupenv_s(&env, &len, "KEEL_MAXPROCS") == 0 && env != nullptr) {
    n = std::atoi(env);
    std::free(env);
  }
#else
  if (const char* env = std::getenv("KEEL_MAXPROCS")) n = std::atoi(env);
#endif
  if (n > 0) return n > 1024 ? 1024 : n;
  return os::cpu_count();
}

void append_u64(std::string* s, uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v));
  *s += buf;
}

const char* gstatus_string(GStatus s) noexcept {
  switch (s) {
    case GStatus::idle: return "idle";
    case GStatus::runnable: return "runnable";
    case GStatus::running: return "running";
    case GStatus::waiting: return "waiting";
    case GStatus::dead: return "dead";
  }
  return "?";
}

std::string creation_site(const G* gp) {
  std::string s = "goroutine ";
  append_u64(&s, gp->id);
  s += " was created at ";
  s += gp->file;
  if (gp->line != 0) {
    s += ":";
    append_u64(&s, gp->line);
  }
  return s;
}

// ------------------------------------------------------- local run queues
bool runqempty(P* p) noexcept {
  // runnext first: a G moving from runnext to the ring is in one of them.
  for (;;) {
    uint32_t h = p->runqhead.load(std::memory_order_acquire);
    uint32_t t = p->runqtail.load(std::memory_order_acquire);
    G* next = p->runnext.load(std::memory_order_acquire);
    if (p->runqtail.load(std::memory_order_acquire) == t) return h == t && next == nullptr;
  }
}

void globrunqput_locked(G* gp) noexcept {
  gp->schedlink = nullptr;
  if (S.runqtail != nullptr) S.runqtail->schedlink = gp;
  else S.runqhead = gp;
  S.runqtail = gp;
  S.runqsize.fetch_add(1, std::memory_order_relaxed);
}

void globrunqputbatch_locked(G* head, G* tail, int32_t n) noexcept {
  tail->schedlink = nullptr;
  if (S.runqtail != nullptr) S.runqtail->schedlink = head;
  else S.runqhead = head;
  S.runqtail = tail;
  S.runqsize.fetch_add(n, std::memory_order_relaxed);
}

// The local ring is full: move half of it and gp to the global queue.
bool runqputslow(P* p, G* gp, uint32_t h, uint32_t t) noexcept {
  G* batch[kRunqSize / 2 + 1];
  uint32_t n = (t - h) / 2;
  for (uint32_t i = 0; i < n; i++) batch[i] = p->runq[(h + i) % kRunqSize].load(std::memory_order_relaxed);
  if (!p->runqhead.compare_exchange_strong(h, h + n, std::memory_order_release, std::memory_order_relaxed))
    return false;  // a thief took some: the ring has room again
  batch[n] = gp;
  for (uint32_t i = 0; i < n; i++) batch[i]->schedlink = batch[i + 1];
  S.lock.lock();
  globrunqputbatch_locked(batch[0], batch[n], int32_t(n + 1));
  S.lock.unlock();
  return true;
}

// Only p's owner calls this. next: put gp in runnext (it runs next, and
// inherits the time slice), kicking the previous runnext to the tail.
void runqput(P* p, G* gp, bool next) noexcept {
  if (next) {
    G* old = p->runnext.load(std::memory_order_relaxed);
    while (!p->runnext.compare_exchange_weak(old, gp, std::memory_order_release, std::memory_order_relaxed)) {
    }
    if (old == nullptr) return;
    gp = old;
  }
  for (;;) {
    uint32_t h = p->runqhead.load(std::memory_order_acquire);
    uint32_t t = p->runqtail.load(std::memory_order_relaxed);
    if (t - h < kRunqSize) {
      p->runq[t % kRunqSize].store(gp, std::memory_order_relaxed);
      p->runqtail.store(t + 1, std::memory_order_release);
      return;
    }
    if (runqputslow(p, gp, h, t)) return;
  }
}

G* runqget(P* p) noexcept {
  G* next = p->runnext.load(std::memory_order_acquire);
  if (next != nullptr &&
      p->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acquire, std::memory_order_relaxed))
    return next;
  for (;;) {
    uint32_t h = p->runqhead.load(std::memory_order_acquire);
    uint32_t t = p->runqtail.load(std::memory_order_acquire);
    if (t == h) return nullptr;
    G* gp = p->runq[h % kRunqSize].load(std::memory_order_relaxed);
    if (p->runqhead.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) return gp;
  }
}

// Take half of victim's queue into thief's ring starting at slot `at`.
uint32_t runqgrab(P* victim, P* thief, uint32_t at, bool steal_runnext) noexcept {
  for (;;) {
    uint32_t h = victim->runqhead.load(std::memory_order_acquire);
    uint32_t t = victim->runqtail.load(std::memory_order_acquire);
    uint32_t n = t - h;
    n = n - n / 2;
    if (n == 0) {
      if (steal_runnext) {
        G* next = victim->runnext.load(std::memory_order_acquire);
        if (next != nullptr) {
          if (!victim->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel,
                                                       std::memory_order_relaxed))
            continue;
          thief->runq[at % kRunqSize].store(next, std::memory_order_relaxed);
          return 1;
        }
      }
      return 0;
    }
    if (n > kRunqSize / 2) continue;  // read h and t at different times: retry
    for (uint32_t i = 0; i < n; i++)
      thief->runq[(at + i) % kRunqSize].store(victim->runq[(h + i) % kRunqSize].load(std::memory_order_relaxed),
                                              std::memory_order_relaxed);
    if (victim->runqhead.compare_exchange_strong(h, h + n, std::memory_order_acq_rel, std::memory_order_relaxed))
      return n;
  }
}

G* runqsteal(P* thief, P* victim, bool steal_runnext) noexcept {
  uint32_t t = thief->runqtail.load(std::memory_order_relaxed);
  uint32_t n = runqgrab(victim, thief, t, steal_runnext);
  if (n == 0) return nullptr;
  n--;
  G* gp = thief->runq[(t + n) % kRunqSize].load(std::memory_order_relaxed);
  if (n != 0) thief->runqtail.store(t + n, std::memory_order_release);
  return gp;
}

// ------------------------------------------------------ global run queue
G* globrunqget_locked(P* p, int32_t max) noexcept {
  int32_t size = S.runqsize.load(std::memory_order_relaxed);
  if (size == 0) return nullptr;
  int32_t n = size / S.nprocs + 1;
  if (n > size) n = size;
  if (max > 0 && n > max) n = max;
  if (n > int32_t(kRunqSize / 2)) n = kRunqSize / 2;
  S.runqsize.fetch_sub(n, std::memory_order_relaxed);
  G* gp = S.runqhead;
  S.runqhead = gp->schedlink;
  n--;
  for (; n > 0; n--) {
    G* g1 = S.runqhead;
    S.runqhead = g1->schedlink;
    runqput(p, g1, false);
  }
  if (S.runqhead == nullptr) S.runqtail = nullptr;
  return gp;
}

// ------------------------------------------------------------- Ps and Ms
void checkdead_locked() noexcept;
int64_t earliest_timer() noexcept;

void pidleput_locked(P* p) noexcept {
  p->idle = true;
  p->m = nullptr;
  p->link = S.pidle;
  S.pidle = p;
  S.npidle.fetch_add(1, std::memory_order_relaxed);
}

P* pidleget_locked() noexcept {
  P* p = S.pidle;
  if (p != nullptr) {
    S.pidle = p->link;
    p->idle = false;
    S.npidle.fetch_sub(1, std::memory_order_relaxed);
  }
  return p;
}

void acquirep(M* m, P* p) noexcept {
  m->p = p;
  p->m = m;
  p->idle = false;
}

P* releasep(M* m) noexcept {
  P* p = m->p;
  p->m = nullptr;
  m->p = nullptr;
  return p;
}

void mput_locked(M* m) noexcept {
  m->schedlink = S.midle;
  S.midle = m;
  S.nmidle++;
  checkdead_locked();
}

M* mget_locked() noexcept {
  M* m = S.midle;
  if (m != nullptr) {
    S.midle = m->schedlink;
    S.nmidle--;
  }
  return m;
}

void schedule(M* m);

void mstart(void* arg) {
  M* m = static_cast<M*>(arg);
  setm(m);
  m->g0.init_thread(0);
  acquirep(m, m->nextp);
  m->nextp = nullptr;
  schedule(m);
  fatal("an M's scheduler loop returned");
}

void newm(P* p, bool spinning) {
  M* m = new M;
  m->id = S.midgen.fetch_add(1, std::memory_order_relaxed) + 1;
  m->nextp = p;
  m->spinning = spinning;
  S.mcount.fetch_add(1, std::memory_order_relaxed);
  os::Thread t;
  os::ThreadOptions o;
  o.name = "keel-m";
  // Ms are never joined: like Go's, they live until the process exits.
  if (os::thread_start(&t, &mstart, m, o) != os::Error::ok) fatal("newm: the OS refused to create a thread");
}

// Run some M with p (or any idle P when p is null). spinning: the caller
// already counted the new M in nmspinning.
void startm(P* p, bool spinning) {
  S.lock.lock();
  if (p == nullptr) {
    p = pidleget_locked();
    if (p == nullptr) {
      S.lock.unlock();
      if (spinning) S.nmspinning.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
  }
  M* nm = mget_locked();
  S.lock.unlock();
  if (nm == nullptr) {
    newm(p, spinning);
    return;
  }
  nm->spinning = spinning;
  nm->nextp = p;
  nm->park.wakeup();
}

// Someone made work: if a P is idle and nobody is already looking for work,
// start a spinning M to look (Go's wakep: at most one spinner is woken per
// event; a spinner that finds work wakes the next, so the system ramps up
// without a thundering herd).
void wakep() {
  // With one P held by the caller there is nobody to wake: skip the fence
  // (most of a gosched round trip's wakep cost on one P).
  if (S.nprocs == 1) {
    M* m = getm();
    if (m != nullptr && m->p != nullptr) return;
  }
  // Dekker with findrunnable's delicate dance: we published work (a run
  // queue store) and now read nmspinning; a spinner going idle decrements
  // nmspinning and then reads the run queues. Without a full fence on both
  // sides each can miss the other's store (store-load reordering, even on
  // x86): the work sits in a queue while every other M sleeps (seen under
  // TSan: sync.mutex.starvation_mode_serves_waiter hung with main in a
  // busy P's queue, one P idle and no spinner).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (S.npidle.load(std::memory_order_acquire) == 0) return;
  int32_t zero = 0;
  if (S.nmspinning.load(std::memory_order_relaxed) != 0 ||
      !S.nmspinning.compare_exchange_strong(zero, 1, std::memory_order_acq_rel))
    return;
  startm(nullptr, true);
}

// An M stopped spinning because it found work: if it was the last spinner,
// wake another so newly arriving work is still picked up promptly.
void resetspinning(M* m) {
  m->spinning = false;
  if (S.nmspinning.fetch_sub(1, std::memory_order_acq_rel) - 1 < 0) fatal("resetspinning: negative nmspinning");
  wakep();
}

// Give p away: to a new M if there is work, else to the idle list.
void handoffp(P* p) {
  if (!runqempty(p) || S.runqsize.load(std::memory_order_relaxed) != 0) {
    startm(p, false);
    return;
  }
  int32_t zero = 0;
  if (S.nmspinning.load(std::memory_order_relaxed) + S.npidle.load(std::memory_order_relaxed) == 0 &&
      S.nmspinning.compare_exchange_strong(zero, 1)) {
    startm(p, true);
    return;
  }
  S.lock.lock();
  if (S.runqsize.load(std::memory_order_relaxed) != 0) {
    S.lock.unlock();
    startm(p, false);
    return;
  }
  pidleput_locked(p);
  checkdead_locked();
  S.lock.unlock();
  // Its timers now sit on an idle P: someone must sleep until them.
  if (const int64_t w = timers_next(p->timers)) timer_added(w);
}

// Park the M until startm hands it a P. False: woken without one (keel::run's
// thread, because main returned).
bool stopm(M* m) {
  S.coarse_now.store(os::nanotime(), std::memory_order_relaxed);
  S.lock.lock();
  // main_finished sets main_done and looks for keel::run's thread among the
  // idle Ms under this lock: checking here under it too means that thread
  // either is found and woken, or sees main_done now — never neither.
  if (m->is_m0 && S.main_done.load(std::memory_order_relaxed)) {
    S.lock.unlock();
    return false;
  }
  mput_locked(m);
  S.lock.unlock();
  m->park.sleep();
  m->park.clear();
  if (m->nextp == nullptr) return false;
  acquirep(m, m->nextp);
  m->nextp = nullptr;
  return true;
}

// The M's locked goroutine parked or yielded: it may run nothing else, so it
// gives its P away and sleeps until startlockedm hands it the G and a P.
void stoplockedm(M* m) {
  if (m->p != nullptr) handoffp(releasep(m));
  m->park.sleep();
  m->park.clear();
  acquirep(m, m->nextp);
  m->nextp = nullptr;
}

// gp is locked to another M: hand it our P and let it run gp.
void startlockedm(M* m, G* gp) {
  M* lm = gp->lockedm;
  P* p = releasep(m);
  lm->nextp = p;
  lm->park.wakeup();
}

uint32_t rand32() noexcept { return fastrand(); }

G* stealwork(M* m) {
  P* p = m->p;
  const uint32_t n = uint32_t(S.nprocs);
  for (int i = 0; i < 4; i++) {
    const bool steal_runnext = i == 3;  // last round: even a runnext G
    const uint32_t off = rand32() % n;
    for (uint32_t k = 0; k < n; k++) {
      P* victim = &S.allp[(off + k) % n];
      if (victim == p) continue;
      if (G* gp = runqsteal(p, victim, steal_runnext)) {
        S.nsteals.fetch_add(1, std::memory_order_relaxed);
        return gp;
      }
    }
  }
  return nullptr;
}

// Release the P and sleep: keel::run's main returned, so nothing runs until
// the next keel::run (or a plain thread's go()).
void pause_m(M* m) {
  if (m->spinning) {
    m->spinning = false;
    S.nmspinning.fetch_sub(1, std::memory_order_acq_rel);
  }
  S.lock.lock();
  pidleput_locked(releasep(m));
  S.lock.unlock();
}

// ------------------------------------------------------------------ timers
// The earliest deadline over every P's heap; 0 when no timer is armed.
int64_t earliest_timer() noexcept {
  int64_t best = 0;
  for (int32_t i = 0; i < S.nprocs; i++) {
    const int64_t w = timers_next(S.allp[i].timers);
    if (w != 0 && (best == 0 || w < best)) best = w;
  }
  return best;
}

// Run every P's due timers on this M (it holds a P).
void run_all_timers(int64_t now) noexcept {
  for (int32_t i = 0; i < S.nprocs; i++) {
    const int64_t w = timers_next(S.allp[i].timers);
    if (w != 0 && w <= now) timers_run(&S.allp[i], now);
  }
}

// Leave the timer sleeper's wakeup protocol in its resting state: no waker
// may deliver (timer_woken true) and the note holds no wakeup still to come.
void timer_sleep_settle() noexcept {
  // A waker that saw timer_woken false has committed to one wakeup: take it
  // (it arrives promptly), so no wakeup lands on a later sleep's note.
  if (S.timer_woken.exchange(true, std::memory_order_seq_cst)) S.timer_note.sleep();
}

// The M has given up its P and found nothing to run. If a timer is armed
// and no other M sleeps for timers, sleep until the earliest one (Go sleeps
// in netpoll(delay) for this), then take an idle P to run it on: true, with
// m->p set. False: sleep as an idle M instead (stopm).
//
// Wakers (timer_added) and this sleeper form a Dekker pair: the waker
// publishes its timer (TimerHeap::min_when), fences, then reads
// timer_woken / timer_sleep_until; the sleeper stores timer_woken = false,
// fences, then reads every heap's min_when. Either the sleeper sees the new
// timer, or the waker sees a sleeper it must wake. A deadline earlier than
// the one being slept for therefore never waits (Go #38860, #41699).
bool timer_sleep(M* m) {
  if (earliest_timer() == 0) return false;
  if (S.paused.load(std::memory_order_acquire) && !m->is_m0) return false;
  M* none = nullptr;
  if (!S.timer_sleeper.compare_exchange_strong(none, m, std::memory_order_seq_cst)) return false;
  for (;;) {
    S.timer_note.clear();
    S.timer_woken.store(false, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (m->is_m0 && S.main_done.load(std::memory_order_acquire)) break;
    if (S.paused.load(std::memory_order_acquire) && !m->is_m0) break;
    const int64_t until = earliest_timer();
    if (until == 0) break;
    S.timer_sleep_until.store(until, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // A waker that read the previous deadline may not have woken us for a
    // timer earlier than `until`: look once more.
    const int64_t again = earliest_timer();
    if (again != until) {
      timer_sleep_settle();
      continue;
    }
    const int64_t now = os::nanotime();
    if (until <= now) break;
    const bool woke = S.timer_note.sleep_for(until - now);
    if (!woke) timer_sleep_settle();
    // Woken (a new earliest timer) or timed out: look again.
  }
  timer_sleep_settle();
  S.timer_sleeper.store(nullptr, std::memory_order_seq_cst);
  if (m->is_m0 && S.main_done.load(std::memory_order_acquire)) return false;
  S.lock.lock();
  P* p = pidleget_locked();
  S.lock.unlock();
  if (p == nullptr) return false;  // every P is busy: their Ms run their timers
  acquirep(m, p);
  return true;
}

// Find a runnable G, blocking until there is one. Returns with m->p set, or
// null when keel::run's thread must return (main finished).
G* findrunnable(M* m) {
  for (;;) {
    if (m->is_m0 && S.main_done.load(std::memory_order_acquire)) return nullptr;
    if (S.paused.load(std::memory_order_acquire) && !m->is_m0) {
      pause_m(m);
      if (!stopm(m)) return nullptr;
      continue;
    }
    P* p = m->p;
    // This P's timers that are due (one atomic load when none are).
    if (const int64_t w = timers_next(p->timers); w != 0) {
      timers_run(p, os::nanotime());  // returns at once when none is due
      if (m->is_m0 && S.main_done.load(std::memory_order_acquire)) return nullptr;
    }
    // Every 61st schedule, the global queue first, so a steady stream of
    // local work cannot starve it (Go's fairness rule).
    if (p->schedtick % 61 == 0 && S.runqsize.load(std::memory_order_relaxed) > 0) {
      S.lock.lock();
      G* gp = globrunqget_locked(p, 1);
      S.lock.unlock();
      if (gp != nullptr) return gp;
    }
    if (G* gp = runqget(p)) return gp;
    if (S.runqsize.load(std::memory_order_relaxed) != 0) {
      S.lock.lock();
      G* gp = globrunqget_locked(p, 0);
      S.lock.unlock();
      if (gp != nullptr) return gp;
    }
    // Steal, but bound the spinners to half the busy Ps: beyond that they
    // burn CPU for nothing.
    const int32_t busy = S.nprocs - S.npidle.load(std::memory_order_relaxed);
    if (m->spinning || 2 * S.nmspinning.load(std::memory_order_relaxed) < busy) {
      if (!m->spinning) {
        m->spinning = true;
        S.nmspinning.fetch_add(1, std::memory_order_acq_rel);
      }
      if (G* gp = stealwork(m)) return gp;
    }
    // Other Ps' overdue timers (an idle P's timers have nobody else; a busy
    // one's may sit behind a long-running goroutine). What they ready lands
    // on this P.
    if (earliest_timer() != 0) {
      run_all_timers(os::nanotime());
      if (G* gp = runqget(p)) return gp;
    }
    // Nothing: give the P back and sleep.
    S.lock.lock();
    if (S.runqsize.load(std::memory_order_relaxed) != 0) {
      G* gp = globrunqget_locked(p, 0);
      S.lock.unlock();
      return gp;
    }
    releasep(m);
    pidleput_locked(p);
    S.lock.unlock();
    // The delicate dance: a spinner must drop its spinning state *before*
    // the final look at every queue. Work submitted in between saw
    // nmspinning != 0 and did not wake anyone, so if we miss it here nobody
    // runs it.
    if (m->spinning) {
      m->spinning = false;
      if (S.nmspinning.fetch_sub(1, std::memory_order_acq_rel) - 1 < 0) fatal("findrunnable: negative nmspinning");
      std::atomic_thread_fence(std::memory_order_seq_cst);  // the other half of wakep's fence
      // The global queue too: goready and go() from a plain thread (no P)
      // put there and call wakep, which wakes nobody while we spin. Under
      // the lock: either their put is visible here, or their wakep comes
      // after our decrement and starts an M.
      S.lock.lock();
      bool work = S.runqsize.load(std::memory_order_relaxed) != 0;
      S.lock.unlock();
      for (int32_t i = 0; i < S.nprocs && !work; i++) work = !runqempty(&S.allp[i]);
      if (work) {
        S.lock.lock();
        P* p2 = pidleget_locked();
        S.lock.unlock();
        if (p2 != nullptr) {
          acquirep(m, p2);
          m->spinning = true;
          S.nmspinning.fetch_add(1, std::memory_order_acq_rel);
        }
      }
      if (m->p != nullptr) continue;
    }
    // Sleep until the earliest timer if nobody else does, else as idle.
    if (timer_sleep(m)) continue;
    if (!stopm(m)) return nullptr;
  }
}

// Free list of dead Gs (their stacks stay mapped: the next go() reuses them).
//
// How many keep their stacks: as many as were alive at once in the last
// second or two, and at least kGfreeWithStacks. A program that just ran 50k
// goroutines is likely to run 50k again (a storm of spawns reusing warm
// stacks costs no page faults and no discards — measured: the timer storm's
// CPU fell from 2x Go's to 1.1x); one that peaked earlier gives the stacks
// of Gs that die now back to the pool, which keeps a few warm and scrubs
// the rest. When keel::run's main returns, the list is trimmed to
// kGfreeWithStacks at once (trim_gfree), so a finished burst of 10^6
// goroutines does not stay resident. (Go keeps freed stacks until its
// scavenger returns them, minutes later; keel has no scavenger yet.)
constexpr int32_t kGfreeWithStacks = 1024;

void note_live(int64_t n) noexcept {
  int64_t peak = S.gpeak.load(std::memory_order_relaxed);
  while (n > peak && !S.gpeak.compare_exchange_weak(peak, n, std::memory_order_relaxed)) {
  }
}

// Under S.lock: how many dead Gs may keep their stacks now.
int64_t gfree_stack_cap_locked(int64_t now) noexcept {
  if (now - S.gpeak_epoch > 1'000'000'000) {
    S.gpeak_prev = S.gpeak.load(std::memory_order_relaxed);
    S.gpeak.store(S.ngoroutines.load(std::memory_order_relaxed), std::memory_order_relaxed);
    S.gpeak_epoch = now;
  }
  const int64_t peak = std::max(S.gpeak.load(std::memory_order_relaxed), S.gpeak_prev);
  return std::max<int64_t>(kGfreeWithStacks, peak);
}

void gfput(P* p, G* gp) {
  gp->schedlink = p->gfree;
  p->gfree = gp;
  if (++p->gfreecnt >= 64) {
    // Half to the global list. Past kGfreeWithStacks dead Gs there, the
    // ones that move give their stacks back to the pool (which keeps some
    // warm and scrubs the rest): after a peak of 10^6 goroutines the dead
    // ones must not keep 10^6 stacks resident.
    G* batch = nullptr;
    int32_t n = 0;
    while (p->gfreecnt > 32) {
      G* g1 = p->gfree;
      p->gfree = g1->schedlink;
      p->gfreecnt--;
      g1->schedlink = batch;
      batch = g1;
      n++;
    }
    const int64_t now = os::nanotime();
    S.lock.lock();
    const int64_t cap = gfree_stack_cap_locked(now);
    S.lock.unlock();
    if (S.ngfree.load(std::memory_order_relaxed) + n > cap) {
      for (G* g1 = batch; g1 != nullptr; g1 = g1->schedlink) {
        if (!g1->fiber.stack().valid()) continue;
        Stack st = g1->fiber.release_stack();
        stack_put(&p->stacks, &st);
      }
    }
    S.lock.lock();
    while (batch != nullptr) {
      G* g1 = batch;
      batch = g1->schedlink;
      g1->schedlink = S.gfree;
      S.gfree = g1;
      S.ngfree++;
    }
    S.lock.unlock();
  }
}

// keel::run's main returned: dead Gs beyond kGfreeWithStacks on the global
// list give their stacks back now, and the peak is forgotten (Gs dying from
// now on keep at most kGfreeWithStacks stacks). See gfput.
void trim_gfree(P* p) {
  S.lock.lock();
  S.gpeak.store(0, std::memory_order_relaxed);
  S.gpeak_prev = 0;
  S.gpeak_epoch = os::nanotime();
  G* list = S.gfree;
  const int32_t n = S.ngfree.load(std::memory_order_relaxed);
  S.gfree = nullptr;
  S.ngfree.store(0, std::memory_order_relaxed);
  S.lock.unlock();
  if (list == nullptr) return;
  G* tail = nullptr;
  int32_t i = 0;
  for (G* g1 = list; g1 != nullptr; tail = g1, g1 = g1->schedlink, i++) {
    if (i < kGfreeWithStacks || !g1->fiber.stack().valid()) continue;
    Stack st = g1->fiber.release_stack();
    stack_put(p != nullptr ? &p->stacks : nullptr, &st);
  }
  S.lock.lock();
  tail->schedlink = S.gfree;
  S.gfree = list;
  S.ngfree.fetch_add(n, std::memory_order_relaxed);
  S.lock.unlock();
}

G* gfget(P* p, size_t stack_size) {
  if (p != nullptr && p->gfree == nullptr && S.ngfree != 0) {
    S.lock.lock();
    while (p->gfreecnt < 32 && S.gfree != nullptr) {
      G* g1 = S.gfree;
      S.gfree = g1->schedlink;
      S.ngfree--;
      g1->schedlink = p->gfree;
      p->gfree = g1;
      p->gfreecnt++;
    }
    S.lock.unlock();
  }
  if (p != nullptr) {
    // Only a G whose stack has the size asked for.
    G** link = &p->gfree;
    for (int i = 0; *link != nullptr && i < 4; i++, link = &(*link)->schedlink) {
      G* gp = *link;
      if (gp->stack_size == stack_size || !gp->fiber.stack().valid()) {
        *link = gp->schedlink;
        p->gfreecnt--;
        return gp;
      }
    }
    return nullptr;
  }
  S.lock.lock();
  G** link = &S.gfree;
  for (int i = 0; *link != nullptr && i < 4; i++, link = &(*link)->schedlink) {
    G* gp = *link;
    if (gp->stack_size == stack_size || !gp->fiber.stack().valid()) {
      *link = gp->schedlink;
      S.ngfree--;
      S.lock.unlock();
      return gp;
    }
  }
  S.lock.unlock();
  return nullptr;
}

void allgadd(G* gp) {
  S.allglock.lock();
  gp->alllink = S.allgs;
  S.allgs = gp;
  S.allglock.unlock();
}

void ensure_started() {
  if (S.started.load(std::memory_order_acquire)) return;
#if defined(KEEL_TSAN_ENABLED)
  {
    os::Thread t;
    if (os::thread_start(&t, [](void*) {}, nullptr) == os::Error::ok) os::thread_join(t);
    const int64_t n = os::thread_count();
    if (n > 1) g_sanitizer_threads.store(n - 1, std::memory_order_relaxed);
  }
#endif
  S.lock.lock();
  if (!S.started.load(std::memory_order_relaxed)) {
    const int n = default_procs();
    S.coarse_now.store(os::nanotime(), std::memory_order_relaxed);
    S.allp = new P[size_t(n)];
    S.nprocs = n;
    for (int i = n - 1; i >= 0; i--) {
      S.allp[i].id = i;
      pidleput_locked(&S.allp[i]);
    }
    S.started.store(true, std::memory_order_release);
  }
  S.lock.unlock();
}

// -------------------------------------------------------- goroutine life
// The exception goexit throws. No user type derives from it; if a catch
// (...) swallows it, its destructor runs without `delivered` and says so.
struct GoexitUnwind {
  uint64_t id;
  bool delivered = false;
  explicit GoexitUnwind(uint64_t i) : id(i) {}
  GoexitUnwind(const GoexitUnwind&) = delete;
  ~GoexitUnwind() {
    if (!delivered) {
      std::string s = "goroutine ";
      append_u64(&s, id);
      s += ": the unwind of keel::goexit was swallowed by a catch (...) that did not rethrow";
      fatal(s.c_str());
    }
  }
};

[[noreturn]] void uncaught(G* gp, const char* what) {
  std::string s = "uncaught exception in goroutine ";
  append_u64(&s, gp->id);
  s += ": ";
  s += what != nullptr ? what : "(an exception not derived from std::exception)";
  s += "\n";
  s += creation_site(gp);
  fatal(s.c_str());
}

void run_body(G* gp) {
  try {
    gp->fn.run(gp->fn.arg);
  } catch (GoexitUnwind& u) {
    u.delivered = true;
  } catch (const std::exception& e) {
    uncaught(gp, e.what());
  } catch (...) {
    uncaught(gp, nullptr);
  }
}

void main_finished(G* gp) {
  S.lock.lock();
  if (gp->goexiting) {
    // Go: main calling Goexit leaves the other goroutines running; when
    // they are all gone, that is a deadlock.
    S.main_goexited = true;
    S.lock.unlock();
    return;
  }
  S.paused.store(true, std::memory_order_release);
  S.main_done.store(true, std::memory_order_release);
  S.lock.unlock();
  trim_gfree(getm()->p);
  S.lock.lock();
  // keel::run's thread may be asleep among the idle Ms: take it out and wake
  // it without a P so it returns.
  M* m0 = S.m0;
  for (M** link = &S.midle; *link != nullptr; link = &(*link)->schedlink) {
    if (*link == m0) {
      *link = m0->schedlink;
      S.nmidle--;
      m0->nextp = nullptr;
      m0->park.wakeup();
      break;
    }
  }
  S.lock.unlock();
  // ... or sleeping until a timer: wake it (timer_sleep re-checks main_done).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (S.timer_sleeper.load(std::memory_order_seq_cst) == m0 && !S.timer_woken.exchange(true, std::memory_order_seq_cst))
    S.timer_note.wakeup();
}

G* after_switch(M* m);

// First thing wherever a goroutine resumes (or starts): finish what the G
// that switched away on this M asked for. After a switch through g0, g0 has
// already done it and there is nothing left.
void finish_resume() {
  M* m = getm();
  if (m->action != M::Action::none) after_switch(m);
}

// The next G for a direct switch from the running G, taken from this P's
// own queue — or null when the switch must go through g0: a locked G on
// either side, keel::run's main ending, the scheduler pausing, nothing
// queued here, or time for the global queue's turn (every 61st schedule).
G* next_local(M* m) {
  if (m->lockedg != nullptr || S.paused.load(std::memory_order_relaxed)) return nullptr;
  P* p = m->p;
  // Every 61st schedule through g0: the global queue's turn, and this P's
  // timers get looked at even while its goroutines switch among themselves.
  if ((p->schedtick + 1) % 61 == 0 &&
      (S.runqsize.load(std::memory_order_relaxed) != 0 || timers_next(p->timers) != 0))
    return nullptr;
  G* next = runqget(p);
  if (next != nullptr && next->lockedm != nullptr) {
    runqput(p, next, true);  // startlockedm is g0's job
    return nullptr;
  }
  return next;
}

// Switch from gp straight to next, without the round trip through g0 (one
// context switch instead of two). m->action says what gp wants; next does it.
void switch_direct(M* m, G* gp, G* next) {
  m->curg = next;
  next->m = m;
  next->status.store(GStatus::running, std::memory_order_relaxed);
  m->p->schedtick++;
  fiber_switch(&gp->fiber, &next->fiber);
  finish_resume();  // resumed, maybe on another M
}

void goentry(void* arg) {
  G* gp = static_cast<G*>(arg);
  finish_resume();
  run_body(gp);
  gp->fn.destroy(gp->fn.arg);
  gp->fn = detail::GoFn{};
  M* m;
  if (gp->is_main) {
    main_finished(gp);
    m = getm();
  } else {
    m = getm();
    if (G* next = next_local(m)) {
      m->action = M::Action::exit;
      m->action_g = gp;
      m->curg = next;
      next->m = m;
      next->status.store(GStatus::running, std::memory_order_relaxed);
      m->p->schedtick++;
      fiber_exit(&gp->fiber, &next->fiber);
    }
  }
  // keel::run's main always ends through g0: its thread may have to return.
  m->action = M::Action::exit;
  m->action_g = gp;
  fiber_exit(&gp->fiber, &m->g0);
}

// Switch from the running goroutine to its M's scheduler (Go's mcall).
void mcall(M::Action a) {
  M* m = getm();
  G* gp = m->curg;
  m->action = a;
  m->action_g = gp;
  fiber_switch(&gp->fiber, &m->g0);
  finish_resume();  // resumed, maybe on another M: `m` is stale now
}

void gdestroy(M* m, G* gp) {
  const bool is_main = gp->is_main;
  if (!is_main) gp->status.store(GStatus::dead, std::memory_order_release);
  gp->m = nullptr;
  if (gp->lockedm != nullptr) {
    // A goroutine that exits while locked: its thread simply goes back to
    // the pool (Go ends the thread; keel's Ms carry no per-goroutine state
    // worth discarding — see docs/SCHEDULER.md).
    gp->lockedm = nullptr;
    gp->lockcount = 0;
    m->lockedg = nullptr;
  }
  S.ngoroutines.fetch_sub(1, std::memory_order_relaxed);
  if (is_main) {
    // Not to the free list: keel::run's thread frees the main G's stack
    // (run_main) once it sees this store, which comes after the last use of
    // that stack and of gp.
    gp->status.store(GStatus::dead, std::memory_order_release);
    return;
  }
  gfput(m->p, gp);
}

void execute(M* m, G* gp) {
  gp->m = m;
  m->curg = gp;
  gp->status.store(GStatus::running, std::memory_order_relaxed);
  m->p->schedtick++;
  fiber_switch(&m->g0, &gp->fiber);
}

// Do what the G that switched away from m asked for (m->action on
// m->action_g). On g0 (m->curg still that G) it returns a G to run at once
// when a park is declined; after a direct switch the declined G goes to
// runnext instead, since another G is running already.
G* after_switch(M* m) {
  const M::Action a = m->action;
  G* gp = m->action_g;
  m->action = M::Action::none;
  m->action_g = nullptr;
  const bool on_g0 = m->curg == gp;
  if (on_g0) m->curg = nullptr;
  switch (a) {
    case M::Action::park: {
      gp->m = nullptr;
      gp->status.store(GStatus::waiting, std::memory_order_release);
      if (gp->parkfn != nullptr && !gp->parkfn(gp, gp->parkarg)) {
        GStatus w = GStatus::waiting;
        gp->status.compare_exchange_strong(w, GStatus::runnable, std::memory_order_acq_rel);
        if (on_g0) return gp;
        // After a direct switch another G is running here and may not
        // yield for a long time: queue gp and let an idle P take it (without
        // the wakep it sat behind a busy goroutine while a P idled — seen
        // as a hang of sync.mutex.starvation_mode_serves_waiter under TSan).
        runqput(m->p, gp, true);
        wakep();
      }
      return nullptr;
    }
    case M::Action::gosched:
      gp->m = nullptr;
      gp->status.store(GStatus::runnable, std::memory_order_release);
      S.lock.lock();
      globrunqput_locked(gp);
      S.lock.unlock();
      return nullptr;
    case M::Action::yield:
      gp->m = nullptr;
      gp->status.store(GStatus::runnable, std::memory_order_release);
      runqput(m->p, gp, false);
      if (!on_g0) wakep();  // as above: behind a running G, an idle P should take it
      return nullptr;
    case M::Action::exit:
      gdestroy(m, gp);
      return nullptr;
    case M::Action::none:
      break;
  }
  fatal("a goroutine switched away without saying why");
}

void schedule(M* m) {
  G* next = nullptr;
  for (;;) {
    G* gp = next;
    next = nullptr;
    if (gp == nullptr) {
      if (m->lockedg != nullptr) {
        // Our locked G parked or yielded: run nothing else until it is back.
        stoplockedm(m);
        gp = m->lockedg;
      } else {
        gp = findrunnable(m);
        if (gp == nullptr) return;  // keel::run's thread: main returned
        if (m->spinning) resetspinning(m);
        if (gp->lockedm != nullptr && gp->lockedm != m) {
          startlockedm(m, gp);
          if (!stopm(m)) return;
          continue;
        }
      }
    }
    execute(m, gp);
    next = after_switch(m);
  }
}

// --------------------------------------------------------- deadlock check
void dump_goroutines(std::string* out) {
  const int64_t now = os::nanotime();
  S.allglock.lock();
  std::vector<G*> gs;
  for (G* gp = S.allgs; gp != nullptr; gp = gp->alllink) gs.push_back(gp);
  S.allglock.unlock();
  // By id, as Go lists them: main first.
  std::sort(gs.begin(), gs.end(), [](const G* a, const G* b) { return a->id < b->id; });
  for (G* gp : gs) {
    const GStatus st = gp->status.load(std::memory_order_acquire);
    if (st == GStatus::dead || st == GStatus::idle) continue;
    *out += "goroutine ";
    append_u64(out, gp->id);
    *out += " [";
    *out += gstatus_string(st);
    if (st == GStatus::waiting) {
      *out += ", ";
      *out += wait_reason_string(gp->waitreason);
      *out += ", ";
      append_u64(out, uint64_t(now - gp->waitsince) / 1000000);
      *out += " ms";
    }
    *out += "] created at ";
    *out += gp->file;
    if (gp->line != 0) {
      *out += ":";
      append_u64(out, gp->line);
    }
    *out += "\n";
  }
}

// ThreadSanitizer runs background threads of its own: one started at the
// first pthread_create of the process, and after a fork another may be
// running beside the inherited bookkeeping (measured: two in a death test's
// child). Under TSan, ensure_started forces them into existence and counts
// every thread other than its caller as TSan's; elsewhere there are none.
int64_t sanitizer_helper_threads() noexcept { return g_sanitizer_threads.load(std::memory_order_relaxed); }

// Threads in the process that the runtime cannot account for: not an M and
// not a plain thread parked in gopark. Any of them might wake a goroutine
// (say, unlock a keel::Mutex it took on the fast path, which registers
// nothing), so while one exists there is no deadlock to report. -1: the OS
// cannot count threads.
int64_t unaccounted_threads() noexcept {
  const int64_t n = os::thread_count();
  if (n < 0) return -1;
  int64_t known = S.mcount.load(std::memory_order_relaxed) + (S.run_active ? 1 : 0) +
                  S.nthreads_blocked.load(std::memory_order_acquire) + sanitizer_helper_threads();
  return n - known;
}

// Called with sched.lock held whenever an M or a P goes idle and when a plain
// thread parks (Go's checkdead). Reports only a certain deadlock: every P
// idle, no runnable G anywhere, and every thread accounted for.
void checkdead_locked() noexcept {
  if (!S.started.load(std::memory_order_relaxed) || S.paused.load(std::memory_order_relaxed)) return;
  if (S.npidle.load(std::memory_order_relaxed) != S.nprocs) return;
  if (S.runqsize.load(std::memory_order_relaxed) != 0) return;
  for (int32_t i = 0; i < S.nprocs; i++)
    if (!runqempty(&S.allp[i])) return;
  // An armed timer will wake someone (Go's checkdead looks at timers too).
  if (earliest_timer() != 0) return;
  const int64_t ngo = S.ngoroutines.load(std::memory_order_relaxed);
  const int32_t nthr = S.nthreads_blocked.load(std::memory_order_acquire);
  if (ngo == 0 && nthr == 0 && !S.main_goexited) return;  // nothing waits: idle, not dead
  if (unaccounted_threads() != 0) return;
  std::string s;
  if (S.main_goexited && ngo == 0)
    s = "fatal error: no goroutines (main called keel::goexit) - deadlock!\n";
  else
    s = "fatal error: all goroutines are asleep - deadlock!\n\n";
  dump_goroutines(&s);
  if (nthr != 0) {
    s += "plain threads parked in keel: ";
    append_u64(&s, uint64_t(nthr));
    s += "\n";
  }
  os::write_err(s.data(), s.size());
  os::abort_process();
}

}  // namespace

// ================================================================= park.h
const char* wait_reason_string(WaitReason r) noexcept {
  switch (r) {
    case WaitReason::none: return "none";
    case WaitReason::sema: return "semacquire";
    case WaitReason::mutex: return "sync.Mutex.Lock";
    case WaitReason::rwmutex_read: return "sync.RWMutex.RLock";
    case WaitReason::rwmutex_write: return "sync.RWMutex.Lock";
    case WaitReason::waitgroup: return "sync.WaitGroup.Wait";
    case WaitReason::cond: return "sync.Cond.Wait";
    case WaitReason::once: return "sync.Once.Do";
    case WaitReason::chan_send: return "chan send";
    case WaitReason::chan_recv: return "chan receive";
    case WaitReason::chan_send_nil: return "chan send (nil chan)";
    case WaitReason::chan_recv_nil: return "chan receive (nil chan)";
    case WaitReason::select: return "select";
    case WaitReason::select_no_cases: return "select (no cases)";
    case WaitReason::sleep: return "sleep";
    case WaitReason::io: return "IO wait";
    case WaitReason::lockedm: return "locked to thread";
    case WaitReason::park: return "park";
  }
  return "?";
}

G* getg() noexcept {
  M* m = getm();
  if (m != nullptr && m->curg != nullptr) return m->curg;
  return thread_g();
}

bool on_goroutine() noexcept {
  M* m = getm();
  return m != nullptr && m->curg != nullptr;
}

uint64_t goid(const G* gp) noexcept { return gp->id; }

void gopark(UnlockFn unlockf, void* arg, WaitReason reason) noexcept {
  M* m = getm();
  if (m != nullptr && m->curg != nullptr) {
    G* gp = m->curg;
    gp->waitreason = reason;
    // A clock read costs as much as a direct switch: take the coarse clock
    // (advanced whenever an M goes idle or parks through g0). The deadlock
    // dump, the only reader, runs when every M is idle, so it is exact there.
    gp->waitsince = S.coarse_now.load(std::memory_order_relaxed);
    gp->parkfn = unlockf;
    gp->parkarg = arg;
    if (G* next = next_local(m)) {
      m->action = M::Action::park;
      m->action_g = gp;
      switch_direct(m, gp, next);
    } else {
      S.coarse_now.store(os::nanotime(), std::memory_order_relaxed);
      gp->waitsince = S.coarse_now.load(std::memory_order_relaxed);
      mcall(M::Action::park);
    }
    return;
  }
  // A plain thread: sleep on its note. Counted as blocked *before* unlockf
  // publishes it, and uncounted by the waker *before* the wakeup, so the
  // deadlock check never sees a thread that can still act as parked.
  G* gp = thread_g();
  gp->waitreason = reason;
  gp->waitsince = os::nanotime();
  gp->note.clear();
  S.nthreads_blocked.fetch_add(1, std::memory_order_acq_rel);
  gp->status.store(GStatus::waiting, std::memory_order_release);
  if (unlockf != nullptr && !unlockf(gp, arg)) {
    gp->status.store(GStatus::running, std::memory_order_relaxed);
    S.nthreads_blocked.fetch_sub(1, std::memory_order_acq_rel);
    return;
  }
  if (S.started.load(std::memory_order_acquire)) {
    S.lock.lock();
    checkdead_locked();
    S.lock.unlock();
  }
  gp->note.sleep();
}

void goready(G* gp) noexcept {
  GStatus w = GStatus::waiting;
  if (!gp->status.compare_exchange_strong(w, GStatus::runnable, std::memory_order_acq_rel)) {
    std::string s = "goready: goroutine ";
    append_u64(&s, gp->id);
    s += " is not waiting (";
    s += gstatus_string(w);
    s += ")";
    fatal(s.c_str());
  }
  if (gp->is_thread) {
    gp->status.store(GStatus::running, std::memory_order_relaxed);
    S.nthreads_blocked.fetch_sub(1, std::memory_order_acq_rel);
    gp->note.wakeup();
    return;
  }
  M* m = getm();
  if (m != nullptr && m->p != nullptr) {
    runqput(m->p, gp, true);
  } else {
    S.lock.lock();
    globrunqput_locked(gp);
    S.lock.unlock();
  }
  wakep();
}

// Yield to the next G of this P directly when there is one; the caller goes
// to the tail of the local queue.
bool yield_direct() {
  M* m = getm();
  if (m == nullptr || m->curg == nullptr) return false;
  G* gp = m->curg;
  G* next = next_local(m);
  if (next == nullptr) return false;
  m->action = M::Action::yield;
  m->action_g = gp;
  switch_direct(m, gp, next);
  return true;
}

void goyield() noexcept {
  if (!on_goroutine()) os::thread_yield();
  else if (!yield_direct()) mcall(M::Action::yield);
}

bool can_spin(int iter) noexcept {
  if (iter >= 4 || ncpu() <= 1) return false;
  M* m = getm();
  if (m == nullptr || m->p == nullptr) return true;  // a plain thread: the CPU count is all we know
  if (S.nprocs <= S.npidle.load(std::memory_order_relaxed) + S.nmspinning.load(std::memory_order_relaxed) + 1)
    return false;
  return runqempty(m->p);
}

void procyield(int n) noexcept {
  for (int i = 0; i < n; i++) cpu_relax();
}

uint32_t fastrand() noexcept {
  uint64_t* s = rand_state();
  uint64_t x = *s;
  if (x == 0) x = (os::thread_id() * 0x9e3779b97f4a7c15ull) ^ uint64_t(os::nanotime()) ^ 1;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return uint32_t((x * 2685821657736338717ull) >> 32);
}

P* timer_home() noexcept {
  M* m = getm();
  if (m != nullptr && m->p != nullptr) return m->p;
  // A plain thread (or an M between Ps): start the runtime if needed, and
  // resume one paused by a finished keel::run, as go() does — otherwise
  // nothing would ever run the timer.
  ensure_started();
  if (S.paused.load(std::memory_order_acquire)) {
    S.lock.lock();
    if (!S.run_active) S.paused.store(false, std::memory_order_release);
    S.lock.unlock();
  }
  return &S.allp[fastrand() % uint32_t(S.nprocs)];
}

void timer_added(int64_t when) noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // Dekker with timer_sleep
  if (S.timer_sleeper.load(std::memory_order_seq_cst) != nullptr) {
    if (when < S.timer_sleep_until.load(std::memory_order_seq_cst) &&
        !S.timer_woken.load(std::memory_order_relaxed) &&
        !S.timer_woken.exchange(true, std::memory_order_seq_cst))
      S.timer_note.wakeup();
    return;
  }
  // Nobody sleeps for timers: get an M going (if a P is idle) that will
  // run it or sleep until it; busy Ps look at their timers as they schedule.
  wakep();
}

void goready_timer(G* gp) noexcept {
  M* m = getm();
  if (gp->is_thread || m == nullptr || m->p == nullptr) {
    goready(gp);
    return;
  }
  GStatus w = GStatus::waiting;
  if (!gp->status.compare_exchange_strong(w, GStatus::runnable, std::memory_order_acq_rel))
    fatal("goready_timer: the goroutine is not waiting");
  runqput(m->p, gp, false);
  wakep();
}

SchedStats sched_stats() noexcept {
  SchedStats st;
  S.lock.lock();
  st.procs = S.nprocs;
  st.idle_procs = S.npidle.load(std::memory_order_relaxed);
  st.idle_ms = S.nmidle;
  S.lock.unlock();
  st.ms = S.mcount.load(std::memory_order_relaxed);
  st.steals = S.nsteals.load(std::memory_order_relaxed);
  st.blocked_threads = S.nthreads_blocked.load(std::memory_order_relaxed);
  return st;
}

}  // namespace keel::core

// ============================================================= keel/go.h
namespace keel {
using core::G;
using core::M;
using core::S;

namespace detail {

GoSlot go_prepare(size_t size, size_t align, const GoOptions& opt) {
  core::ensure_started();
  M* m = core::getm();
  core::P* p = m != nullptr ? m->p : nullptr;
  const uint64_t id = S.goidgen.fetch_add(1, std::memory_order_relaxed) + 1;
  G* gp = core::gfget(p, opt.stack_size);
  const bool fresh = gp == nullptr;
  if (fresh) gp = new G;
  if (gp->fiber.stack().valid()) {
    gp->fiber.restart(&core::goentry, gp, id);
  } else {
    core::Stack st;
    if (!core::stack_get(p != nullptr ? &p->stacks : nullptr, opt.stack_size, &st) ||
        !gp->fiber.create_on(st, &core::goentry, gp, id))
      core::fatal("go: out of memory allocating a goroutine stack");
  }
  if (fresh) core::allgadd(gp);
  gp->id = id;
  gp->stack_size = opt.stack_size;
  GoSlot slot{gp->fnbuf, gp, false, align};
  if (size > kInlineFn || align > alignof(std::max_align_t) || align > 16) {
    slot.storage = ::operator new(size, std::align_val_t(align));
    slot.heap = true;
  }
  return slot;
}

void go_abort(GoSlot slot) noexcept {
  G* gp = static_cast<G*>(slot.g);
  if (slot.heap) ::operator delete(slot.storage, std::align_val_t(slot.align));
  gp->status.store(core::GStatus::dead, std::memory_order_release);
  M* m = core::getm();
  if (m != nullptr && m->p != nullptr) {
    core::gfput(m->p, gp);
  } else {
    S.lock.lock();
    gp->schedlink = S.gfree;
    S.gfree = gp;
    S.ngfree++;
    S.lock.unlock();
  }
}

void go_commit(GoSlot slot, GoFn fn, const char* file, uint32_t line) noexcept {
  G* gp = static_cast<G*>(slot.g);
  gp->fn = fn;
  gp->file = file;
  gp->line = line;
  gp->fiber.set_site(file, line);
  gp->lockedm = nullptr;
  gp->lockcount = 0;
  gp->waitreason = core::WaitReason::none;
  gp->goexiting = false;
  gp->is_main = false;
  core::note_live(S.ngoroutines.fetch_add(1, std::memory_order_relaxed) + 1);
  gp->status.store(core::GStatus::runnable, std::memory_order_release);
  // The callable's constructor may have parked: ask again which P we are on.
  M* m = core::getm();
  core::P* p = m != nullptr ? m->p : nullptr;
  if (p != nullptr) {
    core::runqput(p, gp, true);
  } else {
    S.lock.lock();
    core::globrunqput_locked(gp);
    // A plain thread using goroutines resumes a runtime paused by a
    // finished keel::run.
    if (!S.run_active) S.paused.store(false, std::memory_order_release);
    S.lock.unlock();
  }
  core::wakep();
}

int run_main(GoFn fn, int* result, const char* file, uint32_t line) {
  (void)result;
  if (core::on_goroutine()) core::fatal("keel::run called from a goroutine");
  core::ensure_started();
  M* m = new M;
  m->is_m0 = true;
  m->id = S.midgen.fetch_add(1, std::memory_order_relaxed) + 1;
  m->g0.init_thread(0);
  core::setm(m);

  const uint64_t id = S.goidgen.fetch_add(1, std::memory_order_relaxed) + 1;
  G* gp = new G;
  if (!gp->fiber.create(&core::goentry, gp, id, 0)) core::fatal("keel::run: out of memory allocating a stack");
  core::allgadd(gp);
  gp->id = id;
  gp->fn = fn;
  gp->file = file;
  gp->line = line;
  gp->fiber.set_site(file, line);
  gp->is_main = true;
  S.ngoroutines.fetch_add(1, std::memory_order_relaxed);
  gp->status.store(core::GStatus::runnable, std::memory_order_release);

  S.lock.lock();
  if (S.run_active) core::fatal("keel::run called while another keel::run is active");
  S.run_active = true;
  S.m0 = m;
  S.main_done.store(false, std::memory_order_relaxed);
  S.main_goexited = false;
  S.paused.store(false, std::memory_order_release);
  core::P* p = core::pidleget_locked();
  if (p != nullptr) {
    core::acquirep(m, p);
    core::runqput(p, gp, true);
  } else {
    core::globrunqput_locked(gp);
  }
  S.lock.unlock();
  // Goroutines left runnable by an earlier keel::run resume too.
  core::wakep();
  if (p != nullptr || core::stopm(m)) core::schedule(m);

  S.lock.lock();
  if (m->p != nullptr) core::pidleput_locked(core::releasep(m));
  S.run_active = false;
  S.m0 = nullptr;
  S.lock.unlock();
  core::setm(nullptr);
  // main may have finished on another M, whose main_finished woke us while
  // that M was still on the main G's stack: wait until it has switched off
  // it (gdestroy marks the G dead last) before freeing the stack. The G
  // stays in allgs as dead.
  while (gp->status.load(std::memory_order_acquire) != core::GStatus::dead) os::thread_yield();
  gp->fiber.destroy();
  delete m;
  return 0;
}

}  // namespace detail

// With another G queued on this P, switch to it directly and queue the
// caller at the local tail; otherwise go through g0 and the global queue as
// Go does (so a P with nothing local still lets global work in).
void gosched() noexcept {
  if (!core::on_goroutine()) os::thread_yield();
  else if (!core::yield_direct()) core::mcall(M::Action::gosched);
}

void goexit() {
  M* m = core::getm();
  if (m == nullptr || m->curg == nullptr) core::fatal("keel::goexit called on a plain thread (not a goroutine)");
  G* gp = m->curg;
  gp->goexiting = true;
  throw core::GoexitUnwind(gp->id);
}

void lock_os_thread() noexcept {
  M* m = core::getm();
  if (m == nullptr || m->curg == nullptr) return;
  G* gp = m->curg;
  if (gp->lockcount++ == 0) {
    gp->lockedm = m;
    m->lockedg = gp;
  }
}

void unlock_os_thread() noexcept {
  M* m = core::getm();
  if (m == nullptr || m->curg == nullptr) return;
  G* gp = m->curg;
  if (gp->lockcount == 0) return;  // Go: unlocking an unlocked thread is a no-op
  if (--gp->lockcount == 0) {
    gp->lockedm = nullptr;
    m->lockedg = nullptr;
  }
}

int64_t num_goroutine() noexcept { return S.ngoroutines.load(std::memory_order_relaxed); }

uint64_t goroutine_id() noexcept {
  M* m = core::getm();
  return m != nullptr && m->curg != nullptr ? m->curg->id : 0;
}

int maxprocs() noexcept {
  if (S.started.load(std::memory_order_acquire)) return S.nprocs;
  return core::default_procs();
}

bool set_maxprocs(int n) noexcept {
  if (n < 1 || S.started.load(std::memory_order_acquire)) return false;
  core::g_requested_procs.store(n, std::memory_order_relaxed);
  return !S.started.load(std::memory_order_acquire);
}

void set_default_stack_size(size_t bytes) noexcept { core::set_default_stack_size(bytes); }

}  // namespace keel
