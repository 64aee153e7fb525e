// Internal to HttpServer: the bytes of request bodies held at once over every connection
// (Limits::max_buffered_bytes). Each connection's RequestParser charges its body as it reads it and
// gives the bytes back when the request is done with.
// Thread-safety: safe for concurrent use (the connections of every loop share one).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace evrouted::http::internal {

class BodyBudget {
 public:
  explicit BodyBudget(std::uint64_t limit) : limit_(limit) {}
  bool try_charge(std::uint64_t n) {
    std::uint64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (n > limit_ - std::min(used, limit_)) return false;
    } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
    return true;
  }
  void release(std::uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }

 private:
  const std::uint64_t limit_;
  std::atomic<std::uint64_t> used_{0};
};

}  // namespace evrouted::http::internal
