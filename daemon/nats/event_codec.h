// How an event is stored in a JetStream message of evroute's stream (nats/link.h): the message's
// data is
//   "EVR1"  u64 received_ns  u16 id_len id  u8 attribute_count  (u16 key_len key u16 value_len
//   value)*  payload
// little-endian; the payload runs to the end. Every length is checked on decode: a message that
// anyone else published to the subject is hostile input like any other.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "evroute/event.h"

namespace evrouted::nats {

std::string encode_event(const evroute::Event& event);
// nullopt when `data` is not an encoded event.
std::optional<evroute::Event> decode_event(std::string_view data);

}  // namespace evrouted::nats
