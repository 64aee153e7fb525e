// The layout of an event in a JetStream message (daemon/nats/event_codec.h): it round-trips, and
// decoding refuses every truncation and a foreign message instead of reading past the data.
#include "nats/event_codec.h"

#include <gtest/gtest.h>

namespace evrouted::nats {
namespace {

TEST(NatsEventCodec, AnEventRoundTripsWithItsIdAttributesAndReceiveTime) {
  const auto received = std::chrono::system_clock::time_point(std::chrono::seconds(1796161527));
  const evroute::Event e =
      evroute::Event::make("e-1", R"({"id":"e-1","type":"order.created"})",
                           {{"type", "order.created"}, {"tenant", "acme"}}, received);
  const std::string data = encode_event(e);
  const auto back = decode_event(data);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id(), "e-1");
  EXPECT_EQ(back->payload(), e.payload());
  EXPECT_EQ(back->received(), received);
  ASSERT_EQ(back->attribute_count(), 2u);
  EXPECT_EQ(back->attribute("tenant"), "acme");
  EXPECT_EQ(back->type(), "order.created");
}

TEST(NatsEventCodec, EveryTruncationAndAForeignMessageAreRefused) {
  const std::string data =
      encode_event(evroute::Event::make("e-1", "{}", {{"type", "t"}, {"k", "v"}}));
  // Cut inside the header (magic, time, id, attributes): refused. Cut in the payload: a shorter
  // payload, which is still an event (the payload runs to the end).
  const std::size_t header = data.size() - 2;
  for (std::size_t n = 0; n < header; ++n) {
    EXPECT_FALSE(decode_event(std::string_view(data).substr(0, n))) << n;
  }
  EXPECT_FALSE(decode_event(R"({"id":"x"})"));  // published by someone else
  EXPECT_FALSE(decode_event(std::string("EVR1") + std::string(8, '\0') + std::string(2, '\0')));
}

}  // namespace
}  // namespace evrouted::nats
