#include "evroute/durable_queue.h"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>

#include "batch_bound.h"
#include "deadline.h"

namespace evroute {

// How it works: producers append to the log (its group commit makes concurrent appends share a
// sync). The worker follows the log from the cursor: wait for records past it, read a batch,
// deliver one by one, move the in-memory cursor; every cursor_interval it stores the cursor and
// releases the segments behind it. The stored cursor only ever lags the real progress, which is
// what makes a crash cost duplicates, never losses.

namespace {

using SteadyClock = std::chrono::steady_clock;

// Counts the records from `from` to the end of the log.
Status count_records(const DiskLog& log, DiskLog::Position from, std::uint64_t* count) {
  std::vector<DiskLog::ReadRecord> batch;
  *count = 0;
  for (;;) {
    batch.clear();
    if (Status s = log.read(from, 4096, &batch); !s.is_ok()) return s;
    if (batch.empty()) return Status::ok();
    *count += batch.size();
    from = batch.back().next;
  }
}

}  // namespace

std::unique_ptr<DurableQueue> DurableQueue::open(std::shared_ptr<Sink> destination, Options options,
                                                 Status* error, DiskLog::RecoveryReport* report) {
  if (!destination) throw std::invalid_argument("DurableQueue: null destination");
  if (options.max_batch == 0) throw std::invalid_argument("DurableQueue: max_batch must be > 0");
  if (options.batch.max_events > 1 && !destination->as_batch_sink()) {
    throw std::invalid_argument("DurableQueue: batching needs a BatchSink destination");
  }
  if (options.when_full == OverflowPolicy::kDropOldest) {
    *error = Status::invalid_argument("a durable queue cannot drop its oldest events");
    return nullptr;
  }
  auto log = DiskLog::open(options.log, error, report);
  if (!log) return nullptr;
  CursorFile cursor_file(options.log.dir / "cursor", options.log.fs);
  DiskLog::Position cursor;
  if (*error = cursor_file.load(&cursor); !error->is_ok()) return nullptr;
  // A cursor behind the oldest segment (reclaimed) starts at it; one past the recovered end (a
  // torn tail was cut after those events were delivered) starts at the end.
  if (cursor < log->begin()) cursor = log->begin();
  if (cursor > log->end()) cursor = log->end();
  std::uint64_t pending = 0;
  if (*error = count_records(*log, cursor, &pending); !error->is_ok()) return nullptr;
  return std::unique_ptr<DurableQueue>(new DurableQueue(std::move(destination), std::move(options),
                                                        std::move(log), cursor, pending));
}

DurableQueue::DurableQueue(std::shared_ptr<Sink> destination, Options options,
                           std::unique_ptr<DiskLog> log, DiskLog::Position cursor,
                           std::uint64_t pending)
    : destination_(std::move(destination)),
      options_(std::move(options)),
      batch_destination_(options_.batch.max_events > 1 ? destination_->as_batch_sink() : nullptr),
      log_(std::move(log)),
      cursor_file_(options_.log.dir / "cursor", options_.log.fs),
      cursor_(cursor) {
  stats_.recovered = pending;
  stats_.pending = pending;
  stats_.high_water = pending;
  worker_ = std::thread([this] { run(); });
}

DurableQueue::~DurableQueue() { close(); }

Status DurableQueue::write(const Event& event) {
  return write_all(std::span<const Event>(&event, 1));
}

Status DurableQueue::write_all(std::span<const Event> events) {
  if (events.empty()) return Status::ok();
  std::vector<DiskLog::Record> records;
  records.reserve(events.size());
  std::uint64_t bytes = 0;
  for (const Event& event : events) {
    if (!event) return Status::invalid_argument("empty event");
    records.push_back(DiskLog::Record{event, {}});
    bytes += DiskLog::framed_size(records.back());
  }
  const std::uint64_t n = events.size();
  {
    // Counted as pending before the append: the worker may deliver them before append() returns.
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return Status::closed("queue is closed");
    stats_.pending += n;
  }
  const auto deadline = options_.block_timeout.count() == 0
                            ? SteadyClock::time_point::max()
                            : internal::deadline_after(options_.block_timeout);
  Status status;
  for (;;) {
    status = log_->append(records);
    if (status.code() != Code::kFull || options_.when_full == OverflowPolicy::kDropNewest ||
        !log_->wait_for_room(bytes, deadline)) {
      break;
    }
  }
  std::uint64_t dead_lettered = 0;
  const bool drop =
      status.code() == Code::kFull && options_.when_full == OverflowPolicy::kDropNewest;
  if (drop && options_.dead_letter) {
    for (const Event& event : events) dead_lettered += options_.dead_letter->write(event).is_ok();
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (status.is_ok()) {
    stats_.enqueued += n;
    stats_.high_water = std::max(stats_.high_water, stats_.pending);
    return status;
  }
  stats_.pending -= n;
  if (drop) {
    stats_.dropped_newest += n;
    stats_.dead_lettered += dead_lettered;
    return Status::ok();
  }
  if (status.code() == Code::kFull) stats_.rejected_full += n;
  if (status.code() == Code::kClosed || closing_) return Status::closed("queue is closed");
  return status;
}

Status DurableQueue::store_cursor(DiskLog::Position position) {
  const Status stored = cursor_file_.store(position);
  // Released even when the cursor could not be stored (see the header: safe, and it lets a disk
  // the queue filled itself drain).
  const Status released = log_->release(position);
  std::lock_guard<std::mutex> lock(mu_);
  if (stored.is_ok()) {
    ++stats_.cursor_stores;
  } else {
    ++stats_.disk_errors;
  }
  return stored.is_ok() ? released : stored;
}

bool DurableQueue::closing() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closing_;
}

void DurableQueue::finish(std::uint64_t delivered, std::uint64_t failed, DiskLog::Position pos,
                          bool batch) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.delivered += delivered;
  stats_.failed += failed;
  stats_.pending -= delivered + failed;
  if (batch && delivered + failed > 0) ++stats_.batches;
  cursor_ = pos;
  if (closing_ && stats_.pending == 0) closed_cv_.notify_all();  // close_until waits for it
}

void DurableQueue::fill_batch(std::vector<DiskLog::ReadRecord>& records,
                              SteadyClock::time_point started) {
  const std::size_t want = options_.batch.max_events;
  const auto until = internal::saturating_add(started, options_.batch.max_wait);
  while (records.size() < want && !stop_.load(std::memory_order_acquire) && !closing()) {
    // In slices, so that a close is noticed within one: appends wake the wait, a close does not.
    const auto slice = std::min(until, SteadyClock::now() + std::chrono::milliseconds(20));
    if (!log_->wait_beyond(records.back().next, slice)) {
      if (SteadyClock::now() >= until) return;
      continue;
    }
    if (!log_->read(records.back().next, want - records.size(), &records).is_ok()) return;
  }
}

void DurableQueue::deliver_batches(std::vector<DiskLog::ReadRecord>& records,
                                   DiskLog::Position* pos) {
  std::vector<Event> batch;
  std::vector<Status> results;
  std::size_t i = 0;
  while (i < records.size()) {
    if (stop_.load(std::memory_order_acquire)) return;
    batch.clear();
    std::uint64_t bytes = 0;
    std::size_t end = i;
    while (end < records.size() && batch.size() < options_.batch.max_events) {
      const std::uint64_t size = internal::batch_bytes(records[end].event);
      if (!internal::joins_batch(batch.empty(), bytes, size, options_.batch.max_bytes)) break;
      bytes += size;
      batch.push_back(std::move(records[end].event));
      ++end;
    }
    results.assign(batch.size(), Status());
    batch_destination_->write_batch(batch, results);
    const bool stopping = stop_.load(std::memory_order_acquire);
    std::uint64_t delivered = 0, failed = 0;
    std::size_t done = 0;
    for (; done < results.size(); ++done) {
      if (stopping && results[done].is_closed()) break;  // interrupted: not finished
      ++(results[done].is_ok() ? delivered : failed);
    }
    if (done > 0) *pos = records[i + done - 1].next;
    finish(delivered, failed, *pos, /*batch=*/true);
    if (done < results.size()) return;
    i = end;
  }
}

void DurableQueue::run() {
  DiskLog::Position pos;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pos = cursor_;
  }
  DiskLog::Position stored = pos;
  auto last_store = SteadyClock::now();
  auto next_probe = SteadyClock::now();
  std::vector<DiskLog::ReadRecord> records;
  for (;;) {
    if (stop_.load(std::memory_order_acquire)) break;
    SteadyClock::time_point deadline;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closing_ && stats_.pending == 0) break;  // drained
      deadline = std::min(deadline_, SteadyClock::now() + options_.cursor_interval);
    }
    if (log_->wait_beyond(pos, deadline)) {
      records.clear();
      const std::size_t limit = batch_destination_
                                    ? std::max(options_.max_batch, options_.batch.max_events)
                                    : options_.max_batch;
      if (Status s = log_->read(pos, limit, &records); !s.is_ok()) {
        // Unreadable (the disk changed under us): skip to the next segment rather than stall.
        pos = DiskLog::Position{pos.segment + 1, 0};
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.corrupt_skipped;
      }
      if (batch_destination_) {
        if (!records.empty() && options_.batch.max_wait.count() > 0 &&
            records.size() < options_.batch.max_events) {
          fill_batch(records, SteadyClock::now());
        }
        deliver_batches(records, &pos);
      } else {
        for (const DiskLog::ReadRecord& record : records) {
          if (stop_.load(std::memory_order_acquire)) break;
          const Status status = destination_->write(record.event);
          if (status.is_closed() && stop_.load(std::memory_order_acquire)) break;  // not finished
          pos = record.next;
          finish(status.is_ok() ? 1 : 0, status.is_ok() ? 0 : 1, pos, /*batch=*/false);
        }
      }
    }
    if (pos != stored && SteadyClock::now() - last_store >= options_.cursor_interval) {
      // A failure leaves the older cursor (duplicates, not losses) and is tried again later.
      if (store_cursor(pos).is_ok()) stored = pos;
      last_store = SteadyClock::now();
    }
    if (SteadyClock::now() >= next_probe) {
      if (!log_->health().is_ok()) (void)log_->probe();
      next_probe = SteadyClock::now() + options_.probe_interval;
    }
  }
  if (pos != stored) (void)store_cursor(pos);
  std::lock_guard<std::mutex> lock(mu_);
  closed_cv_.notify_all();
}

Status DurableQueue::close() {
  close_until(internal::deadline_after(options_.close_timeout));
  return Status::ok();
}

DurableQueue::CloseReport DurableQueue::close_until(SteadyClock::time_point deadline) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (closing_) {
      closed_cv_.wait(lock, [&] { return closed_; });
      return report_;
    }
    closing_ = true;
    deadline_ = deadline;
    // The worker exits when drained; past the deadline it is stopped.
    const bool drained = closed_cv_.wait_until(lock, deadline, [&] { return stats_.pending == 0; });
    if (!drained) report_.timed_out = true;
  }
  stop_.store(true, std::memory_order_release);
  destination_->close();  // makes a write in flight return
  if (worker_.joinable()) worker_.join();
  log_->close();
  std::lock_guard<std::mutex> lock(mu_);
  report_.kept = stats_.pending;
  closed_ = true;
  closed_cv_.notify_all();
  return report_;
}

DurableQueue::Stats DurableQueue::stats() const {
  Stats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = stats_;
  }
  const DiskLog::Stats log = log_->stats();
  s.disk_bytes = log.live_bytes;
  s.disk_errors += log.write_errors;
  return s;
}

Status DurableQueue::health() const { return log_->health(); }

}  // namespace evroute
