// The config loader: the documented shape parses into the right structs, defaults apply, and every
// kind of mistake is reported with its line and column — all of them in one load.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <filesystem>
#include <fstream>

#include "config.h"
#include "sinks/http/http_config.h"
#include "sinks/http/webhook_url.h"
#include "sinks/registry.h"

namespace evrouted {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> errors_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& e : load_config_text(yaml, "t.yaml").errors) out.push_back(e.to_string());
  return out;
}

// Passes when exactly one error was reported and it is `expected`.
void expect_error(const std::string& yaml, const std::string& expected) {
  auto errors = errors_of(yaml);
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], expected);
}

// The issue's contract for replicas on NATS JetStream (docs: README "Running several evrouted").
TEST(Config, TheNatsSectionAndJetStreamQueuesParse) {
  setenv("EVROUTE_TEST_NATS_TOKEN", "s3cret", 1);
  auto r = load_config_text(R"(
nats:
  servers: ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "tls://nats.example.com:4224"]
  stream: EVROUTE
  replicas: 3
  max_bytes: 1GiB
  auth: { token: "${EVROUTE_TEST_NATS_TOKEN}" }
  publish_timeout: 3s
sinks:
  billing:
    type: http
    url: https://billing.example.com/hooks
    queue: { type: jetstream, ack_wait: 30s }
  archive: { type: file, path: ./a.ndjson }
)",
                            "t.yaml");
  ASSERT_TRUE(r.config) << ::testing::PrintToString(r.errors.empty() ? ""
                                                                     : r.errors[0].to_string());
  const Config& c = *r.config;
  ASSERT_TRUE(c.nats);
  EXPECT_EQ(c.nats->servers.size(), 3u);
  EXPECT_EQ(c.nats->stream, "EVROUTE");
  EXPECT_EQ(c.nats->replicas, 3u);
  EXPECT_EQ(c.nats->max_bytes, std::uint64_t{1} << 30);
  EXPECT_EQ(c.nats->token, "s3cret");
  EXPECT_EQ(c.nats->publish_timeout, std::chrono::seconds(3));
  EXPECT_EQ(c.sinks[0].queue.type, QueueConfig::Type::kJetStream);
  EXPECT_EQ(c.sinks[0].queue.ack_wait, std::chrono::seconds(30));
  EXPECT_EQ(c.sinks[1].queue.type, QueueConfig::Type::kMemory);
  // Defaults.
  auto d = load_config_text("nats: { servers: [\"nats://h\"] }\nsinks:\n  a: { type: stdout }\n",
                            "t.yaml");
  ASSERT_TRUE(d.config && d.config->nats);
  EXPECT_EQ(d.config->nats->stream, "EVROUTE");
  EXPECT_EQ(d.config->nats->replicas, 1u);
  EXPECT_EQ(d.config->nats->publish_timeout, std::chrono::seconds(5));
  EXPECT_FALSE(load_config_text("sinks:\n  a: { type: stdout }\n", "t.yaml").config->nats);
}

TEST(Config, TheDocumentedShapeParses) {
  setenv("EVROUTE_TEST_TOKEN", "tok-123", 1);
  auto r = load_config_text(R"(
server:
  listen: "0.0.0.0:9090"
  max_body_bytes: 64KiB
  threads: 8
  auth:
    tokens: ["${EVROUTE_TEST_TOKEN}", "literal"]
shutdown_timeout: 1.5s
sinks:
  console:
    type: stdout
  archive:
    type: file
    path: ./data/events.ndjson
  billing:
    type: http
    url: https://example.com:8443/hooks?team=b
    headers: { X-Team: billing }
    timeout: 750ms
    filter:
      type: ["invoice.*", "payment.failed"]
      region: eu
    queue: { capacity: 50, when_full: drop_oldest, block_timeout: 3s }
    retry: { max_attempts: 3, max_elapsed: 2m, initial_backoff: 100ms, max_backoff: 1h, multiplier: 3, jitter: 0, breaker: { threshold: 2, cooldown: 1m } }
)",
                            "t.yaml");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  const Config& c = *r.config;
  EXPECT_EQ(c.server.host, "0.0.0.0");
  EXPECT_EQ(c.server.port, 9090);
  EXPECT_EQ(c.server.max_body_bytes, 65536u);
  EXPECT_EQ(c.server.threads, 8u);
  EXPECT_EQ(c.server.tokens, (std::vector<std::string>{"tok-123", "literal"}));
  EXPECT_EQ(c.shutdown_timeout, 1500ms);
  ASSERT_EQ(c.sinks.size(), 3u);
  EXPECT_EQ(c.sinks[0].name, "console");
  EXPECT_EQ(c.sinks[0].type, "stdout");
  EXPECT_EQ(c.sinks[1].spec->describe(), "file ./data/events.ndjson");
  const SinkConfig& b = c.sinks[2];
  EXPECT_EQ(b.line, 15);
  EXPECT_EQ(b.spec->describe(), "http POST https://example.com:8443/hooks?team=b");
  ASSERT_EQ(b.filter.size(), 2u);
  EXPECT_EQ(b.filter[0].field, "type");
  EXPECT_EQ(b.filter[0].globs, (std::vector<std::string>{"invoice.*", "payment.failed"}));
  EXPECT_EQ(b.filter[1].globs, (std::vector<std::string>{"eu"}));
  EXPECT_EQ(b.queue.capacity, 50u);
  EXPECT_EQ(b.queue.when_full, evroute::OverflowPolicy::kDropOldest);
  EXPECT_EQ(b.queue.block_timeout, 3s);
  EXPECT_EQ(b.retry.max_attempts, 3u);
  EXPECT_EQ(b.retry.max_elapsed, 2min);
  EXPECT_EQ(b.retry.initial_backoff, 100ms);
  EXPECT_EQ(b.retry.max_backoff, 1h);
  EXPECT_EQ(b.retry.multiplier, 3);
  EXPECT_EQ(b.retry.jitter, 0);
  ASSERT_TRUE(b.retry.breaker);
  EXPECT_EQ(b.retry.breaker->threshold, 2u);
  EXPECT_EQ(b.retry.breaker->cooldown, 1min);
}

TEST(Config, DefaultsApply) {
  auto r = load_config_text("sinks: { out: { type: stdout } }", "t.yaml");
  ASSERT_TRUE(r.config);
  const Config& c = *r.config;
  EXPECT_EQ(c.server.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.server.port, 8080);
  EXPECT_EQ(c.server.max_body_bytes, 1048576u);
  EXPECT_TRUE(c.server.tokens.empty());
  EXPECT_EQ(c.shutdown_timeout, 10s);
  const SinkConfig& s = c.sinks[0];
  EXPECT_TRUE(s.filter.empty());
  EXPECT_EQ(s.queue.capacity, 10000u);
  EXPECT_EQ(s.queue.when_full, evroute::OverflowPolicy::kBlock);
  EXPECT_EQ(s.queue.block_timeout, 2s);
  EXPECT_EQ(s.retry.max_attempts, 8u);
  EXPECT_EQ(s.retry.initial_backoff, 200ms);
  EXPECT_EQ(s.retry.max_backoff, 30s);
  ASSERT_TRUE(s.retry.breaker);
  EXPECT_EQ(s.retry.breaker->threshold, 5u);
  EXPECT_EQ(s.retry.breaker->cooldown, 10s);
}

// Full jitter is the http sink's default; the other sinks keep `jitter: 0.2`; either can be set.
TEST(Config, JitterAndMaxRetryAfter) {
  auto r = load_config_text(R"(
sinks:
  out: { type: stdout }
  hook: { type: http, url: "http://127.0.0.1:9/" }
  full_out: { type: stdout, retry: { jitter: full, max_retry_after: 30s } }
  fixed_hook: { type: http, url: "http://127.0.0.1:9/", retry: { jitter: 0.5 } }
)",
                            "t.yaml");
  ASSERT_TRUE(r.config) << r.errors[0].to_string();
  const auto& s = r.config->sinks;
  EXPECT_FALSE(s[0].retry.full_jitter);
  EXPECT_EQ(s[0].retry.jitter, 0.2);
  EXPECT_EQ(s[0].retry.max_retry_after, 5min);
  EXPECT_TRUE(s[1].retry.full_jitter);
  EXPECT_TRUE(s[2].retry.full_jitter);
  EXPECT_EQ(s[2].retry.max_retry_after, 30s);
  EXPECT_FALSE(s[3].retry.full_jitter);
  EXPECT_EQ(s[3].retry.jitter, 0.5);
}

TEST(Config, BreakerCanBeDisabled) {
  auto r = load_config_text("sinks: { out: { type: stdout, retry: { breaker: false } } }", "t");
  ASSERT_TRUE(r.config);
  EXPECT_FALSE(r.config->sinks[0].retry.breaker);
}

// One mistake per file: its message, line and column.
struct Mistake {
  std::string name;  // the test's name
  std::string yaml;
  std::string expected;
};

std::vector<Mistake> mistakes() {
  return {
      {"UnknownSinkKey", "sinks:\n  a:\n    type: stdout\n    colour: blue\n",
       "t.yaml:4:5: unknown key 'colour' in sink 'a' (known keys: filter, queue, retry, type)"},
      {"UnknownSinkType", "sinks:\n  a:\n    type: carrier-pigeon\n",
       "t.yaml:3:11: sink 'a': unknown type 'carrier-pigeon' (known: " + sink_type_list() + ")"},
      {"MissingType", "sinks:\n  a:\n    path: x\n",
       "t.yaml:3:5: sink 'a': missing required key 'type'"},
      {"MissingPath", "sinks:\n  a: { type: file }\n",
       "t.yaml:2:6: sink 'a': missing required key 'path'"},
      {"UrlSchemeNotHttp", "sinks:\n  a: { type: http, url: \"ftp://x/\" }\n",
       "t.yaml:2:25: sink 'a': invalid url 'ftp://x/': scheme must be http or https, not 'ftp'"},
      {"UrlWithoutHost", "sinks:\n  a: { type: http, url: \"http://:80/\" }\n",
       "t.yaml:2:25: sink 'a': invalid url 'http://:80/': no host"},
      {"UrlPortOutOfRange", "sinks:\n  a: { type: http, url: \"http://h:99999/\" }\n",
       "t.yaml:2:25: sink 'a': invalid url 'http://h:99999/': port must be a number from 1 "
       "to 65535"},
      {"DurationWithoutUnit", "shutdown_timeout: 10\nsinks: { a: { type: stdout } }\n",
       "t.yaml:1:19: 'shutdown_timeout': a duration needs a unit (ms, s, m, h), e.g. '10s'"},
      {"InvalidDuration", "shutdown_timeout: soon\nsinks: { a: { type: stdout } }\n",
       "t.yaml:1:19: 'shutdown_timeout': invalid duration 'soon' (use e.g. 250ms, 10s, 5m, 1h)"},
      {"ListenWithoutPort", "server: { listen: \"localhost\" }\nsinks: { a: { type: stdout } }\n",
       "t.yaml:1:19: server: invalid listen address 'localhost': expected host:port, e.g. "
       "127.0.0.1:8080"},
      {"UnknownWhenFull", "sinks:\n  a: { type: stdout, queue: { when_full: panic } }\n",
       "t.yaml:2:42: sink 'a'.queue: 'when_full' must be one of block, drop_newest, "
       "drop_oldest, not 'panic'"},
      {"NegativeCapacity", "sinks:\n  a: { type: stdout, queue: { capacity: -1 } }\n",
       "t.yaml:2:41: sink 'a'.queue: 'capacity' must be a whole number from 0 to "
       "100000000, not '-1'"},
      {"NatsWithoutServers", "nats: { stream: X }\nsinks:\n  a: { type: stdout }\n",
       "t.yaml:1:7: nats: 'servers' is required, e.g. servers: [\"nats://127.0.0.1:4222\"]"},
      {"NatsServerNotANatsUrl",
       "nats: { servers: [\"http://127.0.0.1:4222\"] }\nsinks:\n  a: { type: stdout }\n",
       "t.yaml:1:18: nats.servers: 'http://127.0.0.1:4222' is not a NATS url: it starts with "
       "nats:// or tls://"},
      {"NatsCredentialsInTheUrl",
       "nats: { servers: [\"nats://u:p@h:4222\"] }\nsinks:\n  a: { type: stdout }\n",
       "t.yaml:1:18: nats.servers: 'nats://u:p@h:4222': put credentials in nats.auth, not in the "
       "url"},
      {"NatsStreamWithADot",
       "nats: { servers: [\"nats://h\"], stream: a.b }\nsinks:\n  a: { type: stdout }\n",
       "t.yaml:1:40: nats.stream must be 1 to 64 of the characters A-Z a-z 0-9 _ - (it is also a "
       "subject token), not 'a.b'"},
      {"NatsSixReplicas",
       "nats: { servers: [\"nats://h\"], replicas: 6 }\nsinks:\n  a: { type: stdout }\n",
       "t.yaml:1:42: nats: 'replicas' must be a whole number from 1 to 5, not '6'"},
      {"NatsTwoAuthForms",
       "nats: { servers: [\"nats://h\"], auth: { token: t, user: u, password: p } }\n"
       "sinks:\n  a: { type: stdout }\n",
       "t.yaml:1:38: nats.auth: give one of token, user and password, or creds_file"},
      {"JetStreamQueueWithoutNats", "sinks:\n  a: { type: stdout, queue: { type: jetstream } }\n",
       "t.yaml:2:3: sink 'a': a jetstream queue needs a top-level 'nats' section naming the "
       "servers, e.g. nats: { servers: [\"nats://127.0.0.1:4222\"] }"},
      {"AckWaitOnAMemoryQueue", "sinks:\n  a: { type: stdout, queue: { ack_wait: 5s } }\n",
       "t.yaml:2:41: sink 'a'.queue: 'ack_wait' applies to jetstream queues only (type: "
       "jetstream)"},
      {"AckWaitUnderASecond",
       "nats: { servers: [\"nats://h\"] }\n"
       "sinks:\n  a: { type: stdout, queue: { type: jetstream, ack_wait: 100ms } }\n",
       "t.yaml:3:58: sink 'a'.queue: 'ack_wait' must be from 1s to 12h"},
      {"CapacityOnAJetStreamQueue",
       "nats: { servers: [\"nats://h\"] }\n"
       "sinks:\n  a: { type: stdout, queue: { type: jetstream, capacity: 5 } }\n",
       "t.yaml:3:58: sink 'a'.queue: 'capacity' does not apply to a jetstream queue: it is bounded "
       "by nats.max_bytes, and a POST that does not fit gets 503"},
      {"ZeroBlockTimeout", "sinks:\n  a: { type: stdout, queue: { block_timeout: 0s } }\n",
       "t.yaml:2:46: sink 'a'.queue: 'block_timeout' must be more than 0 and at most 1m"},
      {"BlockTimeoutOverAMinute", "sinks:\n  a: { type: stdout, queue: { block_timeout: 2m } }\n",
       "t.yaml:2:46: sink 'a'.queue: 'block_timeout' must be more than 0 and at most 1m"},
      {"JitterAboveOne", "sinks:\n  a: { type: stdout, retry: { jitter: 2 } }\n",
       "t.yaml:2:39: sink 'a'.retry: 'jitter' must be 'full' or a number from 0 to 1, "
       "not '2'"},
      {"MaxRetryAfterWithoutUnit", "sinks:\n  a: { type: stdout, retry: { max_retry_after: 5 } }\n",
       "t.yaml:2:48: sink 'a'.retry: 'max_retry_after': a duration needs a unit (ms, s, "
       "m, h), e.g. '5s'"},
      {"UnboundedRetries", "sinks:\n  a: { type: stdout, retry: { max_attempts: 0 } }\n",
       "t.yaml:2:45: sink 'a'.retry: retries need a bound: set max_attempts above 0, or "
       "max_elapsed"},
      {"EmptyTypeFilter", "sinks:\n  a: { type: stdout, filter: { type: [] } }\n",
       "t.yaml:2:38: sink 'a' filter: 'type' needs at least one pattern"},
      {"KeyOfAnotherSinkType", "sinks:\n  a: { type: stdout, headers: 3 }\n",
       "t.yaml:2:22: unknown key 'headers' in sink 'a' (known keys: filter, queue, retry, type)"},
  };
}

void PrintTo(const Mistake& m, std::ostream* os) { *os << m.name; }

class ConfigMistake : public ::testing::TestWithParam<Mistake> {};

TEST_P(ConfigMistake, HasItsLineAndColumn) { expect_error(GetParam().yaml, GetParam().expected); }

INSTANTIATE_TEST_SUITE_P(Config, ConfigMistake, ::testing::ValuesIn(mistakes()),
                         [](const ::testing::TestParamInfo<Mistake>& info) {
                           return info.param.name;
                         });

TEST(Config, DuplicateSinkNamesAreAnError) {
  expect_error("sinks:\n  a: { type: stdout }\n  a: { type: stdout }\n",
               "t.yaml:3:3: duplicate key 'a' in sinks (first at line 2)");
}

TEST(Config, WholeFileProblems) {
  expect_error("", "t.yaml:1:1: the configuration is empty: it needs at least a 'sinks' mapping");
  expect_error("server: {}\n",
               "t.yaml:1:1: no sinks: add a 'sinks' mapping with at least one sink");
  expect_error("sinks: {}\n", "t.yaml:1:8: no sinks: 'sinks' must name at least one sink");
  expect_error("- a\n- b\n", "t.yaml:1:1: the configuration must be a mapping, not a list");
  auto syntax = errors_of("sinks:\n  a: { type: stdout\n");
  ASSERT_EQ(syntax.size(), 1u);
  EXPECT_EQ(syntax[0].rfind("t.yaml:3:1: YAML syntax error: ", 0), 0u) << syntax[0];
  auto missing = load_config_file("/nonexistent/evroute.yaml");
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_EQ(
      missing.errors[0].to_string(),
      "/nonexistent/evroute.yaml: cannot read the configuration file: No such file or directory");
}

TEST(Config, EveryProblemIsReportedAtOnceInFileOrder) {
  auto errors = errors_of(R"(server:
  listen: "nope"
  bogus: 1
sinks:
  a:
    type: http
    url: "gopher://x"
    timeout: 5
  b:
    type: nothing
)");
  ASSERT_EQ(errors.size(), 5u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0].rfind("t.yaml:2:11: ", 0), 0u);
  EXPECT_EQ(errors[1].rfind("t.yaml:3:3: unknown key 'bogus' in server", 0), 0u);
  EXPECT_EQ(errors[2].rfind("t.yaml:7:10: ", 0), 0u);
  EXPECT_EQ(errors[3].rfind("t.yaml:8:14: ", 0), 0u);
  EXPECT_EQ(errors[4].rfind("t.yaml:10:11: ", 0), 0u);
}

TEST(Config, EnvironmentVariables) {
  setenv("EVROUTE_TEST_DIR", "/tmp/evroute-x", 1);
  unsetenv("EVROUTE_TEST_UNSET");
  auto r = load_config_text("sinks: { f: { type: file, path: \"${EVROUTE_TEST_DIR}/e.ndjson\" } }",
                            "t.yaml");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->sinks[0].spec->describe(), "file /tmp/evroute-x/e.ndjson");
  expect_error("sinks:\n  f: { type: file, path: \"${EVROUTE_TEST_UNSET}/e\" }\n",
               "t.yaml:2:26: sink 'f': 'path' uses ${EVROUTE_TEST_UNSET}, which is not set in the "
               "environment");
}

TEST(ConfigValues, Durations) {
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("10s"), 10s);
  EXPECT_EQ(parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(parse_duration("5m"), 5min);
  EXPECT_EQ(parse_duration("2h"), 2h);
  EXPECT_EQ(parse_duration(" 3 s "), 3s);
  for (const char* bad : {"", "10", "s", "10x", "-1s", "1e3s", "1.2.3s"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
}

TEST(ConfigValues, Sizes) {
  EXPECT_EQ(parse_size("1048576"), 1048576u);
  EXPECT_EQ(parse_size("512KiB"), 524288u);
  EXPECT_EQ(parse_size("64MiB"), 67108864u);
  EXPECT_EQ(parse_size("1GiB"), 1073741824u);
  EXPECT_EQ(parse_size("10kB"), 10000u);
  EXPECT_EQ(parse_size("1MB"), 1000000u);
  for (const char* bad : {"", "MiB", "1.5", "-1", "1XB"}) EXPECT_FALSE(parse_size(bad)) << bad;
}

TEST(ConfigValues, WebhookUrls) {
  HttpSinkConfig c;
  ASSERT_TRUE(parse_webhook_url("http://127.0.0.1:9000/hooks", &c).is_ok());
  EXPECT_EQ(c.scheme_host_port, "http://127.0.0.1:9000");
  EXPECT_EQ(c.path, "/hooks");
  ASSERT_TRUE(parse_webhook_url("HTTPS://example.com", &c).is_ok());
  EXPECT_EQ(c.scheme_host_port, "https://example.com");
  EXPECT_EQ(c.path, "/");
  ASSERT_TRUE(parse_webhook_url("http://[::1]:8080/a?b=c", &c).is_ok());
  EXPECT_EQ(c.scheme_host_port, "http://[::1]:8080");
  EXPECT_EQ(c.path, "/a?b=c");
  EXPECT_FALSE(parse_webhook_url("example.com/hooks", &c).is_ok());
  EXPECT_FALSE(parse_webhook_url("http://h/x#frag", &c).is_ok());
  EXPECT_FALSE(parse_webhook_url("http://h:0/", &c).is_ok());
}

TEST(ConfigLimits, MemoryDefaultsTo32MiBTakesASizeAndZeroMeansNone) {
  auto d = load_config_text("sinks: { out: { type: stdout } }", "t.yaml");
  ASSERT_TRUE(d.config);
  EXPECT_EQ(d.config->limits.memory, 32u << 20);
  auto r = load_config_text("limits: { memory: 256MiB }\nsinks: { out: { type: stdout } }", "t");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->limits.memory, 256u << 20);
  auto z = load_config_text("limits: { memory: 0 }\nsinks: { out: { type: stdout } }", "t");
  ASSERT_TRUE(z.config);
  EXPECT_EQ(z.config->limits.memory, 0u);
}

TEST(ConfigLimits, MistakesHaveTheirLineAndColumn) {
  const auto bad_size = errors_of("sinks: { out: { type: stdout } }\nlimits:\n  memory: lots\n");
  ASSERT_EQ(bad_size.size(), 1u) << ::testing::PrintToString(bad_size);
  EXPECT_EQ(bad_size[0].rfind("t.yaml:3:11: ", 0), 0u) << bad_size[0];
  const auto unknown = errors_of("sinks: { out: { type: stdout } }\nlimits: { memroy: 1MiB }\n");
  ASSERT_EQ(unknown.size(), 1u) << ::testing::PrintToString(unknown);
  EXPECT_EQ(unknown[0].rfind("t.yaml:2:11: ", 0), 0u) << unknown[0];
  EXPECT_NE(unknown[0].find("memroy"), std::string::npos) << unknown[0];
}

TEST(Config, SinkNamesAreIdentifiers) {
  // "a" and "./a" would share one disk-queue directory; "../../x" would leave data_dir.
  for (const std::string& name :
       std::vector<std::string>{"./a", "../../x", "a/b", "-a", "_a", "a b", "a.b", "ä"}) {
    expect_error("sinks:\n  \"" + name + "\": { type: stdout }\n",
                 "t.yaml:2:3: sink name '" + name +
                     "': a sink name is 1 to 64 of the characters A-Z a-z 0-9 _ -, starting with "
                     "a letter or digit");
  }
  expect_error("sinks:\n  " + std::string(65, 'a') + ": { type: stdout }\n",
               "t.yaml:2:3: sink name '" + std::string(65, 'a') +
                   "': a sink name is 1 to 64 of the characters A-Z a-z 0-9 _ -, starting with a "
                   "letter or digit");
  auto ok =
      load_config_text("sinks:\n  a: { type: stdout }\n  Billing-v2_eu: { type: stdout }\n  " +
                           std::string(64, 'z') + ": { type: stdout }\n",
                       "t.yaml");
  EXPECT_TRUE(ok.config) << (ok.errors.empty() ? "" : ok.errors[0].to_string());
}

TEST(Config, FilePathThatIsADirectoryIsAnError) {
  const auto dir = std::filesystem::temp_directory_path() / "evroute-config-test-dir";
  std::filesystem::create_directories(dir);
  expect_error("sinks:\n  f: { type: file, path: \"" + dir.string() + "\" }\n",
               "t.yaml:2:26: sink 'f': 'path': " + dir.string() + " is a directory");
  std::ofstream(dir / "plain") << "x";
  expect_error(
      "sinks:\n  f: { type: file, path: \"" + (dir / "plain" / "x.ndjson").string() + "\" }\n",
      "t.yaml:2:26: sink 'f': 'path': " + (dir / "plain").string() + " is not a directory");
  std::filesystem::remove_all(dir);
}

TEST(Config, TokensFromOneEnvironmentVariableWithADefault) {
  setenv("EVROUTE_TEST_TOKENS", "one, two three", 1);
  unsetenv("EVROUTE_TEST_NO_TOKENS");
  auto r = load_config_text(R"(
server:
  auth:
    tokens: "${EVROUTE_TEST_TOKENS:-}"
    admin_tokens: "${EVROUTE_TEST_NO_TOKENS:-}"
sinks: { a: { type: stdout } }
)",
                            "t.yaml");
  ASSERT_TRUE(r.config) << r.errors[0].to_string();
  EXPECT_EQ(r.config->server.tokens, (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_TRUE(r.config->server.admin_tokens.empty());
  auto with_default = load_config_text(
      "server: { auth: { admin_tokens: [\"${EVROUTE_TEST_NO_TOKENS:-fallback}\"] } }\n"
      "sinks: { a: { type: stdout } }\n",
      "t.yaml");
  ASSERT_TRUE(with_default.config);
  EXPECT_EQ(with_default.config->server.admin_tokens, std::vector<std::string>{"fallback"});
  // In a list an empty token is still a mistake.
  expect_error(
      "server: { auth: { tokens: [\"${EVROUTE_TEST_NO_TOKENS:-}\"] } }\n"
      "sinks: { a: { type: stdout } }\n",
      "t.yaml:1:27: server.auth: a token must not be empty");
}

}  // namespace
}  // namespace evrouted
