// DeadLetters: one sink's dead-letter log — the events it gave up on (retries exhausted, or a
// non-retryable answer such as a 4xx), one JSON object per line in
// <data_dir>/dead-letters/<sink>.ndjson:
//   {"id":..., "reason":..., "attempts":N, "last_status":..., "failed_at":"RFC 3339",
//    "received_ns":N, "attributes":{...}, "event":<the event's JSON>}
// (an event whose payload is not JSON nesting at most kMaxEventDepth levels — possible only for one
// stored by an older evrouted — is kept as a string instead: "event_text":"<payload>").
// Each line is appended with one write() and synced (give-ups are rare; losing one would break the
// promise that every acknowledged event is delivered or accounted for). A line that cannot be
// written (ENOSPC, EIO, a failed sync) is returned as an error and counted in write_errors(), and
// what it wrote is cut off again, so the next line never lands after a torn one (if the cut fails,
// the next add() retries it first).
//
// list() pages through them; take() removes entries (all, or those with the given ids) and returns
// their events, rebuilt with their ids, attributes and receive times, for replay. Only take()
// rewrites the file, as the disk log's cursor file is: the entries kept go to a temporary file,
// which is synced, then renamed over the log, then the directory is synced. On any failure the old
// file stands as it was (nothing is taken) and the temporary is removed. (A failed directory sync
// after the rename is counted in write_errors() and logged: the entries are taken.)
//
// Files go through an evroute::FileSystem (POSIX unless a test injects faults).
// Thread-safety: every method is safe from any thread (one mutex).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "evroute/event.h"
#include "evroute/file_system.h"
#include "evroute/status.h"

namespace evrouted {

class DeadLetters {
 public:
  explicit DeadLetters(std::filesystem::path path,
                       std::shared_ptr<evroute::FileSystem> fs = evroute::FileSystem::posix())
      : path_(std::move(path)), fs_(std::move(fs)) {}

  // Records a give-up. Failures (disk) are returned and also counted in write_errors().
  evroute::Status add(const evroute::Event& event, const evroute::Status& last,
                      std::uint32_t attempts);

  struct Page {
    std::vector<nlohmann::ordered_json> entries;
    std::uint64_t total = 0;  // entries in the log
  };
  Page list(std::uint64_t offset, std::uint64_t limit) const;

  // Removes the entries whose id is in `ids` (all of them when `ids` is nullopt) and returns their
  // events, oldest first.
  evroute::Status take(const std::optional<std::set<std::string>>& ids,
                       std::vector<evroute::Event>* events);
  // Puts events back (a replay that could not re-queue them), as new entries.
  void restore(const std::vector<evroute::Event>& events, const std::string& why);

  std::uint64_t added() const;         // entries added since start
  std::uint64_t write_errors() const;  // entries that could not be written, failed dir syncs
  const std::filesystem::path& path() const { return path_; }

 private:
  evroute::Status append_line(const std::string& line);  // with mu_ held
  evroute::Status rewrite(const std::string& text);      // with mu_ held
  std::vector<nlohmann::ordered_json> read_all() const;  // with mu_ held

  const std::filesystem::path path_;
  const std::shared_ptr<evroute::FileSystem> fs_;
  mutable std::mutex mu_;
  std::optional<std::uint64_t> cut_to_;  // a failed add() left bytes past this size
  std::uint64_t added_ = 0;
  std::uint64_t write_errors_ = 0;
};

}  // namespace evrouted
