// The smallest keel program: goroutines, a WaitGroup and a Mutex, built
// against keel either installed (find_package) or vendored (add_subdirectory).
#include <keel/keel.h>

#include <cstdio>
#include <mutex>

int main() {
  return keel::run([] {
    keel::Mutex mu;
    keel::WaitGroup wg;
    int sum = 0;
    for (int i = 1; i <= 100; i++) {
      wg.add(1);
      keel::go([&, i] {
        std::lock_guard<keel::Mutex> g(mu);
        sum += i;
        wg.done();
      });
    }
    wg.wait();
    std::printf("keel %s: 100 goroutines summed %d\n", keel::version(), sum);
    return sum == 5050 ? 0 : 1;
  });
}
