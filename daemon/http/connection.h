// Internal to HttpServer: one connection's life on its loop — the TLS handshake, reading each
// request whole within the limits, calling the handler (on the loop, or on the blocking pool when
// it would wait), writing the answer, and keeping the connection for the next request or closing
// it gracefully.
#pragma once

// Boost 1.74's Asio with GCC 12 in C++20 needs <utility> before its headers (std::exchange).
#include <utility>
//
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>

#include "http/loop.h"
#include "http/server_impl.h"

namespace evrouted::http::internal {

// Serves `socket`, an accepted connection already counted in server.open (the connection gives
// its count back when it is destroyed), on `loop` from now on; with TLS when `tls` is set, which
// the connection keeps (the certificate it was made with).
void start_connection(HttpServer::Impl& server, Loop& loop, boost::asio::ip::tcp::socket socket,
                      std::shared_ptr<boost::asio::ssl::context> tls);

}  // namespace evrouted::http::internal
