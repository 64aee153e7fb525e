#include "evroute/disk_log.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace evroute {

// How it works. Appenders frame their records without the lock, then add them to `pending_` and
// wait. One of them at a time is the leader: it takes everything pending as one batch, writes it
// (rotating to a new segment first when the active one is full) and, under kAlways, syncs it — with
// no lock held, so more appenders queue up meanwhile and the next leader writes and syncs all of
// them at once (group commit). Readers open segment files by path and read up to `end_`, which the
// leader advances only after a batch is wholly written. A batch that fails is cut off again before
// the next one is written (see repair_tail), so end_ is always the end of the last good record.

namespace {

constexpr std::uint32_t kHeaderBytes = 8;  // u32 body length + u32 CRC-32
constexpr std::uint32_t kMaxBodyBytes = 256u << 20;
constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kReadChunk = 1u << 20;

void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }
void put_u16(std::string& out, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void set_u32(char* at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Reads little-endian integers and byte strings from a body; any overrun makes is_ok() false.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  std::uint64_t uint(int bytes) {
    if (!take(static_cast<std::size_t>(bytes))) return 0;
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) {
      v = (v << 8) |
          static_cast<unsigned char>(
              data_[pos_ - static_cast<std::size_t>(bytes) + static_cast<std::size_t>(i)]);
    }
    return v;
  }
  std::string_view bytes(std::size_t n) {
    if (!take(n)) return {};
    return data_.substr(pos_ - n, n);
  }
  bool is_ok() const { return ok_; }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  bool take(std::size_t n) {
    if (!ok_ || data_.size() - pos_ < n) return ok_ = false;
    pos_ += n;
    return true;
  }
  std::string_view data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

std::uint32_t checksum(std::string_view body) {
  return static_cast<std::uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
}

std::uint32_t load_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Decodes a record body; false if it is malformed.
bool decode(std::string_view body, Event* event, std::string* meta) {
  Reader r(body);
  if (r.uint(1) != kVersion) return false;
  const auto received_ns = static_cast<std::int64_t>(r.uint(8));
  const std::string_view id = r.bytes(r.uint(2));
  const std::size_t count = r.uint(1);
  std::vector<Attribute> attributes;
  attributes.reserve(count);
  for (std::size_t i = 0; i < count && r.is_ok(); ++i) {
    const std::string_view key = r.bytes(r.uint(2));
    const std::string_view value = r.bytes(r.uint(2));
    attributes.push_back({key, value});
  }
  const std::string_view meta_bytes = r.bytes(r.uint(4));
  const std::string_view payload = r.bytes(r.uint(4));
  if (!r.is_ok() || !r.at_end() || id.empty()) return false;
  *event = Event::make(id, payload, attributes,
                       Event::TimePoint(std::chrono::duration_cast<Event::TimePoint::duration>(
                           std::chrono::nanoseconds(received_ns))));
  meta->assign(meta_bytes);
  return true;
}

bool parse_segment_name(const std::string& name, std::uint64_t* number) {
  if (name.size() != 24 || name.compare(20, 4, ".seg") != 0) return false;
  if (name.find_first_not_of("0123456789") != 20) return false;
  *number = std::stoull(name.substr(0, 20));
  return *number > 0;
}

}  // namespace

std::uint64_t DiskLog::framed_size(const Record& record) {
  const Event& e = record.event;
  std::uint64_t body =
      1 + 8 + 2 + e.id().size() + 1 + 4 + record.meta.size() + 4 + e.payload().size();
  for (std::size_t i = 0; i < e.attribute_count(); ++i) {
    body += 4 + e.attribute_at(i).key.size() + e.attribute_at(i).value.size();
  }
  return kHeaderBytes + body;
}

namespace {

Status frame(const DiskLog::Record& record, std::string* out) {
  const Event& e = record.event;
  if (!e) return Status::invalid_argument("empty event");
  if (DiskLog::framed_size(record) - kHeaderBytes > kMaxBodyBytes) {
    return Status::invalid_argument("record of event " + std::string(e.id()) +
                                    " is larger than 256 MiB");
  }
  const std::size_t start = out->size();
  out->append(kHeaderBytes, '\0');
  put_u8(*out, kVersion);
  put_u64(*out, static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               e.received().time_since_epoch())
                                               .count()));
  put_u16(*out, static_cast<std::uint16_t>(e.id().size()));
  out->append(e.id());
  put_u8(*out, static_cast<std::uint8_t>(e.attribute_count()));
  for (std::size_t i = 0; i < e.attribute_count(); ++i) {
    const Attribute a = e.attribute_at(i);
    put_u16(*out, static_cast<std::uint16_t>(a.key.size()));
    out->append(a.key);
    put_u16(*out, static_cast<std::uint16_t>(a.value.size()));
    out->append(a.value);
  }
  put_u32(*out, static_cast<std::uint32_t>(record.meta.size()));
  out->append(record.meta);
  put_u32(*out, static_cast<std::uint32_t>(e.payload().size()));
  out->append(e.payload());
  const std::string_view body(out->data() + start + kHeaderBytes,
                              out->size() - start - kHeaderBytes);
  set_u32(out->data() + start, static_cast<std::uint32_t>(body.size()));
  set_u32(out->data() + start + 4, checksum(body));
  return Status::ok();
}

}  // namespace

DiskLog::DiskLog(Options options)
    : options_([&] {
        if (!options.fs) options.fs = FileSystem::posix();
        return std::move(options);
      }()),
      fs_(*options_.fs) {}

std::filesystem::path DiskLog::segment_path(std::uint64_t number) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(number));
  return options_.dir / name;
}

std::unique_ptr<DiskLog> DiskLog::open(Options options, Status* error, RecoveryReport* report) {
  if (options.max_bytes == 0 || options.segment_bytes == 0) {
    *error = Status::invalid_argument("DiskLog: max_bytes and segment_bytes must be > 0");
    return nullptr;
  }
  std::unique_ptr<DiskLog> log(new DiskLog(std::move(options)));
  RecoveryReport local;
  Status status = log->recover(report ? report : &local);
  if (!status.is_ok()) {
    *error = std::move(status);
    return nullptr;
  }
  if (log->options_.sync == Sync::kInterval) {
    log->sync_thread_ = std::thread([raw = log.get()] { raw->sync_loop(); });
  }
  *error = Status::ok();
  return log;
}

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
    const auto path = segment_path(number);
    std::string data;
    bool found = false;
    if (Status s = fs_.read_file(path, &data, &found); !s.is_ok()) return s;
    std::uint64_t offset = 0;
    std::string problem;
    while (offset < data.size()) {
      if (data.size() - offset < kHeaderBytes) {
        problem = "torn record header";
        break;
      }
      const std::uint32_t length = load_u32(data.data() + offset);
      const std::uint32_t crc = load_u32(data.data() + offset + 4);
      if (length == 0 || length > kMaxBodyBytes) {
        problem = "impossible record length " + std::to_string(length);
        break;
      }
      if (data.size() - offset - kHeaderBytes < length) {
        problem = "torn record (" + std::to_string(data.size() - offset - kHeaderBytes) + " of " +
                  std::to_string(length) + " bytes)";
        break;
      }
      const std::string_view body(data.data() + offset + kHeaderBytes, length);
      Event event;
      std::string meta;
      if (checksum(body) != crc) {
        problem = "checksum mismatch";
        break;
      }
      if (!decode(body, &event, &meta)) {
        problem = "malformed record";
        break;
      }
      ++report->records;
      offset += kHeaderBytes + length;
    }
    if (!problem.empty()) {
      const std::uint64_t cut = data.size() - offset;
      report->truncated_bytes += cut;
      report->problems.push_back(path.string() + " at offset " + std::to_string(offset) + ": " +
                                 problem + "; cut " + std::to_string(cut) + " bytes");
      std::unique_ptr<WritableFile> file;
      Status s = fs_.open_writable(path, FileSystem::OpenMode::kAppendExisting, 0640, &file);
      if (s.is_ok()) s = file->truncate(offset);
      if (s.is_ok()) s = file->sync();
      if (!s.is_ok()) return s;
    }
    segments_[number] = Segment{number, offset};
    live_bytes_ += offset;
  }
  report->segments = segments_.size();
  if (segments_.empty()) return open_active(1, /*create=*/true);
  return open_active(segments_.rbegin()->first, /*create=*/false);
}

Status DiskLog::open_active(std::uint64_t number, bool create) {
  const auto path = segment_path(number);
  std::unique_ptr<WritableFile> file;
  // A new segment's number is past every live one: a file by that name can only be what a failed
  // creation could not remove, so it is emptied rather than a reason to fail for good.
  const auto mode =
      create ? FileSystem::OpenMode::kTruncate : FileSystem::OpenMode::kAppendExisting;
  if (Status s = fs_.open_writable(path, mode, 0640, &file); !s.is_ok()) return s;
  if (create) {
    if (Status s = fs_.sync_dir(options_.dir); !s.is_ok()) {
      file.reset();
      (void)fs_.remove(path);  // not in segments_: never used
      return s;
    }
  }
  // Only now, when nothing can fail any more, does the new segment replace the old one.
  std::lock_guard<std::mutex> lock(mu_);
  if (create) segments_[number] = Segment{number, 0};
  active_ = std::move(file);
  end_ = Position{number, segments_[number].bytes};
  stats_.segments = segments_.size();
  stats_.live_bytes = live_bytes_;
  return Status::ok();
}

DiskLog::~DiskLog() { close(); }

Status DiskLog::append(std::span<const Record> records) {
  if (records.empty()) return Status::ok();
  std::string framed;
  for (const Record& record : records) {
    if (Status s = frame(record, &framed); !s.is_ok()) return s;
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return Status::closed("disk log is closed");
  if (live_bytes_ + writing_bytes_ + pending_bytes_ + framed.size() > options_.max_bytes) {
    ++stats_.rejected_full;
    return Status::full("disk log " + options_.dir.string() + " is full (max_bytes " +
                        std::to_string(options_.max_bytes) + ")");
  }
  if (!pending_) pending_ = std::make_shared<Batch>();
  const std::shared_ptr<Batch> mine = pending_;
  mine->bytes += framed;
  mine->records += records.size();
  pending_bytes_ += framed.size();

  for (;;) {
    if (mine->done) return mine->status;
    if (leader_active_) {
      written_cv_.wait(lock);
      continue;
    }
    // Lead: write everything pending as one batch (which includes ours: a batch is taken only by
    // a leader, and is done before the next leader can start).
    leader_active_ = true;
    const std::shared_ptr<Batch> batch = std::move(pending_);
    pending_.reset();
    writing_bytes_ = pending_bytes_;
    pending_bytes_ = 0;
    lock.unlock();

    const Status status = write_batch(batch->bytes);

    lock.lock();
    leader_active_ = false;
    writing_bytes_ = 0;
    if (status.is_ok()) {
      segments_[end_.segment].bytes = end_.offset + batch->bytes.size();
      end_.offset += batch->bytes.size();
      live_bytes_ += batch->bytes.size();
      stats_.live_bytes = live_bytes_;
      stats_.segments = segments_.size();
      stats_.appended_records += batch->records;
      stats_.appended_bytes += batch->bytes.size();
      ++stats_.writes;
      if (options_.sync == Sync::kAlways)
        ++stats_.syncs;
      else
        dirty_ = true;
      write_error_ = Status::ok();
    } else {
      ++stats_.write_errors;
      write_error_ = status;
      room_cv_.notify_all();  // the failed batch's reservation is free again
    }
    batch->status = status;
    batch->done = true;
    written_cv_.notify_all();
  }
}

Status DiskLog::repair_tail() {
  if (!tail_dirty_) return Status::ok();
  // end_ changes only under the leader, which is us.
  if (Status s = active_->truncate(end_.offset); !s.is_ok()) return s;
  tail_dirty_ = false;
  return Status::ok();
}

Status DiskLog::write_batch(const std::string& bytes) {
  // A failed batch before this one may have left part of itself behind.
  if (Status s = repair_tail(); !s.is_ok()) return s;
  if (end_.offset > 0 && end_.offset >= options_.segment_bytes) {
    std::lock_guard<std::mutex> sync_lock(sync_mu_);
    // The old segment is complete: make it durable before moving on. On failure nothing changes
    // (the old segment stays active) and the next batch tries again.
    if (options_.sync != Sync::kNever) {
      if (Status s = active_->sync(); !s.is_ok()) return s;
    }
    if (Status s = open_active(end_.segment + 1, /*create=*/true); !s.is_ok()) return s;
  }
  std::uint64_t written = 0;
  Status status = active_->append(bytes, &written);
  if (status.is_ok() && options_.sync == Sync::kAlways) status = active_->sync();
  if (!status.is_ok()) {
    // Nothing of this batch may stay: its appenders are told it failed. (Records that were written
    // but not synced would be readable after a restart: a retry would then duplicate them.)
    tail_dirty_ = true;
    (void)repair_tail();  // if this fails too, the next batch tries again before writing
  }
  return status;
}

Status DiskLog::write_probe() {
  if (Status s = repair_tail(); !s.is_ok()) return s;
  const auto path = options_.dir / "probe";
  std::unique_ptr<WritableFile> file;
  Status status = fs_.open_writable(path, FileSystem::OpenMode::kTruncate, 0640, &file);
  if (status.is_ok()) status = file->append(std::string(4096, '\0'));
  if (status.is_ok()) status = file->sync();
  file.reset();
  (void)fs_.remove(path);
  return status;
}

Status DiskLog::probe() {
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return Status::closed("disk log is closed");
  const auto health_locked = [&] { return write_error_.is_ok() ? sync_error_ : write_error_; };
  if (write_error_.is_ok() || leader_active_) return health_locked();
  leader_active_ = true;  // keeps appenders' leaders away while the tail may be cut
  lock.unlock();
  const Status status = write_probe();
  lock.lock();
  leader_active_ = false;
  if (status.is_ok()) write_error_ = Status::ok();
  written_cv_.notify_all();  // appenders that queued meanwhile need a leader
  return health_locked();
}

Status DiskLog::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!write_error_.is_ok()) return write_error_;
  return sync_error_;
}

Status DiskLog::sync_active() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!dirty_) return Status::ok();
    dirty_ = false;
    ++stats_.syncs;
  }
  Status status;
  {
    std::lock_guard<std::mutex> sync_lock(sync_mu_);
    if (active_) status = active_->sync();
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!status.is_ok()) {
    dirty_ = true;  // the next interval tries again
    ++stats_.write_errors;
  }
  sync_error_ = status;
  return status;
}

void DiskLog::sync_loop() {
  std::unique_lock<std::mutex> lock(sync_mu_);
  for (;;) {
    if (sync_cv_.wait_for(lock, options_.sync_interval, [&] { return stop_sync_; })) return;
    lock.unlock();
    (void)sync_active();  // a failure shows in health() and at close(); appends go on
    lock.lock();
  }
}

Status DiskLog::read(Position from, std::size_t max_records, std::vector<ReadRecord>* out) const {
  Position end;
  std::map<std::uint64_t, std::uint64_t> sizes;  // segment -> readable bytes
  {
    std::lock_guard<std::mutex> lock(mu_);
    end = end_;
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
    std::uint64_t chunk_start = pos.offset;
    chunk.clear();
    Status status = Status::ok();
    while (pos.offset < limit && added < max_records) {
      std::size_t have = chunk.size() - static_cast<std::size_t>(pos.offset - chunk_start);
      std::uint32_t length =
          have >= kHeaderBytes ? load_u32(chunk.data() + (pos.offset - chunk_start)) : 0;
      if (have < kHeaderBytes || have < kHeaderBytes + length) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(
            limit - pos.offset, std::max<std::uint64_t>(kReadChunk, kHeaderBytes + length)));
        if (status = file->read_at(pos.offset, want, &chunk); !status.is_ok()) break;
        if (chunk.size() < kHeaderBytes) {
          status = Status::unavailable("cannot read " + path.string() + ": short file");
          break;
        }
        chunk_start = pos.offset;
        have = chunk.size();
        length = load_u32(chunk.data());
        if (length == 0 || length > kMaxBodyBytes || have < kHeaderBytes + length) {
          status = Status::unavailable("corrupt record in " + path.string() + " at offset " +
                                       std::to_string(pos.offset));
          break;
        }
      }
      const char* at = chunk.data() + (pos.offset - chunk_start);
      const std::string_view body(at + kHeaderBytes, length);
      ReadRecord record;
      if (checksum(body) != load_u32(at + 4) || !decode(body, &record.event, &record.meta)) {
        status = Status::unavailable("corrupt record in " + path.string() + " at offset " +
                                     std::to_string(pos.offset));
        break;
      }
      record.position = pos;
      pos.offset += kHeaderBytes + length;
      record.next = pos;
      out->push_back(std::move(record));
      ++added;
    }
    if (!status.is_ok()) return status;
  }
  return Status::ok();
}

bool DiskLog::wait_beyond(Position from, std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return written_cv_.wait_until(lock, deadline, [&] { return closed_ || end_ > from; }) && !closed_;
}

DiskLog::Position DiskLog::begin() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Position{segments_.begin()->first, 0};
}

DiskLog::Position DiskLog::end() const {
  std::lock_guard<std::mutex> lock(mu_);
  return end_;
}

Status DiskLog::release(Position floor) {
  std::lock_guard<std::mutex> lock(mu_);
  Status status = Status::ok();
  for (auto it = segments_.begin(); it != segments_.end();) {
    const Segment& segment = it->second;
    const bool finished = segment.number < floor.segment ||
                          (segment.number == floor.segment && floor.offset >= segment.bytes);
    if (!finished || segment.number == end_.segment) break;
    if (Status s = fs_.remove(segment_path(segment.number)); !s.is_ok() && errno != ENOENT) {
      status = s;
      break;
    }
    live_bytes_ -= segment.bytes;
    it = segments_.erase(it);
  }
  stats_.live_bytes = live_bytes_;
  stats_.segments = segments_.size();
  room_cv_.notify_all();
  return status;
}

bool DiskLog::wait_for_room(std::uint64_t bytes,
                            std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return room_cv_.wait_until(lock, deadline, [&] {
    return closed_ || live_bytes_ + writing_bytes_ + pending_bytes_ + bytes <= options_.max_bytes;
  }) && !closed_;
}

Status DiskLog::close() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (closed_) return Status::ok();
    closed_ = true;
    written_cv_.notify_all();
    room_cv_.notify_all();
    // Appends already admitted still get written: wait for them.
    written_cv_.wait(lock, [&] { return !leader_active_ && !pending_; });
    dirty_ = true;
  }
  {
    std::lock_guard<std::mutex> sync_lock(sync_mu_);
    stop_sync_ = true;
    sync_cv_.notify_all();
  }
  if (sync_thread_.joinable()) sync_thread_.join();
  Status status = sync_active();
  std::lock_guard<std::mutex> sync_lock(sync_mu_);
  if (tail_dirty_ && active_) (void)active_->truncate(end_.offset);  // a last try
  active_.reset();
  return status;
}

DiskLog::Stats DiskLog::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

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
