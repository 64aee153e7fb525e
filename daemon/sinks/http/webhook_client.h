// The http sink's transport: one HTTP/1.1 client connection to a webhook receiver (Boost.Beast
// over Boost.Asio), written for receivers that are third parties and may be hostile.
//
// One attempt (WebhookConnection::send) = resolve and connect (or reuse the kept-alive
// connection), TLS handshake, write the request, read the answer — all under one deadline,
// `timeout` after the attempt began: a receiver that drips bytes, or never answers, ends the
// attempt at the deadline, whatever it sends meanwhile. What is read is bounded:
//   - the response head: at most 64 KiB and 100 header fields; beyond, the attempt fails
//     ("response headers exceed 64 KiB", "... more than 100 header fields"), connection closed;
//   - the body: never kept (read through a 16 KiB buffer). Up to 8 MiB of it is read and
//     discarded (so the connection can be kept alive); the rest of a longer body is not read: the
//     connection is closed, and the status stands (a 2xx with a 50 MB body is a delivery). A body
//     cut short, or not complete by the deadline, fails the attempt.
// A request whose method, target or any header name or value holds CR, LF or NUL is refused
// (kRejected, naming the header) and nothing is written: a value must never smuggle in headers.
// Sockets send with MSG_NOSIGNAL (Asio does on Linux): a receiver hanging up never raises SIGPIPE.
// Redirects are never followed (a 3xx is an answer like any other).
#pragma once

#include <utility>  // before Asio's headers (Boost 1.74 with GCC 12: std::exchange)

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "evroute/status.h"
#include "sinks/http/http_config.h"
#include "sinks/http/webhook_request.h"

namespace evrouted {

// Where every connection of one sink goes, and how: host, port, the TLS context (CAs, verify,
// client certificate). Immutable once made; shared by the sink's connections (SSL_CTX is safe to
// make connections from on several threads).
class WebhookTarget {
 public:
  // Throws std::runtime_error when the TLS settings cannot be loaded.
  explicit WebhookTarget(const HttpSinkConfig& config);

  const std::string& host() const { return host_; }  // an IPv6 literal without its brackets
  const std::string& port() const { return port_; }
  const std::string& host_header() const { return host_header_; }
  std::chrono::steady_clock::duration timeout() const { return timeout_; }
  bool tls() const { return tls_ != nullptr; }
  bool verify() const { return verify_; }
  boost::asio::ssl::context& tls_context() const { return *tls_; }

 private:
  std::string host_, port_, host_header_;
  std::chrono::steady_clock::duration timeout_;
  bool verify_ = true;
  std::unique_ptr<boost::asio::ssl::context> tls_;  // null for http
};

// What the sink needs of an answer.
struct WebhookResponse {
  int status = 0;
  std::string retry_after;  // the Retry-After header; "" when absent
};

// One connection, kept alive between attempts. It owns its io_context; send() runs it on the
// calling thread until the attempt ends.
// Thread-safety: send() and close() need external synchronization (the sink's pool gives a
// connection to one write at a time); cancel() is safe from any thread at any time.
class WebhookConnection {
 public:
  explicit WebhookConnection(std::shared_ptr<const WebhookTarget> target);
  ~WebhookConnection();
  WebhookConnection(const WebhookConnection&) = delete;
  WebhookConnection& operator=(const WebhookConnection&) = delete;

  // One attempt (see above). OK with *response filled in whatever the status; kUnavailable for a
  // transport failure (connect, TLS, timeout, an answer out of bounds or malformed); kRejected for
  // a request that cannot be sent safely (nothing written); kClosed once cancel() was called.
  evroute::Status send(const WebhookRequest& request, WebhookResponse* response);
  // Aborts the attempt in flight promptly, or the next one at once; the connection stays unusable.
  // It posts the abort onto the connection's io_context: sockets are only ever touched by the
  // thread running send().
  void cancel();
  // Closes the kept-alive socket, if any.
  void close();

 private:
  using Tcp = boost::asio::ip::tcp;
  using TlsStream = boost::asio::ssl::stream<Tcp::socket>;

  evroute::Status attempt(const WebhookRequest& request, WebhookResponse* response);
  evroute::Status connect();
  template <class Stream>
  evroute::Status exchange(Stream& stream, const WebhookRequest& request,
                           WebhookResponse* response);
  // The failure of step `what` (e.g. "connect") with `ec`, as the attempt's Status.
  evroute::Status failure(const std::string& what, const boost::system::error_code& ec) const;
  // Runs the io_context until the operation `start` begins completes; returns its error.
  template <class Start>
  boost::system::error_code wait(Start&& start);
  bool is_open() const;
  // Closes the socket, leaving the stream objects in place: safe while an operation is under way
  // (it then completes with operation_aborted). close() also destroys them.
  void shut();
  Tcp::socket& socket();
  // The kept-alive socket shows no sign of being closed by the receiver.
  bool reusable();

  const std::shared_ptr<const WebhookTarget> target_;
  boost::asio::io_context io_;  // declared first: destroyed last, with any handler still queued
  Tcp::resolver resolver_{io_};
  boost::asio::steady_timer deadline_{io_};
  std::optional<Tcp::socket> plain_;  // for http, while connected
  std::optional<TlsStream> tls_;      // for https, while connected
  bool timed_out_ = false;            // set by the deadline's handler, on the send() thread
  std::atomic<bool> cancelled_{false};
};

}  // namespace evrouted
