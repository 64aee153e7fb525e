// Filter: forwards to its destination only the events a matcher accepts.
//
// An event the matcher rejects is accepted and discarded (write returns OK) and counted as
// filtered out. close() closes the destination and returns what the destination's close()
// returned (later calls return it again, see sink.h).
//
// Ownership: shares ownership of the destination. The matcher is called on the writer's thread and
// must be safe to call concurrently.
//
// Thread-safety: safe from any thread, as safe as the destination is.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "evroute/counter.h"
#include "evroute/sink.h"

namespace evroute {

using Matcher = std::function<bool(const Event&)>;

class Filter final : public Sink {
 public:
  struct Stats {
    std::uint64_t matched = 0;       // forwarded to the destination
    std::uint64_t filtered_out = 0;  // rejected by the matcher
  };

  Filter(std::shared_ptr<Sink> destination, Matcher matcher);

  Status write(const Event& event) override;
  Status write_all(std::span<const Event> events) override;  // the matching ones, at once
  Status close() override;

  bool matches(const Event& event) const { return matcher_(event); }
  Stats stats() const;

 private:
  const std::shared_ptr<Sink> destination_;
  const Matcher matcher_;
  std::atomic<bool> closed_{false};
  std::once_flag close_once_;  // close() runs once; later calls return close_report_
  Status close_report_;
  detail::OwnedCounter matched_;
  detail::OwnedCounter filtered_out_;
};

}  // namespace evroute
