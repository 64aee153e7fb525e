// fuzz_ingest: parse_events() (daemon/ingest.h) on arbitrary bodies in each BodyFormat.
//
// Input: byte 0 picks the format (value % 4: JSON, NDJSON, CloudEvent, CloudEvent batch); the
// rest is the request body. Properties: see ingest_properties.h. What was accepted is then
// serialized as the sinks would (the CloudEvent form, as JSON text), which must not crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cloudevents.h"
#include "ingest_properties.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto format = static_cast<evrouted::BodyFormat>(data[0] % 4);
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  const evrouted::IngestResult result =
      evrouted::parse_events(body, format, evroute_fuzz::kAttributeFields);
  if (!evroute_fuzz::check_ingest_result(result)) return 0;

  const evrouted::cloudevents::Options options;
  for (const evroute::Event& event : result.events) {
    const std::string text = evrouted::cloudevents::as_cloudevent(event, options).dump();
    evroute_fuzz::require(nlohmann::json::accept(text), "serialized CloudEvent is not JSON", text);
  }
  return 0;
}
