#include "sinks/nats/nats_sink.h"

#include <chrono>
#include <cstdint>

#include "json_parse.h"

namespace evrouted {

namespace {

constexpr std::size_t kMaxHeaderValueBytes = 1024;

evroute::Status unavailable(std::string why) {
  return evroute::Status::unavailable(std::move(why)).with_retry_after(std::chrono::seconds(1));
}

// The libnats message for `m`, or why it cannot be made.
evroute::Result<nats::MsgPtr> to_nats_msg(const NatsMessage& m) {
  natsMsg* raw = nullptr;
  natsStatus s = natsMsg_Create(&raw, m.subject.c_str(), nullptr, m.data.data(),
                                static_cast<int>(m.data.size()));
  if (s != NATS_OK) return unavailable("cannot create a message: " + nats::describe(s));
  nats::MsgPtr msg(raw);
  for (const auto& [name, value] : m.headers) {
    if ((s = natsMsgHeader_Set(msg.get(), name.c_str(), value.c_str())) != NATS_OK) {
      return unavailable("cannot set header " + name + ": " + nats::describe(s));
    }
  }
  return msg;
}

// The bytes the server counts against its max_payload: the data, and the headers as the protocol
// encodes them ("NATS/1.0\r\n", "Name: value\r\n" each, "\r\n").
std::size_t wire_size(const NatsMessage& m) {
  std::size_t n = m.data.size() + 12;
  for (const auto& [name, value] : m.headers) n += name.size() + value.size() + 4;
  return n;
}

}  // namespace

bool safe_nats_header_value(std::string_view value) {
  return !value.empty() && value.size() <= kMaxHeaderValueBytes && valid_utf8(value) &&
         !has_control_character(value);
}

NatsMessage build_nats_message(const NatsSinkConfig& config, const evroute::Event& event) {
  NatsMessage m;
  m.subject = config.subject;
  m.data = event.payload();
  // Ingest already refuses ids with control characters; checked again: the id goes in a header.
  if (!safe_nats_header_value(event.id())) {
    m.error =
        "event id is not usable as a Nats-Msg-Id (empty, over 1024 bytes, or control "
        "characters)";
    return m;
  }
  m.headers.emplace_back("Nats-Msg-Id", std::string(event.id()));
  // A type that is not safe in a header is left out, never copied raw.
  if (const std::string_view type = event.type(); safe_nats_header_value(type)) {
    m.headers.emplace_back("Evroute-Type", std::string(type));
  }
  return m;
}

NatsSink::NatsSink(NatsSinkConfig config, std::shared_ptr<nats::Link> link)
    : config_(std::move(config)), link_(std::move(link)) {}

evroute::Status NatsSink::write(const evroute::Event& event) {
  evroute::Status result;
  return write_batch(std::span(&event, 1), std::span(&result, 1));
}

evroute::Status NatsSink::write_batch(std::span<const evroute::Event> events,
                                      std::span<evroute::Status> results) {
  if (evroute::Status s = evroute::check_batch(events, results); !s.is_ok()) return s;
  if (events.empty()) return evroute::Status::ok();
  if (closed_.load(std::memory_order_acquire)) {
    for (evroute::Status& r : results) r = evroute::Status::closed();
    return evroute::Status::closed();
  }
  // Build every message first: an event that cannot be one is rejected on its own, the others
  // share the publish's outcome.
  // The server refuses a message over its max_payload whenever it is sent: rejected up front, so
  // that the rest of the batch goes (0: not known before the first connection).
  const std::int64_t max_payload = natsConnection_GetMaxPayload(link_->connection());
  std::vector<nats::MsgPtr> msgs;
  std::vector<std::size_t> sent;  // indexes of the events in msgs
  msgs.reserve(events.size());
  sent.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    const NatsMessage m = build_nats_message(config_, events[i]);
    if (!m.error.empty()) {
      results[i] = evroute::Status::rejected("nats " + config_.subject + ": " + m.error);
      continue;
    }
    if (max_payload > 0 && wire_size(m) > static_cast<std::size_t>(max_payload)) {
      results[i] = evroute::Status::rejected(
          "nats " + config_.subject + ": the event (" + std::to_string(wire_size(m)) +
          " bytes with its headers) is larger than the server's max_payload (" +
          std::to_string(max_payload) + ")");
      continue;
    }
    evroute::Result<nats::MsgPtr> msg = to_nats_msg(m);
    if (!msg.ok()) {
      results[i] = msg.status();
      continue;
    }
    msgs.push_back(std::move(*msg));
    sent.push_back(i);
  }
  if (!msgs.empty()) {
    evroute::Status s =
        config_.jetstream ? publish_jetstream(std::move(msgs)) : publish_core(std::move(msgs));
    if (!s.is_ok() && !s.is_closed()) {  // which sink's subject, for the log and dead letters
      s = evroute::Status(s.code(), "nats " + config_.subject + ": " + s.message())
              .with_retry_after(s.retry_after());
    }
    for (std::size_t i : sent) results[i] = s;
  }
  for (const evroute::Status& r : results) {
    if (!r.is_ok()) return r;
  }
  return evroute::Status::ok();
}

evroute::Status NatsSink::publish_core(std::vector<nats::MsgPtr> msgs) {
  // While the client reconnects, libnats would take the messages into its reconnect buffer and
  // answer OK: not delivered, so refused here (the flush below covers a disconnection after this
  // check).
  if (!link_->connected()) {
    std::string servers;
    for (const std::string& url : link_->config().servers) {
      servers += (servers.empty() ? "" : ", ") + url;
    }
    return unavailable("NATS is not reachable (" + servers + ")");
  }
  natsConnection* nc = link_->connection();
  for (const nats::MsgPtr& m : msgs) {
    if (const natsStatus s = natsConnection_PublishMsg(nc, m.get()); s != NATS_OK) {
      return unavailable("cannot publish: " + nats::describe(s));
    }
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(config_.timeout).count();
  if (const natsStatus s = natsConnection_FlushTimeout(nc, ms); s != NATS_OK) {
    return unavailable("the server did not confirm the messages: " + nats::describe(s));
  }
  return evroute::Status::ok();
}

evroute::Status NatsSink::publish_jetstream(std::vector<nats::MsgPtr> msgs) {
  return link_->publish(std::move(msgs), config_.timeout, closing_.get_token());
}

evroute::Status NatsSink::close() {
  closed_.store(true, std::memory_order_release);
  closing_.request_stop();
  return evroute::Status::ok();  // the connection is the process's (nats::shutdown closes it)
}

}  // namespace evrouted
