// utc_time: a time point as RFC 3339 UTC text to the second, e.g. "2026-11-26T10:02:03Z" — the one
// format evrouted's API uses for times (dead letters' failed_at, a disabled sink's since).
#pragma once

#include <chrono>
#include <ctime>
#include <string>

namespace evrouted {

inline std::string utc_time(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace evrouted
