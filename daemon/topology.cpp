#include "topology.h"

#include <fnmatch.h>

#include <algorithm>

namespace evrouted {

std::shared_ptr<Topology> Topology::make(std::vector<std::shared_ptr<Pipeline>> pipelines,
                                         std::shared_ptr<const std::vector<std::string>> fields) {
  auto t = std::make_shared<Topology>();
  t->pipelines = std::move(pipelines);
  t->attribute_fields = std::move(fields);
  for (const auto& p : t->pipelines) {
    const evroute::SinkQueue* q = p->queue();
    if (!q) continue;
    if (q->stored()) {
      t->has_stored_queue = true;
      continue;
    }
    t->has_memory_queue = true;
    if (q->blocking_capacity() > 0) t->has_blocking_queue = true;
  }
  return t;
}

std::shared_ptr<Pipeline> Topology::find(std::string_view name) const {
  for (const auto& p : pipelines) {
    if (p->name() == name) return p;
  }
  return nullptr;
}

const std::string* matching_glob(const FieldFilter& filter, std::string_view value) {
  const std::string v(value);
  for (const std::string& glob : filter.globs) {
    if (fnmatch(glob.c_str(), v.c_str(), 0) == 0) return &glob;
  }
  return nullptr;
}

std::vector<std::string> attribute_fields(const Config& config) {
  std::vector<std::string> fields{"type"};
  for (const SinkConfig& sc : config.sinks) {
    for (const FieldFilter& f : sc.filter) {
      if (std::find(fields.begin(), fields.end(), f.field) == fields.end()) {
        fields.push_back(f.field);
      }
    }
  }
  return fields;
}

}  // namespace evrouted
