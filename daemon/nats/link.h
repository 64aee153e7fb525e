// nats::Link: evrouted's one connection to the `nats:` servers (config.h NatsConfig), shared by
// every jetstream queue (queues/jetstream.cpp) and nats sink (sinks/nats/).
//
// open() never waits for a server: the client (libnats) connects in the background, fails over
// between `servers` and reconnects forever, so evrouted starts while NATS is down (systemd must not
// restart it in a loop) and recovers without a restart. Each time it is connected, the link's
// thread makes sure the two streams exist, creating them with the configured settings when they
// are missing:
//   <stream>        subjects <stream>.sink.<sink>: one subject per jetstream-queued sink, a
//                   WorkQueue stream (an event is removed once its sink's consumer acknowledged
//                   it), limited to nats.max_bytes with Discard=New (full: publishes fail -> 503);
//   <stream>_DEAD   subjects <stream>_DEAD.<sink>: dead letters, a Limits stream with direct get
//                   (listed and replayed from any replica).
// ready() is OK only then; until then it says why not (kUnavailable with a Retry-After hint), and
// /readyz and POSTs routed to jetstream sinks answer 503.
//
// publish() stores messages in JetStream and waits for every PubAck (see there). Other calls use
// connection() and js() directly: libnats' connection and contexts are thread-safe.
//
// The process has at most one link: configure() (main, at start) opens it for the config's
// `nats:` section and link() returns it. A reload that changes `nats:` needs a restart.
//
// Thread-safety: every member from any thread.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config.h"
#include "evroute/result.h"
#include "evroute/status.h"

namespace evrouted::nats {

// A libnats status as text, with the JetStream error code when there is one.
std::string describe(natsStatus s, jsErrCode code = static_cast<jsErrCode>(0));

// The subject of a jetstream-queued sink in evroute's stream: <stream>.sink.<sink> (what
// Link::queue_subject returns for the link's stream).
std::string queue_subject(std::string_view stream, std::string_view sink);

// Owns a natsMsg.
struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

class Link {
 public:
  // `streams`: whether the link sets up evroute's streams (some sink has a jetstream queue); a link
  // for nats sinks alone needs none, and is ready() once connected.
  static evroute::Result<std::shared_ptr<Link>> open(const NatsConfig& config, bool streams = true);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  const NatsConfig& config() const { return config_; }
  natsConnection* connection() const { return nc_; }
  jsCtx* js() const { return js_; }  // for synchronous JetStream calls

  // OK while connected with the streams in place; else why not (kUnavailable, retry_after set).
  evroute::Status ready() const;
  bool connected() const;
  // Increases each time the streams were (re)checked after a (re)connection: a consumer set up
  // before may have to be set up again.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // Waits until ready() or the deadline; returns whether ready.
  bool wait_ready(std::chrono::steady_clock::time_point deadline) const;

  // Makes the link set up evroute's streams from now on (a reload added a jetstream queue).
  void require_streams();

  const std::string& stream() const { return config_.stream; }
  std::string dead_stream() const { return config_.stream + "_DEAD"; }
  std::string queue_subject(std::string_view sink) const;  // <stream>.sink.<sink>
  std::string dead_subject(std::string_view sink) const;   // <stream>_DEAD.<sink>

  // Publishes `msgs` (each with its subject, headers and Nats-Msg-Id set) and waits up to
  // `timeout` for JetStream to acknowledge storing every one of them (in whichever stream holds
  // their subjects: needs a connection, not ready()). OK only when every one was
  // stored (or was a duplicate of one stored within the stream's duplicate window); otherwise
  // kUnavailable naming the first failure (some may have been stored: resending is safe, the
  // Nats-Msg-Id deduplicates). A subject that no stream captures fails naming it ("no JetStream
  // stream captures subject orders.created"). A stop requested on `stop` ends the wait at once
  // (kClosed; the messages may still be stored). Publishes of concurrent calls are pipelined
  // independently.
  evroute::Status publish(std::vector<MsgPtr> msgs, std::chrono::nanoseconds timeout,
                          std::stop_token stop = {});

 private:
  struct Publisher;
  Link(const NatsConfig& config, bool streams);
  evroute::Status start();
  void run();                        // the setup thread
  evroute::Status ensure_streams();  // creates what is missing
  std::string last_error() const;    // " (why)" from the connection, or ""
  std::unique_ptr<Publisher> take_publisher();
  void give_back(std::unique_ptr<Publisher> p);
  static void on_connected(natsConnection*, void* self);
  static void on_disconnected(natsConnection*, void* self);
  static void on_closed(natsConnection*, void* self);

  const NatsConfig config_;
  std::atomic<bool> streams_;
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stop_ = false;
  bool closed_ = false;        // the connection's closed callback ran: no callback of it is left
  bool recheck_ = true;        // connected since the streams were last checked
  bool streams_ok_ = false;    // the streams were found or created on this connection
  std::string not_ready_why_;  // why not, while !streams_ok_
  std::vector<std::unique_ptr<Publisher>> publishers_;  // idle ones
  std::atomic<std::uint64_t> generation_{0};
  std::thread thread_;
};

// The process's link (see above). configure() opens it once, for `nats` (nothing when absent);
// link() is null until then, or without a `nats:` section.
evroute::Status configure(const Config& config);
std::shared_ptr<Link> link();
// Closes the link and libnats' own threads (at exit).
void shutdown();

}  // namespace evrouted::nats
