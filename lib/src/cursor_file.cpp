// CursorFile (declared in disk_log.h): a consumer's position, stored by write, sync, rename.
#include <cstdio>
#include <string>
#include <string_view>

#include "evroute/disk_log.h"

namespace evroute {

Status CursorFile::load(DiskLog::Position* position) const {
  std::string text;
  bool found = false;
  if (Status s = fs_->read_file(path_, &text, &found); !s.is_ok()) return s;
  if (!found) {
    *position = DiskLog::Position{};
    return Status::ok();
  }
  char magic[32] = {};
  unsigned long long segment = 0, offset = 0;
  if (std::sscanf(text.c_str(), "%31s %llu %llu", magic, &segment, &offset) != 3 ||
      std::string_view(magic) != "evroute-cursor-v1") {
    return Status::unavailable("malformed cursor file " + path_.string());
  }
  *position = DiskLog::Position{segment, offset};
  return Status::ok();
}

Status CursorFile::store(DiskLog::Position position) {
  const std::filesystem::path tmp = path_.string() + ".tmp";
  const std::string text = "evroute-cursor-v1 " + std::to_string(position.segment) + " " +
                           std::to_string(position.offset) + "\n";
  std::unique_ptr<WritableFile> file;
  Status status = fs_->open_writable(tmp, FileSystem::OpenMode::kTruncate, 0640, &file);
  if (status.is_ok()) status = file->append(text);
  if (status.is_ok()) status = file->sync();
  file.reset();
  if (status.is_ok()) status = fs_->rename(tmp, path_);
  if (!status.is_ok()) {
    (void)fs_->remove(tmp);  // the old cursor file stands; the temporary would only take space
    return status;
  }
  return fs_->sync_dir(path_.parent_path());
}

}  // namespace evroute
