// inspect_disk_log (disk_log_inspection.h): a read-only scan of a DiskLog's directory, with the
// record format and the segment scan recovery uses (disk_log_record.h).
#include "evroute/disk_log_inspection.h"

#include <algorithm>
#include <cerrno>

#include "disk_log_record.h"

namespace evroute {

Result<DiskLogInspection> inspect_disk_log(const std::filesystem::path& dir,
                                           std::shared_ptr<FileSystem> fs) {
  if (!fs) fs = FileSystem::posix();
  DiskLogInspection out;
  std::vector<std::string> names;
  if (Status s = fs->list_files(dir, &names); !s.is_ok()) {
    if (errno == ENOENT) return out;  // no queue yet: empty
    return s;
  }
  out.exists = true;

  bool cursor_found = false;
  std::string cursor_text;
  if (Status s = fs->read_file(dir / "cursor", &cursor_text, &cursor_found); !s.is_ok()) return s;
  DiskLog::Position cursor;  // {0, 0}: from the oldest record, as DurableQueue::open reads it
  if (cursor_found) {
    if (Status s = CursorFile(dir / "cursor", fs).load(&cursor); s.is_ok()) {
      out.cursor = cursor;
    } else {
      out.problems.push_back({DiskLogInspection::Problem::Kind::kBadCursor, dir / "cursor", 0,
                              cursor_text.size(), "malformed cursor file"});
    }
  }

  std::vector<std::uint64_t> numbers;
  for (const std::string& name : names) {
    std::uint64_t number = 0;
    if (internal::parse_segment_file_name(name, &number)) numbers.push_back(number);
  }
  std::sort(numbers.begin(), numbers.end());

  std::vector<DiskLogInspection::Problem> segment_problems;
  for (const std::uint64_t number : numbers) {
    const std::filesystem::path path = dir / internal::segment_file_name(number);
    std::string data;
    bool found = false;
    if (Status s = fs->read_file(path, &data, &found); !s.is_ok()) return s;
    if (!found) continue;  // released by a running queue meanwhile
    ++out.segments;
    out.bytes += data.size();
    std::uint64_t offset = 0;
    const internal::RecordCheck check = internal::scan_records(
        data, &offset, &out.records, [&](std::uint64_t at, const Event& event) {
          const DiskLogInspection::RecordInfo info{DiskLog::Position{number, at},
                                                   std::string(event.id()), event.received()};
          if (!out.oldest) out.oldest = info;
          out.newest = info;
          if (info.position >= cursor) {
            if (!out.next_pending) out.next_pending = info;
            ++out.pending;
          } else {
            ++out.delivered;
          }
        });
    if (check.is_ok()) continue;
    const bool torn = check.problem == internal::RecordProblem::kTornHeader ||
                      check.problem == internal::RecordProblem::kTornBody;
    segment_problems.push_back({torn ? DiskLogInspection::Problem::Kind::kTornTail
                                     : DiskLogInspection::Problem::Kind::kCorrupt,
                                path, offset, data.size() - offset, check.describe()});
  }
  out.problems.insert(out.problems.begin(), segment_problems.begin(), segment_problems.end());
  return out;
}

}  // namespace evroute
