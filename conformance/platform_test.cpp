// The first test of every run: what this target is, so every matrix column
// says which OS, kernel, CPU, emulator and backends produced it.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "conformance/harness.h"
#include "core/note.h"
#include "platform/os.h"

namespace kc = keel::conformance;
namespace os = keel::os;

TEST(platform_description, print) {
  const os::PlatformInfo p = os::platform_info();
  std::printf("keel platform\n  os:        %s %s\n  kernel:    %s\n  emulation: %s\n  arch:      %s\n"
              "  cpu:       %s (%d usable)\n  clock res: %lld ns\n",
              p.os.c_str(), p.os_version.c_str(), p.kernel.c_str(), p.emulation.empty() ? "none" : p.emulation.c_str(),
              p.arch.c_str(), p.cpu_model.c_str(), p.cpu_count, static_cast<long long>(p.clock_resolution_ns));
  for (const auto& [group, backend] : p.backends) std::printf("  backend:   %-16s %s\n", group.c_str(), backend.c_str());
  std::fflush(stdout);

  kc::record_info("os", p.os + " " + p.os_version);
  kc::record_info("kernel", p.kernel);
  kc::record_info("emulation", p.emulation.empty() ? "none" : p.emulation);
  kc::record_info("arch", p.arch);
  kc::record_info("cpu", p.cpu_model + " x" + std::to_string(p.cpu_count));
  kc::record_info("clock_resolution", std::to_string(p.clock_resolution_ns) + " ns");
  for (const auto& [group, backend] : p.backends) kc::record_info("backend." + group, backend);
  kc::record_info("runtime.park_flavour", keel::core::kParkFlavour);
  std::printf("  runtime:   Note/Lock park on the %s flavour (KEEL_PARK)\n", keel::core::kParkFlavour);

  EXPECT_FALSE(p.os.empty());
  EXPECT_FALSE(p.kernel.empty());
  EXPECT_FALSE(p.arch.empty());
  EXPECT_GE(p.cpu_count, 1);
  EXPECT_EQ(p.cpu_count, os::cpu_count());
  EXPECT_GE(p.clock_resolution_ns, 1);
  EXPECT_FALSE(p.backends.empty()) << "a port must name the backend of each contract group";
}
