#include "sinks/http/webhook_pool.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "sinks/http/webhook_client.h"

namespace evrouted {

WebhookPool::WebhookPool(std::shared_ptr<const WebhookTarget> target)
    : target_(std::move(target)) {}

WebhookPool::~WebhookPool() = default;

WebhookPool::Lease::Lease(WebhookPool& pool, const std::atomic<bool>& closed) : pool_(pool) {
  std::lock_guard<std::mutex> lock(pool_.mu_);
  if (closed.load(std::memory_order_acquire)) return;
  if (pool_.idle_.empty()) {
    connection_ = std::make_unique<WebhookConnection>(pool_.target_);
  } else {
    connection_ = std::move(pool_.idle_.back());
    pool_.idle_.pop_back();
  }
  pool_.busy_.push_back(connection_.get());
}

WebhookPool::Lease::~Lease() {
  if (!connection_) return;
  std::lock_guard<std::mutex> lock(pool_.mu_);
  std::erase(pool_.busy_, connection_.get());
  pool_.idle_.push_back(std::move(connection_));
}

void WebhookPool::close_all() {
  // cancel() aborts a connection's attempt in flight, or its next one at once (a write that took
  // its connection just before `closed` was set): every leased connection returns promptly.
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (WebhookConnection* busy : busy_) busy->cancel();
      if (busy_.empty()) {
        for (auto& idle : idle_) idle->close();  // the kept-alive connections
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace evrouted
