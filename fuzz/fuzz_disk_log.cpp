// fuzz_disk_log: DiskLog recovery and reading (lib/include/evroute/disk_log.h) on arbitrary segment
// files, and CursorFile::load on arbitrary cursor files.
//
// Input: byte 0 holds flags, the rest is the segment data:
//   bit 0  re-checksum: every record whose length field fits gets its CRC-32 recomputed before the
//          file is written, so that the fuzzer reaches the record decoder, not just the checksum;
//   bit 1  cursor: the data up to the first '\n' is written (with the '\n') as the cursor file;
//   bit 2  two segments: the data is split at the first "EVSEG2"; the part after it is the second
//          segment (segment numbers 3 and 5: a gap, as after release()).
// The files go into a fresh directory under $EVROUTE_FUZZ_TMP, else /dev/shm, else /tmp.
// Properties: open() succeeds (recovery cuts bad tails, never fails to start on them); reading
// from begin() returns exactly the records recovery counted, each well formed (non-empty event,
// record extent = framed_size, positions increasing); appending them all again and reading the new
// ones back gives the same events and meta; a stored cursor, clamped as DurableQueue does, can be
// read from without crashing (an error status is fine).
#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "evroute/disk_log.h"
#include "fuzz_check.h"

namespace {

namespace fs = std::filesystem;
using evroute::DiskLog;

volatile std::uint64_t g_keep;  // what check_record() read goes here: the reads must happen
using evroute_fuzz::require;

// A directory of this process's own, removed at exit (kept on a crash, for a look at the files).
// Never destroyed: the exit handler still needs it.
const fs::path& base_dir() {
  static const fs::path* const base = [] {
    std::string root = "/tmp";
    if (const char* env = std::getenv("EVROUTE_FUZZ_TMP"); env && *env) {
      root = env;
    } else if (::access("/dev/shm", W_OK) == 0) {
      root = "/dev/shm";
    }
    std::string templ = root + "/evroute-fuzz-disk-log-XXXXXX";
    if (!::mkdtemp(templ.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(base_dir(), ec);
    });
    return new fs::path(templ);
  }();
  return *base;
}

std::uint32_t load_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void fix_checksums(std::string& data) {
  std::size_t offset = 0;
  while (data.size() - offset >= 8) {
    const std::uint32_t length = load_u32(data.data() + offset);
    if (length == 0 || length > data.size() - offset - 8) break;
    const auto crc = static_cast<std::uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(data.data() + offset + 8), length));
    for (int i = 0; i < 4; ++i) data[offset + 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    offset += 8 + length;
  }
}

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  require(static_cast<bool>(out), "harness: cannot write", path.string());
}

fs::path segment_path(const fs::path& dir, int number) {
  char name[32];
  std::snprintf(name, sizeof name, "%020d.seg", number);
  return dir / name;
}

// Touches every byte of a record (ASan checks the reads) and checks its shape.
std::uint64_t check_record(const DiskLog::ReadRecord& r) {
  require(static_cast<bool>(r.event), "read an empty event");
  require(!r.event.id().empty(), "read an event with an empty id");
  require(r.position < r.next, "record does not advance the position");
  require(r.next.segment == r.position.segment, "record spans segments");
  const std::uint64_t extent = r.next.offset - r.position.offset;
  require(extent == DiskLog::framed_size(DiskLog::Record{r.event, r.meta}),
          "record extent differs from its framed size", r.event.id());
  std::uint64_t sum = 0;
  auto add = [&](std::string_view s) {
    for (char c : s) sum = sum * 31 + static_cast<unsigned char>(c);
  };
  add(r.event.id());
  add(r.event.payload());
  add(r.meta);
  for (std::size_t i = 0; i < r.event.attribute_count(); ++i) {
    add(r.event.attribute_at(i).key);
    add(r.event.attribute_at(i).value);
  }
  return sum;
}

// Every record from `from` to the end, read in small batches; OK status required.
std::vector<DiskLog::ReadRecord> read_all(const DiskLog& log, DiskLog::Position from) {
  std::vector<DiskLog::ReadRecord> all;
  for (int round = 0; round < 100000; ++round) {
    std::vector<DiskLog::ReadRecord> batch;
    const evroute::Status s = log.read(from, 7, &batch);
    require(s.is_ok(), "read of a recovered log failed", s.message());
    if (batch.empty()) return all;
    from = batch.back().next;
    for (auto& r : batch) all.push_back(std::move(r));
  }
  require(false, "read does not reach the end");
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  const fs::path dir = base_dir() / "log";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);

  if (flags & 2) {
    const std::size_t nl = rest.find('\n');
    const std::size_t cut = nl == std::string::npos ? rest.size() : nl + 1;
    write_file(dir / "cursor", std::string_view(rest).substr(0, cut));
    rest.erase(0, cut);
  }
  std::string second;
  bool two = false;
  if (flags & 4) {
    if (const std::size_t at = rest.find("EVSEG2"); at != std::string::npos) {
      second = rest.substr(at + 6);
      rest.erase(at);
      two = true;
    }
  }
  if (flags & 1) {
    fix_checksums(rest);
    fix_checksums(second);
  }
  write_file(segment_path(dir, 3), rest);
  if (two) write_file(segment_path(dir, 5), second);

  DiskLog::Options options;
  options.dir = dir;
  options.segment_bytes = 4096;  // re-appending rotates
  options.sync = DiskLog::Sync::kNever;
  evroute::Status status;
  DiskLog::RecoveryReport report;
  std::unique_ptr<DiskLog> log = DiskLog::open(options, &status, &report);
  require(log != nullptr, "open failed on a readable directory", status.message());

  const std::vector<DiskLog::ReadRecord> recovered = read_all(*log, log->begin());
  require(recovered.size() == report.records, "read found other than the records recovery counted",
          std::to_string(recovered.size()) + " vs " + std::to_string(report.records));
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < recovered.size(); ++i) {
    sum += check_record(recovered[i]);
    if (i > 0) require(recovered[i - 1].next <= recovered[i].position, "records out of order");
  }

  if (flags & 2) {
    DiskLog::Position cursor;
    if (evroute::CursorFile(dir / "cursor").load(&cursor).is_ok()) {
      if (cursor < log->begin()) cursor = log->begin();  // as DurableQueue::open does
      if (cursor > log->end()) cursor = log->end();
      std::vector<DiskLog::ReadRecord> from_cursor;
      (void)log->read(cursor, recovered.size() + 1, &from_cursor);  // mid-record: an error is fine
      for (const auto& r : from_cursor) sum += check_record(r);
    }
  }

  if (!recovered.empty()) {
    std::vector<DiskLog::Record> again;
    for (const auto& r : recovered) again.push_back(DiskLog::Record{r.event, r.meta});
    const DiskLog::Position end = log->end();
    const evroute::Status appended = log->append(again);
    require(appended.is_ok(), "re-append of recovered records failed", appended.message());
    const std::vector<DiskLog::ReadRecord> back = read_all(*log, end);
    require(back.size() == recovered.size(), "re-appended records not all read back");
    for (std::size_t i = 0; i < back.size(); ++i) {
      const auto& a = recovered[i].event;
      const auto& b = back[i].event;
      sum += check_record(back[i]);
      require(a.id() == b.id() && a.payload() == b.payload() && a.received() == b.received() &&
                  a.attribute_count() == b.attribute_count() && recovered[i].meta == back[i].meta,
              "re-appended record reads back different", a.id());
      for (std::size_t k = 0; k < a.attribute_count(); ++k) {
        require(a.attribute_at(k).key == b.attribute_at(k).key &&
                    a.attribute_at(k).value == b.attribute_at(k).value,
                "re-appended attribute reads back different", a.attribute_at(k).key);
      }
    }
  }
  require(log->close().is_ok(), "close failed");
  g_keep = sum;
  return 0;
}
