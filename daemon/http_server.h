// HttpServer: evrouted's HTTP/1.1 listener, an event-driven core on Boost.Beast and Boost.Asio.
//
// `threads` event loops (one io_context and one thread each) serve every connection with
// non-blocking sockets: there is no thread per connection. One acceptor (exclusive: no
// SO_REUSEPORT, so a second process on the same address fails to bind) hands each new connection
// to the next loop in turn; a connection lives on that loop until it closes, so nothing of it is
// shared between threads.
//
// Each request is read whole (headers, then the body, decoded when Content-Encoding is gzip or
// deflate) and given to the handler on the connection's loop. A handler that would have to wait
// (a full `block` queue, a disk queue's fsync, reading dead letters) says so by returning
// kBlocking instead of waiting; it is then called again, with may_block, on a separate pool of
// threads, and the connection resumes on its loop when the answer is ready. A loop therefore never
// waits on anything but its sockets, and one slow request never delays the other connections.
// Requests on one connection (HTTP/1.1 pipelining included) are answered one after the other, in
// order.
//
// Bounds, each answered as HTTP says and the connection then closed (the rest of the request is
// never read):
//   - max_connections open at once: past it a new connection gets 503 without being read (with
//     TLS: closed), so file descriptors are bounded;
//   - max_header_bytes for the request line and header fields, max_header_count fields: 431;
//   - max_body_bytes for the body, on the wire and decoded: 413, before reading it when
//     Content-Length says so (no `100 Continue` is sent for it);
//   - max_buffered_bytes of request bodies held at once over all connections (read, decoded,
//     waiting for or in the handler): past it, 503 with Retry-After: 1, so that many clients
//     sending large bodies at once cannot exhaust memory;
//   - request_timeout from a request's first byte (for TLS, from the connection) until it is read
//     whole, and to write an answer: 408 (closed without an answer while writing);
//   - idle_timeout between requests on a keep-alive connection: closed;
//   - two Content-Length fields, Content-Length with Transfer-Encoding, any malformed request: 400.
// Deadlines are checked by each loop every 250 ms (no timer per socket operation), so they fire up
// to 250 ms late.
//
// Thread-safety: bind() and serve() from one thread; stop(), reload_tls() and the accessors from
// any thread. The handler runs concurrently on several threads.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "evroute/status.h"

namespace evrouted::http {

struct Request {
  std::string method;  // as sent: "GET", "POST", ...
  std::string target;  // as sent: path and query
  std::string path;    // percent-decoded
  std::string query;   // as sent, without '?'
  unsigned version = 11;
  boost::beast::http::fields headers;
  std::string body;  // decoded (Content-Encoding)

  // The value of header `name` (case-insensitive), or "" when absent.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  // The percent-decoded value of query parameter `key` ('+' is a space), or nullopt.
  std::optional<std::string> param(std::string_view key) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides the ones the server writes
  bool close = false;  // close the connection after this answer
};

enum class Disposition {
  kDone,      // `response` is the answer
  kBlocking,  // answering would wait: call again with may_block (nothing was done)
};
using Handler =
    std::function<Disposition(const Request& request, Response& response, bool may_block)>;

// Every answer the server writes (the handler's, and its own 4xx), for metrics. `request` may be
// only partly read (a 431 has no body; a 400 may have no path).
using Observer = std::function<void(const Request& request, int status,
                                    std::chrono::steady_clock::duration latency)>;

// %XX decoded (an invalid escape stays as it is); with plus_is_space, '+' is a space.
std::string percent_decode(std::string_view s, bool plus_is_space = false);

// The error body every answer of the server itself carries: {"error": message}.
std::string error_body(std::string_view message);

struct TlsFiles {
  std::string cert_file;       // PEM certificate chain
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // set: clients must present a certificate it signed (mutual TLS)
};

struct Limits {
  unsigned threads = 0;  // event loops; 0: one per core
  std::size_t max_connections = 4096;
  std::size_t max_header_bytes = 16 << 10;
  std::size_t max_header_count = 100;
  std::uint64_t max_body_bytes = 1 << 20;
  std::uint64_t max_buffered_bytes = 64 << 20;  // request bodies held at once, all connections
  std::chrono::nanoseconds request_timeout = std::chrono::seconds(10);
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(60);
  unsigned blocking_threads = 32;  // the pool that runs handlers which may wait
};

class HttpServer {
 public:
  HttpServer(Limits limits, Handler handler, Observer observer);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Loads the certificate and key (throws std::runtime_error naming the file and the reason);
  // from then on bind() listens with TLS.
  void use_tls(const TlsFiles& files);
  // Loads the files again (renewed certificates). New connections get them; open ones keep theirs.
  // On a problem, keeps the previous ones and returns what is wrong (kInvalidArgument).
  evroute::Status reload_tls(const TlsFiles& files);
  bool tls() const;

  // Binds and listens on host:port (0: any free port). Returns the bound port; throws
  // std::runtime_error("cannot listen on HOST:PORT: reason").
  int bind(const std::string& host, int port);
  // Runs the event loops until stop(). Returns false if they failed to start.
  bool serve();
  // Waits until serve() runs (stop() before that would be lost). False after `timeout`.
  bool wait_until_serving(std::chrono::milliseconds timeout);
  // Stops accepting, lets the pool's handlers finish, closes every connection, and makes serve()
  // return.
  void stop();

  struct Impl;  // daemon/http/server_impl.h

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace evrouted::http
