// HttpServer's listening socket: bind() opens it, and accept() takes the connections, a burst at
// a time, handing each to the next loop in turn, or refusing it past max_connections.

// Boost 1.74's Asio with GCC 12 in C++20 needs <utility> before its headers (std::exchange).
#include <utility>
//
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <stdexcept>
#include <string>

#include "http/connection.h"
#include "http/server_impl.h"

namespace evrouted::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr int kAcceptBurst = 64;  // connections taken from the backlog per accept completion

// Each connection is a file descriptor: make room for max_connections of them beside the sinks'
// files and sockets.
void raise_open_files_limit(std::size_t max_connections) {
  const rlim_t want = static_cast<rlim_t>(max_connections) + 1024;
  if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
    rl.rlim_cur = std::min(want, rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want) {
      spdlog::warn(
          "server.max_connections is {} but the open files limit is {} (hard limit): connections "
          "past it are refused by accept(); raise LimitNOFILE / ulimit -n",
          max_connections, rl.rlim_cur);
    }
  }
}

}  // namespace

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
  raise_open_files_limit(impl_->limits.max_connections);
  return a.local_endpoint().port();
}

void HttpServer::Impl::accept() {
  Loop& target = *loops[next_loop];
  next_loop = (next_loop + 1) % loops.size();
  acceptor->async_accept(target.context, [this, &target](const error_code& ec, tcp::socket s) {
    on_accept(ec, std::move(s), target);
  });
}

void HttpServer::Impl::on_accept(const error_code& ec, tcp::socket socket, Loop& target) {
  if (ec == asio::error::operation_aborted || stopping.load()) return;
  if (ec) {
    if (accept_error_log.allow()) spdlog::error("cannot accept a connection: {}", ec.message());
    // Out of file descriptors (or the like): try again shortly rather than spin.
    accept_retry->expires_after(std::chrono::milliseconds(50));
    accept_retry->async_wait([this](const error_code& e) {
      if (!e) accept();
    });
    return;
  }
  adopt(std::move(socket), target);
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
}

void HttpServer::Impl::adopt(tcp::socket s, Loop& target) {
  if (open.load(std::memory_order_relaxed) >= limits.max_connections) {
    refuse(s);
    return;
  }
  open.fetch_add(1, std::memory_order_relaxed);
  error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);  // else keep-alive clients wait for Nagle
  internal::start_connection(*this, target, std::move(s), tls_context());
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

}  // namespace evrouted::http
