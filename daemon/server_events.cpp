// POST /v1/events: ingest (ingest.h, cloudevents.h), admission (Router::submit), the 202 body.
#include <string>
#include <vector>

#include "ingest.h"
#include "server.h"
#include "server_replies.h"
#include "text.h"

namespace evrouted {
namespace {

// Binary-mode CloudEvents carry their attributes in ce-* headers and any Content-Type; their
// values are percent-decoded, as the HTTP binding asks of receivers.
std::vector<cloudevents::Header> ce_headers_of(const http::Request& req) {
  std::vector<cloudevents::Header> headers;
  for (const auto& field : req.headers) {
    const auto name = field.name_string();
    if (name.size() > 3 && iequals({name.data(), 3}, "ce-")) {
      const auto value = field.value();
      headers.emplace_back(ascii_lower({name.data(), name.size()}),
                           http::percent_decode({value.data(), value.size()}));
    }
  }
  return headers;
}

// {"accepted":N,"ids":[...]}, written directly, byte for byte what dump_json writes: ids are valid
// UTF-8 without control characters (ingest checks them), so only quotes and backslashes need
// escaping.
void reply_accepted(http::Response& res, const std::vector<evroute::Event>& events) {
  res.status = 202;
  res.content_type = "application/json";
  std::string& body = res.body;
  body.reserve(32 + events.size() * 40);  // generated ids (36 bytes) fit
  body = "{\"accepted\":";
  body += std::to_string(events.size());
  body += ",\"ids\":[";
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0) body += ',';
    body += '"';
    const std::string_view id = events[i].id();
    if (id.find('"') == std::string_view::npos && id.find('\\') == std::string_view::npos) {
      body += id;  // a generated id, and most given ones: as it is, in one copy
    } else {
      for (const char c : id) {
        if (c == '"' || c == '\\') body += '\\';
        body += c;
      }
    }
    body += '"';
  }
  body += "]}";
}

}  // namespace

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
  std::vector<cloudevents::Header> ce_headers;
  if (format != BodyFormat::kCloudEvent && format != BodyFormat::kCloudEventBatch) {
    ce_headers = ce_headers_of(req);
  }
  if (!format && ce_headers.empty()) {
    reply_error(res, 415,
                "unsupported Content-Type '" + content_type +
                    "': use application/json, application/x-ndjson, "
                    "application/cloudevents+json, application/cloudevents-batch+json, "
                    "or a binary-mode CloudEvent (ce-* headers)");
    return kDone;
  }
  // A stored queue's write waits (for the disk, for JetStream): such a request goes to the pool
  // before it is parsed, rather than being parsed here only for submit() to say it would wait.
  if (!may_block && router_.stores()) return Disposition::kBlocking;
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

  reply_accepted(res, parsed.events);
  return kDone;
}

}  // namespace evrouted
