#include "evroute/queue.h"

#include "deadline.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace evroute {

// How it works: the worker takes up to max_batch waiting events under the lock and delivers them
// without it; in_flight_ counts them until the whole batch is done, so `pending` (and the capacity
// bound) include events being delivered. A producer wakes the worker only when it sleeps, and the
// worker wakes writers only when some wait for room: an uncontended write is a lock, a push and an
// unlock. Dropped and undelivered events go to the dead-letter sink with no lock held.

namespace {

using internal::deadline_after;

Status closed_status() { return Status::closed("queue is closed"); }

}  // namespace

Queue::Queue(std::shared_ptr<Sink> destination, Options options)
    : destination_(std::move(destination)), options_(std::move(options)) {
  if (!destination_) throw std::invalid_argument("Queue: null destination");
  if (options_.max_batch == 0) throw std::invalid_argument("Queue: max_batch must be > 0");
  worker_ = std::thread([this] { run(); });
}

Queue::~Queue() { close(); }

Status Queue::write(const Event& event) {
  if (!event) return Status::invalid_argument("empty event");
  Event dropped;  // handed to the dead-letter sink once the lock is released
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (closing_) return closed_status();
    const std::size_t cap = options_.capacity;
    bool enqueue = true;
    if (cap > 0 && waiting_.size() + in_flight_ >= cap) {
      switch (options_.when_full) {
        case OverflowPolicy::kBlock: {
          auto room = [&] { return closing_ || waiting_.size() + in_flight_ < cap; };
          ++writers_waiting_;
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
          dropped = event;
          enqueue = false;
          break;
        case OverflowPolicy::kDropOldest:
          if (waiting_.empty()) {  // every pending event is with the destination already
            ++stats_.dropped_newest;
            dropped = event;
            enqueue = false;
          } else {
            ++stats_.dropped_oldest;
            dropped = std::move(waiting_.front());
            waiting_.pop_front();
          }
          break;
      }
    }
    if (enqueue) {
      waiting_.push_back(event);
      ++stats_.enqueued;
      const std::uint64_t pending = waiting_.size() + in_flight_;
      if (pending > stats_.high_water) stats_.high_water = pending;
      // Whoever clears the flag wakes the worker; the producers behind it need not.
      if (std::exchange(worker_waiting_, false)) has_events_.notify_one();
    }
  }
  if (dropped) dead_letter(dropped);
  return Status::ok();
}

void Queue::dead_letter(const Event& event) {
  if (!options_.dead_letter) return;
  if (options_.dead_letter->write(event).is_ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.dead_lettered;
  }
}

void Queue::run() {
  std::vector<Event> batch;
  batch.reserve(options_.max_batch);
  std::vector<Event> undelivered;  // only ever filled once close_until's deadline has passed
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    while (!stopping_ && !closing_ && waiting_.empty()) {
      worker_waiting_ = true;  // set again after every wake-up, spurious or not
      has_events_.wait(lock);
    }
    worker_waiting_ = false;
    if (stopping_ || waiting_.empty()) break;  // past the close deadline, or closing and drained

    while (!waiting_.empty() && batch.size() < options_.max_batch) {
      batch.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
    in_flight_ = batch.size();
    lock.unlock();

    std::uint64_t delivered = 0, failed = 0;
    for (Event& event : batch) {
      // Once the deadline has passed the rest of the batch is not attempted: it is undelivered.
      if (stopping_flag_.load(std::memory_order_acquire)) {
        undelivered.push_back(std::move(event));
        continue;
      }
      const Status status = destination_->write(event);
      if (status.is_ok()) {
        ++delivered;
      } else if (stopping_flag_.load(std::memory_order_acquire)) {
        undelivered.push_back(std::move(event));  // interrupted by close_until at its deadline
      } else {
        ++failed;
      }
    }
    batch.clear();  // releases the events without the lock held

    lock.lock();
    stats_.delivered += delivered;
    stats_.failed += failed;
    stats_.undelivered_at_close += undelivered.size();
    report_.undelivered += undelivered.size();
    in_flight_ = 0;
    if (writers_waiting_ > 0) has_room_.notify_all();
    if (closing_ && waiting_.empty()) drained_.notify_all();
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
  if (writers_waiting_ > 0) has_room_.notify_all();  // writers blocked for room get kClosed
  has_events_.notify_one();  // an idle worker sees closing_ and exits when nothing is waiting

  const bool drained =
      drained_.wait_until(lock, deadline, [&] { return waiting_.empty() && in_flight_ == 0; });
  std::deque<Event> leftovers;
  if (!drained) {
    report_.timed_out = true;
    stopping_ = true;
    stopping_flag_.store(true, std::memory_order_release);
    leftovers.swap(waiting_);
    report_.undelivered += leftovers.size();
    stats_.undelivered_at_close += leftovers.size();
    has_events_.notify_one();
  }
  lock.unlock();

  if (drained) {
    worker_.join();  // idle: it exits by itself
    destination_->close();
  } else {
    // A write in flight must return before the worker can be joined; closing the destination
    // makes it do so promptly (see sink.h).
    destination_->close();
    worker_.join();
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
  has_room_.wait_until(lock, deadline, [&] { return closing_ || room(); });
  --writers_waiting_;
  return !closing_ && room();
}

Queue::Stats Queue::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.pending = waiting_.size() + in_flight_;
  s.blocked_writers = writers_waiting_;
  return s;
}

}  // namespace evroute
