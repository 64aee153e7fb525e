// The nats sink (`type: nats`): publishes each event to one NATS subject, through the process's
// one connection (nats/link.h), which it shares with every other nats sink and jetstream queue.
//
// Each event becomes one message: its data is the event's payload (the JSON line every sink
// sends), its headers are `Nats-Msg-Id: <event id>` and, when the event's "type" attribute is a
// value safe in a header, `Evroute-Type: <type>` (NatsMessage). An event whose id cannot be a
// header value, or that is larger with its headers than the server's max_payload, is rejected
// (never retried: dead-lettered); input bytes never go raw into a header.
//
// Two modes (NatsSinkConfig::jetstream):
//  * core NATS: the batch is handed to the client, then one flush (a PING the server answers once
//    it has read everything before it) waits up to `timeout`. An event counts as delivered once
//    the server has it; whether anyone was subscribed is not known (core NATS is at-most-once past
//    the server). A failed flush fails the batch retryably: a retry may then duplicate messages for
//    subscribers (the Nats-Msg-Id tells them apart).
//  * JetStream: the batch is published asynchronously and every PubAck awaited (Link::publish):
//    delivered once the stream has stored it. The Nats-Msg-Id makes a retry store nothing twice
//    within the stream's duplicate window.
// Every failure (not connected, no stream for the subject, stream full, no answer in time) is
// kUnavailable: the sink's Retrying retries it. One status for a whole batch: a retry resends it
// all.
//
// Thread-safety: write(), write_batch() and close() from any thread. close() makes a JetStream
// write waiting for its PubAcks return at once (kClosed); a core flush in flight ends by `timeout`.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "evroute/batch_sink.h"
#include "nats/link.h"
#include "sinks/nats/nats_config.h"

namespace evrouted {

// What the sink publishes for one event (and what --dry-run shows).
struct NatsMessage {
  std::string subject;
  std::vector<std::pair<std::string, std::string>> headers;  // Nats-Msg-Id, [Evroute-Type]
  std::string_view data;                                     // the event's payload
  std::string error;  // not empty: the event cannot be published (why)
};

NatsMessage build_nats_message(const NatsSinkConfig& config, const evroute::Event& event);

// Whether `value` may be sent as a NATS header value: 1 to 1024 bytes of UTF-8 without control
// characters (a CR or LF would end the header and start another).
bool safe_nats_header_value(std::string_view value);

class NatsSink final : public evroute::BatchSink {
 public:
  NatsSink(NatsSinkConfig config, std::shared_ptr<nats::Link> link);
  evroute::Status write(const evroute::Event& event) override;
  evroute::Status write_batch(std::span<const evroute::Event> events,
                              std::span<evroute::Status> results) override;
  evroute::Status close() override;

 private:
  // Publishes `msgs` (all built), one status for all.
  evroute::Status publish_core(std::vector<nats::MsgPtr> msgs);
  evroute::Status publish_jetstream(std::vector<nats::MsgPtr> msgs);

  const NatsSinkConfig config_;
  const std::shared_ptr<nats::Link> link_;
  std::stop_source closing_;  // close(): wakes a JetStream write waiting for PubAcks
  std::atomic<bool> closed_{false};
};

}  // namespace evrouted
