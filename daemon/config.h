// The evrouted configuration: what the YAML file says, validated.
//
// load_config() reads a file (or text) and returns either a complete Config or every problem found,
// each as "FILE:LINE:COL: message". The daemon and `evrouted --check` both use it, so the daemon
// refuses to start on exactly the problems --check reports.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config_reader.h"
#include "evroute/disk_log.h"
#include "evroute/queue.h"
#include "evroute/retry.h"
#include "sinks/registry.h"

namespace evrouted {

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";
  std::string host = "127.0.0.1";  // from listen
  int port = 8080;                 // from listen; 0 = any free port
  std::uint64_t max_body_bytes = 1 << 20;
  std::vector<std::string> tokens;  // empty: no auth
  // Tokens for the admin actions (enable, replay, reading dead letters, full webhook URLs in
  // GET /v1/sinks). Empty: `tokens` grant those too. Admin tokens are accepted for ingest as well.
  std::vector<std::string> admin_tokens;
  unsigned threads = 0;  // HTTP event loops; 0 = one per core
  // Bounds on clients (http_server.h says what each answers).
  std::uint64_t max_connections = 4096;
  // Request bodies held at once over all connections (at least max_body_bytes).
  std::uint64_t max_buffered_bytes = 64ull << 20;
  std::uint64_t max_header_bytes = 16 << 10;
  std::uint64_t max_header_count = 100;
  Duration request_timeout = std::chrono::seconds(10);
  Duration idle_timeout = std::chrono::seconds(60);
  // `tls: {cert_file, key_file, client_ca_file}`: HTTPS on the listener (mutual TLS with a CA).
  struct Tls {
    std::string cert_file, key_file, client_ca_file;
  };
  std::optional<Tls> tls;
};

// `limits:` — process-wide bounds.
struct LimitsConfig {
  // Bytes of queued events (id, attributes and payload: one allocation per event, however many
  // sinks it is routed to) that evrouted holds at once; past it, POST /v1/events gets 503. 0: none.
  std::uint64_t memory = 32ull << 20;
};

struct QueueConfig {
  enum class Type { kMemory, kDisk, kJetStream };
  Type type = Type::kMemory;
  std::size_t capacity = 10000;  // memory queues
  evroute::OverflowPolicy when_full = evroute::OverflowPolicy::kBlock;
  Duration block_timeout = std::chrono::seconds(2);
  // Disk queues (type: disk), stored in <data_dir>/queues/<sink name>/.
  std::uint64_t max_bytes = std::uint64_t{1} << 30;
  evroute::SyncPolicy fsync = evroute::SyncPolicy::kAlways;
  Duration fsync_interval = std::chrono::seconds(1);
  // JetStream queues (type: jetstream), stored in the `nats:` stream: how long a replica may hold
  // an event unacknowledged before the stream gives it to another (extended while it delivers).
  Duration ack_wait = std::chrono::seconds(30);
};

struct BreakerConfig {
  std::uint32_t threshold = 5;
  Duration cooldown = std::chrono::seconds(10);
};

struct RetryConfig {
  std::uint32_t max_attempts = 8;  // 0 = no bound (max_elapsed should then be set)
  Duration max_elapsed{0};         // 0 = no bound
  Duration initial_backoff = std::chrono::milliseconds(200);
  Duration max_backoff = std::chrono::seconds(30);
  double multiplier = 2.0;
  double jitter = 0.2;
  // `jitter: full`: each wait uniform in [0, backoff]. The default for http sinks (many clients
  // retrying one endpoint spread out best); the others default to `jitter: 0.2`.
  bool full_jitter = false;
  Duration max_retry_after = std::chrono::minutes(5);      // clamp on a Retry-After hint
  std::optional<BreakerConfig> breaker = BreakerConfig{};  // `breaker: false` disables

  // The backoff these settings describe (the sink's Retrying; a jetstream queue's NAK delays).
  evroute::ExponentialBackoff::Options backoff() const;
};

// `filter: { field: [glob, ...], ... }`: an event matches when, for every field listed, its
// top-level string (or scalar) value matches one of the globs (fnmatch: * ? [..]).
struct FieldFilter {
  std::string field;
  std::vector<std::string> globs;
};

// A sink's name (the key under `sinks:`) names its disk queue's directory and its dead-letter file:
// 1 to 64 of A-Z a-z 0-9 _ -, starting with a letter or digit.
inline constexpr std::size_t kMaxSinkNameBytes = 64;

struct SinkConfig {
  std::string name;
  std::string type;
  int line = 0;  // where the sink is declared (1-based)
  int column = 0;
  std::vector<FieldFilter> filter;  // empty: every event
  QueueConfig queue;
  RetryConfig retry;
  std::shared_ptr<const SinkSpec> spec;
  // The sink's YAML node as canonical text (comments, layout, style, quoting and key order
  // dropped) plus data_dir: two loads of a sink compare equal iff its settings are the same (see
  // config_diff.h).
  std::string fingerprint;
};

// `nats:` — the NATS servers behind jetstream queues and nats sinks (daemon/nats/link.h).
struct NatsConfig {
  std::vector<std::string> servers;  // nats://host:port, tried in turn
  std::string stream = "EVROUTE";    // created when missing (and <stream>_DEAD for dead letters)
  std::uint32_t replicas = 1;        // the streams' replicas when evrouted creates them
  std::uint64_t max_bytes = std::uint64_t{1} << 30;  // each stream's limit: full -> POST gets 503
  // `auth:` — at most one of token, user+password, creds_file.
  std::string token, user, password, creds_file;
  // `tls:` — as for http sinks: a CA to verify the servers with, and a client certificate.
  std::string ca_file, client_cert, client_key;
  bool tls = false;  // a `tls:` mapping was given (TLS required)
  // How long a POST waits for JetStream to acknowledge storing its events (then 503).
  Duration publish_timeout = std::chrono::seconds(5);
  int line = 0;  // where `nats:` is (1-based)
  int column = 0;
  std::string fingerprint;  // canonical text: two loads compare equal iff the settings are equal
};

struct Config {
  std::string path;  // the file it came from
  ServerConfig server;
  std::optional<NatsConfig> nats;
  Duration shutdown_timeout = std::chrono::seconds(10);
  std::string data_dir = "./data";  // disk queues live here (relative: to the working directory)
  LimitsConfig limits;
  std::vector<SinkConfig> sinks;  // in file order
};

struct LoadResult {
  std::optional<Config> config;     // set when errors is empty
  std::vector<ConfigError> errors;  // in file order
};

LoadResult load_config_file(const std::string& path);
// The configuration's words for these settings ("block", "drop_newest"; "always", "interval").
std::string_view when_full_name(evroute::OverflowPolicy policy);
std::string_view fsync_name(evroute::SyncPolicy policy);
LoadResult load_config_text(const std::string& text, const std::string& name);

}  // namespace evrouted
