// Internal to the library: deadlines that saturate instead of overflowing, so that a timeout of
// nanoseconds::max() means "no deadline".
#pragma once

#include <chrono>

namespace evroute::internal {

using SteadyTime = std::chrono::steady_clock::time_point;

inline SteadyTime saturating_add(SteadyTime t, std::chrono::nanoseconds d) {
  return d >= SteadyTime::max() - t ? SteadyTime::max() : t + d;
}

inline SteadyTime deadline_after(std::chrono::nanoseconds d) {
  return saturating_add(std::chrono::steady_clock::now(), d);
}

}  // namespace evroute::internal
