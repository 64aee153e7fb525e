#include "config.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <tuple>

#include "config_nats.h"
#include "config_server.h"
#include "json_parse.h"

namespace evrouted {
namespace {

void read_limits(ConfigReader& r, LimitsConfig& limits) {
  if (!r.valid()) return;
  if (auto v = r.size("memory")) limits.memory = *v;
  r.finish();
}

void read_queue(ConfigReader& r, QueueConfig& q) {
  if (!r.valid()) return;
  if (auto v = r.choice("type", {"memory", "disk", "jetstream"})) {
    q.type = *v == "disk"        ? QueueConfig::Type::kDisk
             : *v == "jetstream" ? QueueConfig::Type::kJetStream
                                 : QueueConfig::Type::kMemory;
  }
  const bool disk = q.type == QueueConfig::Type::kDisk;
  const bool jetstream = q.type == QueueConfig::Type::kJetStream;
  for (const char* key : {"max_bytes", "fsync", "fsync_interval"}) {
    if (!disk && r.has(key)) {
      r.error(key, r.what() + ": '" + key + "' applies to disk queues only (type: disk)" +
                       (jetstream && std::string_view(key) == "max_bytes"
                            ? "; a jetstream queue is bounded by nats.max_bytes"
                            : ""));
    }
  }
  if (!jetstream && r.has("ack_wait")) {
    r.error("ack_wait",
            r.what() + ": 'ack_wait' applies to jetstream queues only (type: jetstream)");
  }
  if (jetstream) {
    for (const char* key : {"capacity", "when_full", "block_timeout"}) {
      if (r.has(key)) {
        r.error(key, r.what() + ": '" + key +
                         "' does not apply to a jetstream queue: it is bounded by nats.max_bytes, "
                         "and a POST that does not fit gets 503");
      }
    }
  }
  if (disk && r.has("capacity")) {
    r.error("capacity",
            r.what() + ": a disk queue is bounded by 'max_bytes', not 'capacity' (events)");
  }
  if (auto v = r.size("max_bytes")) {
    if (*v < 4096) {
      r.error("max_bytes", r.what() + ": 'max_bytes' must be at least 4KiB");
    } else {
      q.max_bytes = *v;
    }
  }
  if (auto v = r.sync_policy("fsync")) q.fsync = *v;
  if (auto v = r.duration("fsync_interval")) {
    if (v->count() <= 0) {
      r.error("fsync_interval", r.what() + ": 'fsync_interval' must be more than 0");
    } else {
      q.fsync_interval = *v;
    }
  }
  if (auto v = r.duration("ack_wait")) {
    if (*v < std::chrono::seconds(1) || *v > std::chrono::hours(12)) {
      r.error("ack_wait", r.what() + ": 'ack_wait' must be from 1s to 12h");
    } else {
      q.ack_wait = *v;
    }
  }
  if (auto v = r.unsigned_integer("capacity", 0, 100000000)) q.capacity = *v;
  if (auto v = r.choice("when_full", {"block", "drop_newest", "drop_oldest"})) {
    q.when_full = *v == "block"         ? evroute::OverflowPolicy::kBlock
                  : *v == "drop_newest" ? evroute::OverflowPolicy::kDropNewest
                                        : evroute::OverflowPolicy::kDropOldest;
  }
  if (auto v = r.duration("block_timeout")) {
    // A request waits this long for room while holding admission (and a reload, and shutdown,
    // wait for it): it must end.
    if (v->count() <= 0 || *v > std::chrono::minutes(1)) {
      r.error("block_timeout", r.what() + ": 'block_timeout' must be more than 0 and at most 1m");
    } else {
      q.block_timeout = *v;
    }
  }
  if (disk && q.when_full == evroute::OverflowPolicy::kDropOldest) {
    r.error("when_full",
            r.what() + ": a disk queue cannot drop its oldest events; use block or drop_newest");
  }
  r.finish();
}

void read_retry(ConfigReader& r, RetryConfig& retry) {
  if (!r.valid()) return;
  if (auto v = r.unsigned_integer("max_attempts", 0, 1000000)) {
    retry.max_attempts = static_cast<std::uint32_t>(*v);
  }
  if (auto v = r.duration("max_elapsed")) retry.max_elapsed = *v;
  if (auto v = r.duration("initial_backoff")) retry.initial_backoff = *v;
  if (auto v = r.duration("max_backoff")) retry.max_backoff = *v;
  if (auto v = r.number("multiplier", 1, 100)) retry.multiplier = *v;
  if (auto j = r.string("jitter")) {
    const std::string& v = *j;
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v == "full") {
      retry.full_jitter = true;
    } else if (!v.empty() && end == v.c_str() + v.size() && x >= 0 && x <= 1) {
      retry.jitter = x;
      retry.full_jitter = false;
    } else {
      r.error("jitter",
              r.what() + ": 'jitter' must be 'full' or a number from 0 to 1, not '" + v + "'");
    }
  }
  if (auto v = r.duration("max_retry_after")) retry.max_retry_after = *v;
  if (YAML::Node b = r.node("breaker"); b.IsDefined()) {
    if (b.IsScalar()) {
      if (auto on = r.boolean("breaker"); on && !*on) retry.breaker.reset();
    } else if (auto br = r.map("breaker"); br && br->valid()) {
      if (auto v = br->unsigned_integer("threshold", 1, 1000000)) {
        retry.breaker->threshold = static_cast<std::uint32_t>(*v);
      }
      if (auto v = br->duration("cooldown")) retry.breaker->cooldown = *v;
      br->finish();
    }
  }
  if (retry.max_backoff < retry.initial_backoff) {
    r.error("max_backoff", r.what() + ": 'max_backoff' must not be less than 'initial_backoff'");
  }
  if (retry.max_attempts == 0 && retry.max_elapsed.count() == 0) {
    r.error("max_attempts",
            r.what() + ": retries need a bound: set max_attempts above 0, or max_elapsed");
  }
  r.finish();
}

// The node as text that does not depend on layout, flow or block style, quoting, comments, or the
// order of mapping keys: two nodes with the same settings give the same text.
std::string canonical(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return YAML::Dump(YAML::Node(node.Scalar()));
    case YAML::NodeType::Sequence: {
      std::string out = "[";
      for (const auto& item : node) out += canonical(item) + ",";
      return out + "]";
    }
    case YAML::NodeType::Map: {
      std::vector<std::string> entries;
      for (const auto& kv : node)
        entries.push_back(canonical(kv.first) + ":" + canonical(kv.second));
      std::sort(entries.begin(), entries.end());
      std::string out = "{";
      for (const std::string& e : entries) out += e + ",";
      return out + "}";
    }
    default:
      return "~";
  }
}

std::optional<std::string> sink_name_problem(const std::string& name) {
  const auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  };
  if (name.empty() || name.size() > kMaxSinkNameBytes ||
      !std::all_of(name.begin(), name.end(), allowed) || name.front() == '-' ||
      name.front() == '_') {
    return "a sink name is 1 to 64 of the characters A-Z a-z 0-9 _ -, starting with a letter or "
           "digit";
  }
  return std::nullopt;
}

std::optional<SinkConfig> read_sink(const YAML::Node& key, const YAML::Node& value,
                                    ConfigErrors& errors) {
  SinkConfig sink;
  sink.name = key.Scalar();
  sink.line = key.Mark().line + 1;
  sink.column = key.Mark().column + 1;
  sink.fingerprint = canonical(value);
  if (auto why = sink_name_problem(sink.name)) {
    // The name becomes a directory under data_dir (disk queue) and a file name (dead letters):
    // "a" and "./a" must not share one, and "../x" must not leave data_dir.
    errors.add(key.Mark(), "sink name '" + to_valid_utf8(sink.name.substr(0, 80)) + "': " + *why);
    return std::nullopt;
  }
  ConfigReader r(value, errors, "sink '" + sink.name + "'");
  if (!r.valid()) return std::nullopt;
  const std::size_t before = errors.all().size();

  const SinkType* type = nullptr;
  if (auto t = r.required_string("type")) {
    type = find_sink_type(*t);
    if (!type) {
      r.error("type", "sink '" + sink.name + "': unknown type '" + *t +
                          "' (known: " + sink_type_list() + ")");
    } else {
      sink.type = *t;
    }
  }

  if (YAML::Node f = r.node("filter"); f.IsDefined()) {
    ConfigReader fr(f, errors, "sink '" + sink.name + "' filter");
    if (fr.valid()) {
      if (f.size() == 0) fr.error_here(fr.what() + ": must name at least one field");
      for (const auto& kv : f) {
        const std::string field = kv.first.Scalar();
        auto globs = fr.string_list(field);
        if (!globs) continue;
        if (globs->empty()) {
          fr.error(field, fr.what() + ": '" + field + "' needs at least one pattern");
          continue;
        }
        sink.filter.push_back({field, *globs});
      }
      fr.finish();
    }
  }
  if (auto q = r.map("queue")) read_queue(*q, sink.queue);
  // The type's default (see SinkType::full_jitter_by_default); an explicit `jitter` overrides it.
  sink.retry.full_jitter = type && type->full_jitter_by_default;
  if (auto rt = r.map("retry")) read_retry(*rt, sink.retry);

  // Without a known type there is no telling which other keys are right: report only the type.
  if (type) {
    auto spec = type->parse(r);
    if (spec) sink.spec = std::move(spec);
    r.finish();
  }
  if (sink.spec && sink.queue.type == QueueConfig::Type::kDisk) {
    const DeliveryConfig delivery = sink.spec->delivery();
    if (delivery.concurrency > 1) {
      r.error("concurrency", "sink '" + sink.name +
                                 "': 'concurrency' is not supported with a disk queue "
                                 "(queue.type: disk) yet");
    }
  }
  if (sink.spec && sink.queue.type == QueueConfig::Type::kJetStream &&
      sink.spec->delivery().batch) {
    r.error("batch", "sink '" + sink.name +
                         "': 'batch' is not supported with a jetstream queue (queue.type: "
                         "jetstream) yet");
  }
  if (errors.all().size() != before || !sink.spec) return std::nullopt;
  return sink;
}

LoadResult load(const YAML::Node& root, ConfigErrors& errors, const std::string& path) {
  Config config;
  config.path = path;
  if (!root.IsDefined() || root.IsNull()) {
    errors.add(1, 1, "the configuration is empty: it needs at least a 'sinks' mapping");
  } else {
    ConfigReader r(root, errors, "");
    if (r.valid()) {
      if (auto server = r.map("server")) read_server(*server, config.server);
      if (auto v = r.duration("shutdown_timeout")) config.shutdown_timeout = *v;
      if (auto v = r.string("data_dir")) {
        if (v->empty()) {
          r.error("data_dir", "'data_dir' must not be empty");
        } else {
          config.data_dir = *v;
        }
      }
      if (auto limits = r.map("limits")) read_limits(*limits, config.limits);
      if (YAML::Node n = r.node("nats"); n.IsDefined()) {
        ConfigReader nr(n, errors, "nats");
        config.nats.emplace();
        read_nats(nr, *config.nats);
        config.nats->fingerprint = canonical(n);
      }
      YAML::Node sinks = r.node("sinks");
      if (!sinks.IsDefined() || sinks.IsNull()) {
        r.error_here("no sinks: add a 'sinks' mapping with at least one sink");
      } else {
        ConfigReader sr(sinks, errors, "sinks");  // reports duplicate names
        if (sr.valid()) {
          if (sinks.size() == 0) sr.error_here("no sinks: 'sinks' must name at least one sink");
          for (const auto& kv : sinks) {
            if (auto sink = read_sink(kv.first, kv.second, errors)) {
              config.sinks.push_back(std::move(*sink));
            }
          }
        }
      }
      r.finish();
    }
  }
  for (SinkConfig& sc : config.sinks) {
    sc.fingerprint += " data_dir:" + config.data_dir;
    const bool jetstream = sc.queue.type == QueueConfig::Type::kJetStream;
    const SinkType* type = find_sink_type(sc.type);
    if ((jetstream || (type && type->needs_nats)) && !config.nats) {
      errors.add(sc.line, sc.column,
                 "sink '" + sc.name +
                     "': " + (jetstream ? std::string("a jetstream queue") : "type " + sc.type) +
                     " needs a top-level 'nats' section naming the servers, e.g. nats: { servers: "
                     "[\"nats://127.0.0.1:4222\"] }");
    }
  }

  LoadResult result;
  result.errors = errors.all();
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                   });
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

}  // namespace

LoadResult load_config_text(const std::string& text, const std::string& name) {
  ConfigErrors errors(name);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    errors.add(e.mark, "YAML syntax error: " + e.msg);
    return {std::nullopt, errors.all()};
  }
  return load(root, errors, name);
}

LoadResult load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ConfigErrors errors(path);
    errors.add(0, 0, std::string("cannot read the configuration file: ") + std::strerror(errno));
    return {std::nullopt, errors.all()};
  }
  std::stringstream text;
  text << in.rdbuf();
  return load_config_text(text.str(), path);
}

evroute::ExponentialBackoff::Options RetryConfig::backoff() const {
  evroute::ExponentialBackoff::Options o;
  o.base = initial_backoff;
  o.max = max_backoff;
  o.factor = multiplier;
  o.jitter = jitter;
  o.full_jitter = full_jitter;
  return o;
}

std::string_view when_full_name(evroute::OverflowPolicy policy) {
  switch (policy) {
    case evroute::OverflowPolicy::kBlock:
      return "block";
    case evroute::OverflowPolicy::kDropNewest:
      return "drop_newest";
    case evroute::OverflowPolicy::kDropOldest:
      return "drop_oldest";
  }
  return "block";
}

std::string_view fsync_name(evroute::SyncPolicy policy) {
  switch (policy) {
    case evroute::SyncPolicy::kAlways:
      return "always";
    case evroute::SyncPolicy::kInterval:
      return "interval";
    case evroute::SyncPolicy::kNever:
      return "never";
  }
  return "always";
}

}  // namespace evrouted
