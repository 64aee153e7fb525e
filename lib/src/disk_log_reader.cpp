// DiskLog's reading side: read() opens segment files by path and reads their records, a chunk at a
// time, up to what the leader has written (end_); wait_beyond() waits for more.
#include <algorithm>
#include <cerrno>
#include <iterator>
#include <map>

#include "disk_log_record.h"
#include "evroute/disk_log.h"

namespace evroute {
namespace {

// How much one read takes at a time: what the records asked for need, judged by the records read
// so far, at least kMinReadChunk and at most kMaxReadChunk (a larger record is read whole). A
// fixed 1 MiB made a worker that takes 256 records of 300 bytes read (and zero) 13 times what it
// used, the rest again on the next read (bench/README.md, issue 15).
constexpr std::size_t kMinReadChunk = 64u << 10;
constexpr std::size_t kMaxReadChunk = 1u << 20;

// Reads the records of one segment file from *pos up to `limit` (its readable bytes), at most
// `max_records` in all counting the *added already read, appending them to *out. `chunk` is the
// read buffer (reused from one segment to the next).
Status read_segment(ReadableFile& file, const std::filesystem::path& path, std::uint64_t limit,
                    std::size_t max_records, DiskLog::Position* pos, std::string& chunk,
                    std::vector<DiskLog::ReadRecord>* out, std::size_t* added) {
  const auto corrupt = [&] {
    return Status::unavailable("corrupt record in " + path.string() + " at offset " +
                               std::to_string(pos->offset));
  };
  const std::uint32_t header = internal::kRecordHeaderBytes;
  std::uint64_t chunk_start = pos->offset;
  const std::uint64_t start = pos->offset;
  const std::size_t first_added = *added;
  chunk.clear();
  while (pos->offset < limit && *added < max_records) {
    std::size_t have = chunk.size() - static_cast<std::size_t>(pos->offset - chunk_start);
    std::uint32_t length =
        have >= header ? internal::record_body_length(chunk.data() + (pos->offset - chunk_start))
                       : 0;
    if (have < header || have < header + length) {
      // The record is not wholly in the chunk: read from its start, all of it if it is larger.
      const std::uint64_t read_so_far = pos->offset - start;
      const std::uint64_t estimate =
          *added > first_added ? read_so_far / (*added - first_added) * (max_records - *added)
                               : kMinReadChunk;
      const std::uint64_t chunk_bytes =
          std::clamp<std::uint64_t>(estimate, kMinReadChunk, kMaxReadChunk);
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(
          limit - pos->offset, std::max<std::uint64_t>(chunk_bytes, header + length)));
      if (Status s = file.read_at(pos->offset, want, &chunk); !s.is_ok()) return s;
      if (chunk.size() < header) {
        return Status::unavailable("cannot read " + path.string() + ": short file");
      }
      chunk_start = pos->offset;
      // The header was not read before: now that its length is known, a record larger than the
      // chunk is read whole (decoding a part of it would call it corrupt).
      length = internal::record_body_length(chunk.data());
      if (chunk.size() < header + std::uint64_t{length} && pos->offset + header + length <= limit) {
        if (Status s = file.read_at(pos->offset, header + std::size_t{length}, &chunk);
            !s.is_ok()) {
          return s;
        }
      }
    }
    DiskLog::ReadRecord record;
    const internal::RecordCheck check = internal::decode_record(
        std::string_view(chunk).substr(static_cast<std::size_t>(pos->offset - chunk_start)),
        &record.event, &record.meta);
    if (!check.is_ok()) return corrupt();
    record.position = *pos;
    pos->offset += check.extent();
    record.next = *pos;
    out->push_back(std::move(record));
    ++*added;
  }
  return Status::ok();
}

}  // namespace

bool DiskLog::cache_serves(Position from) const {
  while (!cache_.empty() && cache_.front().position < from) {
    cache_held_ -= cache_.front().size;
    cache_.pop_front();
  }
  if (cache_.empty()) return false;
  const Position first = cache_.front().position;
  if (first == from) return true;
  // `from` may be the end of a completed segment, and the cache's first record the start of the
  // next: the same place in the log.
  if (first.offset != 0) return false;
  const auto it = segments_.find(from.segment);
  return it != segments_.end() && it->second.bytes == from.offset &&
         std::next(it) != segments_.end() && std::next(it)->first == first.segment;
}

Status DiskLog::read(Position from, std::size_t max_records, std::vector<ReadRecord>* out) const {
  std::map<std::uint64_t, std::uint64_t> sizes;  // segment -> readable bytes
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (max_records > 0 && cache_serves(from)) {
      std::size_t taken = 0;
      for (; taken < max_records && !cache_.empty(); ++taken) {
        Cached& record = cache_.front();
        const Position next{record.position.segment, record.position.offset + record.size};
        out->push_back(
            ReadRecord{record.position, next, std::move(record.event), std::move(record.meta)});
        cache_held_ -= record.size;
        cache_.pop_front();
      }
      stats_.cache_hits += taken;
      return Status::ok();
    }
    for (const auto& [number, segment] : segments_) {
      if (number >= from.segment)
        sizes[number] = number == end_.segment ? end_.offset : segment.bytes;
    }
  }
  Position pos = from;
  std::size_t added = 0;
  std::string chunk;
  for (auto it = sizes.begin(); it != sizes.end() && added < max_records; ++it) {
    if (it->first != pos.segment) pos = Position{it->first, 0};  // reclaimed or finished: move on
    const std::uint64_t limit = it->second;
    if (pos.offset >= limit) continue;
    const auto path = segment_path(pos.segment);
    std::unique_ptr<ReadableFile> file;
    if (Status s = fs_.open_readable(path, &file); !s.is_ok()) {
      if (errno == ENOENT) continue;  // released meanwhile
      return s;
    }
    if (Status s = read_segment(*file, path, limit, max_records, &pos, chunk, out, &added);
        !s.is_ok()) {
      return s;
    }
  }
  return Status::ok();
}

bool DiskLog::wait_beyond(Position from, std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return written_cv_.wait_until(lock, deadline, [&] { return closed_ || end_ > from; }) && !closed_;
}

}  // namespace evroute
