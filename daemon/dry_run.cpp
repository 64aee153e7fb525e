#include "dry_run.h"

#include <istream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "ingest.h"
#include "topology.h"

namespace evrouted {
namespace {

std::string json_string(std::string_view s) { return nlohmann::json(std::string(s)).dump(); }

// "filter matched: type "a.b" ~ "a.*"" or "filtered out: ..."; "no filter" without one.
std::string filter_verdict(const SinkConfig& sink, const evroute::Event& event, bool* routed) {
  *routed = true;
  if (sink.filter.empty()) return "no filter";
  std::string matched;
  for (const FieldFilter& f : sink.filter) {
    const auto value = event.attribute(f.field);
    const std::string* glob = value ? matching_glob(f, *value) : nullptr;
    if (!glob) {
      *routed = false;
      std::string globs;
      for (const std::string& g : f.globs) globs += (globs.empty() ? "" : ", ") + json_string(g);
      std::string out = "filtered out: ";  // appended: see SinkSpec::preview on -Wrestrict
      out.append(f.field);
      if (value) {
        out.append(" ").append(json_string(*value)).append(" matches none of ").append(globs);
      } else {
        out.append(" is absent (filter: ").append(globs).append(")");
      }
      return out;
    }
    matched += (matched.empty() ? "" : ", ") + f.field + " " + json_string(*value) + " ~ " +
               json_string(*glob);
  }
  return "filter matched: " + matched;
}

void print_indented(std::ostream& out, const std::string& text) {
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out << "      " << std::string_view(text).substr(start, end - start);
    out << '\n';
    start = end + 1;
  }
}

}  // namespace

DryRunResult dry_run(const Config& config, std::istream& in, std::ostream& out, std::ostream& err,
                     std::function<std::chrono::system_clock::time_point()> now) {
  if (!now) now = [] { return std::chrono::system_clock::now(); };
  DryRunResult result;
  const std::vector<std::string> fields = attribute_fields(config);
  std::string line;
  for (std::size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    // One line as an NDJSON body: the server's parser, the server's ids and attributes.
    IngestResult parsed = parse_events(line, BodyFormat::kNdjson, fields);
    if (!parsed.error.empty()) {
      std::string why = parsed.error;
      if (why.rfind("line 1: ", 0) == 0) why.erase(0, 8);
      err << "line " << line_no << ": " << why << '\n';
      ++result.bad_lines;
      continue;
    }
    for (const evroute::Event& event : parsed.events) {
      ++result.events;
      out << "event " << result.events << " (line " << line_no << "): id "
          << json_string(event.id());
      if (auto type = event.attribute("type")) out << ", type " << json_string(*type);
      out << '\n';
      const auto at = now();
      for (const SinkConfig& sink : config.sinks) {
        bool routed = false;
        const std::string verdict = filter_verdict(sink, event, &routed);
        out << "  sink " << sink.name << " (" << sink.type << "): " << verdict << '\n';
        if (routed) print_indented(out, sink.spec->preview(event, at));
      }
    }
  }
  return result;
}

}  // namespace evrouted
