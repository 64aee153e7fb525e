#include "sinks/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace evrouted {

// EVROUTED_SINK_TYPE(TYPE): the entry `const SinkType& TYPE_sink_type()` that the folder
// daemon/sinks/TYPE/ defines (in TYPE_config.cpp), as a function pointer. The macro declares the
// function itself, so that listing a type takes one line and no #include. (Outside an unnamed
// namespace: a function declared in a block belongs to the innermost enclosing namespace.)
#define EVROUTED_SINK_TYPE(type)        \
  []() -> const SinkType& {             \
    const SinkType& type##_sink_type(); \
    return type##_sink_type();          \
  }

// Every sink type, in the order they are listed. Adding a sink type adds one line here.
constexpr const SinkType& (*kSinkTypes[])() = {
    EVROUTED_SINK_TYPE(stdout),
    EVROUTED_SINK_TYPE(file),
    EVROUTED_SINK_TYPE(http),
    EVROUTED_SINK_TYPE(nats),
};

#undef EVROUTED_SINK_TYPE

std::string SinkSpec::preview(const evroute::Event&, std::chrono::system_clock::time_point) const {
  // (Built with append: `"literal" + std::string&&` trips GCC 12's -Wrestrict false positive at
  // -O3, PR105329.)
  std::string out = "(";
  out.append(describe()).append(": no preview for this sink type)\n");
  return out;
}

const SinkType* find_sink_type(std::string_view name) {
  for (auto type : kSinkTypes) {
    if (type().name == name) return &type();
  }
  return nullptr;
}

std::string sink_type_list() { return fmt::format("{}", fmt::join(sink_type_names(), ", ")); }

std::vector<std::string_view> sink_type_names() {
  std::vector<std::string_view> names;
  for (auto type : kSinkTypes) names.push_back(type().name);
  return names;
}

}  // namespace evrouted
