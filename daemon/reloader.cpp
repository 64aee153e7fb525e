#include "reloader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "nats/link.h"
#include "queues/queue_kind.h"
#include "server.h"

namespace evrouted {
namespace {

bool contains(const std::vector<std::string>& v, const std::string& name) {
  return std::find(v.begin(), v.end(), name) != v.end();
}

std::string names_or_none(const std::vector<std::string>& names) {
  return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "));
}

void close_all(const std::vector<std::shared_ptr<Pipeline>>& pipelines) {
  for (const auto& p : pipelines) p->close_until(std::chrono::steady_clock::now());
}

}  // namespace

void Reloader::reload() {
  spdlog::info("SIGHUP: re-reading {}, reopening file sinks", path_);
  LoadResult loaded = load_config_file(path_);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) spdlog::error("{}", e.to_string());
    spdlog::error(
        "SIGHUP: {} problem(s) in {}; configuration not reloaded, still running the "
        "previous one",
        loaded.errors.size(), path_);
  } else {
    const Config& next = *loaded.config;
    reload_tls(next);
    const ConfigDiff diff = diff_configs(running_, next);
    if (diff.empty() && running_.shutdown_timeout == next.shutdown_timeout) {
      spdlog::info("SIGHUP: {} is valid and unchanged", path_);
    } else {
      for (const std::string& m : diff.restart_needed) {
        spdlog::warn("SIGHUP: {}: needs a restart; not applied", m);
      }
      // A `nats:` section added by this reload connects now (a changed one needs a restart).
      if (evroute::Status s = nats::configure(next); !s.is_ok()) {
        spdlog::error("SIGHUP: {}", s.message());
      }
      const SinkChanges changes = apply_sinks(next, diff);
      if (!changes.error.empty()) {
        spdlog::error("SIGHUP: {}; configuration not reloaded, still running the previous one",
                      changes.error);
      } else {
        if (diff.tokens_changed) apply_tokens(next);
        update_running(next, changes);
        spdlog::info(
            "SIGHUP: reloaded {}: sinks added: {}; removed: {}; changed: {}; unchanged: {}", path_,
            names_or_none(changes.added), names_or_none(changes.removed),
            names_or_none(changes.changed), names_or_none(diff.unchanged));
      }
    }
  }
  router_.reopen();
  router_.enable_disabled();
}

// Certificates are renewed in place (same file names): load them again at every reload.
void Reloader::reload_tls(const Config& next) {
  if (!running_.server.tls || !next.server.tls) return;
  if (const evroute::Status problem = server_.reload_tls(next.server); !problem.is_ok()) {
    spdlog::error("SIGHUP: {}; keeping the previous certificate", problem.message());
    return;
  }
  spdlog::info("SIGHUP: server.tls: loaded {} and {}{}", next.server.tls->cert_file,
               next.server.tls->key_file,
               next.server.tls->client_ca_file.empty()
                   ? ""
                   : " (client certificates: " + next.server.tls->client_ca_file + ")");
  running_.server.tls = next.server.tls;
}

void Reloader::apply_tokens(const Config& next) {
  server_.set_tokens(next.server.tokens, next.server.admin_tokens);
  running_.server.tokens = next.server.tokens;
  running_.server.admin_tokens = next.server.admin_tokens;
  if (next.server.tokens.empty() && next.server.admin_tokens.empty()) {
    spdlog::warn("SIGHUP: server.auth.tokens: none; requests are no longer authenticated");
  } else {
    spdlog::info("SIGHUP: server.auth.tokens: {} token(s) accepted from now on; admin_tokens: {}",
                 next.server.tokens.size(), next.server.admin_tokens.size());
  }
  warn_if_exposed(running_.server);
}

void Reloader::update_running(const Config& next, const SinkChanges& changes) {
  std::vector<SinkConfig> sinks;
  for (const SinkConfig& sc : next.sinks) {
    if (!contains(changes.not_applied, sc.name)) {
      sinks.push_back(sc);
      continue;
    }
    for (const SinkConfig& old : running_.sinks) {
      if (old.name == sc.name) sinks.push_back(old);
    }
  }
  running_.sinks = std::move(sinks);
  running_.shutdown_timeout = next.shutdown_timeout;
}

namespace {

// What a reload builds before it swaps: pipelines for the added sinks (whole) and for the changed
// ones (without their queue: it takes over from the old queue during the swap).
struct Plan {
  struct Change {
    std::shared_ptr<Pipeline> old, fresh;
  };
  std::vector<Change> changes;
  std::vector<std::shared_ptr<Pipeline>> built;  // to close if the reload fails
  std::map<std::string, std::shared_ptr<Pipeline>> fresh_by_name;
};

evroute::Status build_plan(const Config& next, const ConfigDiff& diff, const Topology& current,
                           const std::string& data_dir, Plan& plan, Reloader::SinkChanges& report) {
  for (const SinkConfig& sc : next.sinks) {
    const bool added = contains(diff.added, sc.name);
    std::shared_ptr<Pipeline> old = added ? nullptr : current.find(sc.name);
    if (!added && (!old || !contains(diff.changed, sc.name))) continue;
    if (old && queue_change_needs_restart(old->config().queue, sc.queue)) {
      report.not_applied.push_back(sc.name);  // diff.restart_needed says why
      continue;
    }
    auto p = added ? Pipeline::build(sc, data_dir)
                   : Pipeline::build(sc, data_dir, old->shared_dead_letters(),
                                     /*open_queue=*/false);
    if (!p.ok()) return p.status();
    plan.built.push_back(*p);
    plan.fresh_by_name[sc.name] = *p;
    if (added) {
      report.added.push_back(sc.name);
    } else {
      plan.changes.push_back({old, *p});
      report.changed.push_back(sc.name);
    }
  }
  return {};
}

// The topology after the reload, from `t` (the current one), with no request in flight: the
// changed sinks' new queues take over, the removed sinks go to `removed`.
std::shared_ptr<const Topology> swap_in(const Topology& t, Plan& plan, const Config& next,
                                        const ConfigDiff& diff,
                                        std::vector<std::shared_ptr<Pipeline>>& removed,
                                        Reloader::SinkChanges& report) {
  for (Plan::Change& c : plan.changes) c.fresh->take_queue_from(*c.old);
  std::vector<std::shared_ptr<Pipeline>> pipelines;
  for (const SinkConfig& sc : next.sinks) {
    if (auto it = plan.fresh_by_name.find(sc.name); it != plan.fresh_by_name.end()) {
      pipelines.push_back(it->second);
    } else if (auto p = t.find(sc.name)) {
      pipelines.push_back(p);  // unchanged, or a change not applied
    }
  }
  for (const auto& p : t.pipelines) {
    if (!contains(diff.removed, p->name())) continue;
    removed.push_back(p);
    report.removed.push_back(p->name());
  }
  auto fields = std::make_shared<const std::vector<std::string>>(attribute_fields(next));
  if (*fields == *t.attribute_fields) fields = t.attribute_fields;
  return Topology::make(std::move(pipelines), std::move(fields));
}

Reloader::SinkChanges failed(std::string error) {
  Reloader::SinkChanges report;
  report.error = std::move(error);
  return report;
}

}  // namespace

Reloader::SinkChanges Reloader::apply_sinks(const Config& next, const ConfigDiff& diff) {
  if (!router_.accepting()) return failed("evrouted is shutting down");
  const auto current = router_.topology();
  // A sink removed by an earlier reload may still be draining; one added again under the same
  // name must wait for it (its queue's storage and dead-letter log are the same).
  router_.join_retiring(diff.added);

  SinkChanges report;
  Plan plan;
  if (evroute::Status s = build_plan(next, diff, *current, router_.data_dir(), plan, report);
      !s.is_ok()) {
    close_all(plan.built);
    return failed(s.message());
  }
  std::vector<std::shared_ptr<Pipeline>> removed;
  const bool swapped = router_.swap(
      [&](const Topology& t) { return swap_in(t, plan, next, diff, removed, report); });
  if (!swapped) {
    close_all(plan.built);
    return failed("evrouted is shutting down");
  }
  for (const Plan::Change& c : plan.changes) {
    if (const std::uint64_t n = c.fresh->adopted(); n > 0) {
      spdlog::info("sink '{}': {} queued event(s) handed to its new settings", c.old->name(), n);
    }
  }
  if (!removed.empty()) {
    router_.retire(std::move(removed), next.shutdown_timeout, "removed by a reload");
  }
  return report;
}

}  // namespace evrouted
