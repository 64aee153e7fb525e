// The nats sink's keys: the documented shape parses, and every bad subject, a jetstream that is not
// a boolean, an unknown key and a missing `nats:` section are reported at their line and column.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config.h"
#include "evroute/event.h"
#include "sinks/nats/nats_config.h"
#include "sinks/nats/nats_sink.h"
#include "sinks/registry.h"

namespace evrouted {
namespace {

using namespace std::chrono_literals;

const std::string kNats = "nats: { servers: [\"nats://127.0.0.1:4222\"] }\n";

std::vector<std::string> errors_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& e : load_config_text(yaml, "t.yaml").errors) out.push_back(e.to_string());
  return out;
}

// A config with the nats section on line 1, sink 'bus' on line 3 and its `keys` from line 5 on.
std::string with_sink(const std::string& keys) {
  return kNats + "sinks:\n  bus:\n    type: nats\n" + keys;
}

TEST(NatsSinkConfig, TheDocumentedShapeParses) {
  auto r = load_config_text(with_sink("    subject: \"orders.created\"\n"
                                      "    jetstream: true\n"
                                      "    timeout: 750ms\n"),
                            "t.yaml");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  ASSERT_EQ(r.config->sinks.size(), 1u);
  const SinkConfig& sc = r.config->sinks[0];
  EXPECT_EQ(sc.type, "nats");
  EXPECT_EQ(sc.spec->describe(), "nats orders.created (JetStream)");
  EXPECT_TRUE(sc.spec->delivery().write_batches);
  EXPECT_EQ(r.config->nats->servers, (std::vector<std::string>{"nats://127.0.0.1:4222"}));
}

TEST(NatsSinkConfig, CoreNatsIsTheDefault) {
  auto r = load_config_text(with_sink("    subject: orders.created\n"), "t.yaml");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.config->sinks[0].spec->describe(), "nats orders.created (core NATS)");
}

TEST(NatsSinkConfig, TheTypeDeclaresBatchingAndNeedsNats) {
  const SinkType* type = find_sink_type("nats");
  ASSERT_NE(type, nullptr);
  EXPECT_TRUE(type->capabilities.batching);
  EXPECT_TRUE(type->needs_nats);
  EXPECT_FALSE(type->capabilities.reopenable);
  EXPECT_NE(sink_type_list().find("nats"), std::string::npos);
}

TEST(NatsSinkConfig, PreviewShowsSubjectHeadersAndData) {
  auto r =
      load_config_text(with_sink("    subject: orders.created\n    jetstream: true\n"), "t.yaml");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  const evroute::Event e = evroute::Event::make("ev-1", R"({"id":"ev-1","type":"order.created"})",
                                                {{"type", "order.created"}});
  EXPECT_EQ(r.config->sinks[0].spec->preview(e, {}),
            "publish to NATS subject orders.created (JetStream, PubAck awaited)\n"
            "Nats-Msg-Id: ev-1\n"
            "Evroute-Type: order.created\n"
            "\n"
            "{\"id\":\"ev-1\",\"type\":\"order.created\"}\n");
}

struct BadSubject {
  std::string name;
  std::string subject;  // as YAML
  std::string why;      // the message after "sink 'bus': "
};

void PrintTo(const BadSubject& b, std::ostream* os) { *os << b.name; }

class NatsSinkBadSubject : public ::testing::TestWithParam<BadSubject> {};

TEST_P(NatsSinkBadSubject, IsReportedAtTheSubject) {
  const BadSubject& b = GetParam();
  const auto errors = errors_of(with_sink("    subject: " + b.subject + "\n"));
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "t.yaml:5:14: sink 'bus': " + b.why);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, NatsSinkBadSubject,
    ::testing::Values(
        BadSubject{"Empty", "\"\"", "'subject' must not be empty"},
        BadSubject{"TooLong", std::string(256, 'a'),
                   "subject '" + std::string(256, 'a') + "' is 256 bytes long: at most 255"},
        BadSubject{"LeadingDot", "\".orders\"",
                   "subject '.orders' must be dot-separated non-empty tokens, e.g. orders.created"},
        BadSubject{"TrailingDot", "\"orders.\"",
                   "subject 'orders.' must be dot-separated non-empty tokens, e.g. orders.created"},
        BadSubject{"EmptyToken", "\"orders..created\"",
                   "subject 'orders..created' must be dot-separated non-empty tokens, e.g. "
                   "orders.created"},
        BadSubject{"Space", "\"orders created\"",
                   "subject 'orders created' must not contain whitespace or control characters"},
        BadSubject{"Tab", "\"orders\\tcreated\"",
                   "subject must not contain whitespace or control characters"},
        BadSubject{"Newline", "\"orders\\ncreated\"",
                   "subject must not contain whitespace or control characters"},
        BadSubject{
            "StarWildcard", "\"orders.*\"",
            "subject 'orders.*' must not contain wildcards ('*', '>'): a message is published to "
            "one subject"},
        BadSubject{
            "FullWildcard", "\"orders.>\"",
            "subject 'orders.>' must not contain wildcards ('*', '>'): a message is published to "
            "one subject"}),
    [](const auto& info) { return info.param.name; });

TEST(NatsSinkConfig, AMaximalSubjectIsAccepted) {
  EXPECT_EQ(nats_subject_problem(std::string(255, 'a')), std::nullopt);
  EXPECT_EQ(nats_subject_problem("a.b-c_d.E9"), std::nullopt);
}

TEST(NatsSinkConfig, SubjectIsRequired) {
  const auto errors = errors_of(kNats + "sinks:\n  bus: { type: nats, jetstream: true }\n");
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "t.yaml:3:8: sink 'bus': missing required key 'subject'");
}

TEST(NatsSinkConfig, JetstreamMustBeABoolean) {
  const auto errors = errors_of(with_sink("    subject: a.b\n    jetstream: sometimes\n"));
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "t.yaml:6:16: sink 'bus': 'jetstream' must be true or false, not 'sometimes'");
}

TEST(NatsSinkConfig, TimeoutMustBeAPositiveDuration) {
  auto errors = errors_of(with_sink("    subject: a.b\n    timeout: 0s\n"));
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "t.yaml:6:14: sink 'bus': 'timeout' must be more than 0");
  errors = errors_of(with_sink("    subject: a.b\n    timeout: 5\n"));
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "t.yaml:6:14: sink 'bus': 'timeout': a duration needs a unit (ms, s, m, h), e.g. '5s'");
}

TEST(NatsSinkConfig, UnknownKeyIsReported) {
  const auto errors = errors_of(with_sink("    subject: a.b\n    stream: ORDERS\n"));
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "t.yaml:6:5: unknown key 'stream' in sink 'bus' (known keys: filter, jetstream, queue, "
            "retry, subject, timeout, type)");
}

TEST(NatsSinkConfig, MissingNatsSectionIsReportedAtTheSink) {
  const auto errors = errors_of("sinks:\n  bus:\n    type: nats\n    subject: a.b\n");
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "t.yaml:2:3: sink 'bus': type nats needs a top-level 'nats' section naming the "
            "servers, e.g. nats: { servers: [\"nats://127.0.0.1:4222\"] }");
}

TEST(NatsSinkConfig, EveryProblemIsReportedInOneLoad) {
  const auto errors =
      errors_of(with_sink("    subject: \"a.*\"\n    jetstream: 3\n    colour: blue\n"));
  EXPECT_EQ(errors.size(), 3u) << ::testing::PrintToString(errors);
}

TEST(NatsMessage, CarriesIdAndTypeHeaders) {
  NatsSinkConfig config;
  config.subject = "orders.created";
  const evroute::Event e = evroute::Event::make("ev-1", "{}", {{"type", "order.created"}});
  const NatsMessage m = build_nats_message(config, e);
  EXPECT_TRUE(m.error.empty());
  EXPECT_EQ(m.subject, "orders.created");
  EXPECT_EQ(m.data, "{}");
  using H = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(m.headers, (H{{"Nats-Msg-Id", "ev-1"}, {"Evroute-Type", "order.created"}}));
}

TEST(NatsMessage, AnUnsafeTypeIsLeftOut) {
  NatsSinkConfig config;
  config.subject = "s";
  using H = std::vector<std::pair<std::string, std::string>>;
  for (const std::string& type :
       {std::string("a\r\nNats-Msg-Id: forged"), std::string("a\x01"), std::string("\xc2\x85"),
        std::string("\xff\xfe"), std::string(1025, 't'), std::string()}) {
    const evroute::Event e = evroute::Event::make("ev-1", "{}", {{"type", type}});
    const NatsMessage m = build_nats_message(config, e);
    EXPECT_TRUE(m.error.empty());
    EXPECT_EQ(m.headers, (H{{"Nats-Msg-Id", "ev-1"}})) << ::testing::PrintToString(type);
  }
  const evroute::Event e = evroute::Event::make("ev-1", "{}", {{"type", std::string(1024, 't')}});
  EXPECT_EQ(build_nats_message(config, e).headers.size(), 2u);
}

TEST(NatsMessage, AnIdThatCannotBeAHeaderIsAnError) {
  NatsSinkConfig config;
  config.subject = "s";
  for (const std::string& id : {std::string("a\nb"), std::string(1025, 'i')}) {
    const NatsMessage m = build_nats_message(config, evroute::Event::make(id, "{}"));
    EXPECT_FALSE(m.error.empty());
    EXPECT_TRUE(m.headers.empty());
  }
}

}  // namespace
}  // namespace evrouted
