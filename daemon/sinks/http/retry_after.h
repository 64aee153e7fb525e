// The Retry-After header of an answer the http sink retries (a status in `retry_on`, e.g. 429 or
// 503), as the wait it asks for.
//
// The sink hands the wait to the retry policy as Status::retry_after(); the policy's
// `max_retry_after` clamps it further. Thread-safety: a pure function.
#pragma once

#include <chrono>
#include <string>

namespace evrouted {

// Retry-After: delta-seconds or an HTTP-date (any of RFC 9110's three forms); the wait from `now`
// (zero if past or unparsable), at most a year (any date, however far ahead).
std::chrono::milliseconds parse_retry_after(const std::string& value,
                                            std::chrono::system_clock::time_point now);

}  // namespace evrouted
