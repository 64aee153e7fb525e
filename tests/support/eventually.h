// eventually(): waits on a condition, not on time. Polls `condition` (yielding between polls)
// until it holds (true) or `timeout` passes (false): sequencing, never a timing assertion.
#pragma once

#include <chrono>
#include <thread>

namespace evtest {

template <class Condition>
bool eventually(Condition condition,
                std::chrono::steady_clock::duration timeout = std::chrono::seconds(10)) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace evtest
