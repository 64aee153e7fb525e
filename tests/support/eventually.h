// eventually(): waits on a condition, not on time. Polls `condition` until it holds (true) or
// `timeout` passes (false): sequencing, never a timing assertion.
//
// Between polls it yields; given a `poll_interval`, it sleeps that long instead, for a condition
// that costs a request to evrouted or a read of a file (polling must not flood what it watches).
// The interval only paces the polls: the condition alone decides the answer.
#pragma once

#include <chrono>
#include <thread>

namespace evtest {

template <class Condition>
bool eventually(Condition condition,
                std::chrono::steady_clock::duration timeout = std::chrono::seconds(10),
                std::chrono::steady_clock::duration poll_interval = {}) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    if (poll_interval > poll_interval.zero()) {
      std::this_thread::sleep_for(poll_interval);
    } else {
      std::this_thread::yield();
    }
  }
  return true;
}

}  // namespace evtest
