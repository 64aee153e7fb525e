// The http sink's 410 Gone state machine, behind its Disableable interface (registry.h):
//
//   open --disable(reason): an answer was 410 Gone--> disabled --enable()--> open
//
// While disabled, a write waits in hold_while_disabled() — it neither fails nor drops its event —
// until enable() (SIGHUP, or POST /v1/sinks/NAME/enable) or the sink's close() (wake_all()), and
// then sends it again (or returns kClosed). Of concurrent writes that all see a 410, only the
// first disables the sink: state().since and the on_disabled callback are its, once.
// Thread-safety: every member from any thread, except on_disabled(): before the first write.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include "sinks/registry.h"

namespace evrouted {

class DisableSwitch {
 public:
  using State = Disableable::State;

  // Returns at once when open; else waits until enable(), or until `closed` is set and
  // wake_all() was called.
  void hold_while_disabled(const std::atomic<bool>& closed);
  // The answer was 410 Gone (`reason`, e.g. "POST https://x/hooks: HTTP 410 Gone"). Disables the
  // switch, unless another write did so first; the one that did calls the on_disabled callback, on
  // its own thread.
  void disable(const std::string& reason);
  // Lets a held write try again at once. Returns whether the switch was disabled.
  bool enable();
  // Wakes every held write, to see `closed` (the sink's close()).
  void wake_all();

  State state() const;
  void on_disabled(std::function<void(const State&)> callback);

 private:
  // A write held while disabled waits on enabled_ with wait_mu_; wake_all() and enable() notify
  // it. wait_mu_ is only ever held briefly, so enable() never waits on a request.
  std::mutex wait_mu_;
  std::condition_variable enabled_;
  std::atomic<bool> disabled_{false};
  mutable std::mutex state_mu_;  // guards state_
  State state_;
  std::function<void(const State&)> on_disabled_;
};

}  // namespace evrouted
