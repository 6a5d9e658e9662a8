// Contract group 5: memory (reserve / commit / decommit / guard / release).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "conformance/harness.h"
#include "platform/os.h"

namespace kc = keel::conformance;
namespace os = keel::os;

namespace {
constexpr size_t kMiB = 1024 * 1024;
constexpr size_t kGiB = 1024 * kMiB;

bool all_zero(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}
}  // namespace

TEST(memory_info, page_size_and_granularity) {
  const size_t ps = os::page_size();
  const size_t g = os::alloc_granularity();
  kc::record_metric("page", double(ps), "B");
  kc::record_metric("granularity", double(g), "B");
  EXPECT_GE(ps, 4096u);
  EXPECT_EQ(ps & (ps - 1), 0u) << "page size is not a power of two";
  EXPECT_EQ(g % ps, 0u) << "allocation granularity is not a multiple of the page size";
}

TEST(memory_reserve, huge_without_resident_growth) {
  const int64_t r0 = os::resident_memory_bytes();
  void* p = os::mem_reserve(64 * kGiB);
  ASSERT_NE(p, nullptr) << "reserving 64 GiB of address space failed";
  const int64_t r1 = os::resident_memory_bytes();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % os::alloc_granularity(), 0u);
  EXPECT_EQ(os::mem_release(p, 64 * kGiB), os::Error::ok);
  if (r0 < 0 || r1 < 0) GTEST_SKIP() << "resident_memory_bytes() is unknown on this target";
  kc::record_metric("resident_growth", double(r1 - r0) / 1024, "KiB");
  EXPECT_LT(r1 - r0, int64_t(4 * kMiB)) << "a reservation made memory resident";
}

TEST(memory_commit, zero_filled_and_writable) {
  const size_t size = 4 * kMiB;
  auto* p = static_cast<unsigned char*>(os::mem_reserve(size));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(os::mem_commit(p + kMiB, kMiB), os::Error::ok);
  EXPECT_TRUE(all_zero(p + kMiB, kMiB));
  std::memset(p + kMiB, 0xA5, kMiB);
  EXPECT_EQ(p[kMiB], 0xA5);
  EXPECT_EQ(p[2 * kMiB - 1], 0xA5);
  EXPECT_EQ(os::mem_release(p, size), os::Error::ok);
}

TEST(memory_decommit, recommit_is_zero_and_frees_resident) {
  const size_t size = 64 * kMiB;
  auto* p = static_cast<unsigned char*>(os::mem_reserve(size));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(os::mem_commit(p, size), os::Error::ok);
  std::memset(p, 0x5A, size);
  const int64_t touched = os::resident_memory_bytes();
  ASSERT_EQ(os::mem_decommit(p, size), os::Error::ok);
  const int64_t after = os::resident_memory_bytes();
  ASSERT_EQ(os::mem_commit(p, size), os::Error::ok);
  EXPECT_TRUE(all_zero(p, size)) << "recommitted memory kept old contents";
  EXPECT_EQ(os::mem_release(p, size), os::Error::ok);
  if (touched >= 0 && after >= 0) {
    kc::record_metric("freed", double(touched - after) / kMiB, "MiB");
    EXPECT_GT(touched - after, int64_t(32 * kMiB)) << "decommit did not return resident memory";
  }
}

TEST(memory_discard, stays_usable_reads_zero_and_frees_resident) {
  const size_t size = 64 * kMiB;
  auto* p = static_cast<unsigned char*>(os::mem_reserve(size));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(os::mem_commit(p, size), os::Error::ok);
  std::memset(p, 0x5A, size);
  const int64_t touched = os::resident_memory_bytes();
  ASSERT_EQ(os::mem_discard(p, size), os::Error::ok);
  const int64_t after = os::resident_memory_bytes();
  // Still committed: readable (zero) and writable without a commit.
  EXPECT_TRUE(all_zero(p, size)) << "discarded memory kept old contents";
  p[0] = 1;
  p[size - 1] = 2;
  EXPECT_EQ(p[0] + p[size - 1], 3);
  EXPECT_EQ(os::mem_discard(nullptr, os::page_size()), os::Error::invalid_argument);
  EXPECT_EQ(os::mem_discard(p + 1, os::page_size()), os::Error::invalid_argument);
  EXPECT_EQ(os::mem_release(p, size), os::Error::ok);
  if (touched >= 0 && after >= 0) {
    kc::record_metric("freed", double(touched - after) / kMiB, "MiB");
    EXPECT_GT(touched - after, int64_t(32 * kMiB)) << "discard did not return resident memory";
  }
}

TEST(memory_reserve, uncommitted_memory_faults) {
  auto* p = static_cast<volatile unsigned char*>(os::mem_reserve(kMiB));
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH({ p[4096] = 1; }, "");
  ASSERT_EQ(os::mem_commit(const_cast<unsigned char*>(p), os::page_size()), os::Error::ok);
  p[0] = 1;  // committed page: fine
  EXPECT_EQ(p[0], 1);
  EXPECT_DEATH({ p[os::page_size()] = 1; }, "");  // the next page is still only reserved
  os::mem_release(const_cast<unsigned char*>(p), kMiB);
}

TEST(memory_decommit, decommitted_memory_faults) {
  auto* p = static_cast<volatile unsigned char*>(os::mem_reserve(kMiB));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(os::mem_commit(const_cast<unsigned char*>(p), kMiB), os::Error::ok);
  p[100] = 7;
  ASSERT_EQ(os::mem_decommit(const_cast<unsigned char*>(p), kMiB), os::Error::ok);
  EXPECT_DEATH({ (void)p[100]; }, "");
  os::mem_release(const_cast<unsigned char*>(p), kMiB);
}

TEST(memory_guard, guard_page_faults) {
  const size_t ps = os::page_size();
  auto* p = static_cast<volatile unsigned char*>(os::mem_reserve(4 * ps));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(os::mem_commit(const_cast<unsigned char*>(p), 4 * ps), os::Error::ok);
  ASSERT_EQ(os::mem_guard(const_cast<unsigned char*>(p) + ps, ps), os::Error::ok);
  p[0] = 1;
  p[2 * ps] = 2;  // the pages around the guard stay usable
  EXPECT_EQ(p[0] + p[2 * ps], 3);
  EXPECT_DEATH({ p[ps] = 1; }, "");
  EXPECT_DEATH({ (void)p[ps + ps - 1]; }, "");
  os::mem_release(const_cast<unsigned char*>(p), 4 * ps);
}

TEST(memory_commit, rejects_bad_input) {
  const size_t ps = os::page_size();
  EXPECT_EQ(os::mem_reserve(0), nullptr);
  EXPECT_EQ(os::mem_commit(nullptr, ps), os::Error::invalid_argument);
  auto* p = static_cast<unsigned char*>(os::mem_reserve(4 * ps));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(os::mem_commit(p + 1, ps), os::Error::invalid_argument) << "unaligned address";
  EXPECT_EQ(os::mem_commit(p, 0), os::Error::invalid_argument) << "zero size";
  EXPECT_EQ(os::mem_decommit(nullptr, ps), os::Error::invalid_argument);
  EXPECT_EQ(os::mem_guard(p + 3, ps), os::Error::invalid_argument);
  EXPECT_EQ(os::mem_release(p, 4 * ps), os::Error::ok);
}

TEST(memory_mappings, budget_reported) {
  const int64_t n = os::max_memory_mappings();
  kc::record_metric("max_mappings", double(n), "");
  EXPECT_TRUE(n == -1 || n > 0) << n;
  if (os::platform_info().os == "Linux") {
    EXPECT_GT(n, 0) << "Linux always has vm.max_map_count";
  }
}
