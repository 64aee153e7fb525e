// Ingest: turns a POST /v1/events body into events.
//
// A body is one JSON object, a JSON array of objects, or NDJSON (one object per line; blank lines
// are skipped). Every object becomes one Event whose payload is the object as compact, single-line
// JSON, always with a string "id": the object's own "id" if it has one, else a generated UUIDv7
// inserted as the first member. So every consumer — webhook body, file line, stdout line — sees the
// same object, id included. The top-level fields named in `attribute_fields` (those the sinks'
// filters test, plus "type") are copied into the event's attributes; non-string scalars as their
// JSON text.
//
// A body is accepted whole or rejected whole: any problem yields an error message (naming the line
// and column, the array element or the NDJSON line) and no events.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "evroute/event.h"

namespace evrouted {

enum class BodyFormat { kJson, kNdjson };

// "application/json" (any parameters, any case) -> kJson; "application/x-ndjson" or
// "application/ndjson" -> kNdjson; anything else -> nullopt (the caller answers 415).
std::optional<BodyFormat> body_format(std::string_view content_type);

struct IngestResult {
  std::vector<evroute::Event> events;
  std::string error;  // non-empty: the body is rejected (400) with this message
};

constexpr std::size_t kMaxIdBytes = 1024;

IngestResult parse_events(std::string_view body, BodyFormat format,
                          std::span<const std::string> attribute_fields);

}  // namespace evrouted
