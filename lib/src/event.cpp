#include "evroute/event.h"

#include "evroute/budget.h"

#include <atomic>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

namespace evroute {

// One allocation per event: this header, then the bytes laid out as
//   id | attribute table (key length, value length: uint16 each) | attribute keys and values |
//   payload
// The header is 24 bytes; with a 36-byte UUID and a 200-byte payload an event takes one 272-byte
// malloc chunk.
struct Event::Rep {
  std::int64_t received_ns;
  std::atomic<std::uint32_t> refs;
  std::uint32_t payload_size;
  std::uint32_t total_size;  // bytes after the header
  std::uint16_t id_size;
  std::uint8_t attribute_count;
  std::atomic<std::uint8_t> budget;  // MemoryBudget slot charged with this event; 0: none

  char* bytes() { return reinterpret_cast<char*>(this + 1); }
  const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }
  const char* table() const { return bytes() + id_size; }
  std::uint16_t len(std::size_t i) const {  // i-th uint16 of the attribute table (unaligned)
    std::uint16_t v;
    std::memcpy(&v, table() + 2 * i, sizeof v);
    return v;
  }
  const char* attribute_bytes() const { return table() + 4 * attribute_count; }
  const char* payload() const { return bytes() + (total_size - payload_size); }
};
static_assert(sizeof(Event::TimePoint::rep) == 8);

namespace {

// Keys are short ("type", a filter's field): a byte loop beats a call to memcmp per attribute,
// and filters look one up per event and sink.
bool same_key(const char* p, std::size_t n, std::string_view key) {
  if (n != key.size()) return false;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != key[i]) return false;
  }
  return true;
}

}  // namespace

Event Event::make(std::string_view id, std::string_view payload,
                  std::span<const Attribute> attributes, TimePoint received) {
  return make_joined(id, std::span<const std::string_view>(&payload, 1), attributes, received);
}

Event Event::make_joined(std::string_view id, std::span<const std::string_view> payload_parts,
                         std::span<const Attribute> attributes, TimePoint received) {
  static_assert(sizeof(Rep) == 24, "the header stays 24 bytes (see bench/README.md (d))");
  if (id.size() > kMaxIdBytes) throw std::length_error("event id longer than 65535 bytes");
  if (attributes.size() > kMaxAttributes) throw std::length_error("more than 255 event attributes");
  std::size_t payload_size = 0;
  for (std::string_view part : payload_parts) payload_size += part.size();
  if (payload_size > 0xffffffffu - 0x10000u) throw std::length_error("event payload too large");
  std::size_t total = id.size() + 4 * attributes.size() + payload_size;
  for (const Attribute& a : attributes) {
    if (a.key.size() > kMaxAttributeBytes || a.value.size() > kMaxAttributeBytes) {
      throw std::length_error("event attribute longer than 65535 bytes");
    }
    total += a.key.size() + a.value.size();
  }
  if (total > 0xffffffffu) throw std::length_error("event too large");

  void* mem = ::operator new(sizeof(Rep) + total);
  Rep* rep = new (mem) Rep{};
  rep->received_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(received.time_since_epoch()).count();
  rep->refs.store(1, std::memory_order_relaxed);
  rep->payload_size = static_cast<std::uint32_t>(payload_size);
  rep->total_size = static_cast<std::uint32_t>(total);
  rep->id_size = static_cast<std::uint16_t>(id.size());
  rep->attribute_count = static_cast<std::uint8_t>(attributes.size());

  char* p = rep->bytes();
  if (!id.empty()) std::memcpy(p, id.data(), id.size());
  p += id.size();
  for (const Attribute& a : attributes) {
    std::uint16_t lens[2] = {static_cast<std::uint16_t>(a.key.size()),
                             static_cast<std::uint16_t>(a.value.size())};
    std::memcpy(p, lens, sizeof lens);
    p += sizeof lens;
  }
  for (const Attribute& a : attributes) {
    if (!a.key.empty()) std::memcpy(p, a.key.data(), a.key.size());
    p += a.key.size();
    if (!a.value.empty()) std::memcpy(p, a.value.data(), a.value.size());
    p += a.value.size();
  }
  for (std::string_view part : payload_parts) {
    if (!part.empty()) std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
  return Event(rep);
}

Event::Event(const Event& other) noexcept : rep_(other.rep_) {
  if (rep_) rep_->refs.fetch_add(1, std::memory_order_relaxed);
}

Event& Event::operator=(const Event& other) noexcept {
  if (other.rep_) other.rep_->refs.fetch_add(1, std::memory_order_relaxed);
  Rep* old = rep_;
  rep_ = other.rep_;
  if (old) release(old);
  return *this;
}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    Rep* old = rep_;
    rep_ = other.rep_;
    other.rep_ = nullptr;
    if (old) release(old);
  }
  return *this;
}

void Event::release(Rep* rep) noexcept {
  if (rep->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    if (const std::uint8_t slot = rep->budget.load(std::memory_order_relaxed)) {
      MemoryBudget::release(slot, sizeof(Rep) + rep->total_size);
    }
    rep->~Rep();
    ::operator delete(static_cast<void*>(rep));
  }
}

void Event::release_all(std::span<Event> events) noexcept {
  constexpr std::size_t kAhead = 8;
  const std::size_t n = events.size();
  for (std::size_t i = 0; i < n && i < kAhead; ++i) __builtin_prefetch(events[i].rep_, 1);
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) __builtin_prefetch(events[i + kAhead].rep_, 1);
    if (Rep* rep = std::exchange(events[i].rep_, nullptr)) release(rep);
  }
}

std::string_view Event::id() const noexcept {
  return rep_ ? std::string_view(rep_->bytes(), rep_->id_size) : std::string_view();
}

std::string_view Event::payload() const noexcept {
  return rep_ ? std::string_view(rep_->payload(), rep_->payload_size) : std::string_view();
}

Event::TimePoint Event::received() const noexcept {
  if (!rep_) return TimePoint();
  return TimePoint(
      std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(rep_->received_ns)));
}

std::size_t Event::attribute_count() const noexcept { return rep_ ? rep_->attribute_count : 0; }

Attribute Event::attribute_at(std::size_t index) const noexcept {
  if (!rep_ || index >= rep_->attribute_count) return {};
  const char* p = rep_->attribute_bytes();
  for (std::size_t i = 0; i < index; ++i) p += rep_->len(2 * i) + rep_->len(2 * i + 1);
  std::uint16_t klen = rep_->len(2 * index), vlen = rep_->len(2 * index + 1);
  return {std::string_view(p, klen), std::string_view(p + klen, vlen)};
}

std::optional<std::string_view> Event::attribute(std::string_view key) const noexcept {
  if (!rep_) return std::nullopt;
  const char* p = rep_->attribute_bytes();
  for (std::size_t i = 0; i < rep_->attribute_count; ++i) {
    std::uint16_t klen = rep_->len(2 * i), vlen = rep_->len(2 * i + 1);
    if (same_key(p, klen, key)) return std::string_view(p + klen, vlen);
    p += klen + vlen;
  }
  return std::nullopt;
}

std::size_t Event::footprint() const noexcept { return rep_ ? sizeof(Rep) + rep_->total_size : 0; }

bool Event::charged() const noexcept {
  return rep_ && rep_->budget.load(std::memory_order_relaxed) != 0;
}

bool Event::charge_to(std::uint8_t slot) const noexcept {
  if (!rep_) return false;
  std::uint8_t none = 0;
  return rep_->budget.compare_exchange_strong(none, slot, std::memory_order_relaxed);
}

std::uint32_t Event::use_count() const noexcept {
  return rep_ ? rep_->refs.load(std::memory_order_relaxed) : 0;
}

}  // namespace evroute
