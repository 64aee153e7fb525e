#include "evroute/budget.h"

#include <stdexcept>

namespace evroute {

// How it works: an event records the budget it is charged to in one byte of its header (the index
// of the budget in this table), so charging adds no memory per event; Event's release looks the
// budget up here when the last handle goes.

namespace {

std::atomic<MemoryBudget*> g_budgets[256];  // slot 0 means "not charged"

std::uint8_t claim_slot(MemoryBudget* budget) {
  for (std::size_t i = 1; i < 256; ++i) {
    MemoryBudget* expected = nullptr;
    if (g_budgets[i].compare_exchange_strong(expected, budget, std::memory_order_acq_rel)) {
      return static_cast<std::uint8_t>(i);
    }
  }
  throw std::length_error("MemoryBudget: more than 255 budgets at once");
}

}  // namespace

MemoryBudget::MemoryBudget(std::size_t limit_bytes)
    : limit_(limit_bytes), slot_(claim_slot(this)) {}

MemoryBudget::~MemoryBudget() { g_budgets[slot_].store(nullptr, std::memory_order_release); }

std::size_t MemoryBudget::uncharged_bytes(std::span<const Event> events) noexcept {
  std::size_t bytes = 0;
  for (const Event& e : events) {
    if (!e.charged()) bytes += e.footprint();
  }
  return bytes;
}

bool MemoryBudget::try_charge(std::span<const Event> events) {
  const std::size_t bytes = uncharged_bytes(events);
  std::size_t used = in_use_.load(std::memory_order_relaxed);
  do {
    if (limit_ > 0 && (bytes > limit_ || used > limit_ - bytes)) {
      rejections_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } while (!in_use_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  // Reserved; now mark the events. One marked meanwhile (charged elsewhere, or listed twice here)
  // keeps its first charge, and what was reserved for it is given back.
  std::size_t marked = 0;
  for (const Event& e : events) {
    if (e.charge_to(slot_)) marked += e.footprint();
  }
  if (marked != bytes) in_use_.fetch_sub(bytes - marked, std::memory_order_relaxed);
  return true;
}

void MemoryBudget::release(std::uint8_t slot, std::size_t bytes) noexcept {
  if (MemoryBudget* b = g_budgets[slot].load(std::memory_order_acquire)) {
    b->in_use_.fetch_sub(bytes, std::memory_order_relaxed);
  }
}

}  // namespace evroute
