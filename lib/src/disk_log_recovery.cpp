// DiskLog's recovery at open(): finds the segment files, checks every record in them with the one
// record format (disk_log_record.h), and cuts each segment at its first torn or corrupt record.
#include <algorithm>
#include <string>
#include <vector>

#include "disk_log_record.h"
#include "evroute/disk_log.h"

namespace evroute {
namespace {

bool parse_segment_name(const std::string& name, std::uint64_t* number) {
  if (name.size() != 24 || name.compare(20, 4, ".seg") != 0) return false;
  if (name.find_first_not_of("0123456789") != 20) return false;
  *number = std::stoull(name.substr(0, 20));
  return *number > 0;
}

// Where the good records of a segment end: its first record that does not check (see
// internal::RecordCheck), or the end of `data`. Counts the good ones in *records.
internal::RecordCheck scan_segment(std::string_view data, std::uint64_t* offset,
                                   std::uint64_t* records) {
  internal::RecordCheck check;
  while (*offset < data.size()) {
    Event event;
    std::string meta;
    check = internal::decode_record(data.substr(*offset), &event, &meta);
    if (!check.is_ok()) break;
    ++*records;
    *offset += check.extent();
  }
  return check;
}

}  // namespace

Status DiskLog::recover(RecoveryReport* report) {
  if (Status s = fs_.create_dirs(options_.dir); !s.is_ok()) return s;
  std::vector<std::string> names;
  if (Status s = fs_.list_files(options_.dir, &names); !s.is_ok()) return s;
  std::vector<std::uint64_t> numbers;
  for (const std::string& name : names) {
    std::uint64_t number = 0;
    if (parse_segment_name(name, &number)) numbers.push_back(number);
  }
  std::sort(numbers.begin(), numbers.end());
  (void)fs_.remove(options_.dir / "probe");  // a probe a crash interrupted

  for (const std::uint64_t number : numbers) {
    if (Status s = recover_segment(number, report); !s.is_ok()) return s;
  }
  report->segments = segments_.size();
  if (segments_.empty()) return open_active(1, /*create=*/true);
  return open_active(segments_.rbegin()->first, /*create=*/false);
}

Status DiskLog::recover_segment(std::uint64_t number, RecoveryReport* report) {
  const auto path = segment_path(number);
  std::string data;
  bool found = false;
  if (Status s = fs_.read_file(path, &data, &found); !s.is_ok()) return s;
  std::uint64_t offset = 0;
  const internal::RecordCheck check = scan_segment(data, &offset, &report->records);
  if (!check.is_ok()) {
    const std::uint64_t cut = data.size() - offset;
    report->truncated_bytes += cut;
    report->problems.push_back(path.string() + " at offset " + std::to_string(offset) + ": " +
                               check.describe() + "; cut " + std::to_string(cut) + " bytes");
    std::unique_ptr<WritableFile> file;
    Status s = fs_.open_writable(path, FileSystem::OpenMode::kAppendExisting, 0640, &file);
    if (s.is_ok()) s = file->truncate(offset);
    if (s.is_ok()) s = file->sync();
    if (!s.is_ok()) return s;
  }
  segments_[number] = Segment{number, offset};
  live_bytes_ += offset;
  return Status::ok();
}

}  // namespace evroute
