#include "http_server.h"

// Boost 1.74's Asio with GCC 12 in C++20 needs <utility> before its headers (std::exchange).
#include <utility>
//
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <zlib.h>

#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <cctype>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "json_parse.h"

namespace evrouted::http {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr auto kSweepPeriod = std::chrono::milliseconds(250);
constexpr int kAcceptBurst = 64;  // connections taken from the backlog per accept completion
constexpr std::size_t kReadSize = 8192;
// After an answer that closes the connection, what the client still sends is read and dropped for
// at most this long, so that closing with unread bytes (a reset) cannot destroy the answer first.
constexpr auto kLingerTime = std::chrono::seconds(2);

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_digit(s[i + 1]);
      const int lo = hex_digit(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

namespace {

// "10s", "1500ms": how a limit is named in an answer.
std::string format_duration(std::chrono::nanoseconds d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// Bytes of request bodies held at once, over every connection (Limits::max_buffered_bytes).
class BodyBudget {
 public:
  explicit BodyBudget(std::uint64_t limit) : limit_(limit) {}
  bool try_charge(std::uint64_t n) {
    std::uint64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (n > limit_ - std::min(used, limit_)) return false;
    } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
    return true;
  }
  void release(std::uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }

 private:
  const std::uint64_t limit_;
  std::atomic<std::uint64_t> used_{0};
};

// The request parser: Beast's, with a bound on the number of header fields (Beast bounds only
// their bytes) and a refusal of a second Content-Length (Beast accepts equal ones, which proxies
// may read differently). Fills a Request in place.
class RequestParser final : public bhttp::basic_parser<true> {
 public:
  RequestParser(Request& request, const Limits& limits, BodyBudget& budget)
      : request_(request), max_fields_(limits.max_header_count), budget_(budget) {
    header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    body_limit(limits.max_body_bytes);
    eager(true);
  }
  ~RequestParser() override { budget_.release(charged_); }
  bool too_many_fields() const { return too_many_fields_; }
  // A second Content-Length: equal to the first (refused here), or not (refused by Beast before
  // on_field_impl sees it, with the first one already recorded).
  bool duplicate_content_length(const error_code& ec) const {
    return duplicate_content_length_ ||
           (ec == bhttp::error::bad_content_length && content_lengths_ > 0);
  }
  bool over_budget() const { return over_budget_; }
  // Charges `n` more bytes of body (a decoded body's growth) to the budget.
  bool charge(std::uint64_t n) {
    if (!budget_.try_charge(n)) return over_budget_ = true, false;
    charged_ += n;
    return true;
  }

 private:
  void on_request_impl(bhttp::verb, beast::string_view method, beast::string_view target,
                       int version, error_code&) override {
    request_.method.assign(method.data(), method.size());
    request_.target.assign(target.data(), target.size());
    request_.version = static_cast<unsigned>(version);
  }
  void on_response_impl(int, beast::string_view, int, error_code& ec) override {
    ec = bhttp::error::bad_method;  // a request parser never sees a status line
  }
  void on_field_impl(bhttp::field name, beast::string_view name_string, beast::string_view value,
                     error_code& ec) override {
    if (++fields_ > max_fields_) {
      too_many_fields_ = true;
      ec = bhttp::error::header_limit;
      return;
    }
    if (name == bhttp::field::content_length && ++content_lengths_ > 1) {
      duplicate_content_length_ = true;
      ec = bhttp::error::bad_content_length;
      return;
    }
    request_.headers.insert(name, name_string, value);
  }
  // A Content-Length body is charged whole when its header is complete (before `100 Continue`,
  // before any of it is read); a chunked one chunk by chunk.
  void on_header_impl(error_code& ec) override {
    const auto length = content_length();
    if (!length || *length == 0) return;
    if (!charge(*length)) {
      ec = bhttp::error::body_limit;
      return;
    }
    request_.body.reserve(static_cast<std::size_t>(*length));
  }
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(beast::string_view body, error_code&) override {
    request_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code& ec) override {
    if (!charge(body.size())) {
      ec = bhttp::error::body_limit;
      return 0;
    }
    request_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(error_code&) override {}

  Request& request_;
  std::size_t max_fields_;
  BodyBudget& budget_;
  std::uint64_t charged_ = 0;
  bool over_budget_ = false;
  std::size_t fields_ = 0;
  int content_lengths_ = 0;
  bool too_many_fields_ = false;
  bool duplicate_content_length_ = false;
};

enum class Decoded { kOk, kTooLarge, kCorrupt, kUnsupported };

// Decodes `body` in place by its Content-Encoding: gzip or deflate (zlib; gzip members may follow
// one another). The decoded size is bounded by `max`: a bomb stops there.
Decoded decode_body(std::string_view encoding, std::string& body, std::uint64_t max,
                    std::string* why) {
  while (!encoding.empty() && (encoding.front() == ' ' || encoding.front() == '\t')) {
    encoding.remove_prefix(1);
  }
  while (!encoding.empty() && (encoding.back() == ' ' || encoding.back() == '\t')) {
    encoding.remove_suffix(1);
  }
  if (encoding.empty() || iequals(encoding, "identity")) return Decoded::kOk;
  if (!iequals(encoding, "gzip") && !iequals(encoding, "x-gzip") && !iequals(encoding, "deflate")) {
    return Decoded::kUnsupported;
  }
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) {  // 32: a zlib or a gzip header, whichever it is
    *why = "cannot start zlib";
    return Decoded::kCorrupt;
  }
  std::string out;
  std::array<char, 64 << 10> chunk;
  zs.next_in = reinterpret_cast<Bytef*>(body.data());
  zs.avail_in = static_cast<uInt>(body.size());
  Decoded result = Decoded::kOk;
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk.data());
    zs.avail_out = static_cast<uInt>(chunk.size());
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out.append(chunk.data(), chunk.size() - zs.avail_out);
    if (out.size() > max) {
      result = Decoded::kTooLarge;
      break;
    }
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // another gzip member follows
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      *why = "the body ends before the compressed data does";
    } else {
      *why = zs.msg ? zs.msg : "zlib error " + std::to_string(rc);
    }
    result = Decoded::kCorrupt;
    break;
  }
  inflateEnd(&zs);
  if (result == Decoded::kOk) body = std::move(out);
  return result;
}

void append_response(std::string& out, const Response& r, unsigned version, bool close, bool head) {
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
  out.append(reason.data(), reason.size());
  out += "\r\n";
  if (!r.content_type.empty()) {
    out += "Content-Type: ";
    out += r.content_type;
    out += "\r\n";
  }
  out += "Content-Length: ";
  out += std::to_string(r.body.size());
  out += "\r\n";
  for (const auto& [name, value] : r.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (close) {
    out += "Connection: close\r\n";
  } else if (version == 10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!head) out += r.body;
}

// An answer of the server itself; `close`: the request was not read whole.
Response error_response(int status, std::string_view message, bool close = true) {
  Response r;
  r.status = status;
  r.body = error_body(message);
  r.close = close;
  return r;
}

tcp::socket& socket_of(tcp::socket& s) { return s; }
tcp::socket& socket_of(ssl::stream<tcp::socket>& s) { return s.next_layer(); }

}  // namespace

std::string error_body(std::string_view message) {
  return dump_json(nlohmann::json{{"error", message}});  // the message may quote any bytes
}

std::string_view Request::header(std::string_view name) const {
  const auto it = headers.find(beast::string_view(name.data(), name.size()));
  return it == headers.end() ? std::string_view() : sv(it->value());
}

bool Request::has_header(std::string_view name) const {
  return headers.find(beast::string_view(name.data(), name.size())) != headers.end();
}

std::optional<std::string> Request::param(std::string_view key) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq), true) != key) continue;
    return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), true);
  }
  return std::nullopt;
}

namespace {

class Connection;

// One event loop: an io_context run by one thread, and the connections that live on it.
struct Loop {
  std::list<Connection*> connections;  // touched on this loop's thread only
  asio::io_context context{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{context.get_executor()};
  asio::steady_timer sweep{context};
};

class Connection {
 public:
  virtual ~Connection() = default;
  virtual void expire() = 0;  // its deadline has passed (on its loop)
  virtual void close() = 0;

  Clock::time_point deadline = Clock::time_point::max();
  std::list<Connection*>::iterator where;
};

}  // namespace

struct HttpServer::Impl {
  Impl(Limits l, Handler h, Observer o)
      : limits(l),
        handler(std::move(h)),
        observer(std::move(o)),
        bodies(l.max_buffered_bytes),
        pool(l.blocking_threads) {
    const unsigned n =
        limits.threads > 0 ? limits.threads : std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) loops.push_back(std::make_unique<Loop>());
    acceptor.emplace(loops[0]->context);
    Response r = error_response(503, "too many connections (server.max_connections: " +
                                         std::to_string(limits.max_connections) + ")");
    r.headers.emplace_back("Retry-After", "1");
    append_response(too_many_connections, r, 11, /*close=*/true, /*head=*/false);
  }

  void accept();
  void on_accept(const error_code& ec, tcp::socket socket);
  // Starts serving an accepted connection on `target`, or refuses it past max_connections.
  void adopt(tcp::socket s, Loop& target);
  void refuse(tcp::socket& socket);
  void arm_sweep(Loop& loop);
  std::shared_ptr<ssl::context> tls_context() const {
    std::lock_guard<std::mutex> g(tls_mu);
    return tls;
  }

  const Limits limits;
  const Handler handler;
  const Observer observer;
  std::string too_many_connections;  // the whole answer past max_connections (made once)
  // Declared before loops: the connections (destroyed with their loop) use these.
  std::atomic<std::size_t> open{0};
  BodyBudget bodies;
  std::vector<std::unique_ptr<Loop>> loops;
  std::optional<tcp::acceptor> acceptor;
  asio::steady_timer* accept_retry = nullptr;  // set by serve()
  std::size_t next_loop = 0;
  asio::thread_pool pool;
  std::vector<std::thread> threads;
  std::atomic<bool> serving{false};
  std::atomic<bool> stopping{false};
  Clock::time_point accept_error_logged{};
  mutable std::mutex tls_mu;
  std::shared_ptr<ssl::context> tls;
};

namespace {

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
        return answer(error_response(408, "request not received within request_timeout (" +
                                              format_duration(server_.limits.request_timeout) +
                                              ")"));
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
      if (ec) return refuse_request(ec);
      if (n == 0) break;
    }
    if (parser_->is_done()) return on_request();
    if (parser_->is_header_done() && !sent_continue_ && request_->version >= 11 &&
        iequals(request_->header("Expect"), "100-continue")) {
      sent_continue_ = true;
      writing_continue_ = true;
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = this->shared_from_this()](const error_code& ec, std::size_t) {
                          self->writing_continue_ = false;
                          if (ec) return self->close();
                          if (self->phase_ == Phase::kReading) self->read();
                        });
      return;
    }
    read();
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

  void refuse_request(const error_code& ec) {
    const Limits& limits = server_.limits;
    if (parser_->too_many_fields()) {
      return answer(error_response(431, "more than max_header_count (" +
                                            std::to_string(limits.max_header_count) +
                                            ") header fields"));
    }
    if (ec == bhttp::error::header_limit) {
      return answer(error_response(431, "request header larger than max_header_bytes (" +
                                            std::to_string(limits.max_header_bytes) + ")"));
    }
    if (parser_->over_budget()) return answer(busy());
    if (parser_->duplicate_content_length(ec)) {
      return answer(error_response(400, "more than one Content-Length header"));
    }
    if (ec == bhttp::error::body_limit) return answer(too_large());
    answer(error_response(400, "malformed HTTP request: " + ec.message()));
  }

  Response busy() const {
    Response r = error_response(503, "evrouted holds server.max_buffered_bytes (" +
                                         std::to_string(server_.limits.max_buffered_bytes) +
                                         ") of request bodies already; retry");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }

  Response too_large(bool close = true) const {
    return error_response(413,
                          "request body larger than max_body_bytes (" +
                              std::to_string(server_.limits.max_body_bytes) + ")",
                          close);
  }

  void on_request() {
    Request& req = *request_;
    const std::size_t q = req.target.find('?');
    req.path = percent_decode(std::string_view(req.target).substr(0, q), false);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    if (req.method == "HEAD") {
      head_ = true;
      req.method = "GET";
    }
    std::string why;
    const std::size_t wire_size = req.body.size();
    switch (decode_body(req.header("Content-Encoding"), req.body, server_.limits.max_body_bytes,
                        &why)) {
      case Decoded::kOk:
        if (req.body.size() > wire_size && !parser_->charge(req.body.size() - wire_size)) {
          Response r = busy();
          r.close = false;
          return answer(std::move(r));
        }
        break;
      case Decoded::kTooLarge:
        return answer(too_large(/*close=*/false));
      case Decoded::kCorrupt:
        return answer(error_response(400, "malformed gzip body: " + why, false));
      case Decoded::kUnsupported:
        return answer(error_response(415,
                                     "unsupported Content-Encoding '" +
                                         std::string(req.header("Content-Encoding")) +
                                         "': use gzip, deflate or identity",
                                     false));
    }
    phase_ = Phase::kHandling;
    deadline = Clock::time_point::max();
    Response response;
    if (call_handler(response, /*may_block=*/false) == Disposition::kDone) {
      return answer(std::move(response));
    }
    // It would wait: on the pool, then back to this loop.
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
      response = error_response(500, std::string("internal error: ") + e.what(), false);
    }
    return Disposition::kDone;
  }

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

void HttpServer::Impl::accept() {
  Loop& target = *loops[next_loop];
  next_loop = (next_loop + 1) % loops.size();
  acceptor->async_accept(target.context, [this, &target](const error_code& ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted || stopping.load()) return;
    if (ec) {
      const auto now = Clock::now();
      if (now - accept_error_logged >= std::chrono::seconds(1)) {
        accept_error_logged = now;
        spdlog::error("cannot accept a connection: {}", ec.message());
      }
      // Out of file descriptors (or the like): try again shortly rather than spin.
      accept_retry->expires_after(std::chrono::milliseconds(50));
      accept_retry->async_wait([this](const error_code& e) {
        if (!e) accept();
      });
      return;
    }
    adopt(std::move(s), target);
    // Take the rest of the backlog now (the acceptor is non-blocking): one accept per pass of the
    // loop would leave a burst of new connections waiting behind every established one's request
    // (1,000 connections at once waited seconds for their first answer). Bounded, so the loop's
    // other connections are not kept waiting either; an error ends the burst, and the
    // asynchronous accept below sees it again.
    for (int i = 0; i < kAcceptBurst; ++i) {
      Loop& next = *loops[next_loop];
      error_code e;
      tcp::socket more = acceptor->accept(next.context, e);
      if (e) break;
      next_loop = (next_loop + 1) % loops.size();
      adopt(std::move(more), next);
    }
    accept();
  });
}

void HttpServer::Impl::adopt(tcp::socket s, Loop& target) {
  if (open.load(std::memory_order_relaxed) >= limits.max_connections) {
    refuse(s);
    return;
  }
  open.fetch_add(1, std::memory_order_relaxed);
  error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);  // else keep-alive clients wait for Nagle
  if (auto context = tls_context()) {
    using TlsStream = ssl::stream<tcp::socket>;
    auto session = std::make_shared<Session<TlsStream>>(*this, target,
                                                        TlsStream(std::move(s), *context), context);
    asio::post(target.context, [session = std::move(session)] { session->start(); });
  } else {
    auto session = std::make_shared<Session<tcp::socket>>(*this, target, std::move(s));
    asio::post(target.context, [session = std::move(session)] { session->start(); });
  }
}

void HttpServer::Impl::refuse(tcp::socket& socket) {
  if (!tls_context()) {
    // Best effort, without waiting: the socket's send buffer is empty.
    [[maybe_unused]] const auto n =
        ::send(socket.native_handle(), too_many_connections.data(), too_many_connections.size(),
               MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  socket.close(ignored);
}

void HttpServer::Impl::arm_sweep(Loop& loop) {
  loop.sweep.expires_after(kSweepPeriod);
  loop.sweep.async_wait([this, &loop](const error_code& ec) {
    if (ec) return;
    const auto now = Clock::now();
    std::vector<Connection*> expired;
    for (Connection* c : loop.connections) {
      if (c->deadline <= now) expired.push_back(c);
    }
    // expire() never destroys a connection at once (its pending operations hold it).
    for (Connection* c : expired) c->expire();
    arm_sweep(loop);
  });
}

HttpServer::HttpServer(Limits limits, Handler handler, Observer observer)
    : impl_(std::make_unique<Impl>(limits, std::move(handler), std::move(observer))) {}

HttpServer::~HttpServer() { stop(); }

namespace {

std::shared_ptr<ssl::context> load_tls(const TlsFiles& files) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use);
  const auto attempt = [](const char* key, const std::string& path, auto&& load) {
    error_code ec;
    load(ec);
    if (ec) {
      throw std::runtime_error("server.tls." + std::string(key) + " '" + path +
                               "': " + ec.message());
    }
  };
  attempt("cert_file", files.cert_file,
          [&](error_code& ec) { context->use_certificate_chain_file(files.cert_file, ec); });
  attempt("key_file", files.key_file, [&](error_code& ec) {
    context->use_private_key_file(files.key_file, ssl::context::pem, ec);
  });
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    throw std::runtime_error("server.tls.key_file '" + files.key_file +
                             "' is not the key of the certificate in '" + files.cert_file + "'");
  }
  if (!files.client_ca_file.empty()) {
    attempt("client_ca_file", files.client_ca_file,
            [&](error_code& ec) { context->load_verify_file(files.client_ca_file, ec); });
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return context;
}

}  // namespace

void HttpServer::use_tls(const TlsFiles& files) {
  auto context = load_tls(files);
  std::lock_guard<std::mutex> g(impl_->tls_mu);
  impl_->tls = std::move(context);
}

std::string HttpServer::reload_tls(const TlsFiles& files) {
  try {
    use_tls(files);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

bool HttpServer::tls() const { return impl_->tls_context() != nullptr; }

int HttpServer::bind(const std::string& host, int port) {
  const std::string where = host + ":" + std::to_string(port);
  error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  tcp::acceptor& a = *impl_->acceptor;
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  const auto fail = [&] {
    error_code ignored;
    a.close(ignored);
    throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  };
  if (a.open(endpoint.protocol(), ec)) fail();
  // SO_REUSEADDR (not SO_REUSEPORT): a restart may bind while old connections sit in TIME_WAIT,
  // but a second process cannot listen on the same address.
  if (a.set_option(tcp::acceptor::reuse_address(true), ec)) fail();
  if (a.bind(endpoint, ec)) fail();
  if (a.listen(asio::socket_base::max_listen_connections, ec)) fail();
  if (a.non_blocking(true, ec)) fail();  // accept()'s bursts (see Impl::accept) must not wait
  // Each connection is a file descriptor: make room for max_connections of them beside the sinks'
  // files and sockets.
  const rlim_t want = static_cast<rlim_t>(impl_->limits.max_connections) + 1024;
  if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
    rl.rlim_cur = std::min(want, rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want) {
      spdlog::warn(
          "server.max_connections is {} but the open files limit is {} (hard limit): connections "
          "past it are refused by accept(); raise LimitNOFILE / ulimit -n",
          impl_->limits.max_connections, rl.rlim_cur);
    }
  }
  return a.local_endpoint().port();
}

bool HttpServer::serve() {
  Impl& s = *impl_;
  if (!s.acceptor->is_open() || s.stopping.load()) return false;
  asio::steady_timer retry(s.loops[0]->context);
  s.accept_retry = &retry;
  asio::post(s.loops[0]->context, [&s] { s.accept(); });
  for (auto& loop : s.loops) {
    Loop* l = loop.get();
    asio::post(l->context, [&s, l] { s.arm_sweep(*l); });
  }
  for (std::size_t i = 1; i < s.loops.size(); ++i) {
    s.threads.emplace_back([l = s.loops[i].get()] { l->context.run(); });
  }
  s.serving.store(true);
  s.loops[0]->context.run();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  s.accept_retry = nullptr;
  return true;
}

bool HttpServer::wait_until_serving(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!impl_->serving.load()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void HttpServer::stop() {
  Impl& s = *impl_;
  if (s.stopping.exchange(true)) return;
  if (!s.serving.load()) {
    error_code ignored;
    s.acceptor->close(ignored);
    return;
  }
  asio::post(s.loops[0]->context, [&s] {
    error_code ignored;
    s.acceptor->close(ignored);
    if (s.accept_retry) s.accept_retry->cancel();
  });
  s.pool.join();  // handlers that may wait finish (the router refuses new events by now)
  for (auto& loop : s.loops) {
    Loop* l = loop.get();
    asio::post(l->context, [l] {
      l->sweep.cancel();
      const std::vector<Connection*> open(l->connections.begin(), l->connections.end());
      for (Connection* c : open) c->close();
      l->work.reset();  // run() returns once the closed connections' handlers have run
    });
  }
}

}  // namespace evrouted::http
