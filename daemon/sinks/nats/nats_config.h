// The nats sink's settings: what its YAML keys say (NatsSinkConfig), parsed and checked by
// parse_nats_sink(), whose problems carry their file:line:column. The servers are the top-level
// `nats:` section's (config.h NatsConfig), which a nats sink requires.
//
//   type: nats
//   subject: orders.created   # required: dot-separated tokens, no wildcards, at most 255 bytes
//   jetstream: true           # default false: core NATS
//   timeout: 5s               # the wait for the server (PubAck, or core NATS' flush)
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config_reader.h"
#include "sinks/registry.h"

namespace evrouted {

struct NatsSinkConfig {
  std::string subject;
  bool jetstream = false;  // publish to JetStream and wait for the stream's PubAck
  // How long a write waits for the server: each batch's PubAcks (jetstream), or the flush that
  // confirms the server read the batch (core NATS). Not nats.publish_timeout: a sink's keys are
  // parsed without the `nats:` section.
  Duration timeout = std::chrono::seconds(5);
};

// Why `subject` cannot be published to, if it cannot: empty, longer than 255 bytes, an empty
// token (leading, trailing or doubled dot), whitespace or a control character, or a `*` or `>`
// (wildcards: publishing to one is meaningless, and one inside a token only confuses).
std::optional<std::string> nats_subject_problem(std::string_view subject);

// Reads the nats sink's keys (above) from `reader`: the spec, or nullptr with the problems recorded
// in `reader`.
std::unique_ptr<SinkSpec> parse_nats_sink(ConfigReader& reader);

// The registry's entry for `type: nats` (listed in sinks/registry.cpp).
const SinkType& nats_sink_type();

}  // namespace evrouted
