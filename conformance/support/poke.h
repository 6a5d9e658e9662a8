// Test support: interrupt a thread's blocking call the way the OS can —
// a signal without SA_RESTART on Unix, an APC on Windows — so tests can check
// that waits survive it. Test code only; the runtime's own interruption
// mechanism is the contract's interrupt group.
#pragma once

#include "platform/os.h"

namespace keel::conformance {

// Prepare the calling process (install a no-op handler); idempotent.
void poke_setup();
// Make a blocking call in thread t return early to user mode (EINTR on Unix,
// an alertable-wait APC on Windows). False if the OS refused.
bool poke(const os::Thread& t);
// How many pokes have been delivered (handler/APC ran) so far.
int pokes_delivered();

}  // namespace keel::conformance
