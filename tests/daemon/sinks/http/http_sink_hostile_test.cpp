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

#include "http_sink_support.h"
#include "sinks/http/http_sink.h"
#include "support/raw_server.h"

namespace evrouted {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using evtest::RawServer;
using evtest::read_request;
using evtest::send_all;

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
