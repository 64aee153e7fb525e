#include "sinks/file/file_config.h"

#include <filesystem>

#include "sinks/file/file_rotation.h"
#include "sinks/file/file_sink.h"

namespace evrouted {

namespace {

class FileSpec final : public SinkSpec {
 public:
  explicit FileSpec(FileSinkConfig config) : config_(std::move(config)) {}
  Leaf build() const override {
    auto sink = std::make_shared<FileSink>(config_);
    return {.sink = sink, .reopenable = sink.get(), .batch = sink.get()};
  }
  std::string describe() const override { return "file " + config_.path; }
  DeliveryConfig delivery() const override {
    DeliveryConfig d;
    d.write_batches = true;
    return d;
  }
  std::string preview(const evroute::Event& event,
                      std::chrono::system_clock::time_point now) const override {
    return "append to " + expand_path_template(config_.path, now) + ":\n" +
           std::string(event.payload()) + "\n";
  }

 private:
  const FileSinkConfig config_;
};

// What makes `path` unusable as a file to append to, as far as can be told without creating
// anything (so --check finds it as the daemon would): it is a directory, or a component of its
// directory is a file.
std::optional<std::string> path_place_problem(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) return path + " is a directory";
  for (fs::path dir = p.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (fs::exists(dir, ec)) {
      if (!fs::is_directory(dir, ec)) return dir.string() + " is not a directory";
      break;
    }
    if (dir == dir.parent_path()) break;
  }
  return std::nullopt;
}

}  // namespace

std::unique_ptr<SinkSpec> parse_file_sink(ConfigReader& reader) {
  FileSinkConfig config;
  const std::size_t before = reader.errors().all().size();
  const std::string prefix = reader.what().empty() ? "" : reader.what() + ": ";
  if (auto path = reader.required_string("path")) {
    config.path = *path;
    if (const evroute::Status why = check_path_template(*path); !why.is_ok()) {
      reader.error("path", prefix + "'path': " + why.message());
    } else if (const std::string now =
                   expand_path_template(*path, std::chrono::system_clock::now());
               now.empty()) {
      reader.error("path", prefix + "'path' expands to nothing");
    } else if (auto problem = path_place_problem(now)) {
      reader.error("path", prefix + "'path': " + *problem);
    }
  }
  if (auto rotate = reader.map("rotate"); rotate && rotate->valid()) {
    const std::string rprefix = rotate->what() + ": ";
    FileRotation r;
    if (auto v = rotate->size("max_bytes")) {
      if (*v == 0) rotate->error("max_bytes", rprefix + "'max_bytes' must be more than 0");
      r.max_bytes = *v;
    }
    if (auto v = rotate->duration("interval")) {
      if (v->count() <= 0) rotate->error("interval", rprefix + "'interval' must be more than 0");
      r.interval = *v;
    }
    if (auto v = rotate->unsigned_integer("keep", 1, 1000000)) r.keep = *v;
    if (!rotate->has("max_bytes") && !rotate->has("interval")) {
      rotate->error_here(rprefix + "set 'max_bytes', 'interval' or both");
    }
    rotate->finish();
    config.rotate = r;
  }
  if (auto c = reader.choice("compress", {"none", "gzip"})) {
    config.compress = *c == "gzip" ? FileCompression::kGzip : FileCompression::kNone;
    if (config.compress != FileCompression::kNone && !reader.has("rotate")) {
      reader.error("compress", prefix + "'compress' applies to rotated files: set 'rotate' too");
    }
  }
  if (auto f = reader.sync_policy("fsync")) config.fsync = *f;
  if (auto i = reader.duration("fsync_interval")) {
    if (i->count() <= 0) {
      reader.error("fsync_interval", prefix + "'fsync_interval' must be more than 0");
    } else if (config.fsync != evroute::SyncPolicy::kInterval) {
      reader.error("fsync_interval", prefix + "'fsync_interval' applies to 'fsync: interval' only");
    }
    config.fsync_interval = *i;
  }
  if (reader.errors().all().size() != before) return nullptr;
  return std::make_unique<FileSpec>(std::move(config));
}

const SinkType& file_sink_type() {
  static constexpr SinkType kType{
      .name = "file",
      .summary = "one line per event appended to a file (rotation, fsync policy)",
      .parse = &parse_file_sink,
      .capabilities = {.reopenable = true, .batching = true}};
  return kType;
}

}  // namespace evrouted
