// Internal to HttpServer: its state, shared by the acceptor (http/acceptor.cpp), the connections
// (http/connection.cpp), TLS (http/tls.cpp) and the server's own lifecycle (http_server.cpp).
//
// Thread-safety: limits, handler, observer and too_many_connections never change once made;
// `open`, `bodies`, `serving` and `stopping` are safe from any thread; `tls` is guarded by tls_mu.
// Once serve() runs, the acceptor, accept_retry, next_loop and accept_error_log are touched on
// loops[0]'s thread only (before that, by bind() and stop()).
#pragma once

// Boost 1.74's Asio with GCC 12 in C++20 needs <utility> before its headers (std::exchange).
#include <utility>
//
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http/body_budget.h"
#include "http/loop.h"
#include "http_server.h"
#include "log_throttle.h"

namespace evrouted::http {

struct HttpServer::Impl {
  using tcp = boost::asio::ip::tcp;
  using Loop = internal::Loop;

  Impl(Limits l, Handler h, Observer o);

  // Accepts the next connection (and a burst of those waiting behind it) onto the next loop.
  void accept();
  void on_accept(const boost::system::error_code& ec, tcp::socket socket, Loop& target);
  // Starts serving an accepted connection on `target`, or refuses it past max_connections.
  void adopt(tcp::socket s, Loop& target);
  void refuse(tcp::socket& socket);
  std::shared_ptr<boost::asio::ssl::context> tls_context() const {
    std::lock_guard<std::mutex> g(tls_mu);
    return tls;
  }

  const Limits limits;
  const Handler handler;
  const Observer observer;
  std::string too_many_connections;  // the whole answer past max_connections (made once)
  // Declared before loops: the connections (destroyed with their loop) use these.
  std::atomic<std::size_t> open{0};
  internal::BodyBudget bodies;
  std::vector<std::unique_ptr<Loop>> loops;
  std::optional<tcp::acceptor> acceptor;
  boost::asio::steady_timer* accept_retry = nullptr;  // set by serve()
  std::size_t next_loop = 0;
  boost::asio::thread_pool pool;
  std::vector<std::thread> threads;
  std::atomic<bool> serving{false};
  std::atomic<bool> stopping{false};
  LogThrottle accept_error_log;  // "cannot accept", at most once a second
  mutable std::mutex tls_mu;
  std::shared_ptr<boost::asio::ssl::context> tls;
};

}  // namespace evrouted::http
