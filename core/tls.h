// Thread-locals with destructors, and the toolchain that breaks them.
//
// mingw-w64 runs a thread_local's destructor at thread exit *after* emutls
// has freed the thread's TLS storage, in an order winpthreads leaves
// unspecified (GCC PR 80816, mingw-w64 bug 527): the destructor then reads
// freed memory. Seen here as heap corruption under Wine in 6 of 8 runs of
// time.timer.plain_thread_timer_wakes_sleeping_scheduler (a std::thread that
// parked in keel, then exited: ~ThreadGHolder deleted a pointer read from
// freed storage). Where KEEL_TLS_DTORS is 0, keel's per-thread state has no
// destructor: a plain thread that used keel's blocking primitives leaks its
// thread G (and, in the sema flavour, its semaphore) when it exits. MSVC and
// every other target run thread_local destructors correctly.
#pragma once

#if defined(__MINGW32__)
#define KEEL_TLS_DTORS 0
#else
#define KEEL_TLS_DTORS 1
#endif
