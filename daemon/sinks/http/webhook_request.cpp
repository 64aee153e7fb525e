#include "sinks/http/webhook_request.h"

#include <openssl/evp.h>

#include <cctype>

#include "cloudevents.h"
#include "hex.h"
#include "sinks/http/webhook_signature.h"

namespace evrouted {

namespace {

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The request around `body`: the configured headers, Content-Type, `extra` (CloudEvents binary
// mode's ce-*), webhook-id/timestamp/signature and User-Agent.
WebhookRequest finish_request(const HttpSinkConfig& config, const std::string& id, std::string body,
                              const std::string& content_type,
                              const std::vector<std::pair<std::string, std::string>>& extra,
                              std::chrono::system_clock::time_point now) {
  const std::string timestamp = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  WebhookRequest req;
  req.method = "POST";
  req.path = config.path;
  req.headers.assign(config.headers.begin(), config.headers.end());
  if (!content_type.empty()) req.headers.emplace_back("Content-Type", content_type);
  req.headers.insert(req.headers.end(), extra.begin(), extra.end());
  req.headers.emplace_back("webhook-id", id);
  req.headers.emplace_back("webhook-timestamp", timestamp);
  if (!config.signing_keys.empty()) {  // signed per attempt, over the exact body sent
    req.headers.emplace_back("webhook-signature",
                             webhook_signature(config.signing_keys, id, timestamp, body));
  }
  bool has_user_agent = false;
  for (const auto& header : config.headers) {
    has_user_agent = has_user_agent || lowercase(header.first) == "user-agent";
  }
  if (!has_user_agent) req.headers.emplace_back("User-Agent", "evroute/" EVROUTE_VERSION);
  req.body = std::move(body);
  return req;
}

}  // namespace

WebhookRequest build_webhook_request(const HttpSinkConfig& config, const evroute::Event& event,
                                     std::chrono::system_clock::time_point now) {
  if (config.cloudevents_mode) {
    cloudevents::HttpMessage message =
        cloudevents::to_http(event, *config.cloudevents_mode, config.cloudevents);
    if (!message.error.empty()) {
      WebhookRequest failed;
      failed.error = std::move(message.error);
      return failed;
    }
    return finish_request(config, std::string(event.id()), std::move(message.body),
                          message.content_type, message.headers, now);
  }
  return finish_request(config, std::string(event.id()), std::string(event.payload()),
                        "application/json", {}, now);
}

std::string batch_webhook_id(std::span<const evroute::Event> events) {
  if (events.size() == 1) return std::string(events[0].id());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0) EVP_DigestUpdate(ctx, "\n", 1);
    EVP_DigestUpdate(ctx, events[i].id().data(), events[i].id().size());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  std::string id = "batch_";
  for (unsigned int i = 0; i < 16 && i < len; ++i) {
    const auto hex = hex_byte(digest[i]);
    id.append(hex.data(), hex.size());
  }
  return id;
}

WebhookRequest build_batch_request(const HttpSinkConfig& config,
                                   std::span<const evroute::Event> events,
                                   std::chrono::system_clock::time_point now) {
  const bool ndjson =
      config.delivery.batch && config.delivery.batch->encoding == BatchConfig::Encoding::kNdjson;
  std::size_t size = 2;
  for (const evroute::Event& e : events) size += e.payload().size() + 1;
  std::string body;
  body.reserve(size);
  if (!ndjson) body += '[';
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0 && !ndjson) body += ',';
    body += events[i].payload();
    if (ndjson) body += '\n';
  }
  if (!ndjson) body += ']';
  return finish_request(config, batch_webhook_id(events), std::move(body),
                        ndjson ? "application/x-ndjson" : "application/json", {}, now);
}

}  // namespace evrouted
