// slowloris: how evrouted serves a normal client while many connections trickle or sit idle.
// bench/load.sh's scenario `slow`.
//
//   slowloris --target 127.0.0.1:PORT [--connections 1000] [--idle-share 0.2] [--duration 8]
//             [--interval-ms 10] [--pid PID]
//
// Opens `connections` connections to the target. A share of them (idle-share) never sends
// anything; the others send a request header one byte per second (staggered over the second),
// never finishing it. A connection the server closes (a 408 after request_timeout, or an idle
// close) is opened again at once, as an attacker would. Once all are open (and, with --pid, once
// the target holds that many descriptors more than before, or after 5 s), a normal client runs for
// `duration` seconds: one connection at a time, alternately GET /healthz and POST /v1/events (one
// ~210-byte event), two requests per connection (the first on a new connection, its latency
// including the connect; the second on the same keep-alive connection), `interval-ms` apart. A
// request not answered within 2 s counts as unanswered.
//
// Prints one line of key=value figures (for load.sh) and a readable summary on stderr:
// requests made, answered (2xx), the share of requests answered within 100 ms, p50/p99/max
// latency of the answered ones, and, with --pid, the target's open file descriptors during the
// normal client's run (min and max of /proc/PID/fd, sampled every 100 ms). Exit 0 unless the
// arguments are wrong or a socket cannot be created; the figures never fail it.
//
// Single process: the slow connections on the main thread (poll), the normal client on one
// thread; they share only atomics.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::string_view kEvent =
    R"({"type":"order.created","source":"shop-eu-1","customer":"c-1234567","amount":1999,)"
    R"("currency":"EUR","items":[{"sku":"A-100","qty":2},{"sku":"B-200","qty":1}],"note":"x"})";

// The header a slow connection trickles: long enough never to end within a run (a byte a second).
std::string slow_header() {
  std::string h =
      "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
  for (int i = 0; i < 40; ++i) h += "X-Slow-" + std::to_string(i) + ": aaaaaaaaaaaaaaaa\r\n";
  return h;
}

sockaddr_in target_address;

// A non-blocking TCP socket connecting (or connected) to the target; -1 when socket() fails.
int open_socket(bool blocking) {
  int fd = ::socket(AF_INET, SOCK_STREAM | (blocking ? 0 : SOCK_NONBLOCK), 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&target_address), sizeof target_address) !=
          0 &&
      errno != EINPROGRESS) {
    ::close(fd);
    return -2;
  }
  return fd;
}

std::size_t count_fds(int pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return n;
}

// Waits until fd is ready for `events` or the deadline passes.
bool wait_ready(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

// Sends `request` on fd and reads one whole response (Content-Length framed). Returns its status,
// or 0 when none came before the deadline or the connection broke.
int exchange(int fd, const std::string& request, Clock::time_point deadline) {
  std::size_t sent = 0;
  while (sent < request.size()) {
    if (!wait_ready(fd, POLLOUT, deadline)) return 0;
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return 0;
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  char buf[4096];
  std::size_t header_end = std::string::npos, content_length = 0;
  for (;;) {
    if (header_end == std::string::npos) {
      header_end = in.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::string lower(in, 0, header_end);
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (auto p = lower.find("\r\ncontent-length:"); p != std::string::npos) {
          content_length = std::strtoul(lower.c_str() + p + 17, nullptr, 10);
        }
        header_end += 4;
      }
    }
    if (header_end != std::string::npos && in.size() >= header_end + content_length) {
      if (in.compare(0, 5, "HTTP/") != 0 || in.size() < 12) return 0;
      return std::atoi(in.c_str() + 9);
    }
    if (!wait_ready(fd, POLLIN, deadline)) return 0;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return 0;
    in.append(buf, static_cast<std::size_t>(n));
  }
}

struct NormalClientResult {
  std::size_t made = 0, answered = 0, non2xx = 0, within_100ms = 0;
  std::vector<double> latencies_ms;  // of the answered requests
};

NormalClientResult normal_client(Clock::time_point end, std::chrono::milliseconds interval) {
  NormalClientResult r;
  const std::string get = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  const std::string post =
      "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(kEvent.size()) + "\r\n";
  for (std::size_t pair = 0; Clock::now() < end; ++pair) {
    int fd = -1;
    for (int i = 0; i < 2 && Clock::now() < end; ++i) {
      // Pairs alternate which request goes first, so each kind is half new, half keep-alive.
      const bool is_get = (pair + i) % 2 == 0;
      std::string request = (is_get ? get : post) + (i == 1 ? "Connection: close\r\n\r\n" : "\r\n");
      if (!is_get) request += kEvent;
      const auto start = Clock::now();
      const auto deadline = start + 2s;
      ++r.made;
      int status = 0;
      if (fd < 0) {
        fd = open_socket(false);
        if (fd < 0 || !wait_ready(fd, POLLOUT, deadline)) status = -1;
      }
      if (status == 0) status = exchange(fd, request, deadline);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      if (status >= 200 && status < 300) {
        ++r.answered;
        r.latencies_ms.push_back(ms);
        if (ms <= 100) ++r.within_100ms;
      } else {
        if (status > 0) ++r.non2xx;
        if (fd >= 0) ::close(fd);
        fd = -1;
        break;  // a new connection for the next pair
      }
      std::this_thread::sleep_for(interval);
    }
    if (fd >= 0) ::close(fd);
  }
  return r;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

struct Slow {
  int fd = -1;
  bool idle = false;
  std::size_t sent = 0;  // bytes of the header sent
  Clock::time_point next;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slowloris: a normal client's service while many connections trickle or idle"};
  std::string target;
  std::size_t connections = 1000;
  double idle_share = 0.2;
  unsigned duration = 8, interval_ms = 10;
  int pid = 0;
  app.add_option("--target", target, "HOST:PORT of evrouted (IPv4)")->required();
  app.add_option("--connections", connections, "slow and idle connections to hold open");
  app.add_option("--idle-share", idle_share, "share of them that never send a byte")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--duration", duration, "seconds the normal client runs")
      ->check(CLI::PositiveNumber);
  app.add_option("--interval-ms", interval_ms, "pause between the normal client's requests");
  app.add_option("--pid", pid, "evrouted's PID: count its open file descriptors");
  CLI11_PARSE(app, argc, argv);
  const auto colon = target.rfind(':');
  target_address.sin_family = AF_INET;
  if (colon == std::string::npos ||
      ::inet_pton(AF_INET, target.substr(0, colon).c_str(), &target_address.sin_addr) != 1) {
    std::fprintf(stderr, "slowloris: --target is IPV4:PORT, not %s\n", target.c_str());
    return 2;
  }
  target_address.sin_port = htons(static_cast<std::uint16_t>(std::stoi(target.substr(colon + 1))));

  // Room for every connection, the normal client's and a margin.
  if (rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, connections + 256);
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }

  const std::size_t fds_before = pid > 0 ? count_fds(pid) : 0;
  const std::string header = slow_header();
  std::vector<Slow> slow(connections);
  std::size_t opened = 0, reopened = 0, refused = 0, got_408 = 0, got_other = 0;
  const auto begin = Clock::now();
  const auto open_slow = [&](Slow& s, std::size_t index) {
    s.fd = open_socket(false);
    s.sent = 0;
    // Staggered over the second, so the trickle is steady rather than one burst a second.
    s.next = Clock::now() + std::chrono::microseconds(1'000'000 * (index % 1000) / 1000);
    if (s.fd == -1) {
      std::perror("slowloris: socket");
      std::exit(1);
    }
    if (s.fd < 0)
      ++refused;
    else
      ++opened;
  };
  const std::size_t idle_count =
      static_cast<std::size_t>(idle_share * static_cast<double>(connections));
  for (std::size_t i = 0; i < connections; ++i) {
    slow[i].idle = i < idle_count;
    open_slow(slow[i], i);
  }
  // Until the server holds them all (accept() may lag behind the connects).
  if (pid > 0) {
    const auto until = Clock::now() + 5s;
    while (Clock::now() < until && count_fds(pid) < fds_before + connections) {
      std::this_thread::sleep_for(50ms);
    }
  }
  const auto ramp_ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();

  const auto end = Clock::now() + std::chrono::seconds(duration);
  NormalClientResult normal;
  std::thread client([&] { normal = normal_client(end, std::chrono::milliseconds(interval_ms)); });

  std::size_t fds_min = SIZE_MAX, fds_max = 0;
  auto next_fd_sample = Clock::now();
  std::vector<pollfd> polls(connections);
  char buf[512];
  while (Clock::now() < end) {
    const auto now = Clock::now();
    for (std::size_t i = 0; i < connections; ++i) {
      Slow& s = slow[i];
      polls[i] = {s.fd, POLLIN, 0};
      if (s.fd < 0 || s.idle || now < s.next || s.sent >= header.size()) continue;
      ssize_t n = ::send(s.fd, header.data() + s.sent, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n == 1) ++s.sent;
      s.next = now + 1s;
    }
    ::poll(polls.data(), polls.size(), 20);
    for (std::size_t i = 0; i < connections; ++i) {
      Slow& s = slow[i];
      if (s.fd < 0) {
        open_slow(s, i);
        ++reopened;
        continue;
      }
      if (!(polls[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
      ssize_t n = ::recv(s.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      // An answer (a 408 after request_timeout; a 503 past max_connections) or a close: either
      // way the server is done with it; close it here and open another.
      if (n >= 12 && std::memcmp(buf + 9, "408", 3) == 0) {
        ++got_408;
      } else if (n > 0) {
        ++got_other;
      }
      ::close(s.fd);
      open_slow(s, i);
      ++reopened;
    }
    if (pid > 0 && Clock::now() >= next_fd_sample) {
      const std::size_t n = count_fds(pid);
      fds_min = std::min(fds_min, n);
      fds_max = std::max(fds_max, n);
      next_fd_sample = Clock::now() + 100ms;
    }
  }
  client.join();
  for (Slow& s : slow) {
    if (s.fd >= 0) ::close(s.fd);
  }
  if (fds_min == SIZE_MAX) fds_min = 0;

  const double share = normal.made ? 100.0 * static_cast<double>(normal.within_100ms) /
                                         static_cast<double>(normal.made)
                                   : 0;
  const double p50 = percentile(normal.latencies_ms, 0.50);
  const double p99 = percentile(normal.latencies_ms, 0.99);
  const double max = normal.latencies_ms.empty() ? 0
                                                 : *std::max_element(normal.latencies_ms.begin(),
                                                                     normal.latencies_ms.end());
  std::printf(
      "connections=%zu idle=%zu ramp_ms=%.0f reopened=%zu refused=%zu got_408=%zu got_other=%zu "
      "requests=%zu answered=%zu non2xx=%zu within_100ms_pct=%.2f p50_ms=%.3f p99_ms=%.3f "
      "max_ms=%.3f fds_min=%zu fds_max=%zu\n",
      connections, idle_count, ramp_ms, reopened, refused, got_408, got_other, normal.made,
      normal.answered, normal.non2xx, share, p50, p99, max, fds_min, fds_max);
  std::fprintf(stderr,
               "slowloris: %zu connections (%zu idle, %zu trickling a byte a second), reopened %zu "
               "(%zu after a 408, %zu after another answer), %zu refused; normal client: %zu "
               "requests, %zu answered 2xx, %.2f%% within 100 ms, p50 %.2f ms, p99 %.2f ms, max "
               "%.2f ms; target's fds %zu-%zu\n",
               connections, idle_count, connections - idle_count, reopened, got_408, got_other,
               refused, normal.made, normal.answered, share, p50, p99, max, fds_min, fds_max);
  return 0;
}
