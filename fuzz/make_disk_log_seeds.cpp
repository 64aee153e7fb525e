// make_disk_log_seeds DIR: writes the seed inputs of fuzz_disk_log into DIR (run once; the output
// is committed as fuzz/corpus/fuzz_disk_log). Each seed is real DiskLog output — segments written
// by DiskLog::append, cursors by CursorFile::store — prefixed with fuzz_disk_log's flags byte (see
// fuzz_disk_log.cpp), some of them then damaged the way a crash would (torn tail, flipped byte).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "evroute/disk_log.h"

namespace fs = std::filesystem;
using evroute::DiskLog;
using evroute::Event;

namespace {

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The bytes of one segment holding `events` (meta "sink-a,sink-b" on every other one).
std::string segment(const std::vector<Event>& events, std::vector<std::size_t>* starts = nullptr) {
  const fs::path dir = fs::temp_directory_path() / "evroute-disk-log-seed";
  fs::remove_all(dir);
  evroute::Status status;
  auto log = DiskLog::open({.dir = dir, .sync = DiskLog::Sync::kNever}, &status);
  if (!log) throw std::runtime_error(status.message());
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (starts) starts->push_back(log->end().offset);
    const DiskLog::Record record{events[i], i % 2 ? "sink-a,sink-b" : ""};
    if (evroute::Status s = log->append({&record, 1}); !s.is_ok())
      throw std::runtime_error(s.message());
  }
  (void)log->close();
  std::string bytes = slurp(dir / "00000000000000000001.seg");
  fs::remove_all(dir);
  return bytes;
}

void write(const fs::path& dir, const std::string& name, char flags, const std::string& bytes) {
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.put(flags);
  out << bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  fs::create_directories(out);
  const auto t = Event::TimePoint(std::chrono::seconds(1767225600));
  const std::vector<Event> events = {
      Event::make("e1", R"({"id":"e1","type":"order.created","n":1})", {{"type", "order.created"}},
                  t),
      Event::make("0190f5c2-7b1e-7000-8000-000000000002", R"({"id":"x"})", {}, t),
      Event::make("e3", R"({"id":"e3","type":"a","source":"s"})", {{"type", "a"}, {"source", "s"}},
                  t),
      Event::make("ü", "{}", {}, Event::TimePoint{}),
  };
  std::vector<std::size_t> starts;
  const std::string several = segment(events, &starts);
  const std::string one = segment({events[0]});
  const std::string big = segment({Event::make("big", std::string(5000, 'x'), {}, t), events[2]});

  write(out, "empty", 0, "");
  write(out, "one_record", 0, one);
  write(out, "several", 0, several);
  write(out, "rotated_big", 0, big);
  write(out, "torn_tail", 0, several.substr(0, several.size() - 3));
  write(out, "torn_header", 0, several.substr(0, starts[2] + 5));
  std::string flipped = several;
  flipped[starts[1] + 20] ^= 0x40;
  write(out, "bad_checksum", 0, flipped);
  write(out, "rechecksummed", 1, flipped);  // flags bit 0: the harness recomputes the CRCs
  std::string zero_length = several;
  for (int i = 0; i < 4; ++i) zero_length[starts[3] + i] = 0;
  write(out, "zero_length", 0, zero_length);
  // Flags bit 1: a cursor line first (segment 3 is where the harness puts the data).
  write(out, "cursor_at_record", 2,
        "evroute-cursor-v1 3 " + std::to_string(starts[2]) + "\n" + several);
  write(out, "cursor_mid_record", 2,
        "evroute-cursor-v1 3 " + std::to_string(starts[1] + 3) + "\n" + several);
  write(out, "cursor_malformed", 2, "evroute-cursor-v1 x\n" + one);
  // Flags bit 2: two segments, split at "EVSEG2".
  write(out, "two_segments", 4, several + "EVSEG2" + one);
  return 0;
}
