// Fake sinks for the library tests, in place of the copies each test file used to define:
//   RecordingSink       keeps every event it takes (the Event handles themselves, so a test can
//                       check same_as() and use_count()); answers writes with a chosen Status
//   GatedSink           holds every write at a gate until open(), release(n) or close(); records
//                       the ids it takes and how many writes entered, waited and returned
//   RecordingBatchSink  a BatchSink that records every batch (a write() is a batch of one) and
//                       answers each with what `answer` says
// A fake that only one test needs (a scripted or flaky destination, a failing close) stays in that
// test.
//
// Every one follows sink.h's contract where a test does not choose otherwise: after close() every
// write returns kClosed; close() itself never fails (each call is counted).
//
// Thread-safety: every method is safe from any thread (one mutex per sink); the waits are bounded
// (30 s by default) and answer whether the condition came true.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "evroute/batch_sink.h"
#include "evroute/event.h"
#include "evroute/sink.h"
#include "evroute/status.h"

namespace evtest {

inline constexpr std::chrono::seconds kFakeSinkWait{30};

// Takes every event and keeps it, unless `answer` (OK by default) is an error: then it keeps
// nothing and returns it (the sink did not take the event). writes() counts every call, refused
// ones included.
class RecordingSink final : public evroute::Sink {
 public:
  explicit RecordingSink(evroute::Status answer = evroute::Status::ok())
      : answer_(std::move(answer)) {}

  evroute::Status write(const evroute::Event& event) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++writes_;
    if (closed_) return evroute::Status::closed();
    if (!answer_.is_ok()) return answer_;
    events_.push_back(event);
    changed_.notify_all();
    return evroute::Status::ok();
  }
  evroute::Status close() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++closes_;
    closed_ = true;
    changed_.notify_all();
    return evroute::Status::ok();
  }

  // What later writes answer (before close()).
  void answer(evroute::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    answer_ = std::move(s);
  }
  // Waits until at least n events were taken.
  bool wait_for_count(std::size_t n, std::chrono::milliseconds timeout = kFakeSinkWait) const {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return events_.size() >= n; });
  }

  std::vector<evroute::Event> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::vector<std::string> ids() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> ids;
    for (const evroute::Event& e : events_) ids.emplace_back(e.id());
    return ids;
  }
  int count() const {  // events taken
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(events_.size());
  }
  int writes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return writes_;
  }
  int closes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closes_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  evroute::Status answer_;
  std::vector<evroute::Event> events_;
  int writes_ = 0, closes_ = 0;
  bool closed_ = false;
};

// A slow or dead destination. The gate starts shut: every write waits until open() lets all
// writes through from then on, release(n) lets n more through, or close() makes the waiting and
// later writes return kClosed. A write let through records its event's id and returns OK.
//
// It keeps ids, not Event handles: an event is released when its write returns, as by a real
// destination (memory-budget tests rely on that).
class GatedSink final : public evroute::Sink {
 public:
  evroute::Status write(const evroute::Event& event) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    ++inside_;
    max_inside_ = std::max(max_inside_, inside_);
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_ || permits_ > 0 || closed_; });
    --inside_;
    ++returned_;
    if (closed_) return evroute::Status::closed();
    if (!open_) --permits_;
    ids_.emplace_back(event.id());
    changed_.notify_all();
    return evroute::Status::ok();
  }
  evroute::Status close() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++closes_;
    closed_ = true;
    changed_.notify_all();
    return evroute::Status::ok();
  }

  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  void release(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    permits_ += n;
    changed_.notify_all();
  }

  // Wait until at least n writes have entered write() / are inside it at once / were let through.
  bool wait_entered(int n, std::chrono::milliseconds timeout = kFakeSinkWait) const {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return entered_ >= n; });
  }
  bool wait_inside(int n, std::chrono::milliseconds timeout = kFakeSinkWait) const {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return inside_ >= n; });
  }
  bool wait_for_count(std::size_t n, std::chrono::milliseconds timeout = kFakeSinkWait) const {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return ids_.size() >= n; });
  }

  std::vector<std::string> ids() const {  // of the events let through, in order
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }
  int count() const {  // events let through
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(ids_.size());
  }
  int entered() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entered_;
  }
  int returned() const {
    std::lock_guard<std::mutex> lock(mu_);
    return returned_;
  }
  int max_inside() const {  // the most writes waiting at the gate at once
    std::lock_guard<std::mutex> lock(mu_);
    return max_inside_;
  }
  int closes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closes_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  bool open_ = false, closed_ = false;
  int permits_ = 0;
  int entered_ = 0, inside_ = 0, max_inside_ = 0, returned_ = 0, closes_ = 0;
  std::vector<std::string> ids_;
};

// Records the ids of every batch it is handed, in order; write() is a batch of one. `answer`
// (OK when unset) decides a batch's outcome, one Status for the whole batch as an HTTP request
// would have: it is called outside the sink's lock, and is set before the sink is used.
class RecordingBatchSink final : public evroute::BatchSink {
 public:
  using Ids = std::vector<std::string>;
  std::function<evroute::Status(const Ids&)> answer;

  evroute::Status write(const evroute::Event& event) override {
    std::vector<evroute::Status> results(1);
    return write_batch(std::span<const evroute::Event>(&event, 1), results);
  }
  evroute::Status write_batch(std::span<const evroute::Event> events,
                              std::span<evroute::Status> results) override {
    if (evroute::Status s = evroute::check_batch(events, results); !s.is_ok()) return s;
    Ids ids;
    for (const evroute::Event& e : events) ids.emplace_back(e.id());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return evroute::Status::closed();
      batches_.push_back(ids);
      total_ += ids.size();
    }
    const evroute::Status status = answer ? answer(ids) : evroute::Status::ok();
    std::fill(results.begin(), results.end(), status);
    return status;
  }
  evroute::Status close() override {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    return evroute::Status::ok();
  }

  std::vector<Ids> batches() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  std::vector<std::size_t> sizes() const {  // of every batch, in order
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::size_t> sizes;
    for (const Ids& b : batches_) sizes.push_back(b.size());
    return sizes;
  }
  std::size_t total() const {  // events in all batches
    std::lock_guard<std::mutex> lock(mu_);
    return total_;
  }

 private:
  mutable std::mutex mu_;
  bool closed_ = false;
  std::vector<Ids> batches_;
  std::size_t total_ = 0;
};

}  // namespace evtest
