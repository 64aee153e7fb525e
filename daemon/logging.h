// Logging set-up for evrouted: spdlog to stderr, as text or as one JSON object per line.
#pragma once

#include <string>

namespace evrouted {

// level: trace, debug, info, warn, error, critical, off. format: "text" or "json".
void setup_logging(const std::string& level, const std::string& format);

}  // namespace evrouted
