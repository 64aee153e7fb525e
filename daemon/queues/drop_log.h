// DropLog: the `dead_letter` sink of every sink's queue. It accounts, in the log, for the events a
// queue lets go of without delivering them: dropped by its when_full policy, or left in a memory
// queue at a close deadline (they are counted in the queue's stats too). Events a sink's Retrying
// gives up on go to its dead-letter log instead (dead_letters.h). To keep an overloaded daemon's
// log readable it writes at most one line per second per sink, with the count since the last line.
//
// A reload that rebuilds a sink with a memory queue hands the old queue's backlog to the new one
// through it: after hand_over_to(), the events the closing queue gives up go to the successor
// (Queue::adopt) instead of the log.
//
// Thread-safety: every member from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "evroute/queue.h"
#include "evroute/sink.h"
#include "log_throttle.h"

namespace evrouted {

class DropLog final : public evroute::Sink {
 public:
  explicit DropLog(std::string sink) : sink_(std::move(sink)) {}
  // Why events are let go of from now on, for the log line (a string literal: kept, not copied).
  void set_reason(const char* reason) { reason_.store(reason, std::memory_order_release); }
  // From now on, events are handed to `successor` instead of being logged as not delivered, and
  // counted in `*adopted`.
  void hand_over_to(std::shared_ptr<evroute::Queue> successor, std::atomic<std::uint64_t>* adopted);

  evroute::Status write(const evroute::Event& event) override;
  evroute::Status close() override;  // logs the count not logged yet

 private:
  const std::string sink_;
  std::atomic<const char*> reason_{"dropped by the queue's when_full policy"};
  std::mutex mu_;
  std::uint64_t unlogged_ = 0;
  LogThrottle throttle_;
  std::shared_ptr<evroute::Queue> successor_;
  std::atomic<std::uint64_t>* adopted_ = nullptr;
};

}  // namespace evrouted
