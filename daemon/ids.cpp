#include "ids.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

namespace evrouted {
namespace {

// Monotonic (milliseconds << 12 | counter), shared by all threads: the last stamp handed out.
std::atomic<std::uint64_t> last_stamp{0};

// The first of `n` new consecutive stamps.
std::uint64_t next_stamps(std::uint64_t n) {
  const auto ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  std::uint64_t candidate = ms << 12;
  std::uint64_t last = last_stamp.load(std::memory_order_relaxed);
  for (;;) {
    // Same (or earlier: clock stepped back) millisecond: count up instead; the counter's overflow
    // borrows from the next millisecond, which keeps order.
    const std::uint64_t first = candidate > last ? candidate : last + 1;
    if (last_stamp.compare_exchange_weak(last, first + n - 1, std::memory_order_relaxed)) {
      return first;
    }
  }
}

// Writes the id of `stamp` into `id`.
void format_id(std::uint64_t stamp, std::span<char, kEventIdBytes> id) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::uint64_t ms = stamp >> 12, counter = stamp & 0xfff;
  const std::uint64_t high = (ms << 16) | 0x7000 | counter;  // unix_ts_ms | ver | rand_a
  const std::uint64_t low =
      (rng() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // var | rand_b
  static constexpr char kHex[] = "0123456789abcdef";
  int pos = 0;
  auto put = [&](std::uint64_t v, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) id[pos++] = '-';
      id[pos++] = kHex[(v >> (4 * i)) & 0xf];
    }
  };
  put(high, 16);
  put(low, 16);
}

}  // namespace

std::string new_event_id() {
  std::string id(kEventIdBytes, '\0');
  new_event_id(std::span<char, kEventIdBytes>(id.data(), kEventIdBytes));
  return id;
}

void new_event_id(std::span<char, kEventIdBytes> id) { format_id(next_stamps(1), id); }

void EventIdBatch::next(std::span<char, kEventIdBytes> out) {
  if (stamp_ == end_) {
    stamp_ = next_stamps(run_);
    end_ = stamp_ + run_;
    run_ = std::min<std::uint64_t>(run_ * 2, 64);
  }
  format_id(stamp_++, out);
}

}  // namespace evrouted
