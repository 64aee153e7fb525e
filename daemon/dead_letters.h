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

// Where a sink's dead letters are kept: this file log (DeadLetters), or a JetStream stream
// (queues/jetstream_dead_letters.h) for a sink whose queue is in JetStream. Entries have the same
// JSON form in every store (dead_letter_entry). Thread-safety: every member from any thread.
class DeadLetterStore {
 public:
  struct Page {
    std::vector<nlohmann::ordered_json> entries;
    std::uint64_t total = 0;  // entries in the store
  };
  virtual ~DeadLetterStore() = default;
  // Records a give-up. Failures are returned and also counted in write_errors().
  virtual evroute::Status add(const evroute::Event& event, const evroute::Status& last,
                              std::uint32_t attempts) = 0;
  virtual Page list(std::uint64_t offset, std::uint64_t limit) const = 0;
  // Removes the entries whose id is in `ids` (all of them when `ids` is nullopt) and returns their
  // events, oldest first.
  virtual evroute::Status take(const std::optional<std::set<std::string>>& ids,
                               std::vector<evroute::Event>* events) = 0;
  // Puts events back (a replay that could not re-queue them), as new entries.
  virtual void restore(const std::vector<evroute::Event>& events, const std::string& why) {
    for (const evroute::Event& e : events) add(e, evroute::Status::unavailable(why), 0);
  }
  virtual std::uint64_t added() const = 0;         // entries added since start
  virtual std::uint64_t write_errors() const = 0;  // entries that could not be written...
  virtual std::string where() const = 0;           // for logs: a path, a stream subject
};

// One entry, as one line of JSON without a newline (the layout at the top of this file).
std::string dead_letter_entry(const evroute::Event& event, const evroute::Status& last,
                              std::uint32_t attempts);
// The event an entry holds, rebuilt with its id, attributes and receive time; nullopt when the
// entry has no string "id".
std::optional<evroute::Event> event_of_entry(const nlohmann::ordered_json& entry);

class DeadLetters final : public DeadLetterStore {
 public:
  explicit DeadLetters(std::filesystem::path path,
                       std::shared_ptr<evroute::FileSystem> fs = evroute::FileSystem::posix())
      : path_(std::move(path)), fs_(std::move(fs)) {}

  // Records a give-up. Failures (disk) are returned and also counted in write_errors().
  evroute::Status add(const evroute::Event& event, const evroute::Status& last,
                      std::uint32_t attempts) override;
  Page list(std::uint64_t offset, std::uint64_t limit) const override;
  evroute::Status take(const std::optional<std::set<std::string>>& ids,
                       std::vector<evroute::Event>* events) override;
  std::uint64_t added() const override;         // entries added since start
  std::uint64_t write_errors() const override;  // entries not written, failed dir syncs
  std::string where() const override { return path_.string(); }
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
