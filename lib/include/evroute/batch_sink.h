// BatchSink: a Sink that can also take several events in one operation (e.g. one HTTP request
// whose body is a JSON array of them).
//
// Contract:
//  * write_batch(events, results) tries to deliver every event of `events` and stores, for each
//    events[i], its outcome in results[i]; results.size() must equal events.size() (otherwise
//    kInvalidArgument and results untouched). It returns OK when every result is OK, otherwise
//    the first failure. A sink that delivers the batch as one unit (say, one HTTP request) gives
//    every event the same outcome; a sink that splits a batch (Retrying, after a non-retryable
//    failure) gives each event its own.
//  * An empty batch is OK and does nothing; an empty Event in it makes every result
//    kInvalidArgument and nothing is written.
//  * Everything sink.h says about write() holds for write_batch() too: thread-safety, closing, and
//    close() making a write_batch in flight return promptly (with kClosed results).
//
// Who uses it: a Queue with batching on hands its destination batches through write_batch();
// Retrying and RateLimited forward batches to their destination when it is a BatchSink, so a batch
// travels Queue -> Retrying -> RateLimited -> leaf as one unit.
#pragma once

#include <span>

#include "evroute/sink.h"

namespace evroute {

class BatchSink : public Sink {
 public:
  virtual Status write_batch(std::span<const Event> events, std::span<Status> results) = 0;
  BatchSink* as_batch_sink() final { return this; }
};

// Writes `events` to `sink` as one write_batch() when it is a BatchSink, else with one write() per
// event; fills `results` either way (same contract as write_batch).
Status write_batch_to(Sink& sink, std::span<const Event> events, std::span<Status> results);

// Checks write_batch's arguments: an error status (and results filled with it, when their sizes
// match) when they break the contract above; OK otherwise.
Status check_batch(std::span<const Event> events, std::span<Status> results);

}  // namespace evroute
