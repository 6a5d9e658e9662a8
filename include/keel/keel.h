// keel — a Go-style runtime for C++20. This header includes the whole public
// API: goroutines (go.h) and goroutine-aware synchronisation (sync.h).
#pragma once

#include "keel/go.h"
#include "keel/sync.h"
#include "keel/version.h"
