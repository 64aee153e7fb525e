#include "config_reader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>

#include "text.h"

namespace evrouted {

std::string ConfigError::to_string() const {
  if (line <= 0) return file + ": " + message;  // about the file as a whole (e.g. unreadable)
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

void ConfigErrors::add(const YAML::Mark& mark, std::string message) {
  // yaml-cpp's marks are 0-based; a null mark (-1) points at the start of the file.
  add(mark.line < 0 ? 1 : mark.line + 1, mark.column < 0 ? 1 : mark.column + 1, std::move(message));
}

void ConfigErrors::add(int line, int column, std::string message) {
  errors_.push_back({file_, line, column, std::move(message)});
}

namespace {

// Splits "1.5s" into 1.5 and "s". Returns false when there is no leading number.
bool split_number(std::string_view text, double* number, std::string_view* unit) {
  text = trim(text);
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  if (i == 0) return false;
  const std::string digits(text.substr(0, i));
  char* end = nullptr;
  *number = std::strtod(digits.c_str(), &end);
  if (end != digits.c_str() + digits.size() || !std::isfinite(*number)) return false;
  *unit = trim(text.substr(i));
  return true;
}

const char* node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "empty";
    default:
      return "a scalar";
  }
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  double n = 0;
  std::string_view unit;
  if (!split_number(text, &n, &unit)) return std::nullopt;
  double seconds = 0;
  if (unit == "ms") {
    seconds = n / 1000;
  } else if (unit == "s") {
    seconds = n;
  } else if (unit == "m") {
    seconds = n * 60;
  } else if (unit == "h") {
    seconds = n * 3600;
  } else {
    return std::nullopt;
  }
  if (seconds > 1e9) return std::nullopt;  // beyond any sensible setting (and overflow)
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  double n = 0;
  std::string_view unit;
  if (!split_number(text, &n, &unit)) return std::nullopt;
  static const std::pair<std::string_view, double> kUnits[] = {{"", 1},
                                                               {"B", 1},
                                                               {"kB", 1e3},
                                                               {"KB", 1e3},
                                                               {"MB", 1e6},
                                                               {"GB", 1e9},
                                                               {"KiB", 1024.0},
                                                               {"MiB", 1048576.0},
                                                               {"GiB", 1073741824.0},
                                                               {"TiB", 1099511627776.0}};
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) {
      const double bytes = n * factor;
      if (bytes > 1.8e19 || bytes != std::floor(bytes)) return std::nullopt;
      return static_cast<std::uint64_t>(bytes);
    }
  }
  return std::nullopt;
}

std::optional<std::string> expand_env(std::string_view text, std::string* missing) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, 2, "${") == 0) {
      const std::size_t end = text.find('}', i + 2);
      if (end != std::string_view::npos) {
        std::string name(text.substr(i + 2, end - i - 2));
        std::optional<std::string> fallback;  // ${VAR:-default}: default when unset or empty
        if (const auto sep = name.find(":-"); sep != std::string::npos) {
          fallback = name.substr(sep + 2);
          name.resize(sep);
        }
        const char* value = std::getenv(name.c_str());
        if (fallback && (!value || !*value)) {
          out += *fallback;
        } else if (!value) {
          if (missing) *missing = name;
          return std::nullopt;
        } else {
          out += value;
        }
        i = end + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

ConfigReader::ConfigReader(YAML::Node node, ConfigErrors& errors, std::string what)
    : node_(std::move(node)), errors_(errors), what_(std::move(what)), mark_(node_.Mark()) {
  if (!node_.IsMap()) {
    valid_ = false;
    errors_.add(mark_, (what_.empty() ? std::string("the configuration") : what_) +
                           " must be a mapping, not " + node_kind(node_));
    return;
  }
  // yaml-cpp keeps duplicate keys but finds only the first: a silent surprise, so an error.
  std::map<std::string, int> first_line;
  for (const auto& kv : node_) {
    const std::string name = kv.first.Scalar();
    auto [it, inserted] = first_line.emplace(name, kv.first.Mark().line + 1);
    if (!inserted) {
      errors_.add(kv.first.Mark(), "duplicate key '" + name + "' in " +
                                       (what_.empty() ? std::string("the top level") : what_) +
                                       " (first at line " + std::to_string(it->second) + ")");
    }
  }
}

bool ConfigReader::has(std::string_view key) const {
  return valid_ && node_[std::string(key)].IsDefined();
}

YAML::Node ConfigReader::value(std::string_view key) {
  known_.emplace(key);
  if (!valid_) return YAML::Node(YAML::NodeType::Undefined);
  // A const lookup: operator[] on a non-const node would insert the key.
  const YAML::Node& map = node_;
  return map[std::string(key)];
}

YAML::Node ConfigReader::node(std::string_view key) { return value(key); }

void ConfigReader::error(std::string_view key, std::string message) {
  YAML::Node v =
      valid_ ? YAML::Node(static_cast<const YAML::Node&>(node_)[std::string(key)]) : YAML::Node();
  errors_.add(v.IsDefined() ? v.Mark() : mark_, std::move(message));
}

void ConfigReader::error_here(std::string message) { errors_.add(mark_, std::move(message)); }

std::optional<std::string> ConfigReader::scalar(std::string_view key, std::string_view type_name) {
  YAML::Node v = value(key);
  if (!v.IsDefined()) return std::nullopt;
  if (!v.IsScalar()) {
    errors_.add(v.Mark(), prefix() + "'" + std::string(key) + "' must be " +
                              std::string(type_name) + ", not " + node_kind(v));
    return std::nullopt;
  }
  std::string missing;
  auto expanded = expand_env(v.Scalar(), &missing);
  if (!expanded) {
    errors_.add(v.Mark(), prefix() + "'" + std::string(key) + "' uses ${" + missing +
                              "}, which is not set in the environment");
  }
  return expanded;
}

std::optional<std::string> ConfigReader::string(std::string_view key) {
  return scalar(key, "a string");
}

std::optional<std::string> ConfigReader::required_string(std::string_view key) {
  if (valid_ && !value(key).IsDefined()) {
    errors_.add(mark_, prefix() + "missing required key '" + std::string(key) + "'");
    return std::nullopt;
  }
  auto s = string(key);
  if (s && s->empty()) {
    error(key, prefix() + "'" + std::string(key) + "' must not be empty");
    return std::nullopt;
  }
  return s;
}

std::optional<bool> ConfigReader::boolean(std::string_view key) {
  auto s = scalar(key, "true or false");
  if (!s) return std::nullopt;
  if (*s == "true" || *s == "yes" || *s == "on") return true;
  if (*s == "false" || *s == "no" || *s == "off") return false;
  error(key, prefix() + "'" + std::string(key) + "' must be true or false, not '" + *s + "'");
  return std::nullopt;
}

std::optional<std::uint64_t> ConfigReader::unsigned_integer(std::string_view key, std::uint64_t min,
                                                            std::uint64_t max) {
  auto s = scalar(key, "a whole number");
  if (!s) return std::nullopt;
  const std::string_view t = trim(*s);
  std::uint64_t v = 0;
  bool ok = !t.empty() && t.size() <= 19;
  for (char c : t) ok = ok && std::isdigit(static_cast<unsigned char>(c));
  if (ok) v = std::stoull(std::string(t));
  if (!ok || v < min || v > max) {
    error(key, prefix() + "'" + std::string(key) + "' must be a whole number from " +
                   std::to_string(min) + " to " + std::to_string(max) + ", not '" + *s + "'");
    return std::nullopt;
  }
  return v;
}

std::optional<double> ConfigReader::number(std::string_view key, double min, double max) {
  auto s = scalar(key, "a number");
  if (!s) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s->c_str(), &end);
  if (s->empty() || end != s->c_str() + s->size() || !(v >= min && v <= max)) {
    error(key, fmt::format("{}'{}' must be a number from {} to {}, not '{}'", prefix(), key, min,
                           max, *s));
    return std::nullopt;
  }
  return v;
}

std::optional<Duration> ConfigReader::duration(std::string_view key) {
  auto s = scalar(key, "a duration");
  if (!s) return std::nullopt;
  auto d = parse_duration(*s);
  if (!d) {
    double n = 0;
    std::string_view unit;
    const bool bare = split_number(*s, &n, &unit) && unit.empty();
    error(key, prefix() + "'" + std::string(key) + "': " +
                   (bare ? "a duration needs a unit (ms, s, m, h), e.g. '" + *s + "s'"
                         : "invalid duration '" + *s + "' (use e.g. 250ms, 10s, 5m, 1h)"));
  }
  return d;
}

std::optional<std::uint64_t> ConfigReader::size(std::string_view key) {
  auto s = scalar(key, "a size");
  if (!s) return std::nullopt;
  auto v = parse_size(*s);
  if (!v) {
    error(key, prefix() + "'" + std::string(key) + "': invalid size '" + *s +
                   "' (use bytes, or e.g. 512KiB, 64MiB, 1GiB)");
  }
  return v;
}

std::optional<std::vector<std::string>> ConfigReader::string_list(std::string_view key) {
  YAML::Node v = value(key);
  if (!v.IsDefined()) return std::nullopt;
  if (v.IsScalar()) {
    auto s = scalar(key, "a string or a list of strings");
    if (!s) return std::nullopt;
    return std::vector<std::string>{*s};
  }
  if (!v.IsSequence()) {
    errors_.add(v.Mark(), prefix() + "'" + std::string(key) + "' must be a list of strings, not " +
                              node_kind(v));
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (const YAML::Node& item : v) {
    if (!item.IsScalar()) {
      errors_.add(item.Mark(), prefix() + "'" + std::string(key) + "' items must be strings, not " +
                                   node_kind(item));
      ok = false;
      continue;
    }
    std::string missing;
    auto expanded = expand_env(item.Scalar(), &missing);
    if (!expanded) {
      errors_.add(item.Mark(), prefix() + "'" + std::string(key) + "' uses ${" + missing +
                                   "}, which is not set in the environment");
      ok = false;
      continue;
    }
    out.push_back(std::move(*expanded));
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::map<std::string, std::string>> ConfigReader::string_map(std::string_view key) {
  YAML::Node v = value(key);
  if (!v.IsDefined()) return std::nullopt;
  ConfigReader sub(v, errors_, what_ + " '" + std::string(key) + "'");
  if (!sub.valid()) return std::nullopt;
  std::map<std::string, std::string> out;
  bool ok = true;
  for (const auto& kv : v) {
    const std::string name = kv.first.as<std::string>();
    auto s = sub.string(name);
    if (!s) {
      ok = false;
      continue;
    }
    out[name] = *s;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::string> ConfigReader::choice(std::string_view key,
                                                const std::vector<std::string>& choices) {
  auto s = string(key);
  if (!s) return std::nullopt;
  for (const auto& c : choices) {
    if (*s == c) return s;
  }
  const std::string list = fmt::format("{}", fmt::join(choices, ", "));
  error(key, prefix() + "'" + std::string(key) + "' must be one of " + list + ", not '" + *s + "'");
  return std::nullopt;
}

std::optional<evroute::SyncPolicy> ConfigReader::sync_policy(std::string_view key) {
  auto v = choice(key, {"always", "interval", "never"});
  if (!v) return std::nullopt;
  return *v == "always"     ? evroute::SyncPolicy::kAlways
         : *v == "interval" ? evroute::SyncPolicy::kInterval
                            : evroute::SyncPolicy::kNever;
}

std::optional<ConfigReader> ConfigReader::map(std::string_view key) {
  YAML::Node v = value(key);
  if (!v.IsDefined()) return std::nullopt;
  return ConfigReader(v, errors_,
                      what_.empty() ? std::string(key) : what_ + "." + std::string(key));
}

void ConfigReader::finish() {
  if (!valid_) return;
  const std::string known = fmt::format("{}", fmt::join(known_, ", "));
  for (const auto& kv : node_) {
    const std::string name = kv.first.Scalar();
    if (known_.count(name)) continue;
    errors_.add(kv.first.Mark(), "unknown key '" + name + "' in " +
                                     (what_.empty() ? std::string("the top level") : what_) +
                                     (known.empty() ? "" : " (known keys: " + known + ")"));
  }
}

}  // namespace evrouted
