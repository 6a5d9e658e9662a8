// ThreadSanitizer cannot see through raw OS waits (a futex syscall, a Mach
// semaphore): llvm#86537. Backends mark the wake as a release and the return
// from a wait as an acquire on the same address, so data published before a
// wake is known to be visible after the wait. No-ops without TSan.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define KEEL_TSAN_ENABLED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KEEL_TSAN_ENABLED 1
#endif
#endif

#if defined(KEEL_TSAN_ENABLED)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#define KEEL_TSAN_ACQUIRE(addr) __tsan_acquire(const_cast<void*>(static_cast<const volatile void*>(addr)))
#define KEEL_TSAN_RELEASE(addr) __tsan_release(const_cast<void*>(static_cast<const volatile void*>(addr)))
#else
#define KEEL_TSAN_ACQUIRE(addr) ((void)0)
#define KEEL_TSAN_RELEASE(addr) ((void)0)
#endif
