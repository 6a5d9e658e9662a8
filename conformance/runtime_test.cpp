// core/ basics every later issue relies on.
#include <gtest/gtest.h>

#include "core/fatal.h"

TEST(runtime_fatal, prints_message_and_exits_2) {
  EXPECT_EXIT(keel::core::fatal("boom 42"), ::testing::ExitedWithCode(2), "fatal error: boom 42");
}
