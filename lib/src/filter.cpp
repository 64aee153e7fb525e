#include "evroute/filter.h"

#include <stdexcept>
#include <utility>

namespace evroute {

Filter::Filter(std::shared_ptr<Sink> destination, Matcher matcher)
    : destination_(std::move(destination)), matcher_(std::move(matcher)) {
  if (!destination_) throw std::invalid_argument("Filter: null destination");
  if (!matcher_) throw std::invalid_argument("Filter: empty matcher");
}

Status Filter::write(const Event& event) {
  if (!event) return Status::invalid_argument("empty event");
  if (closed_.load(std::memory_order_acquire)) return Status::closed("filter is closed");
  if (!matcher_(event)) {
    filtered_out_.fetch_add(1, std::memory_order_relaxed);
    return Status::ok();
  }
  matched_.fetch_add(1, std::memory_order_relaxed);
  return destination_->write(event);
}

Status Filter::close() {
  std::call_once(close_once_, [this] {
    closed_.store(true, std::memory_order_release);
    close_report_ = destination_->close();
  });
  return close_report_;
}

Filter::Stats Filter::stats() const {
  return Stats{matched_.load(std::memory_order_relaxed),
               filtered_out_.load(std::memory_order_relaxed)};
}

}  // namespace evroute
