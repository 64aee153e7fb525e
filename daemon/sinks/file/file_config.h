// The file sink's settings: what its YAML keys say (FileSinkConfig), parsed and checked by
// parse_file_sink(), whose problems carry their file:line:column.
//
//   type: file
//   path: ./data/events-%Y-%m-%d.ndjson    # strftime date conversions (UTC); file_rotation.h
//   rotate: { max_bytes: 64MiB, interval: 24h, keep: 10 }   # max_bytes, interval or both
//   compress: none | gzip                  # rotated files; with `rotate` only
//   fsync: never | interval | always
//   fsync_interval: 1s                     # with `fsync: interval` only
// What each does is described in file_sink.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "config_reader.h"
#include "evroute/sync_policy.h"
#include "sinks/registry.h"

namespace evrouted {

struct FileRotation {
  std::uint64_t max_bytes = 0;  // 0: no size limit
  Duration interval{0};         // 0: no time limit
  std::uint64_t keep = 10;      // rotated files kept per PATH
};

enum class FileCompression { kNone, kGzip };

struct FileSinkConfig {
  explicit FileSinkConfig(std::string path = "") : path(std::move(path)) {}

  std::string path;  // may hold strftime conversions (UTC)
  std::optional<FileRotation> rotate;
  FileCompression compress = FileCompression::kNone;
  evroute::SyncPolicy fsync = evroute::SyncPolicy::kNever;
  Duration fsync_interval = std::chrono::seconds(1);
};

// Reads the file sink's keys (above) from `reader`: the spec, or nullptr with the problems recorded
// in `reader`.
std::unique_ptr<SinkSpec> parse_file_sink(ConfigReader& reader);

// The registry's entry for `type: file` (listed in sinks/registry.cpp).
const SinkType& file_sink_type();

}  // namespace evrouted
