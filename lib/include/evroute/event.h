// Event: one immutable event — payload bytes plus metadata — shared, never copied.
//
// An Event is a handle to a single reference-counted allocation that holds the id, the receive
// time, a few string attributes (such as "type") and the payload bytes (typically a JSON object's
// text). Copying an Event increments a reference count; the bytes are never copied, so fanning one
// event out to N sinks costs N pointer copies. The library never looks inside the payload.
//
// A default-constructed (or moved-from) Event is empty: `!event`. Sinks reject empty events with
// Code::kInvalidArgument rather than crashing.
//
// Thread-safety: an Event is immutable; copies may be used and destroyed from any threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string_view>

namespace evroute {

struct Attribute {
  std::string_view key;
  std::string_view value;
};

class Event {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  // Limits of one event; make() throws std::length_error beyond them.
  static constexpr std::size_t kMaxIdBytes = 0xffff;
  static constexpr std::size_t kMaxAttributes = 0xff;
  static constexpr std::size_t kMaxAttributeBytes = 0xffff;  // per key and per value

  Event() noexcept = default;
  // Builds an event in one allocation. `received` defaults to now.
  static Event make(std::string_view id, std::string_view payload,
                    std::span<const Attribute> attributes = {},
                    TimePoint received = std::chrono::system_clock::now());
  static Event make(std::string_view id, std::string_view payload,
                    std::initializer_list<Attribute> attributes,
                    TimePoint received = std::chrono::system_clock::now()) {
    return make(id, payload, std::span<const Attribute>(attributes.begin(), attributes.size()),
                received);
  }

  // make() whose payload is the concatenation of `payload_parts`, so that a caller that splices
  // one together (ingest inserting a generated id) need not build it in a string first.
  static Event make_joined(std::string_view id, std::span<const std::string_view> payload_parts,
                           std::span<const Attribute> attributes, TimePoint received);

  Event(const Event& other) noexcept;
  Event(Event&& other) noexcept : rep_(other.rep_) { other.rep_ = nullptr; }
  Event& operator=(const Event& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  // Inline, so that the many handles left empty by moves cost a test, not a call.
  ~Event() {
    if (rep_) release(rep_);
  }

  explicit operator bool() const noexcept { return rep_ != nullptr; }

  // Accessors; on an empty event they return empty values.
  std::string_view id() const noexcept;
  std::string_view payload() const noexcept;
  TimePoint received() const noexcept;
  std::size_t attribute_count() const noexcept;
  Attribute attribute_at(std::size_t index) const noexcept;  // index < attribute_count()
  std::optional<std::string_view> attribute(std::string_view key) const noexcept;
  // The "type" attribute, or "" when there is none.
  std::string_view type() const noexcept { return attribute("type").value_or(std::string_view()); }

  // Bytes held by this event's allocation (for memory accounting).
  std::size_t footprint() const noexcept;
  // How many Event handles share this allocation (for tests and diagnostics).
  std::uint32_t use_count() const noexcept;

  // Empties every handle of `events`, as destroying them would, but prefetching ahead: their
  // reference counts are changed many at a time rather than one cache miss after another (a
  // queue's worker releasing events its producers wrote on another core).
  static void release_all(std::span<Event> events) noexcept;

  // True when both handles share one allocation.
  bool same_as(const Event& other) const noexcept { return rep_ == other.rep_; }

  // True when the event is charged to a MemoryBudget (see budget.h).
  bool charged() const noexcept;

 private:
  friend class MemoryBudget;
  // Records that the event is charged to the budget in `slot`; false if it already was charged.
  bool charge_to(std::uint8_t slot) const noexcept;
  struct Rep;
  static void release(Rep* rep) noexcept;
  explicit Event(Rep* rep) noexcept : rep_(rep) {}
  Rep* rep_ = nullptr;
};

}  // namespace evroute
