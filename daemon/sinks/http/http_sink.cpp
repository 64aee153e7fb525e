#include "sinks/http/http_sink.h"

#include <algorithm>
#include <stdexcept>

#include "sinks/http/retry_after.h"
#include "sinks/http/tls_files.h"
#include "sinks/http/webhook_client.h"

namespace evrouted {

HttpSink::HttpSink(HttpSinkConfig config)
    : config_(std::move(config)), pool_([this] {
        if (!config_.client_cert.empty()) {
          if (auto problem = client_identity_problem(config_.client_cert, config_.client_key)) {
            throw std::runtime_error(*problem);
          }
        }
        if (!config_.ca_file.empty()) {
          if (auto problem = ca_file_problem(config_.ca_file)) throw std::runtime_error(*problem);
        }
        return std::make_shared<const WebhookTarget>(config_);
      }()) {}

HttpSink::~HttpSink() { close(); }

evroute::Status HttpSink::write(const evroute::Event& event) {
  if (!event) return evroute::Status::invalid_argument("empty event");
  if (config_.delivery.batch) {  // every request of a batching sink has the batch shape
    evroute::Status result;
    return write_batch(std::span<const evroute::Event>(&event, 1),
                       std::span<evroute::Status>(&result, 1));
  }
  return deliver([&](std::chrono::system_clock::time_point now) {
    return build_webhook_request(config_, event, now);
  });
}

evroute::Status HttpSink::write_batch(std::span<const evroute::Event> events,
                                      std::span<evroute::Status> results) {
  if (evroute::Status s = evroute::check_batch(events, results); !s.is_ok()) return s;
  if (events.empty()) return evroute::Status::ok();
  const evroute::Status status = deliver([&](std::chrono::system_clock::time_point now) {
    return build_batch_request(config_, events, now);
  });
  std::fill(results.begin(), results.end(), status);
  return status;
}

evroute::Status HttpSink::deliver(
    const std::function<WebhookRequest(std::chrono::system_clock::time_point)>& build) {
  for (;;) {
    disable_switch_.hold_while_disabled(closed_);  // hold the event: it goes once enabled
    if (closed_.load(std::memory_order_acquire)) return evroute::Status::closed();
    bool gone = false;
    const auto now = std::chrono::system_clock::now();
    WebhookRequest request = build(now);
    if (!request.error.empty()) {  // not sendable: never retried, dead-lettered with the reason
      return failed(evroute::Status::rejected("cannot send event: " + request.error));
    }
    evroute::Status status = send(std::move(request), now, &gone);
    if (!gone) return status;
    disable_switch_.disable(status.message());
  }
}

evroute::Status HttpSink::send(WebhookRequest built, std::chrono::system_clock::time_point now,
                               bool* gone) {
  const WebhookPool::Lease connection(pool_, closed_);  // back in the pool however this ends
  if (!connection) return evroute::Status::closed();

  WebhookResponse res;
  const evroute::Status sent = connection->send(built, &res);
  if (sent.code() == evroute::Code::kRejected) {  // unsafe to send: nothing was written
    return failed(evroute::Status::rejected("POST " + config_.url + ": " + sent.message()));
  }
  requests_.fetch_add(1, std::memory_order_relaxed);
  if (!sent.is_ok()) {
    // Most likely close() cancelled the attempt.
    if (sent.is_closed() || closed_.load(std::memory_order_acquire)) {
      return evroute::Status::closed();
    }
    errors_.fetch_add(1, std::memory_order_relaxed);
    last_status_.store(0, std::memory_order_relaxed);
    return failed(evroute::Status::unavailable("POST " + config_.url + ": " + sent.message()));
  }
  const int status = res.status;
  last_status_.store(status, std::memory_order_relaxed);
  if (status >= 200 && status < 300) {  // delivered, even if close() came meanwhile
    r2xx_.fetch_add(1, std::memory_order_relaxed);
    return evroute::Status::ok();
  }
  (status < 400 ? r3xx_ : status < 500 ? r4xx_ : r5xx_).fetch_add(1, std::memory_order_relaxed);
  const std::string what = "POST " + config_.url + ": HTTP " + std::to_string(status);
  if (status == 410) {
    *gone = true;
    return failed(evroute::Status::rejected(what + " Gone"));
  }
  if (status >= 0 && status < static_cast<int>(config_.retry_on.size()) &&
      config_.retry_on.test(static_cast<std::size_t>(status))) {
    return failed(evroute::Status::unavailable(what).with_retry_after(
        parse_retry_after(res.retry_after, now)));
  }
  return failed(evroute::Status::rejected(what));
}

evroute::Status HttpSink::failed(evroute::Status status) {
  std::lock_guard<std::mutex> lock(error_mu_);
  last_error_ = status.message();
  return status;
}

HttpSink::State HttpSink::state() const { return disable_switch_.state(); }

bool HttpSink::enable() { return disable_switch_.enable(); }

void HttpSink::on_disabled(std::function<void(const State&)> callback) {
  disable_switch_.on_disabled(std::move(callback));
}

evroute::Status HttpSink::close() {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return evroute::Status::ok();
  disable_switch_.wake_all();  // the writes held while disabled first
  pool_.close_all();           // then every write in flight
  return evroute::Status::ok();
}

HttpSink::Stats HttpSink::stats() const {
  Stats s;
  s.requests = requests_.load(std::memory_order_relaxed);
  s.responses_2xx = r2xx_.load(std::memory_order_relaxed);
  s.responses_3xx = r3xx_.load(std::memory_order_relaxed);
  s.responses_4xx = r4xx_.load(std::memory_order_relaxed);
  s.responses_5xx = r5xx_.load(std::memory_order_relaxed);
  s.transport_errors = errors_.load(std::memory_order_relaxed);
  s.last_status = last_status_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(error_mu_);
  s.last_error = last_error_;
  return s;
}

}  // namespace evrouted
