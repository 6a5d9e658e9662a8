// keel — a Go-style runtime for C++20. This header includes the whole public
// API: goroutines (go.h), goroutine-aware synchronisation (sync.h), channels
// and select (chan.h), sleeping and timers (time.h).
#pragma once

#include "keel/chan.h"
#include "keel/go.h"
#include "keel/sync.h"
#include "keel/time.h"
#include "keel/version.h"
