// The requests the http sink sends: built here, without I/O, so that `evrouted --dry-run` shows
// exactly what HttpSink::write() would send.
//
// The body is exactly the event's payload (a compact JSON object with its "id"), sent as
// application/json with the configured headers plus:
//   webhook-id: <event id>            the same on every retry, so receivers can deduplicate
//   webhook-timestamp: <unix seconds> of this attempt
//   webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">   when `secret` is set
//     (Standard Webhooks, webhook_signature.h; with several secrets, one signature each)
//   User-Agent: evroute/<version>     unless the configured headers set one
//
// Batches (when `batch` is configured; see delivery.h): one POST whose body is the events'
// payloads as a JSON array (`[p1,p2]`, application/json) or NDJSON (`p1\np2\n`,
// application/x-ndjson). Its webhook-id is the event's id for a batch of one, else "batch_" + the
// first 32 hex digits of SHA-256 over the ids joined by "\n": the same for every retry of the same
// batch. The signature covers the exact body.
//
// `format: cloudevents-structured | cloudevents-binary` sends each event as a CloudEvent instead
// (cloudevents.h: an event that is not one is wrapped); the webhook-* headers stay, and the
// signature covers the body actually sent. (Batching and the CloudEvents formats do not combine.)
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "evroute/event.h"
#include "sinks/http/http_config.h"

namespace evrouted {

// One webhook request as HttpSink::write() sends it (and `evrouted --dry-run` shows it), before the
// transport adds Host, Content-Length and Accept (the first and last unless given here).
struct WebhookRequest {
  // Not "": the event cannot be sent (why): it cannot be rendered as a CloudEvent. Such a request
  // is never sent: write() answers kRejected with this reason, and the event is dead-lettered.
  // (A header value holding CR, LF or NUL is refused the same way by the transport.)
  std::string error;
  std::string method = "POST";
  std::string path;  // as in HttpSinkConfig::path
  // Listed in the order they are built, and sent in that order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};
// Builds the request for `event` attempted at `now`: the configured headers, Content-Type,
// webhook-id, webhook-timestamp, webhook-signature (when signing) and User-Agent (unless
// configured). Pure: no I/O.
WebhookRequest build_webhook_request(const HttpSinkConfig& config, const evroute::Event& event,
                                     std::chrono::system_clock::time_point now);
// The same for a batch (see above): the payloads as a JSON array or NDJSON, the batch webhook-id.
WebhookRequest build_batch_request(const HttpSinkConfig& config,
                                   std::span<const evroute::Event> events,
                                   std::chrono::system_clock::time_point now);

// The webhook-id of a batch (see above).
std::string batch_webhook_id(std::span<const evroute::Event> events);

}  // namespace evrouted
