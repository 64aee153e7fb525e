// Channel: a bounded buffer that a consumer reads events from.
//
// write() appends the event; when the buffer holds `capacity` events it waits for the consumer to
// take one, up to `write_timeout` (zero: forever), then returns kFull. receive(timeout) takes the
// oldest event, waiting up to `timeout` for one.
//
// close() stops writes at once (unlike go-events, a write after close fails with kClosed even if
// the buffer has room) and wakes every waiter: blocked writers get kClosed; receivers still get the
// events already buffered and then kClosed. closed() tells a consumer the channel was closed.
// close() returns OK, every time.
//
// Thread-safety: all methods are safe from any thread; several consumers may receive at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>

#include "evroute/sink.h"

namespace evroute {

class Channel final : public Sink {
 public:
  // Throws std::invalid_argument("Channel: capacity must be > 0") when capacity is 0: events pass
  // only through the buffer (there is no unbuffered hand-over as with Go's make(chan T)), so with
  // no room every write would wait out its timeout and fail. Capacity 1 is the smallest channel.
  explicit Channel(std::size_t capacity, std::chrono::nanoseconds write_timeout = {});

  Status write(const Event& event) override;
  Status close() override;

  // OK with *out set to the event; kTimeout when none arrived in time; kClosed when the channel is
  // closed and empty.
  Status receive(Event* out, std::chrono::nanoseconds timeout);
  bool closed() const;
  std::size_t size() const;  // events buffered now

 private:
  const std::size_t capacity_;
  const std::chrono::nanoseconds write_timeout_;
  mutable std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<Event> buffer_;
  bool closed_ = false;
};

}  // namespace evroute
