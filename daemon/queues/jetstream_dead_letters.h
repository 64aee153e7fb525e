// JetStreamDeadLetters: the dead letters of a jetstream-queued sink, in JetStream: one message per
// entry (dead_letters.h's JSON form) on subject <stream>_DEAD.<sink> of the dead-letter stream
// (nats/link.h). So every replica lists the same entries, and a replay through any replica takes
// each entry once: an entry is taken by deleting its message, and a replica whose delete fails (the
// other took it first) leaves it out.
//
// Thread-safety: every member from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "dead_letters.h"
#include "evroute/result.h"
#include "nats/link.h"

namespace evrouted {

class JetStreamDeadLetters final : public DeadLetterStore {
 public:
  JetStreamDeadLetters(std::shared_ptr<nats::Link> link, std::string sink);

  evroute::Status add(const evroute::Event& event, const evroute::Status& last,
                      std::uint32_t attempts) override;
  Page list(std::uint64_t offset, std::uint64_t limit) const override;
  evroute::Status take(const std::optional<std::set<std::string>>& ids,
                       std::vector<evroute::Event>* events) override;
  std::uint64_t added() const override { return added_.load(std::memory_order_relaxed); }
  std::uint64_t write_errors() const override {
    return write_errors_.load(std::memory_order_relaxed);
  }
  std::string where() const override { return "NATS subject " + subject_; }

 private:
  struct Stored {
    std::uint64_t seq = 0;
    nlohmann::ordered_json entry;
  };
  // Calls `each` for every entry from the oldest until it returns false; fails when JetStream
  // cannot be read.
  evroute::Status scan(const std::function<bool(Stored&&)>& each) const;
  evroute::Result<std::uint64_t> count() const;

  const std::shared_ptr<nats::Link> link_;
  const std::string subject_;
  std::atomic<std::uint64_t> added_{0};
  std::atomic<std::uint64_t> write_errors_{0};
};

}  // namespace evrouted
