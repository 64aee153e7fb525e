#include "config_diff.h"

#include <algorithm>

#include "queues/queue_kind.h"

namespace evrouted {

namespace {

const SinkConfig* find_sink(const Config& config, const std::string& name) {
  for (const SinkConfig& sc : config.sinks) {
    if (sc.name == name) return &sc;
  }
  return nullptr;
}

}  // namespace

ConfigDiff diff_configs(const Config& running, const Config& next) {
  ConfigDiff diff;
  for (const SinkConfig& sc : next.sinks) {
    const SinkConfig* old = find_sink(running, sc.name);
    if (!old) {
      diff.added.push_back(sc.name);
    } else if (old->fingerprint != sc.fingerprint) {
      diff.changed.push_back(sc.name);
      if (queue_change_needs_restart(old->queue, sc.queue)) {
        diff.restart_needed.push_back("sink '" + sc.name + "': queue.type changed (" +
                                      std::string(queue_kind(old->queue.type).name()) + " -> " +
                                      std::string(queue_kind(sc.queue.type).name()) + ")");
      }
    } else {
      diff.unchanged.push_back(sc.name);
    }
  }
  for (const SinkConfig& sc : running.sinks) {
    if (!find_sink(next, sc.name)) diff.removed.push_back(sc.name);
  }

  const ServerConfig& a = running.server;
  const ServerConfig& b = next.server;
  if (a.listen != b.listen) diff.restart_needed.push_back("server.listen changed");
  if (a.threads != b.threads) diff.restart_needed.push_back("server.threads changed");
  for (auto [key, changed] :
       {std::pair{"max_body_bytes", a.max_body_bytes != b.max_body_bytes},
        std::pair{"max_connections", a.max_connections != b.max_connections},
        std::pair{"max_buffered_bytes", a.max_buffered_bytes != b.max_buffered_bytes},
        std::pair{"max_header_bytes", a.max_header_bytes != b.max_header_bytes},
        std::pair{"max_header_count", a.max_header_count != b.max_header_count},
        std::pair{"request_timeout", a.request_timeout != b.request_timeout},
        std::pair{"idle_timeout", a.idle_timeout != b.idle_timeout},
        std::pair{"tls", a.tls.has_value() != b.tls.has_value()}}) {
    if (changed) diff.restart_needed.push_back(std::string("server.") + key + " changed");
  }
  // server.tls's files are loaded again by every reload (Server::reload_tls): renewed
  // certificates, and other file names too, need no restart.
  // Applied in place (Server::set_tokens).
  diff.tokens_changed = a.tokens != b.tokens || a.admin_tokens != b.admin_tokens;
  if (running.limits.memory != next.limits.memory) {
    diff.restart_needed.push_back("limits.memory changed");
  }
  if (running.data_dir != next.data_dir) diff.restart_needed.push_back("data_dir changed");
  // The one NATS connection is opened at start, or by the reload that adds `nats:` (nats/link.h).
  if (running.nats && (!next.nats || running.nats->fingerprint != next.nats->fingerprint)) {
    diff.restart_needed.push_back(next.nats ? "nats changed" : "nats removed");
  }
  return diff;
}

}  // namespace evrouted
