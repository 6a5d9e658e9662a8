// Checks on the harness and the project's layout rules themselves.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "conformance/harness.h"

namespace kc = keel::conformance;

TEST(harness_ids, derived_mechanically) {
  EXPECT_EQ(kc::test_id("clock_monotonic", "never_backwards"), "clock.monotonic.never_backwards");
  EXPECT_EQ(kc::test_id("thread_cpu_time", "advances"), "thread.cpu_time.advances");
  EXPECT_EQ(kc::test_id("park/futex", "timeout_never_early"), "park.futex.timeout_never_early");
}

TEST(harness_ids, well_formed_and_unique) {
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  std::set<std::string> seen;
  int n = 0;
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const ::testing::TestSuite* s = unit.GetTestSuite(i);
    for (int j = 0; j < s->total_test_count(); ++j) {
      std::string id = kc::test_id(s->name(), s->GetTestInfo(j)->name());
      ++n;
      // area.primitive.property: three non-empty dot-separated parts.
      size_t a = id.find('.');
      size_t b = a == std::string::npos ? a : id.find('.', a + 1);
      EXPECT_TRUE(a != std::string::npos && a > 0 && b != std::string::npos && b > a + 1 && b + 1 < id.size())
          << "test " << s->name() << "." << s->GetTestInfo(j)->name() << " has malformed id " << id;
      EXPECT_TRUE(seen.insert(id).second) << "duplicate id " << id;
    }
  }
  EXPECT_GT(n, 10);
}

// core/ must reach the OS only through platform/os.h (DESIGN.md §1).
TEST(harness_layout, core_includes_no_os_header) {
  namespace fs = std::filesystem;
  const fs::path core = fs::path(KEEL_SOURCE_DIR) / "core";
  if (!fs::exists(core)) GTEST_SKIP() << "source tree not visible from this test process (" << core.string() << ")";
  const std::set<std::string> c_headers = {"stdint.h", "stddef.h", "stdlib.h", "string.h", "stdio.h",
                                           "assert.h", "limits.h", "math.h",   "stdarg.h", "intrin.h"};
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(core)) {
    if (!e.is_regular_file()) continue;
    const std::string ext = e.path().extension().string();
    if (ext != ".h" && ext != ".cpp" && ext != ".cc") continue;
    ++files;
    std::ifstream in(e.path());
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      size_t p = line.find_first_not_of(" \t");
      if (p == std::string::npos || line.compare(p, 8, "#include") != 0) continue;
      size_t open = line.find_first_of("<\"", p + 8);
      if (open == std::string::npos) continue;
      size_t close = line.find_first_of(">\"", open + 1);
      std::string h = line.substr(open + 1, close - open - 1);
      bool ok;
      if (line[open] == '<') ok = (h.find('.') == std::string::npos && h.find('/') == std::string::npos) || c_headers.count(h) != 0;
      else ok = h.rfind("core/", 0) == 0 || h.rfind("keel/", 0) == 0 || h == "platform/os.h" || h == "platform/duration.h" ||
                h == "platform/arch/context.h" ||  // the per-ABI half of the contract: no OS types
                h == "platform/tsan_annotations.h";  // sanitizer macros: no OS types
      EXPECT_TRUE(ok) << e.path().string() << ":" << lineno << " includes " << h
                      << " — core/ may include only the C++ standard library, core/, keel/, platform/os.h and platform/arch/context.h";
    }
  }
  EXPECT_GT(files, 0);
}
