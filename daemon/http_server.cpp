// HttpServer's lifecycle: making its state, running the event loops (serve), and stopping them.
// The rest is in daemon/http/: the acceptor (acceptor.cpp), a connection's life (connection.cpp)
// with the request parser, body decoding, the server's own answers and how an answer is written
// (request_parser, content_encoding, refusals, response_text), the loops' deadline sweep
// (loop.cpp), TLS (tls.cpp) and Request's accessors (request.cpp); server_impl.h is the state they
// share.
#include "http_server.h"

// Boost 1.74's Asio with GCC 12 in C++20 needs <utility> before its headers (std::exchange).
#include <utility>
//
#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "http/loop.h"
#include "http/refusals.h"
#include "http/response_text.h"
#include "http/server_impl.h"

namespace evrouted::http {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

HttpServer::Impl::Impl(Limits l, Handler h, Observer o)
    : limits(l),
      handler(std::move(h)),
      observer(std::move(o)),
      bodies(l.max_buffered_bytes),
      pool(l.blocking_threads) {
  const unsigned n =
      limits.threads > 0 ? limits.threads : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) loops.push_back(std::make_unique<Loop>());
  acceptor.emplace(loops[0]->context);
  internal::append_response(too_many_connections, internal::too_many_connections(limits), 11,
                            /*close=*/true, /*head=*/false);
}

HttpServer::HttpServer(Limits limits, Handler handler, Observer observer)
    : impl_(std::make_unique<Impl>(limits, std::move(handler), std::move(observer))) {}

HttpServer::~HttpServer() { stop(); }

bool HttpServer::serve() {
  Impl& s = *impl_;
  if (!s.acceptor->is_open() || s.stopping.load()) return false;
  asio::steady_timer retry(s.loops[0]->context);
  s.accept_retry = &retry;
  asio::post(s.loops[0]->context, [&s] { s.accept(); });
  for (auto& loop : s.loops) {
    internal::Loop* l = loop.get();
    asio::post(l->context, [l] { internal::arm_sweep(*l); });
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
    internal::Loop* l = loop.get();
    asio::post(l->context, [l] {
      l->stopping = true;
      l->sweep.cancel();
      const std::vector<internal::Connection*> open(l->connections.begin(), l->connections.end());
      for (internal::Connection* c : open) c->close();
      l->work.reset();  // run() returns once the closed connections' handlers have run
    });
  }
}

}  // namespace evrouted::http
