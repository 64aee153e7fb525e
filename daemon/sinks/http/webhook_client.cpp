#include "sinks/http/webhook_client.h"

#include <openssl/ssl.h>
#include <poll.h>
#include <strings.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/write.hpp>

#include <cstdint>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string_view>

namespace evrouted {

namespace {

namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;

constexpr std::uint32_t kMaxHeadBytes = 64 * 1024;  // status line and header fields
constexpr long kMaxHeaderFields = 100;
// Body bytes read and discarded; beyond, the connection is closed instead of read on.
constexpr std::uint64_t kMaxBodyRead = 8 << 20;

constexpr std::string_view kForbidden("\r\n\0", 3);

// `s` with CR, LF and NUL spelled out, to name a header in a message.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    out += c == '\r' ? "\\r" : c == '\n' ? "\\n" : c == '\0' ? "\\0" : std::string(1, c);
  }
  return out;
}

// Why `request` must not be written, if it must not.
std::optional<std::string> unsendable(const WebhookRequest& request) {
  if (request.method.find_first_of(kForbidden) != std::string::npos ||
      request.method.find(' ') != std::string::npos) {
    return "the request method '" + printable(request.method) +
           "' has CR, LF, NUL or a space in it: not sent";
  }
  if (request.path.find_first_of(kForbidden) != std::string::npos ||
      request.path.find(' ') != std::string::npos) {
    return "the request target '" + printable(request.path) +
           "' has CR, LF, NUL or a space in it: not sent";
  }
  for (const auto& [name, value] : request.headers) {
    if (name.find_first_of(kForbidden) != std::string::npos ||
        value.find_first_of(kForbidden) != std::string::npos) {
      return "header '" + printable(name) + "' has CR, LF or NUL in its name or value: not sent";
    }
  }
  return std::nullopt;
}

std::string describe(std::chrono::steady_clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

bool is_ip_address(const std::string& host) {
  error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

WebhookTarget::WebhookTarget(const HttpSinkConfig& config)
    : timeout_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(config.timeout)),
      verify_(config.tls_verify) {
  const std::string& shp = config.scheme_host_port;  // "http(s)://host[:port]", checked
  const std::size_t scheme_end = shp.find("://");
  const bool https = shp.compare(0, scheme_end, "https") == 0;
  host_header_ = shp.substr(scheme_end + 3);
  const std::size_t bracket = host_header_.rfind(']');
  const std::size_t colon = host_header_.find(':', bracket == std::string::npos ? 0 : bracket);
  host_ = host_header_.substr(0, colon);
  port_ = colon == std::string::npos ? (https ? "443" : "80") : host_header_.substr(colon + 1);
  if (host_.size() >= 2 && host_.front() == '[') host_ = host_.substr(1, host_.size() - 2);
  if (!https) return;

  tls_ = std::make_unique<ssl::context>(ssl::context::tls_client);
  error_code ec;
  if (verify_) {
    tls_->set_verify_mode(ssl::verify_peer, ec);
    if (config.ca_file.empty()) {
      tls_->set_default_verify_paths(ec);
    } else {
      tls_->load_verify_file(config.ca_file, ec);
    }
    if (ec) throw std::runtime_error("cannot load the CA certificates: " + ec.message());
  } else {
    tls_->set_verify_mode(ssl::verify_none, ec);
  }
  if (!config.client_cert.empty()) {
    tls_->use_certificate_chain_file(config.client_cert, ec);
    if (ec) throw std::runtime_error("cannot load " + config.client_cert + ": " + ec.message());
    tls_->use_private_key_file(config.client_key, ssl::context::pem, ec);
    if (ec) throw std::runtime_error("cannot load " + config.client_key + ": " + ec.message());
  }
}

WebhookConnection::WebhookConnection(std::shared_ptr<const WebhookTarget> target)
    : target_(std::move(target)) {}

WebhookConnection::~WebhookConnection() { close(); }

evroute::Status WebhookConnection::send(const WebhookRequest& request, WebhookResponse* response) {
  if (auto why = unsendable(request)) return evroute::Status::rejected(*why);
  if (cancelled_.load(std::memory_order_acquire)) return evroute::Status::closed();
  // One deadline for the whole attempt. When it passes, every operation under way is aborted by
  // closing the socket (its handlers then run with operation_aborted, on this thread).
  timed_out_ = false;
  deadline_.expires_after(target_->timeout());
  deadline_.async_wait([this](const error_code& ec) {
    if (ec) return;  // cancelled: the attempt ended first
    timed_out_ = true;
    resolver_.cancel();
    shut();
  });
  const evroute::Status status = attempt(request, response);
  deadline_.cancel();
  io_.restart();
  io_.poll();  // the deadline's handler, and an abort cancel() posted meanwhile
  if (!status.is_ok()) close();
  return status;
}

evroute::Status WebhookConnection::attempt(const WebhookRequest& request,
                                           WebhookResponse* response) {
  if (is_open() && !reusable()) close();
  if (!is_open()) {
    close();
    if (evroute::Status s = connect(); !s.is_ok()) return s;
  }
  return tls_ ? exchange(*tls_, request, response) : exchange(*plain_, request, response);
}

void WebhookConnection::cancel() {
  if (cancelled_.exchange(true, std::memory_order_acq_rel)) return;
  boost::asio::post(io_, [this] {
    resolver_.cancel();
    shut();
  });
}

void WebhookConnection::close() {
  shut();
  tls_.reset();
  plain_.reset();
}

void WebhookConnection::shut() {
  error_code ignored;
  if (plain_) plain_->close(ignored);
  if (tls_) tls_->next_layer().close(ignored);
}

bool WebhookConnection::is_open() const {
  return (plain_ && plain_->is_open()) || (tls_ && tls_->next_layer().is_open());
}

boost::asio::ip::tcp::socket& WebhookConnection::socket() {
  return tls_ ? tls_->next_layer() : *plain_;
}

bool WebhookConnection::reusable() {
  // An idle connection has nothing to read: readable means the receiver closed it (or sent
  // something unasked), so it is not reused.
  pollfd p{socket().native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

template <class Start>
error_code WebhookConnection::wait(Start&& start) {
  std::optional<error_code> result;
  start([&result](const error_code& ec, auto&&...) { result = ec; });
  io_.restart();
  while (!result && io_.run_one()) {
  }
  return result.value_or(boost::asio::error::operation_aborted);
}

evroute::Status WebhookConnection::failure(const std::string& what, const error_code& ec) const {
  if (cancelled_.load(std::memory_order_acquire)) return evroute::Status::closed();
  if (timed_out_) {
    return evroute::Status::unavailable("timed out after " + describe(target_->timeout()) + " (" +
                                        what + ")");
  }
  return evroute::Status::unavailable(what + ": " + ec.message());
}

evroute::Status WebhookConnection::connect() {
  // The resolver may block in getaddrinfo on Asio's resolver thread, where closing a socket
  // cannot reach it: wait for its answer only until the deadline or cancel(). The state is shared
  // with the handler, which may then run during a later attempt.
  struct Resolved {
    std::optional<error_code> ec;
    Tcp::resolver::results_type endpoints;
  };
  auto resolved = std::make_shared<Resolved>();
  resolver_.async_resolve(target_->host(), target_->port(),
                          [resolved](const error_code& ec, Tcp::resolver::results_type r) {
                            resolved->ec = ec;
                            resolved->endpoints = std::move(r);
                          });
  io_.restart();
  while (!resolved->ec && !timed_out_ && !cancelled_.load(std::memory_order_acquire) &&
         io_.run_one()) {
  }
  if (!resolved->ec || *resolved->ec) {
    return failure("cannot resolve " + target_->host(),
                   resolved->ec.value_or(boost::asio::error::operation_aborted));
  }
  if (target_->tls()) {
    tls_.emplace(io_, target_->tls_context());
  } else {
    plain_.emplace(io_);
  }
  error_code ec = wait([&](auto done) {
    boost::asio::async_connect(socket(), resolved->endpoints, std::move(done));
  });
  if (ec) return failure("connect", ec);
  socket().set_option(Tcp::no_delay(true), ec);  // best effort
  if (tls_) {
    const std::string& host = target_->host();
    if (!is_ip_address(host)) SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str());  // SNI
    if (target_->verify()) tls_->set_verify_callback(ssl::host_name_verification(host));
    ec = wait([&](auto done) { tls_->async_handshake(ssl::stream_base::client, std::move(done)); });
    if (ec) return failure("TLS handshake", ec);
  }
  return evroute::Status::ok();
}

template <class Stream>
evroute::Status WebhookConnection::exchange(Stream& stream, const WebhookRequest& request,
                                            WebhookResponse* response) {
  http::request<http::span_body<const char>> req;
  req.method_string(request.method);
  req.target(request.path);
  req.version(11);
  bool has_host = false, has_accept = false;
  for (const auto& [name, value] : request.headers) {
    has_host = has_host || strcasecmp(name.c_str(), "host") == 0;
    has_accept = has_accept || strcasecmp(name.c_str(), "accept") == 0;
    req.insert(name, value);
  }
  if (!has_host) req.set(http::field::host, target_->host_header());
  if (!has_accept) req.set(http::field::accept, "*/*");
  req.body() = {request.body.data(), request.body.size()};
  req.prepare_payload();
  error_code ec = wait([&](auto done) { http::async_write(stream, req, std::move(done)); });
  if (ec) return failure("sending the request", ec);

  // The head, bounded; the body through a small buffer, never kept.
  boost::beast::flat_buffer buffer(2 * kMaxHeadBytes);
  http::response_parser<http::buffer_body> parser;
  parser.header_limit(kMaxHeadBytes);
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // counted below instead
  ec = wait([&](auto done) { http::async_read_header(stream, buffer, parser, std::move(done)); });
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    return evroute::Status::unavailable("response headers exceed " +
                                        std::to_string(kMaxHeadBytes / 1024) + " KiB");
  }
  if (ec) return failure("reading the response", ec);
  auto& res = parser.get();
  if (std::distance(res.begin(), res.end()) > kMaxHeaderFields) {
    return evroute::Status::unavailable("the response has more than " +
                                        std::to_string(kMaxHeaderFields) + " header fields");
  }
  response->status = static_cast<int>(res.result_int());
  response->retry_after = std::string(res[http::field::retry_after]);
  char chunk[16 * 1024];
  std::uint64_t body_read = 0;
  while (!parser.is_done()) {
    res.body().data = chunk;
    res.body().size = sizeof chunk;
    ec = wait([&](auto done) { http::async_read(stream, buffer, parser, std::move(done)); });
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return failure("reading the response body", ec);
    body_read += sizeof chunk - res.body().size;
    if (body_read > kMaxBodyRead && !parser.is_done()) {
      shut();  // not worth reading on: the status stands, the connection goes
      return evroute::Status::ok();
    }
  }
  if (!parser.keep_alive() || buffer.size() != 0) shut();
  return evroute::Status::ok();
}

}  // namespace evrouted
