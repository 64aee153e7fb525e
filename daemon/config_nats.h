// Reading the `nats:` section of the configuration (servers, stream, replicas, max_bytes, auth,
// tls, publish_timeout), for config.cpp.
#pragma once

#include "config.h"
#include "config_reader.h"

namespace evrouted {

// Reads `nats:` from `r` into `nats`; problems are recorded in r's errors.
void read_nats(ConfigReader& r, NatsConfig& nats);

}  // namespace evrouted
