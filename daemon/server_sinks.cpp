// The sink endpoints: GET /v1/sinks, POST /v1/sinks/NAME/enable, GET /v1/sinks/NAME/dead-letters,
// POST /v1/sinks/NAME/dead-letters/replay.
#include <algorithm>
#include <optional>
#include <set>
#include <string>

#include "queues/queue_kind.h"
#include "redact.h"
#include "server.h"
#include "server_replies.h"
#include "utc_time.h"

namespace evrouted {

void Server::handle_enable(const Request& req, Response& res, const std::string& name) {
  if (!authorized(req, res, Access::kAdmin)) return;
  const std::optional<bool> was_disabled = router_.enable(name);
  if (!was_disabled) return reply_error(res, 404, "no sink named '" + name + "'");
  reply(res, 200, Json{{"name", name}, {"state", "open"}, {"was_disabled", *was_disabled}});
}

void Server::handle_dead_letters(const Request& req, Response& res, const std::string& sink) {
  if (!authorized(req, res, Access::kAdmin)) return;  // dead letters hold event payloads
  const std::shared_ptr<DeadLetterStore> dead_letters = router_.dead_letters(sink);
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

namespace {

Json retry_settings(const RetryConfig& r) {
  Json breaker = false;
  if (r.breaker) {
    breaker = {{"threshold", r.breaker->threshold}, {"cooldown_ms", whole_ms(r.breaker->cooldown)}};
  }
  return {{"max_attempts", r.max_attempts},
          {"max_elapsed_ms", whole_ms(r.max_elapsed)},
          {"initial_backoff_ms", whole_ms(r.initial_backoff)},
          {"max_backoff_ms", whole_ms(r.max_backoff)},
          {"multiplier", r.multiplier},
          {"jitter", r.full_jitter ? Json("full") : Json(r.jitter)},
          {"breaker", std::move(breaker)}};
}

}  // namespace

void Server::handle_sinks(Response& res, bool show_urls) {
  const auto shown = [show_urls](const std::string& text) {
    return show_urls ? text : redact_urls(text);
  };
  Json sinks = Json::array();
  for (const SinkSnapshot& s : router_.snapshot()) {
    Json queue{{"type", s.queue_type}};
    for (const auto& [key, value] : s.queue_fields) queue[std::string(key)] = value;
    for (const auto& [key, value] : s.queue_settings) queue[std::string(key)] = value;
    Json filter = Json::object();
    for (const FieldFilter& f : s.filter) filter[f.field] = f.globs;
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
        {"filter", std::move(filter)},
        {"retry", retry_settings(s.retry_settings)},
    });
    if (s.state == SinkSnapshot::State::kDisabled) {
      sinks.back()["disabled"] = {{"reason", shown(s.disabled.reason)},
                                  {"since", utc_time(s.disabled.since)}};
    }
  }
  reply(res, 200, Json{{"sinks", std::move(sinks)}});
}

}  // namespace evrouted
