// The http sink (`type: http`): POSTs each event to a webhook.
//
// What is sent (the body, the webhook-* headers and the Standard Webhooks signature, batches,
// CloudEvents) is built by webhook_request.h, once per attempt; the settings are HttpSinkConfig
// (http_config.h). Requests go over kept-alive connections (TCP_NODELAY; redirects are never
// followed). Concurrent writes (a queue with `concurrency` workers) each get a connection of their
// own: the sink keeps a pool that grows to the number of writes in flight at once
// (webhook_pool.h).
//
// With `batch` set (write_batch; see delivery.h), write() sends a batch of one, so every request
// of the sink has the same shape. https verifies the server certificate (chain and host name; SNI
// is sent for host names) against the system CAs, or `tls.ca_file`, and presents
// `tls.client_cert` (with `tls.client_key`) to receivers that require a client certificate.
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
//                                           Retry-After (retry_after.h)
//   410 Gone                             -> the sink disables itself (see Disableable in
//                                           registry.h, and disable_switch.h): write() holds the
//                                           event until enable(), then sends it again; or returns
//                                           kClosed on close()
//   anything else (3xx, other 4xx)       -> kRejected (not retryable)
//
// close() makes the requests in flight return promptly, connecting or not (it posts an abort onto
// each busy connection's io_context), and returns once no write is in flight.
// SIGPIPE needs no handling: sockets send with MSG_NOSIGNAL.
// Thread-safety: write(), write_batch(), close(), stats(), state() and enable() from any thread;
// concurrent writes use separate connections.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>

#include "evroute/batch_sink.h"
#include "sinks/http/disable_switch.h"
#include "sinks/http/http_config.h"
#include "sinks/http/webhook_pool.h"
#include "sinks/http/webhook_request.h"
#include "sinks/registry.h"

namespace evrouted {

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
  WebhookPool pool_;
  DisableSwitch disable_switch_;  // open, or disabled by a 410 Gone until enable()
  std::atomic<bool> closed_{false};
  std::atomic<std::uint64_t> requests_{0}, r2xx_{0}, r3xx_{0}, r4xx_{0}, r5xx_{0}, errors_{0};
  std::atomic<int> last_status_{0};
  mutable std::mutex error_mu_;  // guards last_error_ (written on failures only)
  std::string last_error_;
};

}  // namespace evrouted
