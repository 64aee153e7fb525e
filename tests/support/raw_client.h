// RawClient: a blocking TCP client on 127.0.0.1 for tests that send what no HTTP library would
// (half a request, a header flood, pipelined requests, two Content-Lengths, a byte a second) and
// need to see exactly what comes back: every response in order, with its status, header fields and
// body, and whether the peer closed the connection.
//
// Every call is bounded: connect() and read() take a timeout, and a send blocks at most 5 s (a
// peer that stops reading fails it instead of hanging the test).
//
// Thread-safety: one RawClient per thread (external synchronization required). The free functions
// are safe from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evtest {

struct RawResponse {
  int status = 0;
  std::string head;                                          // status line and fields, as sent
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, values trimmed
  std::string body;                                          // de-chunked
  // The first value of a header field (name case-insensitive); "" when absent.
  std::string header(std::string_view name) const;
  std::size_t count(std::string_view name) const;  // how many fields have this name
};

struct RawReply {
  std::vector<RawResponse> responses;  // the complete ones, in the order they came
  bool closed = false;                 // the peer closed (FIN or reset) before the deadline
  bool reset = false;                  // ... with a reset (ECONNRESET)
  std::string rest;                    // bytes after the last complete response
};

// Parses one response from the front of `data` into `out` and returns how many bytes it took; 0
// when `data` does not hold a complete one yet. `eof`: the peer has closed, so a response framed by
// the end of the connection (no Content-Length, not chunked) is complete. 1xx, 204 and 304 have
// no body. -1 (as npos) when `data` cannot be a response.
std::size_t parse_response(std::string_view data, bool eof, RawResponse* out);

// An HTTP/1.1 request: `method path`, Host, then `fields` (each "Name: value", CRLF-terminated by
// this function), then Content-Length (when `body` is not empty and `fields` has none and no
// Transfer-Encoding) and the body as given.
std::string http_request(std::string_view method, std::string_view path,
                         const std::vector<std::string>& fields = {}, std::string_view body = {});
// POST /v1/events with Content-Type: application/json.
std::string post_events(std::string_view json, const std::vector<std::string>& fields = {});

class RawClient {
 public:
  // Connects to 127.0.0.1:port; connected() says whether that worked within `timeout`.
  explicit RawClient(int port, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~RawClient();
  RawClient(RawClient&& other) noexcept;
  RawClient& operator=(RawClient&& other) noexcept;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Sends all of `data`; false when the peer went away (or stopped reading for 5 s).
  bool send(std::string_view data) const;
  // Reads until `n` complete responses have arrived since the last read() (bytes that came after
  // the responses an earlier read() returned are kept for this one), the peer closes, or `timeout`
  // passes. read(SIZE_MAX, t).closed waits for the peer to close.
  RawReply read(std::size_t n, std::chrono::milliseconds timeout);
  // Sends `data` and reads one response: its status, or 0 when none came within `timeout`.
  int exchange(std::string_view data, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void close();

 private:
  int fd_ = -1;
  std::string pending_;  // received, not yet returned
  bool eof_ = false;
  bool reset_ = false;
};

}  // namespace evtest
