// The http sink against hostile receivers: raw TCP servers on 127.0.0.1 (plain POSIX sockets and
// threads, since a well-behaved HTTP server cannot misbehave on purpose) that flood response
// headers, drip bytes, send huge bodies or hang up mid-request. Whatever they do, an attempt ends
// within `timeout`, the process's memory stays bounded, and a request that would smuggle headers
// is never written.
//
// This file does NOT ignore SIGPIPE (unlike http_sink_test.cpp): the transport must not need it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sinks/http_sink.h"

namespace evrouted {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A TCP server on 127.0.0.1 that runs `serve` on a thread of its own for each connection it
// accepts, and closes the connection when `serve` returns. The destructor stops it: `stopping`
// turns true and the open sockets are shut down, which wakes a serve blocked in recv or send; then
// every thread is joined.
class RawServer {
 public:
  using Serve = std::function<void(int fd, const std::atomic<bool>& stopping)>;

  explicit RawServer(Serve serve) : serve_(std::move(serve)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_GE(listen_fd_, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~RawServer() {
    stopping_ = true;
    acceptor_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : fds_) {
        if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
      }
    }
    for (auto& t : threads_) t.join();
    ::close(listen_fd_);
  }

  std::string url(const std::string& path = "/hooks") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int connections() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(fds_.size());
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
      threads_.emplace_back([this, fd, slot = fds_.size() - 1] {
        serve_(fd, stopping_);
        std::lock_guard<std::mutex> closing(mu_);
        ::close(fd);
        fds_[slot] = -1;
      });
    }
  }

  Serve serve_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<int> fds_;              // guarded by mu_; -1 once closed
  std::vector<std::thread> threads_;  // guarded by mu_ (joined after the acceptor)
};

// Reads one request: its head and, with a Content-Length, its body. "" when the peer went away.
std::string read_request(int fd) {
  std::string data;
  char buf[16384];
  std::size_t head_end = std::string::npos;
  std::size_t length = 0;
  for (;;) {
    if (head_end == std::string::npos) {
      head_end = data.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        head_end += 4;
        std::string head = data.substr(0, head_end);
        for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const std::size_t cl = head.find("\r\ncontent-length:");
        if (cl != std::string::npos) length = std::stoul(head.substr(cl + 17));
      }
    }
    if (head_end != std::string::npos && data.size() >= head_end + length) return data;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return "";
    data.append(buf, static_cast<std::size_t>(n));
  }
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// VmRSS of this process, in bytes.
std::size_t rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) * 1024;
  }
  ADD_FAILURE() << "no VmRSS in /proc/self/status";
  return 0;
}

// Samples VmRSS every few milliseconds while it lives; growth() is the peak over the start.
class RssWatch {
 public:
  RssWatch() : start_(rss_bytes()), peak_(start_) {
    thread_ = std::thread([this] {
      while (!done_) {
        const std::size_t now = rss_bytes();
        if (now > peak_) peak_ = now;
        std::this_thread::sleep_for(2ms);
      }
    });
  }
  ~RssWatch() { stop(); }
  void stop() {
    if (thread_.joinable()) {
      done_ = true;
      thread_.join();
    }
  }
  std::size_t growth() {
    stop();
    const std::size_t now = rss_bytes();
    if (now > peak_) peak_ = now;
    return peak_ - start_;
  }

 private:
  const std::size_t start_;
  std::atomic<std::size_t> peak_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

constexpr std::size_t kMiB = 1 << 20;

HttpSinkConfig config_for(const std::string& url, Duration timeout) {
  HttpSinkConfig c;
  EXPECT_FALSE(parse_webhook_url(url, &c));
  c.timeout = timeout;
  return c;
}

evroute::Event ev(const std::string& id) {
  return evroute::Event::make(id, R"({"id":")" + id + R"(","type":"t"})");
}

// A receiver that answers with an endless stream of header lines (for up to 10 s, as fast as the
// sink reads them): the attempt fails once the headers pass 64 KiB, as a retryable transport error,
// and memory does not follow the flood.
TEST(HttpSinkHostile, EndlessResponseHeadersFailPromptlyWithBoundedMemory) {
  RawServer server([](int fd, const std::atomic<bool>& stopping) {
    if (read_request(fd).empty()) return;
    if (!send_all(fd, "HTTP/1.1 200 OK\r\n")) return;
    std::string lines;
    for (int i = 0; i < 256; ++i)
      lines += "X-Flood-" + std::to_string(i) + ": " + std::string(200, 'f') + "\r\n";
    const auto until = Clock::now() + 10s;
    while (!stopping && Clock::now() < until && send_all(fd, lines)) {
    }
  });
  HttpSink sink(config_for(server.url(), 2s));
  RssWatch rss;
  const auto start = Clock::now();
  const evroute::Status s = sink.write(ev("flood"));
  const auto took = Clock::now() - start;
  EXPECT_LT(rss.growth(), 50 * kMiB);
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_NE(s.message().find("response headers exceed 64 KiB"), std::string::npos) << s;
  EXPECT_LT(took, 4s);  // about `timeout` at most (here it is the size bound that ends it)
  EXPECT_EQ(sink.stats().transport_errors, 1u);
  EXPECT_EQ(sink.stats().last_error, s.message());
}

// Many small header fields, well under 64 KiB: more than 100 fail the attempt.
TEST(HttpSinkHostile, TooManyResponseHeaderFieldsFail) {
  RawServer server([](int fd, const std::atomic<bool>&) {
    while (!read_request(fd).empty()) {
      std::string answer = "HTTP/1.1 204 No Content\r\n";
      for (int i = 0; i < 150; ++i) answer += "X-" + std::to_string(i) + ": 1\r\n";
      if (!send_all(fd, answer + "\r\n")) return;
    }
  });
  HttpSink sink(config_for(server.url(), 2s));
  const evroute::Status s = sink.write(ev("many"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_NE(s.message().find("more than 100 header fields"), std::string::npos) << s;
}

// A receiver that drips a valid answer one byte per 200 ms: `timeout` (1 s) is the deadline of the
// whole attempt, not of each read — whether it drips the head or the body.
TEST(HttpSinkHostile, ADrippingReceiverIsCutOffAtTheTimeout) {
  for (const std::string head_then_drip : {"", "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"}) {
    const std::string drip = head_then_drip.empty()
                                 ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                                 : std::string(40, 'd');
    RawServer server([&](int fd, const std::atomic<bool>& stopping) {
      if (read_request(fd).empty() || !send_all(fd, head_then_drip)) return;
      for (char c : drip) {
        if (stopping || !send_all(fd, std::string_view(&c, 1))) return;
        std::this_thread::sleep_for(200ms);
      }
    });
    HttpSink sink(config_for(server.url(), 1s));
    const auto start = Clock::now();
    const evroute::Status s = sink.write(ev("drip"));
    const auto took = Clock::now() - start;
    EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
    EXPECT_NE(s.message().find("timed out after 1s"), std::string::npos) << s;
    EXPECT_GE(took, 900ms);
    EXPECT_LT(took, 2500ms);  // a generous bound: the drip alone would take 8 s
  }
}

// A 50 MB answer body is never buffered: the status decides (a 2xx is delivered, a 500 retried),
// at most 8 MiB of the body is read, then the connection is closed and the next write makes a new
// one.
TEST(HttpSinkHostile, AHugeAnswerBodyIsNotBufferedAndTheStatusStands) {
  std::atomic<int> status{200};
  RawServer server([&](int fd, const std::atomic<bool>& stopping) {
    if (read_request(fd).empty()) return;
    constexpr std::size_t kBody = 50 * 1000 * 1000;
    const std::string head = "HTTP/1.1 " + std::to_string(status.load()) +
                             " X\r\nContent-Length: " + std::to_string(kBody) + "\r\n\r\n";
    if (!send_all(fd, head)) return;
    const std::string chunk(64 * 1024, 'b');
    for (std::size_t sent = 0; sent < kBody && !stopping; sent += chunk.size()) {
      if (!send_all(fd, chunk)) return;
    }
  });
  HttpSink sink(config_for(server.url(), 10s));
  RssWatch rss;
  EXPECT_TRUE(sink.write(ev("a")).is_ok());
  status = 500;
  const evroute::Status s = sink.write(ev("b"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_EQ(s.message(), "POST " + server.url() + ": HTTP 500");
  EXPECT_LT(rss.growth(), 40 * kMiB);  // keeping either body would take 47 MiB (ASan: ~25 MiB)
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(sink.stats().responses_2xx, 1u);
  EXPECT_EQ(sink.stats().responses_5xx, 1u);
}

// CR, LF or NUL in a header name or value (or in the request target) would let a value smuggle in
// headers or a second request: the transport refuses such a request, not retryable, naming the
// header, and writes nothing. (The config parser refuses such headers already; this is the last
// line of defence for values built at run time.)
TEST(HttpSinkHostile, AHeaderWithCrLfOrNulIsRefusedAndNeverSent) {
  std::mutex mu;
  std::string received;
  RawServer server([&](int fd, const std::atomic<bool>&) {
    for (std::string req; !(req = read_request(fd)).empty();) {
      {
        std::lock_guard<std::mutex> lock(mu);
        received += req;
      }
      if (!send_all(fd, "HTTP/1.1 204 No Content\r\n\r\n")) return;
    }
  });
  struct Case {
    std::string name, value, path;
  } cases[] = {{"X-A", "1\r\nX-Injected: 2", "/hooks"},
               {"X-A", std::string("1\0X-Injected: 2", 15), "/hooks"},
               {"X-A", "1\nX-Injected: 2", "/hooks"},
               {"X-Injected: 2\r\nX-A", "1", "/hooks"},
               {"X-A", "1", "/hooks HTTP/1.1\r\nX-Injected: 2\r\n"}};
  for (const Case& c : cases) {
    auto config = config_for(server.url(), 2s);
    config.headers = {{c.name, c.value}};
    config.path = c.path;
    HttpSink sink(config);
    const evroute::Status s = sink.write(ev("inject"));
    EXPECT_EQ(s.code(), evroute::Code::kRejected) << s;
    EXPECT_FALSE(s.is_retryable());
    EXPECT_EQ(s.message().rfind("POST " + server.url() + ": ", 0), 0u) << s;
    EXPECT_NE(s.message().find(c.path == "/hooks" ? "header 'X-" : "request target"),
              std::string::npos)
        << s;
    EXPECT_EQ(sink.stats().last_error, s.message());
  }
  // A clean request on the same server does arrive, so "nothing received" above means something.
  HttpSink clean(config_for(server.url(), 2s));
  EXPECT_TRUE(clean.write(ev("clean")).is_ok());
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(received.find("X-Injected"), std::string::npos) << received;
  EXPECT_NE(received.find("webhook-id: clean"), std::string::npos) << received;
}

// Receivers that hang up while a request is being sent: a retryable transport error, never a
// SIGPIPE (this test binary leaves SIGPIPE at its default, which kills the process). The first
// connection answers one request, then closes: a write reusing it would send into a socket the
// peer has closed (EPIPE). Later connections read a little of the request, then hang up.
TEST(HttpSinkHostile, AReceiverHangingUpMidRequestIsATransportError) {
  std::atomic<int> accepted{0};
  RawServer server([&](int fd, const std::atomic<bool>&) {
    if (accepted++ == 0) {
      if (!read_request(fd).empty()) send_all(fd, "HTTP/1.1 204 No Content\r\n\r\n");
      return;  // returning closes the socket
    }
    char buf[4096];
    (void)::recv(fd, buf, sizeof buf, 0);
  });
  HttpSink sink(config_for(server.url(), 5s));
  ASSERT_TRUE(sink.write(ev("small")).is_ok());
  std::this_thread::sleep_for(200ms);  // lets the receiver's FIN arrive
  const std::string big(16 * kMiB, 'x');
  const evroute::Status s =
      sink.write(evroute::Event::make("big", R"({"id":"big","pad":")" + big + R"("})"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_EQ(sink.stats().transport_errors, 1u);
}

}  // namespace
}  // namespace evrouted
