// The stdout sink (`type: stdout`): each event as one JSON line on standard output.
//
// Lines never interleave: one writev(2) per line, or one write(2) for a batch of lines (the queue
// hands over whatever is waiting, see DeliveryConfig::write_batches), under a mutex. The line is
// the event's payload, which already carries its "id". Thread-safety: write(), write_batch() and
// close() from any thread.
#pragma once

#include <atomic>
#include <mutex>
#include <span>
#include <string>

#include "evroute/batch_sink.h"

namespace evrouted {

class StdoutSink final : public evroute::BatchSink {
 public:
  explicit StdoutSink(int fd = 1) : fd_(fd) {}
  evroute::Status write(const evroute::Event& event) override;
  // Every line in one write(2); every event gets the same outcome.
  evroute::Status write_batch(std::span<const evroute::Event> events,
                              std::span<evroute::Status> results) override;
  evroute::Status close() override;

 private:
  const int fd_;
  std::mutex mu_;
  std::string buffer_;  // a batch's lines (under mu_)
  std::atomic<bool> closed_{false};
};

}  // namespace evrouted
