#include "dead_letters.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <sstream>

#include "json_parse.h"
#include "utc_time.h"

namespace evrouted {

namespace {

using Json = nlohmann::ordered_json;

}  // namespace

std::string dead_letter_entry(const evroute::Event& event, const evroute::Status& last,
                              std::uint32_t attempts) {
  Json attributes = Json::object();
  for (std::size_t i = 0; i < event.attribute_count(); ++i) {
    const auto a = event.attribute_at(i);
    attributes[std::string(a.key)] = std::string(a.value);
  }
  Json head = {
      {"id", std::string(event.id())},
      {"reason", last.is_retryable() ? "retries exhausted" : "not retryable"},
      {"attempts", attempts},
      {"last_status", last.to_string()},
      {"failed_at", utc_time(std::chrono::system_clock::now())},
      {"received_ns",
       std::chrono::duration_cast<std::chrono::nanoseconds>(event.received().time_since_epoch())
           .count()},
      {"attributes", std::move(attributes)},
  };
  // The event's own JSON goes in as it is (it is compact JSON already): no re-encoding. A payload
  // that is not JSON an entry can hold safely (it nests too deep: an event stored by an older
  // evrouted) goes in as a string instead, "event_text", so the entry stays listable.
  Json payload;
  const bool embeddable = parse_json(event.payload(), &payload, {kMaxEventDepth}).empty();
  if (!embeddable) head["event_text"] = std::string(event.payload());
  std::string line = dump_json(head);
  if (embeddable) {
    line.pop_back();  // the closing brace
    line += ",\"event\":";
    line += event.payload();
    line += "}";
  }
  return line;
}

std::optional<evroute::Event> event_of_entry(const Json& entry) {
  if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_string()) return std::nullopt;
  std::vector<std::string> keys, values;
  const Json stored = entry.value("attributes", Json::object());  // named: items() refers into it
  if (stored.is_object()) {
    for (const auto& [k, v] : stored.items()) {
      keys.push_back(k);
      values.push_back(v.is_string() ? v.get<std::string>() : v.dump());
    }
  }
  std::vector<evroute::Attribute> attributes;
  for (std::size_t i = 0; i < keys.size(); ++i) attributes.push_back({keys[i], values[i]});
  const Json received_ns = entry.value("received_ns", Json(0));
  const auto received = evroute::Event::TimePoint(
      std::chrono::duration_cast<evroute::Event::TimePoint::duration>(std::chrono::nanoseconds(
          received_ns.is_number_integer() ? received_ns.get<std::int64_t>() : 0)));
  const std::string payload = entry.contains("event_text") && entry["event_text"].is_string()
                                  ? entry["event_text"].get<std::string>()
                                  : dump_json(entry.value("event", Json()));
  try {
    return evroute::Event::make(entry["id"].get<std::string>(), payload, attributes, received);
  } catch (const std::length_error&) {  // beyond an event's limits: not one evrouted stored
    return std::nullopt;
  }
}

evroute::Status DeadLetters::add(const evroute::Event& event, const evroute::Status& last,
                                 std::uint32_t attempts) {
  const std::string line = dead_letter_entry(event, last, attempts) + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  evroute::Status status = append_line(line);
  if (status.is_ok()) {
    ++added_;
  } else {
    ++write_errors_;
  }
  return status;
}

evroute::Status DeadLetters::append_line(const std::string& line) {
  if (evroute::Status s = fs_->create_dirs(path_.parent_path()); !s.is_ok()) return s;
  std::unique_ptr<evroute::WritableFile> file;
  if (evroute::Status s =
          fs_->open_writable(path_, evroute::FileSystem::OpenMode::kAppend, 0640, &file);
      !s.is_ok()) {
    return s;
  }
  if (cut_to_) {
    if (evroute::Status s = file->truncate(*cut_to_); !s.is_ok()) return s;
    cut_to_.reset();
  }
  evroute::WritableFile::Info info;
  if (evroute::Status s = file->stat(&info); !s.is_ok()) return s;
  evroute::Status status = file->append(line);
  if (status.is_ok()) status = file->sync();
  if (!status.is_ok() && !file->truncate(info.size).is_ok()) cut_to_ = info.size;
  return status;
}

std::vector<nlohmann::ordered_json> DeadLetters::read_all() const {
  std::vector<Json> entries;
  std::string text;
  bool found = false;
  (void)fs_->read_file(path_, &text, &found);  // unreadable: listed as empty
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    Json entry;  // a torn line (or one nested too deep to show safely): skipped
    if (parse_json(line, &entry, {kMaxRecordDepth}).empty()) entries.push_back(std::move(entry));
  }
  return entries;
}

DeadLetters::Page DeadLetters::list(std::uint64_t offset, std::uint64_t limit) const {
  std::lock_guard<std::mutex> lock(mu_);
  Page page;
  auto all = read_all();
  page.total = all.size();
  for (std::uint64_t i = offset; i < all.size() && page.entries.size() < limit; ++i) {
    page.entries.push_back(std::move(all[i]));
  }
  return page;
}

evroute::Status DeadLetters::take(const std::optional<std::set<std::string>>& ids,
                                  std::vector<evroute::Event>* events) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string text;
  bool found = false;
  if (evroute::Status s = fs_->read_file(path_, &text, &found); !s.is_ok()) return s;
  if (!found) return evroute::Status::ok();  // no dead letters yet
  std::istringstream in(text);
  std::vector<evroute::Event> taken;
  std::string kept_text, line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    Json entry;
    const bool parsed = parse_json(line, &entry, {kMaxRecordDepth}).empty();
    const bool wanted = parsed && entry.is_object() && entry.contains("id") &&
                        entry["id"].is_string() &&
                        (!ids || ids->count(entry["id"].get<std::string>()));
    if (!wanted) {
      kept_text += line + "\n";
      continue;
    }
    if (auto event = event_of_entry(entry)) {
      taken.push_back(std::move(*event));
    } else {
      kept_text += line + "\n";
    }
  }
  if (taken.empty()) return evroute::Status::ok();  // nothing to remove: no rewrite
  if (evroute::Status s = rewrite(kept_text); !s.is_ok()) return s;  // the old file stands
  events->insert(events->end(), taken.begin(), taken.end());
  return evroute::Status::ok();
}

evroute::Status DeadLetters::rewrite(const std::string& text) {
  const std::filesystem::path tmp = path_.string() + ".tmp";
  std::unique_ptr<evroute::WritableFile> file;
  evroute::Status status =
      fs_->open_writable(tmp, evroute::FileSystem::OpenMode::kTruncate, 0640, &file);
  if (status.is_ok()) status = file->append(text);
  if (status.is_ok()) status = file->sync();
  file.reset();
  if (status.is_ok()) status = fs_->rename(tmp, path_);
  if (!status.is_ok()) {
    (void)fs_->remove(tmp);
    return status;
  }
  cut_to_.reset();  // the new file has no torn tail
  // The rename is done: the entries are taken even if the directory sync fails (a crash could
  // then bring them back: replayed twice, never lost).
  if (evroute::Status s = fs_->sync_dir(path_.parent_path()); !s.is_ok()) {
    ++write_errors_;
    spdlog::warn("dead letters {}: {}", path_.string(), s.to_string());
  }
  return evroute::Status::ok();
}

std::uint64_t DeadLetters::added() const {
  std::lock_guard<std::mutex> lock(mu_);
  return added_;
}

std::uint64_t DeadLetters::write_errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_errors_;
}

}  // namespace evrouted
