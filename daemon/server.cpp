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

#include "ingest.h"
#include "json_parse.h"
#include "redact.h"
#include "utc_time.h"

namespace evrouted {
namespace {

using Json = nlohmann::json;

std::array<unsigned char, 32> sha256(std::string_view s) {
  std::array<unsigned char, 32> digest{};
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), digest.data(), &len, EVP_sha256(), nullptr);
  return digest;
}

void reply(http::Response& res, int status, const Json& body) {
  res.status = status;
  res.content_type = "application/json";
  res.body = dump_json(body);  // error texts may quote any bytes
}

void reply_error(http::Response& res, int status, std::string_view message) {
  reply(res, status, Json{{"error", message}});
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

void Server::handle_readyz(Response& res) {
  if (draining_.load(std::memory_order_acquire) || !router_.accepting()) {
    return reply(res, 503, Json{{"status", "draining"}});
  }
  // A disk queue that cannot store events makes every request for its sink fail: not ready.
  if (const auto problems = router_.storage_problems(); !problems.empty()) {
    Json sinks = Json::array();
    for (const auto& p : problems) sinks.push_back({{"sink", p.sink}, {"error", p.error}});
    return reply(res, 503, Json{{"status", "disk_error"}, {"sinks", std::move(sinks)}});
  }
  reply(res, 200, Json{{"status", "ready"}});
}

int Server::bind() {
  if (config_.tls) http_.use_tls(tls_files(*config_.tls));
  return http_.bind(config_.host, config_.port);
}

bool Server::serve() { return http_.serve(); }

bool Server::wait_until_serving(std::chrono::milliseconds timeout) {
  return http_.wait_until_serving(timeout);
}

std::string Server::reload_tls(const ServerConfig& next) {
  if (!next.tls || !http_.tls()) return "";  // TLS on or off needs a restart (config_diff)
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

http::Disposition Server::handle_events(const Request& req, Response& res, bool may_block) {
  constexpr Disposition kDone = Disposition::kDone;
  if (draining_.load(std::memory_order_acquire)) {
    res.headers.emplace_back("Retry-After", "5");
    res.close = true;
    reply_error(res, 503, "evrouted is shutting down");
    return kDone;
  }
  if (!authorized(req, res, Access::kIngest)) return kDone;
  const std::string content_type(req.header("Content-Type"));
  const auto format = body_format(content_type);
  // Binary-mode CloudEvents carry their attributes in ce-* headers and any Content-Type; their
  // values are percent-decoded, as the HTTP binding asks of receivers.
  std::vector<cloudevents::Header> ce_headers;
  if (format != BodyFormat::kCloudEvent && format != BodyFormat::kCloudEventBatch) {
    for (const auto& field : req.headers) {
      const auto name = field.name_string();
      if (name.size() > 3 && strncasecmp(name.data(), "ce-", 3) == 0) {
        std::string lower(name.data(), name.size());
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const auto value = field.value();
        ce_headers.emplace_back(std::move(lower),
                                http::percent_decode({value.data(), value.size()}));
      }
    }
  }
  if (!format && ce_headers.empty()) {
    reply_error(res, 415,
                "unsupported Content-Type '" + content_type +
                    "': use application/json, application/x-ndjson, "
                    "application/cloudevents+json, application/cloudevents-batch+json, "
                    "or a binary-mode CloudEvent (ce-* headers)");
    return kDone;
  }
  // (A body over max_body_bytes, on the wire or decoded, never gets here: the HTTP server answers
  // 413 itself.)
  IngestResult parsed;
  Decision admission;
  // A reload between parsing and admission may need other attribute fields: parse again (a few
  // times at most; reloads are rare).
  for (int attempt = 0; attempt < 4; ++attempt) {
    const auto fields = router_.attribute_fields();
    parsed = ce_headers.empty()
                 ? parse_events(req.body, *format, *fields)
                 : parse_binary_cloudevent(ce_headers, content_type, req.body, *fields);
    if (!parsed.error.empty()) {
      reply_error(res, 400, parsed.error);
      return kDone;
    }
    admission =
        router_.submit(parsed.events, fields.get(), may_block ? Wait::kAllowed : Wait::kNever);
    if (admission.outcome == Outcome::kWouldBlock) return Disposition::kBlocking;
    if (admission.outcome != Outcome::kReparse) break;
  }
  if (admission.outcome != Outcome::kAccepted) {
    const HttpRefusal refusal = http_refusal(admission.outcome);
    if (refusal.retry_after) res.headers.emplace_back("Retry-After", refusal.retry_after);
    reply_error(res, refusal.status, refusal.message ? refusal.message : admission.message);
    return kDone;
  }

  // {"accepted":N,"ids":[...]}, written directly, byte for byte what dump_json writes: ids are
  // valid UTF-8 without control characters (ingest checks them), so only quotes and backslashes
  // need escaping.
  res.status = 202;
  res.content_type = "application/json";
  std::string& body = res.body;
  body.reserve(32 + parsed.events.size() * 40);
  body = "{\"accepted\":";
  body += std::to_string(parsed.events.size());
  body += ",\"ids\":[";
  for (std::size_t i = 0; i < parsed.events.size(); ++i) {
    if (i > 0) body += ',';
    body += '"';
    for (const char c : parsed.events[i].id()) {
      if (c == '"' || c == '\\') body += '\\';
      body += c;
    }
    body += '"';
  }
  body += "]}";
  return kDone;
}

void Server::handle_enable(const Request& req, Response& res, const std::string& name) {
  if (!authorized(req, res, Access::kAdmin)) return;
  const std::optional<bool> was_disabled = router_.enable(name);
  if (!was_disabled) return reply_error(res, 404, "no sink named '" + name + "'");
  reply(res, 200, Json{{"name", name}, {"state", "open"}, {"was_disabled", *was_disabled}});
}

void Server::handle_dead_letters(const Request& req, Response& res, const std::string& sink) {
  if (!authorized(req, res, Access::kAdmin)) return;  // dead letters hold event payloads
  const std::shared_ptr<DeadLetters> dead_letters = router_.dead_letters(sink);
  if (!dead_letters) return reply_error(res, 404, "no sink named '" + sink + "'");
  std::uint64_t offset = 0, limit = 100;
  for (auto [key, value] : {std::pair{"offset", &offset}, std::pair{"limit", &limit}}) {
    const std::optional<std::string> param = req.param(key);
    if (!param) continue;
    const std::string& text = *param;
    if (text.empty() || text.size() > 12 ||
        text.find_first_not_of("0123456789") != std::string::npos) {
      return reply_error(res, 400, std::string("'") + key + "' must be a non-negative integer");
    }
    *value = std::stoull(text);
  }
  limit = std::clamp<std::uint64_t>(limit, 1, 1000);
  auto page = dead_letters->list(offset, limit);
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  for (auto& e : page.entries) entries.push_back(std::move(e));
  nlohmann::ordered_json body = {{"sink", sink},
                                 {"total", page.total},
                                 {"offset", offset},
                                 {"dead_letters", std::move(entries)}};
  if (offset + limit < page.total) body["next_offset"] = offset + limit;
  res.status = 200;
  res.body = dump_json(body);
}

void Server::handle_replay(const Request& req, Response& res, const std::string& sink) {
  if (!authorized(req, res, Access::kAdmin)) return;
  std::optional<std::set<std::string>> ids;
  if (!req.body.empty()) {
    nlohmann::ordered_json body;
    if (!parse_json(req.body, &body).empty() || !body.is_object()) {
      return reply_error(res, 400,
                         R"(the body must be empty (replay all) or {"ids": ["...", ...]})");
    }
    if (body.contains("ids")) {
      if (!body["ids"].is_array())
        return reply_error(res, 400, "'ids' must be an array of strings");
      ids.emplace();
      for (const auto& id : body["ids"]) {
        if (!id.is_string()) return reply_error(res, 400, "'ids' must be an array of strings");
        ids->insert(id.get<std::string>());
      }
    }
  }
  const Router::Replay result = router_.replay(sink, ids);
  if (!result.found) return reply_error(res, 404, "no sink named '" + sink + "'");
  if (!result.error.empty()) return reply_error(res, 500, result.error);
  reply(res, 200, Json{{"sink", sink}, {"replayed", result.replayed}, {"refused", result.refused}});
}

void Server::handle_sinks(Response& res, bool show_urls) {
  const auto shown = [show_urls](const std::string& text) {
    return show_urls ? text : redact_urls(text);
  };
  Json sinks = Json::array();
  for (const SinkSnapshot& s : router_.snapshot()) {
    Json queue{{"type", s.queue_type}};
    for (const auto& [key, value] : s.queue_fields) queue[std::string(key)] = value;
    sinks.push_back({
        {"name", s.name},
        {"type", s.type},
        {"description", shown(s.description)},
        {"state", s.state == SinkSnapshot::State::kClosed     ? "closed"
                  : s.state == SinkSnapshot::State::kDisabled ? "disabled"
                                                              : "open"},
        {"counters",
         {{"events_in", s.events_in},
          {"delivered", s.retry.delivered},
          {"failed", s.retry.gave_up},
          {"retried", s.retry.retries},
          {"dropped_newest", s.queue.dropped_newest},
          {"dropped_oldest", s.queue.dropped_oldest},
          {"undelivered_at_shutdown", s.queue.undelivered_at_close},
          {"dead_lettered", s.dead_lettered}}},
        {"queue", std::move(queue)},
    });
    if (s.state == SinkSnapshot::State::kDisabled) {
      sinks.back()["disabled"] = {{"reason", shown(s.disabled.reason)},
                                  {"since", utc_time(s.disabled.since)}};
    }
  }
  reply(res, 200, Json{{"sinks", std::move(sinks)}});
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
