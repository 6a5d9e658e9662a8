// The smallest keel program: it only prints the version for now.
// TODO(scheduler): include <keel/keel.h> and run a goroutine once the
// scheduler and keel/sync.h have landed.
#include <keel/version.h>

#include <cstdio>

int main() {
  std::printf("keel %s\n", keel::version());
  return 0;
}
