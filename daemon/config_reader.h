// ConfigReader: reads one YAML mapping of the config file, key by key, collecting precise errors.
//
// Every accessor marks its key as known; finish() then reports every key that nobody asked for
// ("unknown key"). Problems never throw: they are added to the shared ConfigErrors with the file,
// line and column of the offending node, and the accessor returns std::nullopt (or the default), so
// one load reports every problem at once. String scalars have ${VAR} replaced from the environment
// (an unset variable is an error at that scalar).
//
// Thread-safety: none needed; one thread loads a config.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "evroute/sync_policy.h"

namespace evrouted {

using Duration = std::chrono::nanoseconds;

// One problem in a config file. line and column are 1-based.
struct ConfigError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;
  std::string to_string() const;  // "FILE:LINE:COL: message"
};

class ConfigErrors {
 public:
  explicit ConfigErrors(std::string file) : file_(std::move(file)) {}
  void add(const YAML::Mark& mark, std::string message);  // yaml-cpp marks are 0-based
  void add(int line, int column, std::string message);    // 1-based
  bool empty() const { return errors_.empty(); }
  const std::vector<ConfigError>& all() const { return errors_; }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

// "250ms", "10s", "5m", "1h", "1.5s" -> nanoseconds. Returns nullopt on anything else (a bare
// number is rejected: the unit is required).
std::optional<Duration> parse_duration(std::string_view text);
// "1048576", "512KiB", "64MiB", "1GiB", "10kB", "1MB" -> bytes.
std::optional<std::uint64_t> parse_size(std::string_view text);
// Replaces ${VAR} from the environment, and ${VAR:-default} (default when VAR is unset or empty).
// On an unset variable without a default returns nullopt and sets *missing.
std::optional<std::string> expand_env(std::string_view text, std::string* missing);

class ConfigReader {
 public:
  // `what` names the mapping in messages, e.g. "server" or "sink 'billing'"; "" for the top level.
  ConfigReader(YAML::Node node, ConfigErrors& errors, std::string what);

  bool valid() const { return valid_; }  // false when the node is not a mapping (error recorded)
  const YAML::Mark& mark() const { return mark_; }
  const std::string& what() const { return what_; }
  ConfigErrors& errors() { return errors_; }
  bool has(std::string_view key) const;

  // Typed accessors: nullopt when the key is absent or its value is wrong (error recorded).
  std::optional<std::string> string(std::string_view key);
  std::optional<std::string> required_string(std::string_view key);  // absent: error
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::uint64_t> unsigned_integer(std::string_view key, std::uint64_t min = 0,
                                                std::uint64_t max = UINT64_MAX);
  std::optional<double> number(std::string_view key, double min, double max);
  std::optional<Duration> duration(std::string_view key);
  std::optional<std::uint64_t> size(std::string_view key);  // integer bytes or "64MiB"
  std::optional<std::vector<std::string>> string_list(std::string_view key);  // scalar or sequence
  std::optional<std::map<std::string, std::string>> string_map(std::string_view key);
  // One of `choices`; anything else is an error listing them.
  std::optional<std::string> choice(std::string_view key, const std::vector<std::string>& choices);
  // An fsync policy: "always", "interval" or "never" (a disk queue's and the file sink's `fsync`).
  std::optional<evroute::SyncPolicy> sync_policy(std::string_view key);
  // A nested mapping; nullopt when absent; an invalid reader (error recorded) when not a mapping.
  std::optional<ConfigReader> map(std::string_view key);
  // The raw node, marked as known (for callers that walk it themselves).
  YAML::Node node(std::string_view key);

  // Records an error at the value (or, when absent, at this mapping).
  void error(std::string_view key, std::string message);
  void error_here(std::string message);
  // Reports every key not asked for: "unknown key 'x' in <what>".
  void finish();

 private:
  YAML::Node value(std::string_view key);  // marks known
  std::optional<std::string> scalar(std::string_view key, std::string_view type_name);
  std::string prefix() const { return what_.empty() ? "" : what_ + ": "; }  // "sink 'x': "

  YAML::Node node_;
  ConfigErrors& errors_;
  std::string what_;
  YAML::Mark mark_;
  bool valid_ = true;
  std::set<std::string, std::less<>> known_;
};

}  // namespace evrouted
