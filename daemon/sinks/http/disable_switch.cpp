#include "sinks/http/disable_switch.h"

#include <chrono>

namespace evrouted {

void DisableSwitch::hold_while_disabled(const std::atomic<bool>& closed) {
  if (!disabled_.load(std::memory_order_acquire)) return;
  std::unique_lock<std::mutex> wait(wait_mu_);
  enabled_.wait(wait, [&] {
    return closed.load(std::memory_order_acquire) || !disabled_.load(std::memory_order_acquire);
  });
}

void DisableSwitch::disable(const std::string& reason) {
  State state;
  {
    std::lock_guard<std::mutex> g(state_mu_);
    if (!disabled_.load(std::memory_order_acquire)) {  // the first of concurrent writes to see it
      state_ = State{true, reason, std::chrono::system_clock::now()};
      disabled_.store(true, std::memory_order_release);
      state = state_;
    }
  }
  if (state.disabled && on_disabled_) on_disabled_(state);
}

bool DisableSwitch::enable() {
  {
    std::lock_guard<std::mutex> g(state_mu_);
    if (!disabled_.load(std::memory_order_acquire)) return false;
    state_ = State{};
    disabled_.store(false, std::memory_order_release);
  }
  // Taking wait_mu_ orders the store before the held write's check, or after its wait began: the
  // notification cannot be lost.
  wake_all();
  return true;
}

void DisableSwitch::wake_all() {
  // (As in enable(): taking wait_mu_ orders the caller's store before a held write's check.)
  { std::lock_guard<std::mutex> g(wait_mu_); }
  enabled_.notify_all();
}

DisableSwitch::State DisableSwitch::state() const {
  std::lock_guard<std::mutex> g(state_mu_);
  return state_;
}

void DisableSwitch::on_disabled(std::function<void(const State&)> callback) {
  on_disabled_ = std::move(callback);
}

}  // namespace evrouted
