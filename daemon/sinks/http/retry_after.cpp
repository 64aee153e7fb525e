#include "sinks/http/retry_after.h"

#include <algorithm>
#include <ctime>

namespace evrouted {

std::chrono::milliseconds parse_retry_after(const std::string& value,
                                            std::chrono::system_clock::time_point now) {
  // Anything longer is absurd; the sink's max_retry_after clamps it further.
  constexpr std::chrono::seconds kCap = std::chrono::hours(24 * 365);
  if (value.empty()) return std::chrono::milliseconds(0);
  if (value.find_first_not_of("0123456789") == std::string::npos) {
    if (value.size() > 9) return kCap;
    return std::min<std::chrono::seconds>(std::chrono::seconds(std::stoll(value)), kCap);
  }
  // RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms, always in GMT.
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%a, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* end = strptime(value.c_str(), format, &tm);
    if (!end || *end != '\0') continue;
    // Compared in seconds first: a date centuries ahead would overflow the clock's nanoseconds.
    const std::time_t at = timegm(&tm);
    const std::time_t now_t = std::chrono::system_clock::to_time_t(now);
    if (at == static_cast<std::time_t>(-1) || at <= now_t - 1) return std::chrono::milliseconds(0);
    if (at - now_t > kCap.count()) return kCap;
    const auto when = std::chrono::system_clock::from_time_t(at);
    if (when <= now) return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(when - now);
  }
  return std::chrono::milliseconds(0);
}

}  // namespace evrouted
