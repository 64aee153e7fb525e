// Reading the `server:` section of the configuration (listen, threads, limits, tls, auth), for
// config.cpp.
#pragma once

#include "config.h"
#include "config_reader.h"

namespace evrouted {

// Reads `server:` from `r` into `server`; problems are recorded in r's errors.
void read_server(ConfigReader& r, ServerConfig& server);

}  // namespace evrouted
