// Ingest: turns a POST /v1/events body into events.
//
// A body is one JSON object, a JSON array of objects, or NDJSON (one object per line; blank lines
// are skipped). Every object becomes one Event whose payload is the object's own text (an array's
// elements each their own span of the body) when that is one line, else the object re-serialized
// as compact, single-line JSON; always with a string "id": the object's own "id" if it has one,
// else a generated UUIDv7 inserted as the first member. So every consumer — webhook body, file
// line, stdout line — sees the same object, id included. The top-level fields named in
// `attribute_fields` (those the sinks' filters test, plus "type") are copied into the event's
// attributes; non-string scalars as their JSON text.
//
// CloudEvents (HTTP binding 1.0, see cloudevents.h) arrive as one structured-mode object
// (application/cloudevents+json), a batch (application/cloudevents-batch+json: an array of them),
// or in binary mode (ce-* headers, the data as the body). Each is validated and becomes one event
// whose payload is the CloudEvent's structured JSON and whose id is the CloudEvent's id.
//
// A body is accepted whole or rejected whole: any problem yields an error message (naming the line
// and column, the array element or the NDJSON line) and no events.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cloudevents.h"
#include "evroute/event.h"

namespace evrouted {

enum class BodyFormat { kJson, kNdjson, kCloudEvent, kCloudEventBatch };

// "application/json" (any parameters, any case) -> kJson; "application/x-ndjson" or
// "application/ndjson" -> kNdjson; "application/cloudevents+json" -> kCloudEvent;
// "application/cloudevents-batch+json" -> kCloudEventBatch; anything else -> nullopt (the caller
// answers 415, unless the request is a binary-mode CloudEvent).
std::optional<BodyFormat> body_format(std::string_view content_type);

struct IngestResult {
  std::vector<evroute::Event> events;
  std::string error;  // non-empty: the body is rejected (400) with this message
};

constexpr std::size_t kMaxIdBytes = 1024;

IngestResult parse_events(std::string_view body, BodyFormat format,
                          std::span<const std::string> attribute_fields);
// parse_events without its fast path for one-line objects and arrays of them (simdjson On-Demand,
// see ingest.cpp): every body through nlohmann's parser. The two must agree on every body
// (tests/daemon/ingest_fast_test.cpp and fuzz_ingest check it); only the generated ids differ.
IngestResult parse_events_general(std::string_view body, BodyFormat format,
                                  std::span<const std::string> attribute_fields);
// Whether parse_events takes all of `body` on its fast path (for tests: that it is taken).
bool fast_path_takes(std::string_view body, BodyFormat format,
                     std::span<const std::string> attribute_fields);

// A binary-mode CloudEvent: `ce_headers` are the request's ce-* headers (names lower-case).
IngestResult parse_binary_cloudevent(std::span<const cloudevents::Header> ce_headers,
                                     std::string_view content_type, std::string_view body,
                                     std::span<const std::string> attribute_fields);

}  // namespace evrouted
