#include "evroute/filter.h"

#include <stdexcept>
#include <utility>
#include <vector>

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
    filtered_out_.add();
    return Status::ok();
  }
  matched_.add();
  return destination_->write(event);
}

Status Filter::write_all(std::span<const Event> events) {
  for (const Event& event : events) {
    if (!event) return Status::invalid_argument("empty event");
  }
  if (closed_.load(std::memory_order_acquire)) return Status::closed("filter is closed");
  std::vector<Event> matching;
  matching.reserve(events.size());
  for (const Event& event : events) {
    if (matcher_(event)) matching.push_back(event);
  }
  filtered_out_.add(events.size() - matching.size());
  matched_.add(matching.size());
  if (matching.empty()) return Status::ok();
  return destination_->write_all(matching);
}

Status Filter::close() {
  std::call_once(close_once_, [this] {
    closed_.store(true, std::memory_order_release);
    close_report_ = destination_->close();
  });
  return close_report_;
}

Filter::Stats Filter::stats() const { return Stats{matched_.value(), filtered_out_.value()}; }

}  // namespace evroute
