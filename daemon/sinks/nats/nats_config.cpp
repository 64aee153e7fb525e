#include "sinks/nats/nats_config.h"

#include <stdexcept>

#include "json_parse.h"
#include "nats/link.h"
#include "sinks/nats/nats_sink.h"

namespace evrouted {

namespace {

class NatsSpec final : public SinkSpec {
 public:
  explicit NatsSpec(NatsSinkConfig config) : config_(std::move(config)) {}
  Leaf build() const override {
    std::shared_ptr<nats::Link> link = nats::link();
    if (!link) {
      throw std::runtime_error("nats sink (subject " + config_.subject +
                               "): evrouted has no NATS connection (the top-level 'nats' "
                               "section is opened at start: adding it takes a restart)");
    }
    auto sink = std::make_shared<NatsSink>(config_, std::move(link));
    return {.sink = sink, .batch = sink.get()};
  }
  std::string describe() const override {
    return "nats " + config_.subject + (config_.jetstream ? " (JetStream)" : " (core NATS)");
  }
  std::string preview(const evroute::Event& event,
                      std::chrono::system_clock::time_point) const override {
    const NatsMessage m = build_nats_message(config_, event);
    if (!m.error.empty()) return "not published (rejected): " + m.error + "\n";
    std::string text = "publish to NATS subject " + m.subject +
                       (config_.jetstream ? " (JetStream, PubAck awaited)\n" : " (core NATS)\n");
    for (const auto& [name, value] : m.headers) text += name + ": " + value + "\n";
    text += "\n";
    text.append(m.data).append("\n");
    return text;
  }
  DeliveryConfig delivery() const override {
    DeliveryConfig d;
    d.write_batches = true;  // a batch: one flush, or PubAcks awaited together
    return d;
  }

 private:
  const NatsSinkConfig config_;
};

}  // namespace

std::optional<std::string> nats_subject_problem(std::string_view subject) {
  if (subject.empty()) return "must not be empty";
  if (subject.size() > 255) {
    return "is " + std::to_string(subject.size()) + " bytes long: at most 255";
  }
  for (char c : subject) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return "must not contain whitespace or control characters";
    if (c == '*' || c == '>') {
      return "must not contain wildcards ('*', '>'): a message is published to one subject";
    }
  }
  if (subject.front() == '.' || subject.back() == '.' ||
      subject.find("..") != std::string_view::npos) {
    return "must be dot-separated non-empty tokens, e.g. orders.created";
  }
  return std::nullopt;
}

std::unique_ptr<SinkSpec> parse_nats_sink(ConfigReader& reader) {
  NatsSinkConfig config;
  const std::size_t before = reader.errors().all().size();
  const std::string prefix = reader.what().empty() ? "" : reader.what() + ": ";
  if (auto subject = reader.required_string("subject")) {
    if (auto why = nats_subject_problem(*subject)) {
      // Quoted unless that would put its control characters in the message.
      const std::string shown = has_control_character(*subject) ? "" : " '" + *subject + "'";
      reader.error("subject", prefix + "subject" + shown + " " + *why);
    }
    config.subject = *subject;
  }
  if (auto jetstream = reader.boolean("jetstream")) config.jetstream = *jetstream;
  if (auto timeout = reader.duration("timeout")) {
    if (timeout->count() <= 0) {
      reader.error("timeout", prefix + "'timeout' must be more than 0");
    } else {
      config.timeout = *timeout;
    }
  }
  if (reader.errors().all().size() != before) return nullptr;
  return std::make_unique<NatsSpec>(std::move(config));
}

const SinkType& nats_sink_type() {
  static constexpr SinkType kType{.name = "nats",
                                  .summary = "NATS subjects (core NATS, or JetStream with PubAck)",
                                  .parse = &parse_nats_sink,
                                  .capabilities = {.batching = true},
                                  .needs_nats = true};
  return kType;
}

}  // namespace evrouted
