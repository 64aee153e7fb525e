// The properties every IngestResult must have, shared by fuzz_ingest, fuzz_cloudevents_in and
// fuzz_cloudevents_out (see ingest.h for the contract they come from):
//   rejected (error non-empty): no events, and the message is valid UTF-8 (it goes into a JSON
//     error body);
//   accepted: each event's id is non-empty, at most kMaxIdBytes, free of control
//     characters (C0, DEL: ids end up in HTTP headers, log lines and file names); each payload is
//     one line of valid JSON, an object whose "id" member is a string equal to the event's id;
//     each attribute is one of the requested fields.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "ingest.h"

namespace evroute_fuzz {

// The fields the sinks' filters would test (plus "type", which ingest always wants).
inline const std::string kAttributeFields[] = {"type", "source", "subject", "priority", "level"};

// Checks one event that ingest accepted; returns its payload parsed.
inline nlohmann::ordered_json check_accepted_event(const evroute::Event& event) {
  require(static_cast<bool>(event), "accepted event is empty");
  const std::string_view id = event.id();
  require(!id.empty(), "event id is empty");
  require(id.size() <= evrouted::kMaxIdBytes, "event id longer than kMaxIdBytes", id);
  require(!has_control(id), "event id contains a control character (C0 or DEL)", id);
  require(is_utf8(id), "event id is not UTF-8", id);

  const std::string_view payload = event.payload();
  require(payload.find_first_of("\r\n") == std::string_view::npos,
          "payload is not single-line (raw CR or LF)", payload);
  require(nlohmann::ordered_json::accept(payload), "payload is not valid JSON", payload);
  auto object = nlohmann::ordered_json::parse(payload);
  require(object.is_object(), "payload is not a JSON object", payload);
  auto it = object.find("id");
  require(it != object.end() && it->is_string(), "payload has no string \"id\"", payload);
  require(it->get_ref<const std::string&>() == id, "payload \"id\" differs from the event id",
          payload);

  for (std::size_t i = 0; i < event.attribute_count(); ++i) {
    const evroute::Attribute a = event.attribute_at(i);
    require(std::find(std::begin(kAttributeFields), std::end(kAttributeFields), a.key) !=
                std::end(kAttributeFields),
            "attribute not among the requested fields", a.key);
  }
  return object;
}

// Checks a whole result; true when it was accepted.
inline bool check_ingest_result(const evrouted::IngestResult& result) {
  if (!result.error.empty()) {
    require(result.events.empty(), "rejected body still returned events", result.error);
    require(is_utf8(result.error), "error message is not valid UTF-8", result.error);
    return false;
  }
  // (An empty JSON array or batch is accepted with no events: not a problem, nothing to route.)
  for (const evroute::Event& event : result.events) check_accepted_event(event);
  return true;
}

// The fuzz input as a POST /v1/events: byte 0 picks the format (value % 4: JSON, NDJSON,
// CloudEvent, CloudEvent batch), the rest is the body. Parses it and checks the result; returns
// the events accepted (none for an empty input or a rejected body).
inline std::vector<evroute::Event> ingest_input(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return {};
  const auto format = static_cast<evrouted::BodyFormat>(data[0] % 4);
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  evrouted::IngestResult result = evrouted::parse_events(body, format, kAttributeFields);
  if (format == evrouted::BodyFormat::kJson || format == evrouted::BodyFormat::kNdjson) {
    // The fast path (simdjson) must agree with the general one: same error, or the same events
    // (only generated ids may differ).
    const evrouted::IngestResult general =
        evrouted::parse_events_general(body, format, kAttributeFields);
    require(result.error == general.error, "fast and general paths disagree on the error",
            result.error + " | " + general.error);
    require(result.events.size() == general.events.size(),
            "fast and general paths accept different numbers of events", body);
    for (std::size_t i = 0; i < result.events.size(); ++i) {
      const evroute::Event& a = result.events[i];
      const evroute::Event& b = general.events[i];
      if (a.id() == b.id()) {
        require(a.payload() == b.payload(), "fast and general payloads differ", a.payload());
      } else {  // both generated: the payloads differ only there
        require(a.payload().size() == b.payload().size(), "fast and general payloads differ",
                a.payload());
      }
      require(a.attribute_count() == b.attribute_count(),
              "fast and general paths give different attributes", a.payload());
      for (std::size_t k = 0; k < a.attribute_count(); ++k) {
        require(a.attribute_at(k).key == b.attribute_at(k).key &&
                    a.attribute_at(k).value == b.attribute_at(k).value,
                "fast and general paths give different attributes", a.payload());
      }
    }
  }
  if (!check_ingest_result(result)) return {};
  return std::move(result.events);
}

}  // namespace evroute_fuzz
