// The file sink's files on disk: date templates in paths, and the rotated files of a path.
//
// Naming. A file at PATH rotates to PATH.N, where N is one more than the highest N already on disk
// (1 for the first): PATH.1 is the oldest rotated file, the highest N the newest. A rotated file is
// never renamed again, so a compressor, a shipper or a `tail -F` reading it is never disturbed, and
// `ls -v` lists them in order. Compressed, PATH.N becomes PATH.N.gz.
//
// Compression is crash-safe: PATH.N is copied to PATH.N.gz.tmp, which is fsync'ed and renamed to
// PATH.N.gz; only then is PATH.N removed. A crash at any point leaves PATH.N intact (and maybe a
// complete PATH.N.gz beside it, or a stale PATH.N.gz.tmp, which remove_stale_temporaries()
// deletes).
//
// Thread-safety: free functions without shared state; callers serialize work on one PATH.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "evroute/status.h"

namespace evrouted {

// Expands strftime(3) conversions in `path_template` for time `t` in UTC ("%Y-%m-%d" ->
// "2026-11-26"). A path without '%' is returned as is.
std::string expand_path_template(const std::string& path_template,
                                 std::chrono::system_clock::time_point t);
// Why `path_template` is not a usable template (a conversion evroute does not allow: only the
// date and time ones, whose values never contain '/'): OK, or kInvalidArgument saying why.
evroute::Status check_path_template(const std::string& path_template);

struct RotatedFile {
  std::uint64_t index = 0;  // N
  std::string path;         // PATH.N or PATH.N.gz
  bool gzipped = false;
};

// The rotated files of `path` (PATH.N and PATH.N.gz, not temporaries), by index, then plain first.
std::vector<RotatedFile> list_rotated(const std::string& path);
// One more than the highest N among PATH.N, PATH.N.gz and PATH.N.gz.tmp (1 when there is none).
std::uint64_t next_rotation_index(const std::string& path);
// Deletes PATH.N.gz.tmp files left by a compression that a crash interrupted.
void remove_stale_temporaries(const std::string& path);
// Deletes the rotated files of all but the `keep` highest indices. Returns the paths removed.
std::vector<std::string> prune_rotated(const std::string& path, std::uint64_t keep);

// Compresses `file` to `file`.gz (as described above) and removes `file`. On failure `file` is
// left as it was and the temporary is removed.
evroute::Status gzip_file(const std::string& file);

// fsync(2)s the directory holding `path`, so that a file created or renamed in it survives a crash.
void sync_parent_directory(const std::string& path);

}  // namespace evrouted
