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
  const evrouted::cloudevents::Options options;
  for (const evroute::Event& event : evroute_fuzz::ingest_input(data, size)) {
    std::string why;
    const std::string text = evrouted::cloudevents::as_cloudevent(event, options, &why).dump();
    evroute_fuzz::require(why.empty(), "an accepted event cannot be rendered as a CloudEvent", why);
    evroute_fuzz::require(nlohmann::json::accept(text), "serialized CloudEvent is not JSON", text);
  }
  return 0;
}
