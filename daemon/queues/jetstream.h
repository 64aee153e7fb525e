// queue.type: jetstream — the sink's queue is its subject in the NATS JetStream stream of the
// `nats:` section (nats/link.h), shared by every evrouted running the same config.
//
// write_all() publishes each event (Nats-Msg-Id "<sink>/<event id>", so a client's resend within
// the stream's duplicate window is stored once) and returns OK only once JetStream acknowledged
// storing all of them (with replicas: 3, on a quorum): that is what a 202 means for such a sink.
// Unreachable NATS, a full stream or a missing PubAck: kUnavailable (503 + Retry-After).
//
// Delivery: the sink is one durable pull consumer (named after the sink, AckExplicit, AckWait =
// queue.ack_wait), pulled by `concurrency` workers in every replica. A worker makes one attempt
// per message and then
//   * delivered: Ack;
//   * a retryable failure, attempts left: NAK with the retry policy's backoff for that attempt
//     (or the destination's Retry-After, clamped by max_retry_after) as the delay, so whichever
//     replica pulls next makes the retry; the attempt number is the message's delivery count;
//   * given up (not retryable, max_attempts reached, or max_elapsed since it was stored): the
//     dead letter goes into JetStream (queues/jetstream_dead_letters.h), then Term. If the dead
//     letter cannot be stored, a NAK instead: nothing is given up on unrecorded.
// While a delivery runs, the worker's held messages get in-progress acks every ack_wait/3, so a
// slow destination does not make the stream hand them to another replica; a replica that dies
// holding messages loses nothing: they are redelivered after ack_wait. With concurrency: 1 the
// consumer has MaxAckPending 1: one event at a time, in stream order, across all replicas
// (a NAK'd event stays pending, so the next waits for it). The breaker of the retry policy does
// not apply (each attempt is on its own).
//
// close_until() stops pulling, lets the deliveries in progress finish until the deadline, gives
// back (NAK) what it held and not delivered: `kept` (the stream keeps it for the next replica or
// run). Nothing is handed to the DropLog.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "nats/link.h"
#include "queues/queue_kind.h"

namespace evrouted {

const QueueKind& jetstream_queue_kind();

// The durable pull consumer of a jetstream-queued sink, in the link's stream: named after the sink.
std::string jetstream_consumer(std::string_view sink);

// What evroute's stream holds, from one stream info request (reads only).
struct JetStreamStreamState {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t first_seq = 0, last_seq = 0;
  std::int64_t first_time_ns = 0, last_time_ns = 0;  // UTC, since the epoch
  std::map<std::string, std::uint64_t> per_sink;     // messages of each <stream>.sink.<sink>
};
// nullopt when the stream does not exist (yet); kUnavailable when NATS does not answer.
evroute::Result<std::optional<JetStreamStreamState>> read_jetstream_stream(const nats::Link& link);

// A sink's consumer's counts (reads only).
struct JetStreamConsumerState {
  std::uint64_t pending = 0;      // in the stream, not yet delivered to any replica
  std::uint64_t ack_pending = 0;  // delivered, not yet acknowledged (held, or waiting for a retry)
  std::uint64_t redelivered = 0;  // of those, delivered more than once
  std::uint64_t delivered_seq = 0;  // the last stream sequence delivered
  std::uint64_t ack_floor_seq = 0;  // every stream sequence up to this one is acknowledged
};
// nullopt when the sink has no consumer (yet); kUnavailable when NATS does not answer.
evroute::Result<std::optional<JetStreamConsumerState>> read_jetstream_consumer(
    const nats::Link& link, std::string_view sink);

}  // namespace evrouted
