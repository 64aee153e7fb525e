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

void reply(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");  // error texts may quote any bytes
}

void reply_error(httplib::Response& res, int status, std::string_view message) {
  reply(res, status, Json{{"error", message}});
}

// When the current request started, per HTTP worker thread (a worker handles one request at a
// time): set by the pre-routing handler, read by the logger once the response is written.
thread_local std::chrono::steady_clock::time_point request_start;

}  // namespace

Server::Server(const Config& config, Router& router) : config_(config.server), router_(router) {
  set_tokens(config_.tokens, config_.admin_tokens);

  // Keep-alive connections each hold a worker thread while open, so the pool bounds how many
  // clients are served at once.
  const unsigned threads = config_.threads > 0 ? config_.threads : 32;
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_.set_tcp_nodelay(true);  // else keep-alive clients wait ~40 ms per request (Nagle)
  http_.set_keep_alive_max_count(100000);
  http_.set_payload_max_length(config_.max_body_bytes);

  http_.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    request_start = std::chrono::steady_clock::now();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.observe(endpoint_of(req.method, req.path), res.status,
                     std::chrono::steady_clock::now() - request_start);
  });
  // httplib's own errors (404, 413, ...) have no body yet: give them a JSON one.
  http_.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 413) {
          reply_error(res, 413,
                      "request body larger than max_body_bytes (" +
                          std::to_string(config_.max_body_bytes) + ")");
        } else if (res.status == 404) {
          reply_error(res, 404, "no such endpoint: " + req.method + " " + req.path);
        } else {
          reply_error(res, res.status, "HTTP " + std::to_string(res.status));
        }
        return httplib::Server::HandlerResponse::Handled;
      }));
  http_.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        spdlog::error("request failed: {}", what);
        reply_error(res, 500, "internal error: " + what);
      });

  http_.Post("/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
    handle_events(req, res);
  });
  http_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, Json{{"status", "ok"}});
  });
  http_.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    if (draining_.load(std::memory_order_acquire) || !router_.accepting()) {
      reply(res, 503, Json{{"status", "draining"}});
      return;
    }
    // A disk queue that cannot store events makes every request for its sink fail: not ready.
    if (const auto problems = router_.disk_problems(); !problems.empty()) {
      Json sinks = Json::array();
      for (const auto& p : problems) sinks.push_back({{"sink", p.sink}, {"error", p.error}});
      reply(res, 503, Json{{"status", "disk_error"}, {"sinks", std::move(sinks)}});
      return;
    }
    reply(res, 200, Json{{"status", "ready"}});
  });
  http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_prometheus(router_, metrics_), "text/plain; version=0.0.4");
  });
  http_.Get("/v1/sinks", [this](const httplib::Request& req, httplib::Response& res) {
    handle_sinks(res, /*show_urls=*/authenticated_admin(req));
  });
  http_.Post(
      R"(/v1/sinks/([^/]+)/enable)",
      [this](const httplib::Request& req, httplib::Response& res) { handle_enable(req, res); });
  http_.Get(R"(/v1/sinks/([^/]+)/dead-letters)",
            [this](const httplib::Request& req, httplib::Response& res) {
              handle_dead_letters(req, res);
            });
  http_.Post(R"(/v1/sinks/([^/]+)/dead-letters/replay)",
             [this](const httplib::Request& req, httplib::Response& res) {
               handle_replay(req, res);
             });
}

int Server::bind() {
  int port = config_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(config_.host);
  } else if (!http_.bind_to_port(config_.host, port)) {
    port = -1;
  }
  if (port < 0) {
    throw std::runtime_error("cannot listen on " + config_.listen + ": " +
                             std::strerror(errno ? errno : EADDRINUSE));
  }
  return port;
}

bool Server::serve() { return http_.listen_after_bind(); }

bool Server::wait_until_serving(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!http_.is_running()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

bool Server::authorized(const httplib::Request& req, httplib::Response& res, Access access) const {
  if (authorized(req, access)) return true;
  res.set_header("WWW-Authenticate", "Bearer");
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
std::optional<std::array<unsigned char, 32>> presented_token(const httplib::Request& req) {
  const std::string header = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.compare(0, kBearer.size(), kBearer) != 0) {
    return std::nullopt;
  }
  return sha256(std::string_view(header).substr(kBearer.size()));
}

}  // namespace

std::shared_ptr<const Server::Tokens> Server::tokens() const {
  std::lock_guard<std::mutex> g(tokens_mu_);
  return tokens_;
}

bool Server::authorized(const httplib::Request& req, Access access) const {
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

bool Server::authenticated_admin(const httplib::Request& req) const {
  const std::shared_ptr<const Tokens> tokens = this->tokens();
  const auto presented = presented_token(req);
  if (!presented) return false;
  return one_of(*presented, tokens->admin) ||
         (tokens->admin.empty() && one_of(*presented, tokens->ingest));
}

void Server::handle_events(const httplib::Request& req, httplib::Response& res) {
  if (draining_.load(std::memory_order_acquire)) {
    res.set_header("Retry-After", "5");
    res.set_header("Connection", "close");
    return reply_error(res, 503, "evrouted is shutting down");
  }
  if (!authorized(req, res, Access::kIngest)) return;
  const std::string content_type = req.get_header_value("Content-Type");
  const auto format = body_format(content_type);
  // Binary-mode CloudEvents carry their attributes in ce-* headers and any Content-Type.
  // (cpp-httplib has percent-decoded every header value already, as the HTTP binding asks of
  // receivers.)
  std::vector<cloudevents::Header> ce_headers;
  if (format != BodyFormat::kCloudEvent && format != BodyFormat::kCloudEventBatch) {
    for (const auto& [name, value] : req.headers) {
      if (name.size() > 3 && strncasecmp(name.c_str(), "ce-", 3) == 0) {
        std::string lower = name;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        ce_headers.emplace_back(std::move(lower), value);
      }
    }
  }
  if (!format && ce_headers.empty()) {
    return reply_error(res, 415,
                       "unsupported Content-Type '" + content_type +
                           "': use application/json, application/x-ndjson, "
                           "application/cloudevents+json, application/cloudevents-batch+json, "
                           "or a binary-mode CloudEvent (ce-* headers)");
  }
  if (req.body.size() > config_.max_body_bytes) {
    return reply_error(
        res, 413,
        "request body larger than max_body_bytes (" + std::to_string(config_.max_body_bytes) + ")");
  }
  IngestResult parsed;
  Router::Admission admission;
  // A reload between parsing and admission may need other attribute fields: parse again (a few
  // times at most; reloads are rare).
  for (int attempt = 0; attempt < 4; ++attempt) {
    const auto fields = router_.attribute_fields();
    parsed = ce_headers.empty()
                 ? parse_events(req.body, *format, *fields)
                 : parse_binary_cloudevent(ce_headers, content_type, req.body, *fields);
    if (!parsed.error.empty()) return reply_error(res, 400, parsed.error);
    admission = router_.submit(parsed.events, fields.get());
    if (admission.outcome != Router::Outcome::kReparse) break;
  }
  switch (admission.outcome) {
    case Router::Outcome::kAccepted:
      break;
    case Router::Outcome::kReparse:
      res.set_header("Retry-After", "1");
      return reply_error(res, 503, "the configuration is being reloaded; retry");
    case Router::Outcome::kFull:
    case Router::Outcome::kOverBudget:
      res.set_header("Retry-After", "1");
      return reply_error(res, 503, admission.message);
    case Router::Outcome::kUnavailable:
      res.set_header("Retry-After", "5");
      return reply_error(res, 503, admission.message);
    case Router::Outcome::kClosed:
      res.set_header("Retry-After", "5");
      return reply_error(res, 503, admission.message);
    case Router::Outcome::kTooLarge:
      return reply_error(res, 413, admission.message);
  }

  // {"accepted":N,"ids":[...]}, written directly: ids are UUIDs or strings the client sent.
  Json ids = Json::array();
  for (const evroute::Event& e : parsed.events) ids.push_back(std::string(e.id()));
  reply(res, 202, Json{{"accepted", parsed.events.size()}, {"ids", std::move(ids)}});
}

void Server::handle_enable(const httplib::Request& req, httplib::Response& res) {
  if (!authorized(req, res, Access::kAdmin)) return;
  const std::string name = req.matches[1];
  const std::optional<bool> was_disabled = router_.enable(name);
  if (!was_disabled) return reply_error(res, 404, "no sink named '" + name + "'");
  reply(res, 200, Json{{"name", name}, {"state", "open"}, {"was_disabled", *was_disabled}});
}

void Server::handle_dead_letters(const httplib::Request& req, httplib::Response& res) {
  if (!authorized(req, res, Access::kAdmin)) return;  // dead letters hold event payloads
  const std::string sink = req.matches[1];
  const auto route = router_.find(sink);
  if (!route) return reply_error(res, 404, "no sink named '" + sink + "'");
  std::uint64_t offset = 0, limit = 100;
  for (auto [key, value] : {std::pair{"offset", &offset}, std::pair{"limit", &limit}}) {
    if (!req.has_param(key)) continue;
    const std::string text = req.get_param_value(key);
    if (text.empty() || text.size() > 12 || text.find_first_not_of("0123456789") != std::string::npos) {
      return reply_error(res, 400, std::string("'") + key + "' must be a non-negative integer");
    }
    *value = std::stoull(text);
  }
  limit = std::clamp<std::uint64_t>(limit, 1, 1000);
  auto page = route->dead_letters->list(offset, limit);
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  for (auto& e : page.entries) entries.push_back(std::move(e));
  nlohmann::ordered_json body = {{"sink", sink},
                                 {"total", page.total},
                                 {"offset", offset},
                                 {"dead_letters", std::move(entries)}};
  if (offset + limit < page.total) body["next_offset"] = offset + limit;
  res.status = 200;
  res.set_content(dump_json(body), "application/json");
}

void Server::handle_replay(const httplib::Request& req, httplib::Response& res) {
  if (!authorized(req, res, Access::kAdmin)) return;
  const std::string sink = req.matches[1];
  std::optional<std::set<std::string>> ids;
  if (!req.body.empty()) {
    nlohmann::ordered_json body;
    if (!parse_json(req.body, &body).empty() || !body.is_object()) {
      return reply_error(res, 400, R"(the body must be empty (replay all) or {"ids": ["...", ...]})");
    }
    if (body.contains("ids")) {
      if (!body["ids"].is_array()) return reply_error(res, 400, "'ids' must be an array of strings");
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

void Server::handle_sinks(httplib::Response& res, bool show_urls) {
  const auto shown = [show_urls](const std::string& text) {
    return show_urls ? text : redact_urls(text);
  };
  Json sinks = Json::array();
  for (const auto& r : router_.routes()) {
    const auto q = r->queue_stats();
    const auto rs = r->retrying->stats();
    const Disableable* disableable = r->disableable();
    const Disableable::State disabled = disableable ? disableable->state() : Disableable::State{};
    sinks.push_back({
        {"name", r->name},
        {"type", r->type},
        {"description", shown(r->description)},
        {"state", r->closed()         ? "closed"
                  : disabled.disabled ? "disabled"
                                      : "open"},
        {"counters",
         {{"events_in", router_.events_in(*r)},
          {"delivered", rs.delivered},
          {"failed", rs.gave_up},
          {"retried", rs.retries},
          {"dropped_newest", q.dropped_newest},
          {"dropped_oldest", q.dropped_oldest},
          {"undelivered_at_shutdown", q.undelivered_at_close},
          {"dead_lettered", r->dead_letters->added()}}},
        {"queue", r->durable ? Json{{"type", "disk"},
                                    {"max_bytes", r->queue_config.max_bytes},
                                    {"disk_bytes", q.disk_bytes},
                                    {"recovered", q.recovered},
                                    {"pending", q.pending},
                                    {"high_water", q.high_water},
                                    {"rejected_full", q.rejected_full}}
                             : Json{{"type", "memory"},
                                    {"capacity", r->queue_config.capacity},
                                    {"pending", q.pending},
                                    {"high_water", q.high_water},
                                    {"rejected_full", q.rejected_full}}},
    });
    if (disabled.disabled) {
      sinks.back()["disabled"] = {{"reason", shown(disabled.reason)},
                                  {"since", utc_time(disabled.since)}};
    }
  }
  reply(res, 200, Json{{"sinks", std::move(sinks)}});
}

}  // namespace evrouted
