// Server: evrouted's HTTP API on cpp-httplib.
//
//   POST /v1/events   ingest (JSON object, array of objects, or NDJSON) -> 202 {"accepted","ids"}
//   GET  /healthz     200 while the process serves requests
//   GET  /readyz      200 once listening with every sink open; 503 while draining
//   GET  /metrics     Prometheus text format
//   GET  /v1/sinks    each sink's type, state and counters as JSON
//   POST /v1/sinks/NAME/enable   re-enables a sink its destination disabled (410 Gone); same auth
//                     as POST /v1/events
//
// Every error body is JSON: {"error": "..."}. See README.md for the status codes.
//
// Thread-safety: bind() and serve() from one thread; begin_drain(), stop() and set_tokens() from any
// thread.
#pragma once

#include <httplib.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config.h"
#include "metrics.h"
#include "router.h"

namespace evrouted {

class Server {
 public:
  Server(const Config& config, Router& router);

  // Binds the listen address. Returns the bound port, or throws std::runtime_error.
  int bind();
  // Serves until stop(). Returns false if the server failed.
  bool serve();
  // Waits until serve() has started its accept loop (stop() before that would be lost).
  // Returns false if it did not start within `timeout`.
  bool wait_until_serving(std::chrono::milliseconds timeout);
  // From now on POST /v1/events answers 503 and /readyz says not ready.
  void begin_drain() { draining_.store(true, std::memory_order_release); }
  void stop() { http_.stop(); }
  // Replaces the accepted bearer tokens (a reload); requests in flight finish with the old ones.
  // Empty: no authentication.
  void set_tokens(const std::vector<std::string>& tokens);

 private:
  void handle_events(const httplib::Request& req, httplib::Response& res);
  void handle_sinks(httplib::Response& res);
  void handle_enable(const httplib::Request& req, httplib::Response& res);
  void handle_dead_letters(const httplib::Request& req, httplib::Response& res);
  void handle_replay(const httplib::Request& req, httplib::Response& res);
  bool authorized(const httplib::Request& req) const;
  // authorized(req), or answers 401 and returns false.
  bool authorized(const httplib::Request& req, httplib::Response& res) const;

  const ServerConfig config_;
  Router& router_;
  httplib::Server http_;
  HttpMetrics metrics_;
  using Digests = std::vector<std::array<unsigned char, 32>>;
  mutable std::mutex tokens_mu_;                 // guards the pointer, not what it points to
  std::shared_ptr<const Digests> token_digests_;  // SHA-256 of each accepted token
  std::atomic<bool> draining_{false};
};

}  // namespace evrouted
