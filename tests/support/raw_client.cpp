#include "support/raw_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>

#include "support/raw_server.h"

namespace evtest {
namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// De-chunks the chunked body at the front of `data` into `body`; returns the bytes it took
// (trailer included), 0 while incomplete, npos when malformed.
std::size_t parse_chunked(std::string_view data, std::string* body) {
  std::size_t pos = 0;
  for (;;) {
    const std::size_t eol = data.find("\r\n", pos);
    if (eol == std::string_view::npos) return 0;
    std::size_t size = 0;
    const auto [end, ec] = std::from_chars(data.data() + pos, data.data() + eol, size, 16);
    if (ec != std::errc() || end == data.data() + pos) return std::string_view::npos;
    pos = eol + 2;
    if (size == 0) {  // the last chunk: trailer fields up to an empty line
      const std::size_t trailer_end = data.find("\r\n", pos);
      if (trailer_end == std::string_view::npos) return 0;
      if (trailer_end == pos) return pos + 2;
      const std::size_t fields_end = data.find("\r\n\r\n", pos);
      return fields_end == std::string_view::npos ? 0 : fields_end + 4;
    }
    if (data.size() < pos + size + 2) return 0;
    body->append(data.substr(pos, size));
    pos += size + 2;
  }
}

}  // namespace

std::string RawResponse::header(std::string_view name) const {
  const std::string key = lower(name);
  for (const auto& [k, v] : headers) {
    if (k == key) return v;
  }
  return "";
}

std::size_t RawResponse::count(std::string_view name) const {
  const std::string key = lower(name);
  std::size_t n = 0;
  for (const auto& field : headers) n += field.first == key ? 1 : 0;
  return n;
}

std::size_t parse_response(std::string_view data, bool eof, RawResponse* out) {
  constexpr std::size_t kBad = std::string_view::npos;
  if (data.size() >= 5 && data.substr(0, 5) != "HTTP/") return kBad;
  const std::size_t head_end = data.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return 0;
  RawResponse r;
  r.head = std::string(data.substr(0, head_end + 2));
  const std::size_t sp = r.head.find(' ');
  if (sp == std::string::npos || r.head.size() < sp + 4) return kBad;
  const auto [end, ec] = std::from_chars(r.head.data() + sp + 1, r.head.data() + sp + 4, r.status);
  if (ec != std::errc() || end != r.head.data() + sp + 4) return kBad;
  for (std::size_t pos = r.head.find("\r\n") + 2; pos < r.head.size();) {
    const std::size_t eol = r.head.find("\r\n", pos);
    const std::string_view line = std::string_view(r.head).substr(pos, eol - pos);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return kBad;
    r.headers.emplace_back(lower(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
    pos = eol + 2;
  }
  std::string_view rest = data.substr(head_end + 4);
  std::size_t taken = head_end + 4;
  const bool no_body = (r.status >= 100 && r.status < 200) || r.status == 204 || r.status == 304;
  if (no_body) {
  } else if (lower(r.header("transfer-encoding")).find("chunked") != std::string::npos) {
    const std::size_t n = parse_chunked(rest, &r.body);
    if (n == 0 || n == kBad) return n;
    taken += n;
  } else if (const std::string cl = r.header("content-length"); !cl.empty()) {
    std::size_t length = 0;
    const auto [p, e] = std::from_chars(cl.data(), cl.data() + cl.size(), length);
    if (e != std::errc() || p != cl.data() + cl.size()) return kBad;
    if (rest.size() < length) return 0;
    r.body = std::string(rest.substr(0, length));
    taken += length;
  } else {
    if (!eof) return 0;  // framed by the end of the connection
    r.body = std::string(rest);
    taken = data.size();
  }
  *out = std::move(r);
  return taken;
}

std::string http_request(std::string_view method, std::string_view path,
                         const std::vector<std::string>& fields, std::string_view body) {
  std::string req = std::string(method) + " " + std::string(path) + " HTTP/1.1\r\n";
  req += "Host: 127.0.0.1\r\n";
  bool framed = false;
  for (const std::string& f : fields) {
    const std::string name = lower(f.substr(0, f.find(':')));
    framed = framed || name == "content-length" || name == "transfer-encoding";
    req += f + "\r\n";
  }
  if (!body.empty() && !framed) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  req += body;
  return req;
}

std::string post_events(std::string_view json, const std::vector<std::string>& fields) {
  std::vector<std::string> all = {"Content-Type: application/json"};
  all.insert(all.end(), fields.begin(), fields.end());
  return http_request("POST", "/v1/events", all, json);
}

RawClient::RawClient(int port, std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int error = 0;
    socklen_t len = sizeof error;
    rc = ::poll(&p, 1, static_cast<int>(timeout.count())) == 1 &&
                 ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0
             ? 0
             : -1;
  }
  if (rc != 0) {
    ::close(fd);
    return;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  const timeval send_timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  fd_ = fd;
}

RawClient::~RawClient() { close(); }

RawClient::RawClient(RawClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      pending_(std::move(other.pending_)),
      eof_(other.eof_),
      reset_(other.reset_) {}

RawClient& RawClient::operator=(RawClient&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    pending_ = std::move(other.pending_);
    eof_ = other.eof_;
    reset_ = other.reset_;
  }
  return *this;
}

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawClient::send(std::string_view data) const { return fd_ >= 0 && send_all(fd_, data); }

RawReply RawClient::read(std::size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  RawReply reply;
  std::string_view unparsed;
  auto parse = [&] {
    unparsed = pending_;
    while (reply.responses.size() < n) {
      RawResponse r;
      const std::size_t used = parse_response(unparsed, eof_, &r);
      if (used == 0 || used == std::string_view::npos) break;
      reply.responses.push_back(std::move(r));
      unparsed.remove_prefix(used);
    }
  };
  char buf[65536];
  for (;;) {
    reply.responses.clear();
    parse();
    if (reply.responses.size() >= n || eof_ || fd_ < 0) break;
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;  // the deadline passed
    const ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got > 0) {
      pending_.append(buf, static_cast<std::size_t>(got));
    } else if (got == 0 || errno != EINTR) {
      eof_ = true;
      reset_ = got < 0 && errno == ECONNRESET;
    }
  }
  reply.closed = eof_;
  reply.reset = reset_;
  pending_ = std::string(unparsed);
  reply.rest = pending_;
  return reply;
}

int RawClient::exchange(std::string_view data, std::chrono::milliseconds timeout) {
  if (!send(data)) return 0;
  const RawReply reply = read(1, timeout);
  return reply.responses.empty() ? 0 : reply.responses.front().status;
}

}  // namespace evtest
