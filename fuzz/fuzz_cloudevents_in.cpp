// fuzz_cloudevents_in: CloudEvents ingest in its three HTTP modes (daemon/ingest.h).
//
// Input: byte 0 picks the mode (value % 3):
//   0  structured: the rest is an application/cloudevents+json body (BodyFormat::kCloudEvent);
//   1  batch: the rest is an application/cloudevents-batch+json body (kCloudEventBatch);
//   2  binary: the rest is a header block, lines "name:value" up to an empty line, then the body.
//      Names are lower-cased as the HTTP server hands them over; "content-type" gives the
//      Content-Type, names starting "ce-" are the CloudEvent headers, other lines are ignored.
// Properties: those of ingest_properties.h, and each accepted event's payload is a valid
// CloudEvent (cloudevents::check() finds nothing) whose "id" is the event's id; in binary mode
// that id is the ce-id header.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cloudevents.h"
#include "ingest_properties.h"

namespace {

using evroute_fuzz::require;
namespace ce = evrouted::cloudevents;

void check_cloudevents(const evrouted::IngestResult& result) {
  if (!evroute_fuzz::check_ingest_result(result)) return;
  for (const evroute::Event& event : result.events) {
    const auto object = ce::Json::parse(event.payload());
    const std::string why = ce::check(object);
    require(why.empty(), "accepted CloudEvent fails cloudevents::check()", why);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 3;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  if (mode < 2) {
    const auto format =
        mode == 0 ? evrouted::BodyFormat::kCloudEvent : evrouted::BodyFormat::kCloudEventBatch;
    check_cloudevents(evrouted::parse_events(rest, format, evroute_fuzz::kAttributeFields));
    return 0;
  }

  std::vector<ce::Header> headers;
  std::string content_type;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string value(line.substr(colon + 1));
    if (name == "content-type") {
      content_type = value;
    } else if (name.starts_with("ce-")) {
      headers.emplace_back(std::move(name), value);
    }
  }
  const evrouted::IngestResult result = evrouted::parse_binary_cloudevent(
      headers, content_type, rest, evroute_fuzz::kAttributeFields);
  check_cloudevents(result);
  if (result.error.empty()) {
    require(result.events.size() == 1, "binary mode accepted other than one event");
    for (const auto& [name, value] : headers) {
      if (name == "ce-id") {
        require(result.events[0].id() == value, "binary event id differs from ce-id", value);
      }
    }
  }
  return 0;
}
