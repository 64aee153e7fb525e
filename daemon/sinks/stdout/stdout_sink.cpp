#include "sinks/stdout/stdout_sink.h"

#include "sinks/fd_writer.h"

namespace evrouted {

evroute::Status StdoutSink::write(const evroute::Event& event) {
  if (!event) return evroute::Status::invalid_argument("empty event");
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_.load(std::memory_order_relaxed)) return evroute::Status::closed();
  return write_line(fd_, event.payload(), "stdout");
}

evroute::Status StdoutSink::write_batch(std::span<const evroute::Event> events,
                                        std::span<evroute::Status> results) {
  if (evroute::Status s = evroute::check_batch(events, results); !s.is_ok()) return s;
  if (events.empty()) return evroute::Status::ok();
  evroute::Status s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_.load(std::memory_order_relaxed)) {
      s = evroute::Status::closed();
    } else {
      buffer_.clear();
      append_lines(buffer_, events);
      s = evrouted::write_all(fd_, buffer_, "stdout");
      if (buffer_.capacity() > (std::size_t{1} << 20)) std::string().swap(buffer_);
    }
  }
  for (evroute::Status& r : results) r = s;
  return s;
}

evroute::Status StdoutSink::close() {
  closed_.store(true);
  return evroute::Status::ok();  // stdout itself stays open: logs and others may use it
}

}  // namespace evrouted
