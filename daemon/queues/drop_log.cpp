#include "queues/drop_log.h"

#include <spdlog/spdlog.h>

namespace evrouted {

void DropLog::hand_over_to(std::shared_ptr<evroute::Queue> successor,
                           std::atomic<std::uint64_t>* adopted) {
  std::lock_guard<std::mutex> g(mu_);
  successor_ = std::move(successor);
  adopted_ = adopted;
}

evroute::Status DropLog::write(const evroute::Event& event) {
  std::lock_guard<std::mutex> g(mu_);
  if (successor_) {
    if (successor_->adopt(event).is_ok()) {
      adopted_->fetch_add(1, std::memory_order_relaxed);
      return {};
    }
    // The successor is closed already (shutdown right after the reload): account below.
  }
  ++unlogged_;
  if (throttle_.allow()) {
    spdlog::error("sink '{}': {} event(s) not delivered ({}); latest id {}", sink_, unlogged_,
                  reason_.load(std::memory_order_acquire), event.id());
    unlogged_ = 0;
  }
  return {};
}

evroute::Status DropLog::close() {
  std::lock_guard<std::mutex> g(mu_);
  if (unlogged_ > 0) {
    spdlog::error("sink '{}': {} more event(s) not delivered ({})", sink_, unlogged_,
                  reason_.load(std::memory_order_acquire));
    unlogged_ = 0;
  }
  return {};
}

}  // namespace evrouted
