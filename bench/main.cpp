// One main for every benchmark file in bench/.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
