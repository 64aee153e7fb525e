// inspect_disk_log(): what the DiskLog (and DurableQueue cursor) in a directory holds, read without
// opening the log — for looking at a queue offline, e.g. `evrouted --inspect-queues`.
//
// DiskLog::open() recovers: it cuts a torn or corrupt tail off a segment, creates the directory
// and a first segment. inspect_disk_log() does none of that: it only lists the directory and reads
// the segment files and `cursor` (DurableQueue's CursorFile), and checks every record with the one
// record format recovery uses (so what it calls a problem is exactly what open() would cut). It
// never writes, creates, truncates or removes anything.
//
// It reports the segments, the good records and the bytes of the segment files, the oldest and
// newest good record (its event id and received time), the stored cursor, and how many of the
// records are pending (at or after the cursor, as DurableQueue::open counts them: a cursor before
// the oldest segment counts from it, one past the end counts nothing) or delivered (before the
// cursor, still on disk: segments wholly behind it are deleted by the queue, so this is not a count
// of everything ever delivered). Per segment, the first record that does not check is a Problem:
// where it starts, what is wrong, and the bytes from there to the end of the segment (what open()
// would cut; the records after it in that segment are not counted). A torn tail (the file ends
// inside a record: typically a crash during a write) is told apart from corruption (a bad checksum,
// an impossible length, a body that does not decode). A cursor file that does not parse is a
// problem too (DurableQueue::open refuses it).
//
// Errors: a directory or file that cannot be read is kUnavailable with the path and errno text. A
// missing directory is not an error: an inspection with exists == false (an empty queue).
//
// Thread-safety: safe from any thread; inspecting a log that a running DiskLog writes to gives a
// view that may be torn at its end (the writer's last batch in progress). Uses `fs` (null:
// FileSystem::posix()) and keeps nothing of it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "evroute/disk_log.h"
#include "evroute/event.h"
#include "evroute/file_system.h"
#include "evroute/result.h"

namespace evroute {

struct DiskLogInspection {
  struct RecordInfo {
    DiskLog::Position position;
    std::string event_id;
    Event::TimePoint received;
  };

  struct Problem {
    enum class Kind {
      kTornTail,   // a segment ends inside a record (torn header or body)
      kCorrupt,    // a record's checksum, length or body is wrong
      kBadCursor,  // the cursor file does not parse
    };
    Kind kind = Kind::kCorrupt;
    std::filesystem::path file;     // the segment (or cursor) file
    std::uint64_t offset = 0;       // where the bad record starts (0 for a cursor)
    std::uint64_t bytes_after = 0;  // from there to the end of the file
    std::string what;               // "checksum mismatch", "torn record (3 of 40 bytes)"
  };

  bool exists = false;  // the directory exists
  std::uint64_t segments = 0;
  std::uint64_t records = 0;  // good records
  std::uint64_t bytes = 0;    // sizes of the segment files (problems included)
  std::optional<RecordInfo> oldest, newest;
  std::optional<RecordInfo> next_pending;   // the oldest pending record
  std::optional<DiskLog::Position> cursor;  // as stored; none when no cursor file
  std::uint64_t pending = 0;
  std::uint64_t delivered = 0;    // still on disk (see above)
  std::vector<Problem> problems;  // in segment order; a bad cursor last

  bool clean() const { return problems.empty(); }
};

Result<DiskLogInspection> inspect_disk_log(const std::filesystem::path& dir,
                                           std::shared_ptr<FileSystem> fs = nullptr);

}  // namespace evroute
