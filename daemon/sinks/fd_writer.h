// Writes event lines to a file descriptor with a single write(2) where possible (appends of a
// line to an O_APPEND file, or to a pipe under PIPE_BUF bytes, are then atomic), retrying partial
// writes and EINTR (evroute::write_fully, file_system.h: the one write loop, which
// WritableFile::append uses too). Used by the stdout sink; the file sink writes through
// evroute::FileSystem and shares append_lines().
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "evroute/event.h"

#include "evroute/status.h"

namespace evrouted {

// Writes `payload` followed by '\n'. A failure is retryable (kUnavailable) with strerror.
evroute::Status write_line(int fd, std::string_view payload, std::string_view what);
// Writes all of `bytes` (several lines at once: one write(2) where the kernel takes it whole).
// A failure is retryable (kUnavailable) with strerror.
evroute::Status write_all(int fd, std::string_view bytes, std::string_view what);
// Appends each event's payload and '\n' to `out`.
void append_lines(std::string& out, std::span<const evroute::Event> events);

}  // namespace evrouted
