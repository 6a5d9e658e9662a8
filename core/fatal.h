// Fatal runtime errors: print "fatal error: <msg>" and end the process.
#pragma once

namespace keel::core {

// Never returns. Allocates nothing and takes no lock, so it is safe from a
// signal handler or with the heap corrupt. Later issues add the goroutine
// name and a traceback to the message.
[[noreturn]] void fatal(const char* msg) noexcept;
// fatal(msg), with `extra` printed as a second line (when not null): a
// detail such as where the goroutine was created. Same guarantees.
[[noreturn]] void fatal2(const char* msg, const char* extra) noexcept;

}  // namespace keel::core
