// The http sink (`type: http`): POSTs each event to a webhook.
//
// The body is exactly the event's payload (a compact JSON object with its "id"), sent as
// application/json with the configured headers plus:
//   webhook-id: <event id>            the same on every retry, so receivers can deduplicate
//   webhook-timestamp: <unix seconds> of this attempt
//   User-Agent: evroute/<version>     unless the configured headers set one
//   webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">   when `secret` is set
//     (Standard Webhooks; with several secrets, for rotation, one signature each, space-separated)
// over a kept-alive connection (TCP_NODELAY; redirects are never followed). Concurrent writes (a
// queue with `concurrency` workers) each get a connection of their own: the sink keeps a pool that
// grows to the number of writes in flight at once.
//
// Batches (write_batch, when `batch` is configured; see delivery.h): one POST whose body is the
// events' payloads as a JSON array (`[p1,p2]`, application/json) or NDJSON (`p1\np2\n`,
// application/x-ndjson). Its webhook-id is the event's id for a batch of one, else
// "batch_" + the first 32 hex digits of SHA-256 over the ids joined by "\n": the same for every
// retry of the same batch. The signature covers the exact body. With `batch` set, write() sends a
// batch of one, so every request of the sink has the same shape. https verifies the
// server certificate (chain and host name; SNI is sent for host names) against the system CAs, or
// `tls.ca_file`, and presents `tls.client_cert` (with `tls.client_key`) to receivers that require a
// client certificate.
//
// A receiver is a third party and may be hostile (webhook_client.h has the details): `timeout` is
// the deadline of each whole attempt, from connect to the last byte of the answer, however the
// receiver drips it; the answer's head may have at most 64 KiB and 100 header fields (beyond: a
// transport error); its body is never kept — up to 8 MiB is read and discarded, a longer one is
// not read on (the connection is closed; the status stands, so a 2xx with a huge body is
// delivered). A request whose target or a header name or value holds CR, LF or NUL is never
// written: kRejected.
//
// Answers, as evroute::Status:
//   2xx                                  -> OK
//   connection error, timeout, an answer
//   out of bounds (see above)            -> kUnavailable (retryable)
//   a status in `retry_on` (default: 408, 429, 5xx) -> kUnavailable, with retry_after() from
//                                           Retry-After
//   410 Gone                             -> the sink disables itself (see Disableable in
//                                           registry.h): write() holds the event until enable(),
//                                           then sends it again; or returns kClosed on close()
//   anything else (3xx, other 4xx)       -> kRejected (not retryable)
//
// close() makes the requests in flight return promptly, connecting or not (it posts an abort onto
// each busy connection's io_context), and returns once no write is in flight.
// SIGPIPE needs no handling: sockets send with MSG_NOSIGNAL.
// `format: cloudevents-structured | cloudevents-binary` sends each event as a CloudEvent instead
// (cloudevents.h: an event that is not one is wrapped); the webhook-* headers stay, and the
// signature covers the body actually sent. (Batching and the CloudEvents formats do not combine.)
// Thread-safety: write(), write_batch(), close(), stats(), state() and enable() from any thread;
// concurrent writes use separate connections.
#pragma once

#include <atomic>
#include <bitset>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cloudevents.h"
#include "evroute/batch_sink.h"
#include "sinks/delivery.h"
#include "sinks/registry.h"

namespace evrouted {

class WebhookConnection;
class WebhookTarget;

struct HttpSinkConfig {
  std::string url;
  std::string scheme_host_port;  // from url, e.g. "https://example.com:8443"
  std::string path;              // from url, e.g. "/hooks?x=1" ("/" when absent)
  std::map<std::string, std::string> headers;
  Duration timeout = std::chrono::seconds(5);
  std::string ca_file;  // tls.ca_file; empty: the system's CAs
  bool tls_verify = true;
  std::string client_cert, client_key;    // tls.client_cert / tls.client_key (PEM); both or none
  std::vector<std::string> signing_keys;  // from `secret: whsec_<base64>` (or a list), decoded
  std::bitset<600> retry_on = default_retry_on();  // statuses answered kUnavailable (retried)

  // 408, 429 and every 5xx.
  static std::bitset<600> default_retry_on();

  // `format`: nullopt for json (the payload as application/json), else CloudEvents in this mode.
  std::optional<cloudevents::Mode> cloudevents_mode;
  cloudevents::Options cloudevents;  // `cloudevents: {source, default_type}`

  DeliveryConfig delivery;  // rate_limit, concurrency, batch (applied by the router; batch's
                            // encoding by the sink)
};

// One `retry_on` entry: a status from 400 to 599 ("503", except 410) or a class ("4xx", "5xx").
// Adds it to *out, or returns why it cannot be.
std::optional<std::string> add_retry_on(const std::string& entry, std::bitset<600>* out);

// The webhook-id of a batch (see above).
std::string batch_webhook_id(std::span<const evroute::Event> events);

// Standard Webhooks: the value of the webhook-signature header for one delivery attempt.
std::string webhook_signature(const std::vector<std::string>& keys, std::string_view id,
                              std::string_view timestamp, std::string_view body);
// "whsec_<base64>" -> the key bytes, or nullopt when it is not of that form.
std::optional<std::string> decode_webhook_secret(std::string_view secret);

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

// Splits and checks a webhook URL. Returns an explanation on failure.
std::optional<std::string> parse_webhook_url(const std::string& url, HttpSinkConfig* out);

// Retry-After: delta-seconds or an HTTP-date (any of RFC 9110's three forms); the wait from `now`
// (zero if past or unparsable), at most a year (any date, however far ahead).
std::chrono::milliseconds parse_retry_after(const std::string& value,
                                            std::chrono::system_clock::time_point now);

class HttpSink final : public evroute::BatchSink, public Disableable {
 public:
  struct Stats {
    std::uint64_t requests = 0;
    std::uint64_t responses_2xx = 0, responses_3xx = 0, responses_4xx = 0, responses_5xx = 0;
    std::uint64_t transport_errors = 0;  // no HTTP answer: refused, reset, timeout
    int last_status = 0;                 // 0: none yet, or a transport error
    std::string last_error;              // the latest failure's message; "" if none yet
  };

  // Throws std::runtime_error when it cannot start (e.g. an unreadable tls.ca_file).
  explicit HttpSink(HttpSinkConfig config);
  ~HttpSink() override;

  evroute::Status write(const evroute::Event& event) override;
  evroute::Status write_batch(std::span<const evroute::Event> events,
                              std::span<evroute::Status> results) override;
  evroute::Status close() override;
  Stats stats() const;

  State state() const override;
  bool enable() override;
  void on_disabled(std::function<void(const State&)> callback) override;

 private:
  // Sends what `build` makes (called once per attempt, with the attempt's time), holding it while
  // the sink is disabled (410 Gone) and sending it again once enabled.
  evroute::Status deliver(
      const std::function<WebhookRequest(std::chrono::system_clock::time_point)>& build);
  // One attempt, on a connection of the pool; *gone is set when the answer was 410 Gone.
  evroute::Status send(WebhookRequest built, std::chrono::system_clock::time_point now, bool* gone);
  evroute::Status failed(evroute::Status status);  // records it as last_error

  const HttpSinkConfig config_;
  const std::shared_ptr<const WebhookTarget> target_;  // host, port, TLS: shared by connections
  // The connection pool. A write takes an idle connection (or makes one) and puts it back when
  // done; close() never blocks on a write: it cancels the busy ones and waits until none is left.
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<WebhookConnection>> idle_;  // guarded by pool_mu_
  std::vector<WebhookConnection*> busy_;                  // guarded by pool_mu_
  // A write held while disabled waits on enabled_ with wait_mu_; close() and enable() notify it.
  // wait_mu_ is only ever held briefly, so enable() never waits on a request.
  std::mutex wait_mu_;
  std::condition_variable enabled_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> disabled_{false};
  mutable std::mutex state_mu_;  // guards state_
  State state_;
  std::function<void(const State&)> on_disabled_;
  std::atomic<std::uint64_t> requests_{0}, r2xx_{0}, r3xx_{0}, r4xx_{0}, r5xx_{0}, errors_{0};
  std::atomic<int> last_status_{0};
  mutable std::mutex error_mu_;  // guards last_error_ (written on failures only)
  std::string last_error_;
};

std::unique_ptr<SinkSpec> parse_http_sink(ConfigReader& reader);

}  // namespace evrouted
