// Server: evrouted's HTTP API, served by http::HttpServer (http_server.h: the event loops, the
// connection bounds and TLS).
//
//   POST /v1/events   ingest (JSON object, array of objects, or NDJSON) -> 202 {"accepted","ids"}
//   GET  /healthz     200 while the process serves requests
//   GET  /readyz      200 once listening with every sink open; 503 while draining
//   GET  /metrics     Prometheus text format
//   GET  /v1/sinks    each sink's type, state, counters and settings as JSON
//   GET  /v1/status   version, uptime, events accepted, memory budget, readiness, who needs tokens
//   GET  /ui          the console (its files are built in: server_ui.cpp, daemon/ui/); / -> /ui
//   POST /v1/sinks/NAME/enable   re-enables a sink its destination disabled (410 Gone)
//   GET  /v1/sinks/NAME/dead-letters          pages through a sink's dead letters
//   POST /v1/sinks/NAME/dead-letters/replay   sends them (all, or {"ids": [...]}) again
//
// Who may do what (server.auth): with no tokens at all, anyone who reaches the listener. With
// `tokens`, POST /v1/events needs one of them (or an admin token); the admin actions (enable,
// dead letters, replay) need an admin token when `admin_tokens` are set, else one of `tokens`.
// /healthz, /readyz, /metrics, GET /v1/sinks, /v1/status and the console's files answer anyone:
// they hold no event data, and
// GET /v1/sinks shows a webhook URL as scheme://host:port/… (no userinfo, path or query, which can
// be secrets themselves) unless the request carries an admin token (or, without admin_tokens, one
// of `tokens`).
//
// Every error body is JSON: {"error": "..."}. See README.md for the status codes.
//
// The handlers run on the event loops and never wait there: a request that would (a full `block`
// queue, a disk queue, the dead-letter files) is answered from the HTTP server's pool instead.
//
// Thread-safety: bind() and serve() from one thread; begin_drain(), stop(), set_tokens() and
// reload_tls() from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "http_server.h"
#include "metrics.h"
#include "router.h"

namespace evrouted {

// Anyone who reaches a non-loopback address can post events (and, without tokens, replay and
// enable sinks): logged at every start and reload.
void warn_if_exposed(const ServerConfig& server);

class Server {
 public:
  Server(const Config& config, Router& router);

  // Loads server.tls (when set) and binds the listen address. Returns the bound port, or throws
  // std::runtime_error.
  int bind();
  // Serves until stop(). Returns false if the server failed.
  bool serve();
  // Waits until serve() has started its accept loop (stop() before that would be lost).
  // Returns false if it did not start within `timeout`.
  bool wait_until_serving(std::chrono::milliseconds timeout);
  // From now on POST /v1/events answers 503 and /readyz says not ready.
  void begin_drain() { draining_.store(true, std::memory_order_release); }
  void stop() { http_.stop(); }
  // SIGHUP: loads server.tls's files again (renewed certificates). OK when loaded (or no TLS);
  // else what is wrong, and the previous certificate stays.
  evroute::Status reload_tls(const ServerConfig& next);
  // Replaces the accepted bearer tokens (a reload); requests in flight finish with the old ones.
  // Both empty: no authentication.
  void set_tokens(const std::vector<std::string>& tokens,
                  const std::vector<std::string>& admin_tokens);

 private:
  using Request = http::Request;
  using Response = http::Response;
  using Disposition = http::Disposition;
  // Routes a request to its handler (http::Handler).
  Disposition handle(const Request& req, Response& res, bool may_block);
  Disposition handle_events(const Request& req, Response& res, bool may_block);
  // /readyz's answer: 200 {"status": "ready"}, or 503 and why not.
  std::pair<int, nlohmann::json> readiness() const;
  void handle_readyz(Response& res);
  void handle_status(Response& res);
  // GET /, /ui and /ui/<file> (server_ui.cpp); false for any other path.
  bool handle_ui(const Request& req, Response& res);
  void handle_sinks(Response& res, bool show_urls);
  void handle_enable(const Request& req, Response& res, const std::string& name);
  void handle_dead_letters(const Request& req, Response& res, const std::string& sink);
  void handle_replay(const Request& req, Response& res, const std::string& sink);
  enum class Access { kIngest, kAdmin };
  bool authorized(const Request& req, Access access) const;
  // authorized(req, access), or answers 401 and returns false.
  bool authorized(const Request& req, Response& res, Access access) const;
  // True when the request presents a token that grants kAdmin (never when no tokens are set).
  bool authenticated_admin(const Request& req) const;

  const ServerConfig config_;
  Router& router_;
  HttpMetrics metrics_;
  using Digest = std::array<unsigned char, 32>;
  struct Tokens {
    std::vector<Digest> ingest, admin;  // SHA-256 of each accepted token
  };
  std::shared_ptr<const Tokens> tokens() const;  // the current set (a reload replaces it)
  mutable std::mutex tokens_mu_;                 // guards the pointer, not what it points to
  std::shared_ptr<const Tokens> tokens_;
  std::atomic<bool> draining_{false};
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  const std::chrono::system_clock::time_point started_at_ = std::chrono::system_clock::now();
  http::HttpServer http_;  // last: its loops call the handlers, which use everything above
};

}  // namespace evrouted
