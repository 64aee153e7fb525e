#include "evroute/queue.h"

#include "deadline.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace evroute {

// How it works: a worker takes waiting events under the lock (up to max_batch with one worker, one
// with several, a batch when batching) and delivers them without it; in_flight_ counts them until
// they are done, so `pending` (and the capacity bound) include events being delivered. A producer
// wakes a worker only when one sleeps (each worker has its own condition variable and idle flag:
// whoever clears the flag notifies it, the producers behind need not), and a worker wakes writers
// only when some wait for room: an uncontended write is a lock, a push and an unlock. Dropped and
// undelivered events go to the dead-letter sink with no lock held. A worker that runs out of events
// may spin before it parks (see "Wake-ups" in queue.h): it watches signals_, an atomic the
// producers bump under the lock, and while it spins (spinners_) they do not wake it.

namespace {

using internal::deadline_after;

Status closed_status() { return Status::closed("queue is closed"); }

std::uint64_t batch_bytes(const Event& e) { return e.payload().size() + 1; }

// Tells the core that this is a spin-wait loop (saves power, yields to the sibling hyperthread).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

Queue::Queue(std::shared_ptr<Sink> destination, Options options)
    : destination_(std::move(destination)),
      options_(std::move(options)),
      batch_destination_(
          destination_ && options_.batch.max_events > 1 ? destination_->as_batch_sink() : nullptr),
      clock_(options_.clock ? options_.clock : Clock::system()),
      counts_bytes_(batch_destination_ != nullptr && options_.batch.max_bytes > 0) {
  if (!destination_) throw std::invalid_argument("Queue: null destination");
  if (options_.max_batch == 0) throw std::invalid_argument("Queue: max_batch must be > 0");
  if (options_.workers == 0) throw std::invalid_argument("Queue: workers must be > 0");
  if (options_.batch.max_events > 1 && !batch_destination_) {
    throw std::invalid_argument("Queue: batching needs a BatchSink destination");
  }
  for (std::size_t i = 0; i < options_.workers; ++i) workers_.push_back(std::make_unique<Worker>());
  for (auto& w : workers_) w->thread = std::thread([this, &w = *w] { run(w); });
}

Queue::~Queue() { close(); }

Status Queue::write(const Event& event) { return write_all(std::span<const Event>(&event, 1)); }

Status Queue::write_all(std::span<const Event> events) {
  std::vector<Event> dropped;  // handed to the dead-letter sink once the lock is released
  std::vector<Worker*> wake;   // notified once the lock is released
  Status first;
  {
    std::unique_lock<std::mutex> lock(mu_);
    for (const Event& event : events) {
      Status s = admit_locked(event, lock, &dropped, &wake);
      if (!s.is_ok() && first.is_ok()) first = std::move(s);
    }
  }
  for (Worker* w : wake) w->wake.notify_one();
  for (const Event& e : dropped) dead_letter(e);
  return first;
}

Status Queue::admit_locked(const Event& event, std::unique_lock<std::mutex>& lock,
                           std::vector<Event>* dropped, std::vector<Worker*>* wake) {
  if (!event) return Status::invalid_argument("empty event");
  if (closing_) return closed_status();
  const std::size_t cap = options_.capacity;
  if (cap > 0 && waiting_.size() + in_flight_ >= cap) {
    switch (options_.when_full) {
      case OverflowPolicy::kBlock: {
        // Waiting releases the lock: a worker woken for the events admitted so far must be
        // running, or room would never come.
        for (Worker* w : *wake) w->wake.notify_one();
        wake->clear();
        auto room = [&] { return closing_ || waiting_.size() + in_flight_ < cap; };
        ++writers_waiting_;
        wake_lingering();  // room comes from delivering: no gathering meanwhile
        if (options_.block_timeout.count() > 0) {
          has_room_.wait_until(lock, deadline_after(options_.block_timeout), room);
        } else {
          has_room_.wait(lock, room);
        }
        --writers_waiting_;
        if (closing_) return closed_status();
        if (waiting_.size() + in_flight_ >= cap) {
          ++stats_.rejected_full;
          return Status::full("queue is full (" + std::to_string(cap) + " pending)");
        }
        break;
      }
      case OverflowPolicy::kDropNewest:
        ++stats_.dropped_newest;
        dropped->push_back(event);
        return Status::ok();
      case OverflowPolicy::kDropOldest:
        if (waiting_.empty()) {  // every pending event is with the destination already
          ++stats_.dropped_newest;
          dropped->push_back(event);
          return Status::ok();
        }
        ++stats_.dropped_oldest;
        dropped->push_back(std::move(waiting_.front()));
        waiting_.pop_front();
        if (counts_bytes_) waiting_bytes_ -= batch_bytes(dropped->back());
        break;
    }
  }
  if (Worker* w = enqueue_locked(event)) wake->push_back(w);
  return Status::ok();
}

Status Queue::adopt(const Event& event) {
  if (!event) return Status::invalid_argument("empty event");
  Worker* wake = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return closed_status();
    wake = enqueue_locked(event);
  }
  if (wake != nullptr) wake->wake.notify_one();
  return Status::ok();
}

Queue::Worker* Queue::enqueue_locked(const Event& event) {
  waiting_.push_back(event);
  if (counts_bytes_) waiting_bytes_ += batch_bytes(event);
  ++stats_.enqueued;
  signals_.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t pending = waiting_.size() + in_flight_;
  if (pending > stats_.high_water) stats_.high_water = pending;
  // Spinning workers take the events by themselves; one more event than they will take wakes a
  // parked worker, if there is one. Whoever clears a worker's idle flag wakes it; the producers
  // behind it need not.
  if (waiting_.size() <= spinners_.load(std::memory_order_relaxed)) return nullptr;
  for (auto& w : workers_) {
    if (std::exchange(w->idle, false)) {
      ++stats_.wakeups;
      if (options_.spin.count() > 0) w->woken_at = std::chrono::steady_clock::now();
      return w.get();
    }
  }
  // A lingering worker gathers until a full take is waiting (or the queue is full).
  if (options_.linger.count() > 0 && take_now()) {
    for (auto& w : workers_) {
      if (std::exchange(w->lingering, false)) {
        ++stats_.wakeups;
        return w.get();
      }
    }
  }
  return nullptr;
}

std::size_t Queue::take_limit() const {
  if (batch_destination_) return options_.batch.max_events;
  return options_.workers > 1 ? 1 : options_.max_batch;
}

bool Queue::take_now() const {
  return stopping_ || closing_ || writers_waiting_ > 0 || waiting_.size() >= take_limit() ||
         (options_.capacity > 0 && waiting_.size() + in_flight_ >= options_.capacity);
}

void Queue::linger(Worker& self, std::unique_lock<std::mutex>& lock) {
  if (take_now()) return;
  const auto until = internal::saturating_add(std::chrono::steady_clock::now(), options_.linger);
  self.lingering = true;
  self.wake.wait_until(lock, until, [&] { return !self.lingering || take_now(); });
  self.lingering = false;
}

void Queue::wake_lingering() {
  for (auto& w : workers_) {
    if (std::exchange(w->lingering, false)) w->wake.notify_one();
  }
}

void Queue::park(Worker& self, std::unique_lock<std::mutex>& lock) {
  const auto idle = [&] { return !stopping_ && !closing_ && waiting_.empty(); };
  if (options_.spin.count() <= 0 || options_.linger.count() > 0) {
    while (idle()) {
      self.idle = true;  // set again after every wake-up, spurious or not
      self.wake.wait(lock);
    }
    return;
  }
  const auto ran_out = std::chrono::steady_clock::now();
  const auto spin_end = internal::saturating_add(ran_out, options_.spin);
  bool caught = self.spin_score >= kSpinWorthIt && spin(lock, spin_end);
  while (idle()) {
    self.idle = true;
    self.wake.wait(lock);
  }
  // Parked: would a spin have caught the event that woke it? (A close or a spurious wake-up
  // leaves woken_at before ran_out: a miss.)
  if (!caught) caught = self.woken_at >= ran_out && self.woken_at <= spin_end;
  self.spin_score += ((caught ? kSpinScoreMax : 0) - self.spin_score) / 8;
}

bool Queue::spin(std::unique_lock<std::mutex>& lock, std::chrono::steady_clock::time_point until) {
  // Spinners over every queue in the process: at most half the cores, so that producers (and the
  // workers of other queues) keep a core.
  static std::atomic<unsigned> spinning{0};
  static const unsigned max_spinning = std::thread::hardware_concurrency() / 2;
  if (spinning.fetch_add(1, std::memory_order_relaxed) >= max_spinning) {
    spinning.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  const std::uint64_t seen = signals_.load(std::memory_order_relaxed);
  spinners_.fetch_add(1, std::memory_order_relaxed);
  lock.unlock();
  bool signalled = false;
  for (unsigned i = 1;; ++i) {
    if (signals_.load(std::memory_order_relaxed) != seen) {
      signalled = true;
      break;
    }
    cpu_relax();
    if (i % 64 == 0 && std::chrono::steady_clock::now() >= until) break;
  }
  // Decremented before mu_ is taken again: a producer that then finds no spinner finds this worker
  // idle, or finds that it has taken the events.
  spinners_.fetch_sub(1, std::memory_order_relaxed);
  spinning.fetch_sub(1, std::memory_order_relaxed);
  lock.lock();
  return signalled;
}

void Queue::dead_letter(const Event& event) {
  if (!options_.dead_letter) return;
  if (options_.dead_letter->write(event).is_ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.dead_lettered;
  }
}

bool Queue::batch_ready() const {
  return waiting_.size() >= options_.batch.max_events ||
         (options_.batch.max_bytes > 0 && waiting_bytes_ >= options_.batch.max_bytes) ||
         // A full queue cannot fill the batch any further: waiting for max_wait would only stall
         // the writers.
         (options_.capacity > 0 && waiting_.size() + in_flight_ >= options_.capacity);
}

void Queue::take(std::vector<Event>& batch) {
  const std::size_t limit = take_limit();
  std::uint64_t bytes = 0;
  if (!counts_bytes_) {  // no byte bound: no need to look into the events
    while (!waiting_.empty() && batch.size() < limit) {
      batch.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
    return;
  }
  while (!waiting_.empty() && batch.size() < limit) {
    const std::uint64_t size = batch_bytes(waiting_.front());
    if (batch_destination_ && options_.batch.max_bytes > 0 && !batch.empty() &&
        bytes + size > options_.batch.max_bytes) {
      break;
    }
    bytes += size;
    waiting_bytes_ -= size;
    batch.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

void Queue::run(Worker& self) {
  std::vector<Event> batch;
  batch.reserve(batch_destination_ ? options_.batch.max_events : options_.max_batch);
  std::vector<Status> results;
  std::vector<Event> undelivered;  // only ever filled once close_until's deadline has passed
  const bool lingers = options_.linger.count() > 0;
  bool delivered_before = false;  // lingering starts after the first delivery from idle
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (lingers && delivered_before) linger(self, lock);
    if (!stopping_ && !closing_ && waiting_.empty()) park(self, lock);
    delivered_before = !waiting_.empty();
    self.idle = false;
    if (stopping_ || waiting_.empty()) break;  // past the close deadline, or closing and drained

    // max_wait 0: take whatever is waiting now (no clock read, no timed wait).
    if (batch_destination_ && !closing_ && options_.batch.max_wait.count() > 0 && !batch_ready()) {
      // Wait for the batch to fill, at most max_wait; producers wake us (idle) at every event.
      const Clock::TimePoint deadline =
          internal::saturating_add(clock_->now(), options_.batch.max_wait);
      clock_->wait_until(lock, self.wake, deadline, [&] {
        self.idle = true;
        return stopping_ || closing_ || batch_ready();
      });
      self.idle = false;
      if (stopping_) break;
      if (waiting_.empty()) continue;  // another worker took them
    }

    take(batch);
    in_flight_ += batch.size();
    if (batch_destination_) ++stats_.batches;
    lock.unlock();

    std::uint64_t delivered = 0, failed = 0;
    auto account = [&](Event& event, const Status& status) {
      if (status.is_ok()) {
        ++delivered;
      } else if (stopping_flag_.load(std::memory_order_acquire)) {
        undelivered.push_back(std::move(event));  // interrupted by close_until at its deadline
      } else {
        ++failed;
      }
    };
    if (batch_destination_) {
      results.assign(batch.size(), Status());
      batch_destination_->write_batch(batch, results);
      for (std::size_t i = 0; i < batch.size(); ++i) account(batch[i], results[i]);
    } else {
      for (Event& event : batch) {
        // Once the deadline has passed the rest of the batch is not attempted: it is undelivered.
        if (stopping_flag_.load(std::memory_order_acquire)) {
          undelivered.push_back(std::move(event));
          continue;
        }
        account(event, destination_->write(event));
      }
    }
    const std::size_t taken = batch.size();
    batch.clear();  // releases the events without the lock held
    results.clear();

    lock.lock();
    stats_.delivered += delivered;
    stats_.failed += failed;
    stats_.undelivered_at_close += undelivered.size();
    report_.undelivered += undelivered.size();
    in_flight_ -= taken;
    if (writers_waiting_ > 0) has_room_.notify_all();
    if (closing_ && waiting_.empty() && in_flight_ == 0) drained_.notify_all();
    if (!undelivered.empty()) {
      lock.unlock();
      for (const Event& e : undelivered) dead_letter(e);
      undelivered.clear();
      lock.lock();
    }
  }
}

Queue::CloseReport Queue::close_until(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  if (closing_) {
    // An earlier or concurrent close: wait for it to finish, then share its report.
    closed_cv_.wait(lock, [&] { return closed_; });
    return report_;
  }
  closing_ = true;
  signals_.fetch_add(1, std::memory_order_relaxed);  // a spinning worker stops spinning
  if (writers_waiting_ > 0) has_room_.notify_all();  // writers blocked for room get kClosed
  // Idle workers see closing_ and exit when nothing is waiting; one filling a batch sends it now.
  for (auto& w : workers_) w->wake.notify_all();

  const bool drained =
      drained_.wait_until(lock, deadline, [&] { return waiting_.empty() && in_flight_ == 0; });
  std::deque<Event> leftovers;
  if (!drained) {
    report_.timed_out = true;
    stopping_ = true;
    stopping_flag_.store(true, std::memory_order_release);
    leftovers.swap(waiting_);
    waiting_bytes_ = 0;
    report_.undelivered += leftovers.size();
    stats_.undelivered_at_close += leftovers.size();
    for (auto& w : workers_) w->wake.notify_all();
  }
  lock.unlock();

  if (drained) {
    for (auto& w : workers_) w->thread.join();  // idle: they exit by themselves
    destination_->close();
  } else {
    // Writes in flight must return before the workers can be joined; closing the destination
    // makes them do so promptly (see sink.h).
    destination_->close();
    for (auto& w : workers_) w->thread.join();
  }
  for (const Event& e : leftovers) dead_letter(e);

  lock.lock();
  closed_ = true;
  closed_cv_.notify_all();
  return report_;
}

Status Queue::close() {
  const CloseReport report = close_until(deadline_after(options_.close_timeout));
  if (report.undelivered == 0) return Status::ok();
  return Status::timeout(std::to_string(report.undelivered) +
                         " event(s) left undelivered at the close deadline");
}

bool Queue::wait_for_room(std::size_t n, std::chrono::steady_clock::time_point deadline) {
  const std::size_t cap = options_.capacity;
  if (cap == 0 || n == 0) return true;
  if (n > cap) return false;  // would never fit: no point waiting for the deadline
  std::unique_lock<std::mutex> lock(mu_);
  auto room = [&] { return waiting_.size() + in_flight_ + n <= cap; };
  ++writers_waiting_;
  wake_lingering();
  has_room_.wait_until(lock, deadline, [&] { return closing_ || room(); });
  --writers_waiting_;
  return !closing_ && room();
}

std::uint64_t Queue::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_.size() + in_flight_;
}

Queue::Stats Queue::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.pending = waiting_.size() + in_flight_;
  for (const auto& w : workers_) s.parked_workers += w->idle ? 1 : 0;
  s.blocked_writers = writers_waiting_;
  return s;
}

}  // namespace evroute
