#include "sinks/registry.h"

#include "sinks/file/file_config.h"
#include "sinks/http/http_config.h"
#include "sinks/stdout/stdout_config.h"

namespace evrouted {
namespace {

// Every sink type, by its YAML `type:` name. Adding a sink type adds one line here.
constexpr SinkType kSinkTypes[] = {
    {.name = "stdout",
     .summary = "one line per event on standard output",
     .parse = &parse_stdout_sink,
     .capabilities = {.batching = true}},
    {.name = "file",
     .summary = "one line per event appended to a file (rotation, fsync policy)",
     .parse = &parse_file_sink,
     .capabilities = {.reopenable = true, .batching = true}},
    {.name = "http",
     .summary = "HTTP webhooks (signed, batched, CloudEvents; 410 Gone disables)",
     .parse = &parse_http_sink,
     .capabilities = {.disableable = true, .batching = true},
     .full_jitter_by_default = true},
};

}  // namespace

std::string SinkSpec::preview(const evroute::Event&, std::chrono::system_clock::time_point) const {
  // (Built with append: `"literal" + std::string&&` trips GCC 12's -Wrestrict false positive at
  // -O3, PR105329.)
  std::string out = "(";
  out.append(describe()).append(": no preview for this sink type)\n");
  return out;
}

const SinkType* find_sink_type(std::string_view name) {
  for (const SinkType& t : kSinkTypes) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string sink_type_list() {
  std::string list;
  for (const SinkType& t : kSinkTypes) list.append(list.empty() ? "" : ", ").append(t.name);
  return list;
}

std::vector<std::string_view> sink_type_names() {
  std::vector<std::string_view> names;
  for (const SinkType& t : kSinkTypes) names.push_back(t.name);
  return names;
}

}  // namespace evrouted
