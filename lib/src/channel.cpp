#include "evroute/channel.h"

#include "deadline.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace evroute {

namespace {

using internal::deadline_after;

}  // namespace

Channel::Channel(std::size_t capacity, std::chrono::nanoseconds write_timeout)
    : capacity_(capacity), write_timeout_(write_timeout) {
  if (capacity_ == 0) throw std::invalid_argument("Channel: capacity must be > 0");
}

Status Channel::write(const Event& event) {
  if (!event) return Status::invalid_argument("empty event");
  std::unique_lock<std::mutex> lock(mu_);
  auto room = [&] { return closed_ || buffer_.size() < capacity_; };
  if (write_timeout_.count() > 0) {
    not_full_.wait_until(lock, deadline_after(write_timeout_), room);
  } else {
    not_full_.wait(lock, room);
  }
  // Checked first, even with room: unlike go-events, a closed channel never takes another event.
  if (closed_) return Status::closed("channel is closed");
  if (buffer_.size() >= capacity_) {
    return Status::full("channel is full (" + std::to_string(capacity_) + " events)");
  }
  buffer_.push_back(event);
  not_empty_.notify_one();
  return Status::ok();
}

Status Channel::close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return Status::ok();
  closed_ = true;
  not_full_.notify_all();
  not_empty_.notify_all();
  return Status::ok();
}

Status Channel::receive(Event* out, std::chrono::nanoseconds timeout) {
  if (out == nullptr) return Status::invalid_argument("receive: null output event");
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [&] { return closed_ || !buffer_.empty(); };
  if (!not_empty_.wait_until(lock, deadline_after(timeout), ready)) {
    return Status::timeout("no event within the timeout");
  }
  if (buffer_.empty()) return Status::closed("channel is closed");
  *out = std::move(buffer_.front());
  buffer_.pop_front();
  not_full_.notify_one();
  return Status::ok();
}

bool Channel::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

std::size_t Channel::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return buffer_.size();
}

}  // namespace evroute
