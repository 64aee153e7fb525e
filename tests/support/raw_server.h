// RawServer: a TCP server on 127.0.0.1 for tests of hostile peers (plain POSIX sockets and
// threads, since a well-behaved HTTP server cannot misbehave on purpose): it runs `serve` on a
// thread of its own for each connection it accepts, and closes the connection when `serve`
// returns. The destructor stops it: `stopping` turns true and the open sockets are shut down, which
// wakes a serve blocked in recv or send; then every thread is joined.
//
// Thread-safety: url() and connections() from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace evtest {

class RawServer {
 public:
  using Serve = std::function<void(int fd, const std::atomic<bool>& stopping)>;

  explicit RawServer(Serve serve);
  ~RawServer();
  RawServer(const RawServer&) = delete;
  RawServer& operator=(const RawServer&) = delete;

  std::string url(const std::string& path = "/hooks") const;
  int connections() const;  // accepted so far

 private:
  void accept_loop();

  Serve serve_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<int> fds_;              // guarded by mu_; -1 once closed
  std::vector<std::thread> threads_;  // guarded by mu_ (joined after the acceptor)
};

// Reads one HTTP request from `fd`: its head and, with a Content-Length, its body. "" when the
// peer went away.
std::string read_request(int fd);
// Sends all of `data` (MSG_NOSIGNAL); false when the peer went away.
bool send_all(int fd, std::string_view data);

}  // namespace evtest
