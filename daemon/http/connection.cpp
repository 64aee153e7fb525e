#include "http/connection.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "http/content_encoding.h"
#include "http/refusals.h"
#include "http/request_parser.h"
#include "http/response_text.h"
#include "text.h"

namespace evrouted::http::internal {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadSize = 8192;
// After an answer that closes the connection, what the client still sends is read and dropped for
// at most this long, so that closing with unread bytes (a reset) cannot destroy the answer first.
constexpr auto kLingerTime = std::chrono::seconds(2);

tcp::socket& socket_of(tcp::socket& s) { return s; }
tcp::socket& socket_of(ssl::stream<tcp::socket>& s) { return s.next_layer(); }

// A connection over `Stream` (a plain or a TLS socket), on its loop only. Its pending operations
// hold it (by shared_ptr); it leaves the loop's list when it is destroyed.
template <typename Stream>
class Session final : public Connection, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(HttpServer::Impl& server, Loop& loop, Stream stream,
          std::shared_ptr<ssl::context> tls = nullptr)
      : server_(server), loop_(loop), stream_(std::move(stream)), tls_(std::move(tls)) {}
  ~Session() override {
    if (registered_) loop_.connections.erase(where);
    server_.open.fetch_sub(1, std::memory_order_relaxed);
  }

  // On the connection's loop.
  void start() {
    // stop() has closed this loop's connections, or is about to: one accepted meanwhile (on the
    // acceptor's loop, before it saw `stopping`) must not start, or its pending read would keep
    // the loop from returning and SIGTERM would hang on joining it.
    if (server_.stopping.load()) {
      phase_ = Phase::kClosed;
      error_code ignored;
      socket_of(stream_).close(ignored);
      return;
    }
    where = loop_.connections.insert(loop_.connections.end(), this);
    registered_ = true;
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      begin_request();
    } else {
      phase_ = Phase::kHandshake;
      deadline = Clock::now() + server_.limits.request_timeout;
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](const error_code& ec) {
                                if (ec || self->phase_ != Phase::kHandshake) return self->close();
                                self->begin_request();
                              });
    }
  }

  void expire() override {
    switch (phase_) {
      case Phase::kReading:
        if (writing_continue_) return close();  // one write at a time
        // The read stays outstanding: its completion is ignored (phase_ has moved on).
        return answer(request_timeout(server_.limits));
      case Phase::kHandling:
        return;  // no deadline while the handler works
      default:
        return close();
    }
  }

  void close() override {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    deadline = Clock::time_point::max();
    error_code ignored;
    socket_of(stream_).shutdown(tcp::socket::shutdown_both, ignored);
    socket_of(stream_).close(ignored);
  }

 private:
  enum class Phase { kHandshake, kIdle, kReading, kHandling, kWriting, kLingering, kClosed };

  // Reading a request.

  void begin_request() {
    parser_.reset();  // gives its body's bytes back to the budget
    request_.emplace();
    parser_.emplace(*request_, server_.limits, server_.bodies);
    sent_continue_ = false;
    head_ = false;
    phase_ = Phase::kIdle;
    deadline = Clock::now() + server_.limits.idle_timeout;
    parse_buffered();
  }

  // Parses what has arrived; reads more, or answers.
  void parse_buffered() {
    if (buffer_.size() > 0 && phase_ == Phase::kIdle) {
      phase_ = Phase::kReading;
      started_ = Clock::now();
      deadline = started_ + server_.limits.request_timeout;
    }
    while (buffer_.size() > 0 && !parser_->is_done()) {
      error_code ec;
      const std::size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == bhttp::error::need_more) break;
      if (ec) return answer(parse_refusal(*parser_, ec, server_.limits));
      if (n == 0) break;
    }
    if (parser_->is_done()) return on_request();
    if (parser_->is_header_done() && !sent_continue_ && request_->version >= 11 &&
        iequals(request_->header("Expect"), "100-continue")) {
      return send_continue();
    }
    read();
  }

  // The client waits for `100 Continue` before it sends the body; reading resumes once it is
  // written.
  void send_continue() {
    sent_continue_ = true;
    writing_continue_ = true;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = this->shared_from_this()](const error_code& ec, std::size_t) {
                        self->writing_continue_ = false;
                        if (ec) return self->close();
                        if (self->phase_ == Phase::kReading) self->read();
                      });
  }

  void read() {
    reading_ = true;
    stream_.async_read_some(buffer_.prepare(kReadSize),
                            [self = this->shared_from_this()](const error_code& ec, std::size_t n) {
                              self->on_read(ec, n);
                            });
  }

  void on_read(const error_code& ec, std::size_t n) {
    reading_ = false;
    if (phase_ == Phase::kLingering) {
      if (ec || Clock::now() >= deadline) return close();
      buffer_.consume(buffer_.size());
      return read();
    }
    if (phase_ != Phase::kIdle && phase_ != Phase::kReading) return;  // answered meanwhile
    if (ec) return close();  // the client went away (mid-request or between requests)
    buffer_.commit(n);
    parse_buffered();
  }

  // Handling a request read whole.

  void on_request() {
    Request& req = *request_;
    const std::size_t q = req.target.find('?');
    req.path = percent_decode(std::string_view(req.target).substr(0, q), false);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    if (req.method == "HEAD") {
      head_ = true;
      req.method = "GET";
    }
    if (std::optional<Response> refusal = decode_content()) return answer(std::move(*refusal));
    phase_ = Phase::kHandling;
    deadline = Clock::time_point::max();
    Response response;
    if (call_handler(response, /*may_block=*/false) == Disposition::kDone) {
      return answer(std::move(response));
    }
    hand_off();
  }

  // Decodes the body by its Content-Encoding and charges its growth to the budget; the answer
  // when that fails (the connection stays open: the request was read whole).
  std::optional<Response> decode_content() {
    Request& req = *request_;
    std::string why;
    const std::size_t wire_size = req.body.size();
    switch (decode_body(req.header("Content-Encoding"), req.body, server_.limits.max_body_bytes,
                        &why)) {
      case Decoded::kOk:
        if (req.body.size() > wire_size && !parser_->charge(req.body.size() - wire_size)) {
          return busy(server_.limits, /*close=*/false);
        }
        return std::nullopt;
      case Decoded::kTooLarge:
        return too_large(server_.limits, /*close=*/false);
      case Decoded::kCorrupt:
        return malformed_body(why);
      case Decoded::kUnsupported:
        return unsupported_encoding(req.header("Content-Encoding"));
    }
    return std::nullopt;
  }

  // The handler would wait: it runs again, with may_block, on the pool, and the answer comes back
  // to this loop.
  void hand_off() {
    asio::post(server_.pool, [self = this->shared_from_this()]() mutable {
      Response r;
      self->call_handler(r, /*may_block=*/true);
      // The reference moves on with the answer: the connection is only ever destroyed on its
      // loop (it unlinks itself from the loop's list).
      Loop& loop = self->loop_;
      asio::post(loop.context, [self = std::move(self), r = std::move(r)]() mutable {
        if (self->phase_ == Phase::kHandling) self->answer(std::move(r));
      });
    });
  }

  Disposition call_handler(Response& response, bool may_block) {
    try {
      return server_.handler(*request_, response, may_block);
    } catch (const std::exception& e) {
      spdlog::error("request failed: {}", e.what());
      response = internal_error(e);
    }
    return Disposition::kDone;
  }

  // Writing the answer.

  void answer(Response response) {
    if (phase_ == Phase::kClosed) return;
    const bool close = response.close || !parser_->is_done() || !parser_->keep_alive() ||
                       server_.stopping.load(std::memory_order_relaxed);
    if (phase_ == Phase::kIdle) started_ = Clock::now();
    if (server_.observer) server_.observer(*request_, response.status, Clock::now() - started_);
    out_.clear();
    append_response(out_, response, request_->version, close, head_);
    close_after_ = close;
    phase_ = Phase::kWriting;
    deadline = Clock::now() + server_.limits.request_timeout;
    asio::async_write(stream_, asio::buffer(out_),
                      [self = this->shared_from_this()](const error_code& ec, std::size_t) {
                        self->on_written(ec);
                      });
  }

  void on_written(const error_code& ec) {
    if (phase_ == Phase::kClosed) return;
    if (ec) return close();
    if (!close_after_) return begin_request();  // the next request may be in buffer_ already
    // Close gracefully: FIN after the answer, then drop what the client still sends until it
    // closes too (or kLingerTime), so a reset cannot overtake the answer.
    error_code ignored;
    socket_of(stream_).shutdown(tcp::socket::shutdown_send, ignored);
    phase_ = Phase::kLingering;
    deadline = Clock::now() +
               std::min<std::chrono::nanoseconds>(kLingerTime, server_.limits.request_timeout);
    buffer_.consume(buffer_.size());
    if (!reading_) read();
  }

  HttpServer::Impl& server_;
  Loop& loop_;
  Stream stream_;
  std::shared_ptr<ssl::context> tls_;  // keeps the certificate this connection was made with
  beast::flat_buffer buffer_;
  std::optional<Request> request_;
  std::optional<RequestParser> parser_;
  std::string out_;
  Phase phase_ = Phase::kIdle;
  Clock::time_point started_{};
  bool registered_ = false;  // in loop_.connections (start() ran)
  bool reading_ = false;
  bool sent_continue_ = false;
  bool writing_continue_ = false;
  bool close_after_ = false;
  bool head_ = false;
};

}  // namespace

void start_connection(HttpServer::Impl& server, Loop& loop, tcp::socket socket,
                      std::shared_ptr<ssl::context> tls) {
  if (tls) {
    using TlsStream = ssl::stream<tcp::socket>;
    auto session =
        std::make_shared<Session<TlsStream>>(server, loop, TlsStream(std::move(socket), *tls), tls);
    asio::post(loop.context, [session = std::move(session)] { session->start(); });
  } else {
    auto session = std::make_shared<Session<tcp::socket>>(server, loop, std::move(socket));
    asio::post(loop.context, [session = std::move(session)] { session->start(); });
  }
}

}  // namespace evrouted::http::internal
