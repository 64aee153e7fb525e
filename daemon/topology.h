// Topology: one generation of the running sinks — their pipelines in configuration order, and what
// ingest and admission need to know of them all. Immutable once published: a reload builds the next
// one and the Router swaps it in whole (router.h), so a reader holding one sees a consistent set.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "pipeline.h"

namespace evrouted {

struct Topology {
  std::vector<std::shared_ptr<Pipeline>> pipelines;
  // Top-level event fields that filters test, plus "type": ingest copies them into attributes.
  std::shared_ptr<const std::vector<std::string>> attribute_fields;
  bool has_blocking_queue = false;  // some queue makes writers wait for room (admission waits)
  bool has_stored_queue = false;    // some queue stores before it acknowledges (disk...)
  bool has_memory_queue = false;    // some queue does not

  // Fills the flags from the pipelines' queues.
  static std::shared_ptr<Topology> make(std::vector<std::shared_ptr<Pipeline>> pipelines,
                                        std::shared_ptr<const std::vector<std::string>> fields);
  // The pipeline named `name`, or null.
  std::shared_ptr<Pipeline> find(std::string_view name) const;
};

// The first of `filter`'s globs that `value` matches (fnmatch), or nullptr.
const std::string* matching_glob(const FieldFilter& filter, std::string_view value);
// The top-level event fields ingest must copy into attributes for `config`: "type", then every
// field a filter tests.
std::vector<std::string> attribute_fields(const Config& config);

}  // namespace evrouted
