// ConfigDiff: what changed between the running configuration and a newly loaded one (SIGHUP).
//
// A sink is "unchanged" when its fingerprint (SinkConfig::fingerprint: the sink's YAML, canonically
// re-emitted, plus data_dir) is the same in both; "changed" when the name is in both with different
// fingerprints; "added"/"removed" by name. `restart_needed` lists, one message each, the settings
// that a running evrouted cannot take without a restart (server.* but auth.tokens, limits.memory,
// and a sink whose queue.type changed between memory and disk). `tokens_changed`:
// server.auth.tokens differ (a reload applies them).
//
// Note: the fingerprint is the YAML text, so a ${VAR} whose environment value changed is not seen
// as a change (the environment of a running process does not change either).
//
// Pure function of its inputs; safe for concurrent use.
#pragma once

#include <string>
#include <vector>

#include "config.h"

namespace evrouted {

struct ConfigDiff {
  std::vector<std::string> added, removed, changed, unchanged;  // sink names, in file order
  std::vector<std::string> restart_needed;                      // one message per setting
  bool tokens_changed = false;

  bool topology_changed() const { return !added.empty() || !removed.empty() || !changed.empty(); }
  bool empty() const { return !topology_changed() && restart_needed.empty() && !tokens_changed; }
};

ConfigDiff diff_configs(const Config& running, const Config& next);

}  // namespace evrouted
