#include "sinks/fd_writer.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace evrouted {

evroute::Status write_line(int fd, std::string_view payload, std::string_view what) {
  char newline = '\n';
  iovec iov[2] = {{const_cast<char*>(payload.data()), payload.size()}, {&newline, 1}};
  int first = 0;
  while (first < 2) {
    const ssize_t n = writev(fd, iov + first, 2 - first);
    if (n < 0) {
      if (errno == EINTR) continue;
      return evroute::Status::unavailable("write to " + std::string(what) + ": " +
                                          std::strerror(errno));
    }
    auto left = static_cast<std::size_t>(n);
    while (first < 2 && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (first < 2) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return evroute::Status::ok();
}

evroute::Status write_all(int fd, std::string_view bytes, std::string_view what) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return evroute::Status::unavailable("write to " + std::string(what) + ": " +
                                          std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return evroute::Status::ok();
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
