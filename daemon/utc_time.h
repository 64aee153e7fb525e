// utc_time: a time point as RFC 3339 UTC text — the one UTC formatter of evrouted. To the second,
// e.g. "2026-11-26T10:02:03Z", the format evrouted's API uses for times (dead letters' failed_at,
// a disabled sink's since); with microseconds, e.g. "2026-11-26T10:02:03.000456Z", a CloudEvent's
// `time` attribute.
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace evrouted {

enum class UtcDigits { kSeconds, kMicroseconds };

inline std::string utc_time(std::chrono::system_clock::time_point t,
                            UtcDigits digits = UtcDigits::kSeconds) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(micros / 1000000 - (micros % 1000000 < 0));
  const long frac = static_cast<long>((micros % 1000000 + 1000000) % 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // room for any int year, which -Wformat-truncation counts
  if (digits == UtcDigits::kMicroseconds) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  } else {
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  return buf;
}

}  // namespace evrouted
