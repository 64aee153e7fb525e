// Internal to the library: the byte bound of a batch, as Queue and DurableQueue apply it (their
// `batch.max_bytes`): an event counts its payload plus one separator byte, and a batch takes
// events while they fit, except that its first event goes whatever its size (alone, if larger).
#pragma once

#include <cstdint>

#include "evroute/event.h"

namespace evroute::internal {

inline std::uint64_t batch_bytes(const Event& e) { return e.payload().size() + 1; }

// Whether an event of `size` batch bytes joins a batch holding `bytes` so far (`empty`: nothing
// yet) under `max_bytes` (0: no bound).
inline bool joins_batch(bool empty, std::uint64_t bytes, std::uint64_t size,
                        std::uint64_t max_bytes) {
  return empty || max_bytes == 0 || bytes + size <= max_bytes;
}

}  // namespace evroute::internal
