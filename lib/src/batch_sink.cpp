#include "evroute/batch_sink.h"

#include <algorithm>

namespace evroute {

Status check_batch(std::span<const Event> events, std::span<Status> results) {
  if (results.size() != events.size()) {
    return Status::invalid_argument("write_batch: results and events differ in size");
  }
  if (std::any_of(events.begin(), events.end(), [](const Event& e) { return !e; })) {
    Status invalid = Status::invalid_argument("empty event in batch");
    std::fill(results.begin(), results.end(), invalid);
    return invalid;
  }
  return Status::ok();
}

Status write_batch_to(Sink& sink, std::span<const Event> events, std::span<Status> results) {
  if (BatchSink* batch_sink = sink.as_batch_sink()) {
    return batch_sink->write_batch(events, results);
  }
  if (Status s = check_batch(events, results); !s.is_ok()) return s;
  Status first;
  for (std::size_t i = 0; i < events.size(); ++i) {
    results[i] = sink.write(events[i]);
    if (first.is_ok() && !results[i].is_ok()) first = results[i];
  }
  return first;
}

}  // namespace evroute
