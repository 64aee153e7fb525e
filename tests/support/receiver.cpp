#include "support/receiver.h"

#include <algorithm>

#include "support/eventually.h"

namespace evtest {

std::string ReceivedRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

Receiver::Receiver(int port) {
  server_.set_tcp_nodelay(true);
  server_.set_keep_alive_max_count(100000);
  server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
    std::unique_lock<std::mutex> lock(mu_);
    max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
    changed_.notify_all();
    changed_.wait_for(lock, std::chrono::seconds(30), [this] { return gate_open_; });
    const std::size_t n = seen_++;
    std::function<int(std::size_t)> respond = respond_;
    std::function<int(const std::string&)> respond_to_body = respond_to_body_;
    const std::string retry_after = retry_after_;
    lock.unlock();
    const int status = respond_to_body ? respond_to_body(req.body) : respond ? respond(n) : 200;
    res.status = status;
    if ((status == 429 || status == 503) && !retry_after.empty()) {
      res.set_header("Retry-After", retry_after);
    }
    lock.lock();
    requests_.push_back(
        {req.path, req.body, req.headers, status, std::chrono::steady_clock::now()});
    --in_flight_;
    changed_.notify_all();
  });
  if (port == 0) {
    port_ = server_.bind_to_any_port("127.0.0.1");
  } else {
    port_ = server_.bind_to_port("127.0.0.1", port) ? port : -1;
  }
  if (port_ <= 0) throw std::runtime_error("receiver: cannot bind");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
}

Receiver::~Receiver() { stop(); }

void Receiver::set_retry_after(std::string value) {
  std::lock_guard<std::mutex> lock(mu_);
  retry_after_ = std::move(value);
}

void Receiver::stop() {
  open_gate();
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

std::string Receiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void Receiver::set_respond(std::function<int(std::size_t)> respond) {
  std::lock_guard<std::mutex> g(mu_);
  respond_ = std::move(respond);
}

void Receiver::set_respond_to_body(std::function<int(const std::string&)> respond) {
  std::lock_guard<std::mutex> g(mu_);
  respond_to_body_ = std::move(respond);
}

void Receiver::close_gate() {
  std::lock_guard<std::mutex> g(mu_);
  gate_open_ = false;
}

void Receiver::open_gate() {
  std::lock_guard<std::mutex> g(mu_);
  gate_open_ = true;
  changed_.notify_all();
}

std::vector<ReceivedRequest> Receiver::requests() const {
  std::lock_guard<std::mutex> g(mu_);
  return requests_;
}

std::vector<ReceivedRequest> Receiver::delivered() const {
  std::vector<ReceivedRequest> out;
  for (auto& r : requests()) {
    if (r.status >= 200 && r.status < 300) out.push_back(r);
  }
  return out;
}

bool Receiver::wait_delivered(std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, timeout, [&] {
    std::size_t ok = 0;
    for (auto& r : requests_) ok += (r.status >= 200 && r.status < 300);
    return ok >= n;
  });
}

std::size_t Receiver::in_flight() const {
  std::lock_guard<std::mutex> g(mu_);
  return in_flight_;
}

std::size_t Receiver::max_in_flight() const {
  std::lock_guard<std::mutex> g(mu_);
  return max_in_flight_;
}

bool Receiver::wait_in_flight(std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, timeout, [&] { return in_flight_ >= n; });
}

std::map<std::string, int> delivered_ids(const Receiver& hook) {
  std::map<std::string, int> ids;
  for (const auto& r : hook.delivered()) ++ids[r.header("webhook-id")];
  return ids;
}

DeliveryTally tally(const Receiver& hook, const std::set<std::string>& acknowledged) {
  const auto got = delivered_ids(hook);
  DeliveryTally t;
  t.distinct = got.size();
  for (const auto& id : acknowledged) t.lost += got.count(id) ? 0 : 1;
  for (const auto& [id, n] : got) t.duplicates += static_cast<std::size_t>(n - 1);
  return t;
}

bool wait_for_all(const Receiver& hook, const std::set<std::string>& want,
                  std::chrono::steady_clock::duration timeout) {
  return eventually(
      [&] {
        const auto got = delivered_ids(hook);
        return std::all_of(want.begin(), want.end(),
                           [&](const auto& id) { return got.count(id) > 0; });
      },
      timeout, std::chrono::milliseconds(50));
}

}  // namespace evtest
