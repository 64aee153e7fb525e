// fuzz_retry_after: parse_retry_after() (daemon/sinks/http/retry_after.h) on arbitrary header
// values.
//
// Properties: it never crashes (UBSan: no signed overflow converting far dates); the wait is
// never negative; it is at most a year — the value the function itself returns for an "absurd"
// delta-seconds (more than 9 digits), before the sink's max_retry_after clamps it. A wait of years
// from one header is a bug whatever the clamp does afterwards: the clamp is configurable
// (0 = no bound would be natural to add) and other callers may not clamp.
// `now` is fixed (2026-01-01T00:00:00Z) so that a crash reproduces.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "sinks/http/retry_after.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using evroute_fuzz::require;
  using namespace std::chrono;
  // Header values carry no NUL (cpp-httplib stops a line there); the rest is fair game.
  std::string value(reinterpret_cast<const char*>(data), size);
  if (value.find('\0') != std::string::npos) return 0;
  const system_clock::time_point now{seconds(1767225600)};
  const milliseconds wait = evrouted::parse_retry_after(value, now);
  require(wait.count() >= 0, "negative wait", value + " -> " + std::to_string(wait.count()));
  require(wait <= hours(24 * 365), "wait longer than a year",
          value + " -> " + std::to_string(wait.count()) + " ms");
  return 0;
}
