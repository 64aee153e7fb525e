#include "sinks/fd_writer.h"

#include "evroute/file_system.h"

#include <cerrno>
#include <cstring>
#include <string>

namespace evrouted {

namespace {

evroute::Status write_pieces(int fd, std::span<const std::string_view> pieces,
                             std::string_view what) {
  if (int err = evroute::write_fully(fd, pieces)) {
    return evroute::Status::unavailable("write to " + std::string(what) + ": " +
                                        std::strerror(err));
  }
  return evroute::Status::ok();
}

}  // namespace

evroute::Status write_line(int fd, std::string_view payload, std::string_view what) {
  const std::string_view pieces[] = {payload, "\n"};
  return write_pieces(fd, pieces, what);
}

evroute::Status write_all(int fd, std::string_view bytes, std::string_view what) {
  return write_pieces(fd, std::span<const std::string_view>(&bytes, 1), what);
}

void append_lines(std::string& out, std::span<const evroute::Event> events) {
  std::size_t size = out.size();
  for (const evroute::Event& e : events) size += e.payload().size() + 1;
  out.reserve(size);
  for (const evroute::Event& e : events) {
    out.append(e.payload());
    out.push_back('\n');
  }
}

}  // namespace evrouted
