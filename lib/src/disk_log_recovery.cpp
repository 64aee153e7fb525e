// DiskLog's recovery at open(): finds the segment files, checks every record in them with the one
// record format (disk_log_record.h), and cuts each segment at its first torn or corrupt record.
#include <algorithm>
#include <string>
#include <vector>

#include "disk_log_record.h"
#include "evroute/disk_log.h"

namespace evroute {

Status DiskLog::recover(RecoveryReport* report) {
  if (Status s = fs_.create_dirs(options_.dir); !s.is_ok()) return s;
  std::vector<std::string> names;
  if (Status s = fs_.list_files(options_.dir, &names); !s.is_ok()) return s;
  std::vector<std::uint64_t> numbers;
  for (const std::string& name : names) {
    std::uint64_t number = 0;
    if (internal::parse_segment_file_name(name, &number)) numbers.push_back(number);
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
  const internal::RecordCheck check = internal::scan_records(data, &offset, &report->records);
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
