// OwnedCounter: a statistics counter for a hot path that one thread usually drives.
//
// An atomic fetch_add is a locked instruction (about 6 ns on the 2-core machine of bench/README.md,
// issue 15), and a sink's write path counted several per event. The first thread to add becomes the
// counter's owner and adds to a slot of its own with a plain load and store; every other thread
// adds to a shared atomic. value() is their sum: exact once the adds it should see happened before
// it (as for any counter), and never torn.
//
// Thread-safety: add() and value() are safe from any thread, concurrently.
#pragma once

#include <atomic>
#include <cstdint>

namespace evroute::detail {

class OwnedCounter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    const void* self = thread_tag();
    const void* owner = owner_.load(std::memory_order_relaxed);
    if (owner == nullptr &&
        owner_.compare_exchange_strong(owner, self, std::memory_order_relaxed)) {
      owner = self;
    }
    if (owner == self) {
      // Only the owner writes owned_: a plain read-modify-write is enough, and readers see
      // either the old or the new count.
      owned_.store(owned_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    } else {
      shared_.fetch_add(n, std::memory_order_relaxed);
    }
  }
  std::uint64_t value() const noexcept {
    return owned_.load(std::memory_order_relaxed) + shared_.load(std::memory_order_relaxed);
  }

 private:
  // An address unique to each live thread (a thread that ends hands its address, and so the
  // counter's slot, to no one while it runs: a later thread that reuses it started after it ended).
  static const void* thread_tag() noexcept {
    static thread_local const char tag = 0;
    return &tag;
  }
  std::atomic<const void*> owner_{nullptr};
  std::atomic<std::uint64_t> owned_{0};
  std::atomic<std::uint64_t> shared_{0};
};

}  // namespace evroute::detail
