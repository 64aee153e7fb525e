// The http sink's connection pool: the kept-alive connections (webhook_client.h) of one sink to
// its receiver. It grows to the number of writes in flight at once (a queue with `concurrency`
// workers): each write leases a connection of its own — an idle one, or a new one — and gives it
// back when its attempt ends, however it ends.
//
// close_all() never blocks on a write: it cancels the leased connections (their attempts return
// promptly, connecting or not) until every lease has ended, then closes the idle ones.
// Thread-safety: leases and close_all() from any thread; a leased connection is used by its lease's
// thread only.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace evrouted {

class WebhookConnection;
class WebhookTarget;

class WebhookPool {
 public:
  explicit WebhookPool(std::shared_ptr<const WebhookTarget> target);
  ~WebhookPool();

  // One connection for one attempt.
  class Lease {
   public:
    // Takes an idle connection, or makes one; none when `closed` is set. `closed` is read under
    // the pool's lock: a close_all() called after `closed` was set cancels every lease taken
    // before, and no lease is taken after.
    Lease(WebhookPool& pool, const std::atomic<bool>& closed);
    ~Lease();  // gives the connection back to the pool, kept alive
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    explicit operator bool() const { return connection_ != nullptr; }
    WebhookConnection& operator*() const { return *connection_; }
    WebhookConnection* operator->() const { return connection_.get(); }

   private:
    WebhookPool& pool_;
    std::unique_ptr<WebhookConnection> connection_;
  };

  // Cancels the leased connections until none is leased, then closes the idle ones.
  void close_all();

 private:
  const std::shared_ptr<const WebhookTarget> target_;  // host, port, TLS: shared by connections
  std::mutex mu_;
  std::vector<std::unique_ptr<WebhookConnection>> idle_;  // guarded by mu_
  std::vector<WebhookConnection*> busy_;                  // leased; guarded by mu_
};

}  // namespace evrouted
