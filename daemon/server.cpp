#include "server.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <thread>

#include "server_replies.h"

namespace evrouted {
namespace {

std::array<unsigned char, 32> sha256(std::string_view s) {
  std::array<unsigned char, 32> digest{};
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), digest.data(), &len, EVP_sha256(), nullptr);
  return digest;
}

http::Limits limits_of(const ServerConfig& c) {
  http::Limits l;
  l.threads = c.threads;
  l.max_connections = static_cast<std::size_t>(c.max_connections);
  l.max_header_bytes = static_cast<std::size_t>(c.max_header_bytes);
  l.max_header_count = static_cast<std::size_t>(c.max_header_count);
  l.max_body_bytes = c.max_body_bytes;
  l.max_buffered_bytes = c.max_buffered_bytes;
  l.request_timeout = c.request_timeout;
  l.idle_timeout = c.idle_timeout;
  return l;
}

http::TlsFiles tls_files(const ServerConfig::Tls& t) {
  return {t.cert_file, t.key_file, t.client_ca_file};
}

// "/v1/sinks/NAME/<rest>": NAME (not empty, without '/') when `path` has that shape.
std::optional<std::string> sink_in(std::string_view path, std::string_view rest) {
  constexpr std::string_view kPrefix = "/v1/sinks/";
  if (path.size() <= kPrefix.size() + rest.size() + 1 || !path.starts_with(kPrefix) ||
      !path.ends_with(rest)) {
    return std::nullopt;
  }
  const std::string_view name =
      path.substr(kPrefix.size(), path.size() - kPrefix.size() - rest.size());
  if (name.empty() || name.find('/') != std::string_view::npos) return std::nullopt;
  return std::string(name);
}

}  // namespace

Server::Server(const Config& config, Router& router)
    : config_(config.server),
      router_(router),
      http_(
          limits_of(config.server),
          [this](const Request& req, Response& res, bool may_block) {
            const Disposition d = handle(req, res, may_block);
            if (d == Disposition::kBlocking) metrics_.count_blocking();
            return d;
          },
          [this](const Request& req, int status, std::chrono::steady_clock::duration latency) {
            metrics_.observe(endpoint_of(req.method, req.path), status, latency);
          }) {
  set_tokens(config_.tokens, config_.admin_tokens);
}

http::Disposition Server::handle(const Request& req, Response& res, bool may_block) {
  const std::string& path = req.path;
  const std::string& method = req.method;
  if (path == "/v1/events" && method == "POST") return handle_events(req, res, may_block);
  if (method == "GET") {
    if (path == "/healthz") {
      reply(res, 200, Json{{"status", "ok"}});
      return Disposition::kDone;
    }
    if (path == "/readyz") {
      handle_readyz(res);
      return Disposition::kDone;
    }
    if (path == "/metrics") {
      res.content_type = "text/plain; version=0.0.4";
      res.body = render_prometheus(router_, metrics_);
      return Disposition::kDone;
    }
    if (path == "/v1/sinks") {
      handle_sinks(res, /*show_urls=*/authenticated_admin(req));
      return Disposition::kDone;
    }
    if (path == "/v1/status") {
      handle_status(res);
      return Disposition::kDone;
    }
    if (handle_ui(req, res)) return Disposition::kDone;
  }
  // The admin actions read and write the dead-letter files: never on an event loop.
  std::optional<std::string> sink;
  void (Server::*action)(const Request&, Response&, const std::string&) = nullptr;
  if (method == "POST" && (sink = sink_in(path, "/enable"))) {
    action = &Server::handle_enable;
  } else if (method == "POST" && (sink = sink_in(path, "/dead-letters/replay"))) {
    action = &Server::handle_replay;
  } else if (method == "GET" && (sink = sink_in(path, "/dead-letters"))) {
    action = &Server::handle_dead_letters;
  }
  if (action) {
    if (!may_block) return Disposition::kBlocking;
    (this->*action)(req, res, *sink);
    return Disposition::kDone;
  }
  reply_error(res, 404, "no such endpoint: " + method + " " + path);
  return Disposition::kDone;
}

std::pair<int, Json> Server::readiness() const {
  if (draining_.load(std::memory_order_acquire) || !router_.accepting()) {
    return {503, Json{{"status", "draining"}}};
  }
  // A stored queue that cannot store events makes every request for its sink fail: not ready.
  // "disk_error" when a disk queue is among them, else "nats_unavailable" (jetstream queues).
  if (const auto problems = router_.storage_problems(); !problems.empty()) {
    Json sinks = Json::array();
    bool disk = false;
    for (const auto& p : problems) {
      sinks.push_back({{"sink", p.sink}, {"error", p.error}});
      disk = disk || p.queue_type == "disk";
    }
    return {503, Json{{"status", disk ? "disk_error" : "nats_unavailable"},
                      {"sinks", std::move(sinks)}}};
  }
  return {200, Json{{"status", "ready"}}};
}

void Server::handle_readyz(Response& res) {
  const auto [status, body] = readiness();
  reply(res, status, body);
}

int Server::bind() {
  if (config_.tls) http_.use_tls(tls_files(*config_.tls));
  return http_.bind(config_.host, config_.port);
}

bool Server::serve() { return http_.serve(); }

bool Server::wait_until_serving(std::chrono::milliseconds timeout) {
  return http_.wait_until_serving(timeout);
}

evroute::Status Server::reload_tls(const ServerConfig& next) {
  if (!next.tls || !http_.tls()) return evroute::Status::ok();  // on/off: a restart (config_diff)
  return http_.reload_tls(tls_files(*next.tls));
}

bool Server::authorized(const Request& req, Response& res, Access access) const {
  if (authorized(req, access)) return true;
  res.headers.emplace_back("WWW-Authenticate", "Bearer");
  reply_error(res, 401,
              req.has_header("Authorization")
                  ? (access == Access::kAdmin ? "invalid token (this action needs an admin token)"
                                              : "invalid token")
                  : "missing Authorization: Bearer token");
  return false;
}

void Server::set_tokens(const std::vector<std::string>& tokens,
                        const std::vector<std::string>& admin_tokens) {
  auto next = std::make_shared<Tokens>();
  for (const std::string& t : tokens) next->ingest.push_back(sha256(t));
  for (const std::string& t : admin_tokens) next->admin.push_back(sha256(t));
  std::lock_guard<std::mutex> g(tokens_mu_);
  tokens_ = std::move(next);
}

namespace {

// Whether `presented` is one of `digests`, in constant time: neither the token's bytes nor its
// length leak through timing.
bool one_of(const std::array<unsigned char, 32>& presented,
            const std::vector<std::array<unsigned char, 32>>& digests) {
  bool ok = false;
  for (const auto& digest : digests) {
    ok |= CRYPTO_memcmp(presented.data(), digest.data(), digest.size()) == 0;
  }
  return ok;
}

// The SHA-256 of the request's bearer token, or nullopt without one.
std::optional<std::array<unsigned char, 32>> presented_token(const http::Request& req) {
  const std::string_view header = req.header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || !header.starts_with(kBearer)) return std::nullopt;
  return sha256(header.substr(kBearer.size()));
}

}  // namespace

std::shared_ptr<const Server::Tokens> Server::tokens() const {
  std::lock_guard<std::mutex> g(tokens_mu_);
  return tokens_;
}

bool Server::authorized(const http::Request& req, Access access) const {
  const std::shared_ptr<const Tokens> tokens = this->tokens();
  // Which tokens grant `access`; none configured for it: open.
  const bool admin_set = !tokens->admin.empty();
  if (access == Access::kIngest && tokens->ingest.empty()) return true;
  if (access == Access::kAdmin && !admin_set && tokens->ingest.empty()) return true;
  const auto presented = presented_token(req);
  if (!presented) return false;
  if (one_of(*presented, tokens->admin)) return true;
  return (access == Access::kIngest || !admin_set) && one_of(*presented, tokens->ingest);
}

bool Server::authenticated_admin(const http::Request& req) const {
  const std::shared_ptr<const Tokens> tokens = this->tokens();
  const auto presented = presented_token(req);
  if (!presented) return false;
  return one_of(*presented, tokens->admin) ||
         (tokens->admin.empty() && one_of(*presented, tokens->ingest));
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

void warn_if_exposed(const ServerConfig& server) {
  if (!server.tokens.empty() || is_loopback(server.host)) return;
  spdlog::warn(
      "listening on {} without server.auth.tokens: anyone who can reach this address can post "
      "events{}; set server.auth.tokens (and admin_tokens) unless a proxy in front authenticates",
      server.listen,
      server.admin_tokens.empty() ? ", read dead letters, replay and enable sinks" : "");
}

}  // namespace evrouted
