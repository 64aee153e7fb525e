// The stdout sink's settings: none but the generic ones (filter, queue, retry; config.cpp).
//
//   type: stdout
#pragma once

#include <memory>

#include "config_reader.h"
#include "sinks/registry.h"

namespace evrouted {

// The stdout sink's spec; `reader` has no keys of its own to read.
std::unique_ptr<SinkSpec> parse_stdout_sink(ConfigReader& reader);

// The registry's entry for `type: stdout` (listed in sinks/registry.cpp).
const SinkType& stdout_sink_type();

}  // namespace evrouted
