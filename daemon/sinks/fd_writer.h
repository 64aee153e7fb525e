// Writes one event line to a file descriptor with a single write(2) where possible (appends of a
// line to an O_APPEND file, or to a pipe under PIPE_BUF bytes, are then atomic), retrying partial
// writes and EINTR. Used by the stdout and file sinks.
#pragma once

#include <string_view>

#include "evroute/status.h"

namespace evrouted {

// Writes `payload` followed by '\n'. A failure is retryable (kUnavailable) with strerror.
evroute::Status write_line(int fd, std::string_view payload, std::string_view what);

}  // namespace evrouted
