// fuzz_nats_event: decode_event() (daemon/nats/event_codec.h) on arbitrary JetStream message data —
// anyone with access to the stream can publish to a sink's subject, so evrouted decodes hostile
// bytes there.
//
// Properties: it never crashes nor reads out of bounds; what it decodes encodes back to exactly
// the same bytes (the layout has one encoding per event), with a non-empty id.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "nats/event_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using evroute_fuzz::require;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto event = evrouted::nats::decode_event(bytes);
  if (!event) return 0;
  require(!event->id().empty(), "decoded an empty id", std::string(bytes));
  require(evrouted::nats::encode_event(*event) == bytes, "encode(decode(x)) != x",
          std::string(bytes));
  return 0;
}
