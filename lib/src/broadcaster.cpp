#include "evroute/broadcaster.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace evroute {

// Every change to the sink set publishes a new immutable list under mu_; a writer copies the
// current list's shared_ptr under mu_ and fans out without holding it. Ownership of a sink passes
// out of the set exactly once, under mu_ (to remove(), close() or drop_closed()), which is what
// makes "closed exactly once" hold when remove() and close() race.

Broadcaster::Broadcaster(std::vector<std::shared_ptr<Sink>> sinks) {
  SinkList list;
  list.reserve(sinks.size());
  for (auto& sink : sinks) {
    if (!sink) throw std::invalid_argument("Broadcaster: null sink");
    if (std::find(list.begin(), list.end(), sink) == list.end()) list.push_back(std::move(sink));
  }
  sinks_ = std::make_shared<const SinkList>(std::move(list));
}

Broadcaster::~Broadcaster() { close(); }

std::uint64_t Broadcaster::next_version() noexcept {
  static std::atomic<std::uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

std::shared_ptr<const Broadcaster::SinkList> Broadcaster::publish_locked(
    std::shared_ptr<const SinkList> sinks) {
  version_.store(next_version(), std::memory_order_release);
  return std::exchange(sinks_, std::move(sinks));
}

// The sink set one write fans out to. Each thread keeps the set it last took, with its version:
// while the broadcaster's version is that one, a write uses it without mu_ and without touching
// the shared_ptr's count (a mutex and two reference-count changes per write otherwise). The
// thread's set is pinned while a write uses it; a write nested in it (a sink that writes to a
// broadcaster) takes its own copy under mu_ instead.
class Broadcaster::Snapshot {
 public:
  explicit Snapshot(const Broadcaster& b) {
    Kept& kept = thread_kept();
    if (!kept.in_use && kept.version == b.version_.load(std::memory_order_acquire)) [[likely]] {
      kept.in_use = true;
      pinned_ = true;
      sinks_ = kept.sinks.get();
      return;
    }
    std::shared_ptr<const SinkList> sinks;
    std::uint64_t version;
    {
      std::lock_guard<std::mutex> lock(b.mu_);
      if (b.closed_) return;
      sinks = b.sinks_;
      version = b.version_.load(std::memory_order_relaxed);
    }
    if (kept.in_use) {
      own_ = std::move(sinks);
      sinks_ = own_.get();
      return;
    }
    kept.in_use = true;  // before the old set is released: its sinks' destructors may write
    pinned_ = true;
    std::shared_ptr<const SinkList> old = std::exchange(kept.sinks, std::move(sinks));
    kept.version = version;
    sinks_ = kept.sinks.get();
  }
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  ~Snapshot() {
    if (pinned_) thread_kept().in_use = false;
  }
  // Null when the broadcaster is closed.
  const SinkList* get() const { return sinks_; }

 private:
  struct Kept {
    std::uint64_t version = 0;  // versions start at 1
    std::shared_ptr<const SinkList> sinks;
    bool in_use = false;
  };
  static Kept& thread_kept() {
    static thread_local Kept kept;
    return kept;
  }
  const SinkList* sinks_ = nullptr;
  std::shared_ptr<const SinkList> own_;  // a nested write's set
  bool pinned_ = false;
};

Status Broadcaster::write(const Event& event) {
  return write_all(std::span<const Event>(&event, 1));
}

Status Broadcaster::write_all(std::span<const Event> events) {
  for (const Event& event : events) {
    if (!event) return Status::invalid_argument("empty event");
  }
  if (events.empty()) return Status::ok();
  const Snapshot snapshot(*this);
  const SinkList* const sinks = snapshot.get();
  if (!sinks) return Status::closed("broadcaster is closed");
  events_.add(events.size());

  // The common case first: every sink takes the events. This loop only calls and tests (one
  // event or many, decided once, not per sink); the first failure leaves it for the one below.
  const std::shared_ptr<Sink>* it = sinks->data();
  const std::shared_ptr<Sink>* const end = it + sinks->size();
  Status status;
  if (events.size() == 1) {
    const Event& event = events[0];
    for (; it != end; ++it) {
      Status s = (*it)->write(event);
      if (!s.is_ok()) [[unlikely]] {
        status = std::move(s);
        break;
      }
    }
  } else {
    for (; it != end; ++it) {
      Status s = (*it)->write_all(events);
      if (!s.is_ok()) [[unlikely]] {
        status = std::move(s);
        break;
      }
    }
  }
  if (it == end) [[likely]]
    return Status::ok();

  Status first;
  std::size_t failed = 0, closed = 0;
  for (;;) {  // *it failed with `status`; the sinks after it still get the events
    if (status.is_ok()) {
    } else if (status.is_closed()) {
      ++closed;
      drop_closed(*it);
    } else if (failed++ == 0) {
      first = std::move(status);
    }
    if (++it == end) break;
    status = events.size() == 1 ? (*it)->write(events[0]) : (*it)->write_all(events);
  }
  if (failed == 0) {
    // Nobody took the event: say so rather than report success.
    if (closed > 0 && closed == sinks->size()) return Status::closed("every sink is closed");
    return Status::ok();
  }

  sink_errors_.fetch_add(failed, std::memory_order_relaxed);
  const std::chrono::milliseconds retry_after = first.retry_after();
  return Status(first.code(), std::to_string(failed) + " of " + std::to_string(sinks->size()) +
                                  " sinks failed; first: " + first.message())
      .with_retry_after(retry_after);
}

void Broadcaster::drop_closed(const std::shared_ptr<Sink>& sink) {
  std::shared_ptr<const SinkList> old;  // released after the lock
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  auto it = std::find(sinks_->begin(), sinks_->end(), sink);
  if (it == sinks_->end()) return;  // another writer (or remove) got there first
  auto next = std::make_shared<SinkList>(*sinks_);
  next->erase(next->begin() + (it - sinks_->begin()));
  old = publish_locked(std::move(next));
}

Status Broadcaster::add(std::shared_ptr<Sink> sink) {
  if (!sink) return Status::invalid_argument("null sink");
  std::shared_ptr<const SinkList> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_) {
      if (std::find(sinks_->begin(), sinks_->end(), sink) != sinks_->end()) return Status::ok();
      auto next = std::make_shared<SinkList>();
      next->reserve(sinks_->size() + 1);
      *next = *sinks_;
      next->push_back(std::move(sink));
      old = publish_locked(std::move(next));
      return Status::ok();
    }
  }
  sink->close();
  return Status::closed("broadcaster is closed");
}

Status Broadcaster::remove(const std::shared_ptr<Sink>& sink) {
  if (Status s = detach(sink); !s.is_ok()) return s;
  return sink->close();
}

Status Broadcaster::detach(const std::shared_ptr<Sink>& sink) {
  std::shared_ptr<const SinkList> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return Status::closed("broadcaster is closed");
    auto it = std::find(sinks_->begin(), sinks_->end(), sink);
    if (it == sinks_->end()) return Status::invalid_argument("sink is not in the broadcaster");
    auto next = std::make_shared<SinkList>(*sinks_);
    next->erase(next->begin() + (it - sinks_->begin()));
    old = publish_locked(std::move(next));
  }
  return Status::ok();
}

Status Broadcaster::close() {
  std::call_once(close_once_, [this] {
    std::shared_ptr<const SinkList> sinks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      sinks = publish_locked(nullptr);
    }
    for (const std::shared_ptr<Sink>& sink : *sinks) {
      Status status = sink->close();
      if (!status.is_ok() && close_report_.is_ok()) close_report_ = std::move(status);
    }
  });
  return close_report_;
}

Broadcaster::Stats Broadcaster::stats() const {
  Stats stats;
  stats.events = events_.value();
  stats.sink_errors = sink_errors_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  stats.sinks = sinks_ ? sinks_->size() : 0;
  return stats;
}

}  // namespace evroute
