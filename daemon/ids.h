// Event ids: UUIDv7 (RFC 9562) — a 48-bit Unix millisecond timestamp, then a 12-bit counter that
// keeps ids from one process strictly increasing within a millisecond, then 62 random bits. So
// generated ids sort by time, and by arrival order within one evrouted.
//
// Thread-safety: new_event_id() is safe from any thread.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace evrouted {

constexpr std::size_t kEventIdBytes = 36;

// A new id in canonical form, e.g. "01890a5d-ac96-774b-bcce-b302099a8057".
std::string new_event_id();
// The same, written into `out` (no allocation: ingest makes one per event without an id).
void new_event_id(std::span<char, kEventIdBytes> out);

}  // namespace evrouted
