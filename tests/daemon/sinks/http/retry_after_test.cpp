// Retry-After from a hostile receiver: never negative, never past a year, never undefined
// behaviour (a date centuries ahead overflowed the clock's nanoseconds).
#include <gtest/gtest.h>

#include "sinks/http/retry_after.h"

namespace evrouted {
namespace {

using namespace std::chrono_literals;

TEST(RetryAfter, IsBoundedWhateverTheReceiverSays) {
  const auto now = std::chrono::system_clock::from_time_t(1'780'000'000);  // 2026
  const std::chrono::milliseconds year = std::chrono::hours(24 * 365);
  EXPECT_EQ(parse_retry_after("120", now), 120s);
  EXPECT_EQ(parse_retry_after("999999999", now), year);  // 31 years asked
  EXPECT_EQ(parse_retry_after(std::string(400, '9'), now), year);
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), year);
  EXPECT_EQ(parse_retry_after("Sat, 01 Jan 2300 00:00:00 GMT", now), year);
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT", now), 0ms);
  EXPECT_EQ(parse_retry_after("Mon, 01 Jan 2024 00:00:00 GMT", now), 0ms);  // the past
  EXPECT_EQ(parse_retry_after("garbage", now), 0ms);
  EXPECT_EQ(parse_retry_after("-5", now), 0ms);
}

}  // namespace
}  // namespace evrouted
