// The stdout sink (`type: stdout`): each event as one JSON line on standard output.
//
// Lines never interleave: one writev(2) per line under a mutex. The line is the event's payload,
// which already carries its "id". Thread-safety: write() and close() from any thread.
#pragma once

#include <atomic>
#include <mutex>

#include "sinks/registry.h"

namespace evrouted {

class StdoutSink final : public evroute::Sink {
 public:
  explicit StdoutSink(int fd = 1) : fd_(fd) {}
  evroute::Status write(const evroute::Event& event) override;
  evroute::Status close() override;

 private:
  const int fd_;
  std::mutex mu_;
  std::atomic<bool> closed_{false};
};

std::unique_ptr<SinkSpec> parse_stdout_sink(ConfigReader& reader);

}  // namespace evrouted
