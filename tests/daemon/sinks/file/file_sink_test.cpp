// The file sink: whole lines, never interleaved, reopen for logrotate; rotation (size, interval,
// keep), gzip, date templates, fsync modes and their config errors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "config.h"
#include "sinks/file/file_rotation.h"
#include "sinks/file/file_sink.h"
#include "support/daemon_process.h"
#include "support/faulty_file_system.h"

namespace evrouted {
namespace {

namespace fs = std::filesystem;

evroute::Event ev(const std::string& id, std::size_t pad = 0) {
  return evroute::Event::make(id,
                              R"({"id":")" + id + R"(","pad":")" + std::string(pad, 'x') + "\"}");
}

TEST(FileSink, AppendsLinesAndCreatesParentDirectories) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "a/b/events.ndjson";
  {
    FileSink sink(FileSinkConfig(path.string()));
    ASSERT_TRUE(sink.write(ev("1")).is_ok());
    ASSERT_TRUE(sink.write(ev("2")).is_ok());
    EXPECT_TRUE(sink.close().is_ok());
    EXPECT_EQ(sink.write(ev("3")).code(), evroute::Code::kClosed);
  }
  FileSink again(FileSinkConfig(path.string()));  // appends, never truncates
  ASSERT_TRUE(again.write(ev("4")).is_ok());
  EXPECT_EQ(evtest::read_lines(path),
            (std::vector<std::string>{R"({"id":"1","pad":""})", R"({"id":"2","pad":""})",
                                      R"({"id":"4","pad":""})"}));
  fs::remove_all(dir);
}

TEST(FileSink, ConcurrentWritersNeverInterleaveLines) {
  const fs::path dir = evtest::make_temp_dir();
  FileSink sink(FileSinkConfig((dir / "e.ndjson").string()));
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        ASSERT_TRUE(sink.write(ev(std::to_string(t) + "-" + std::to_string(i), 5000)).is_ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  auto lines = evtest::read_lines(dir / "e.ndjson");
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kEach));
  std::set<std::string> ids;
  for (const auto& line : lines) {
    ASSERT_EQ(line.size(), 5018 + line.substr(7, line.find('"', 7) - 7).size()) << "torn line";
    ids.insert(line.substr(7, line.find('"', 7) - 7));
  }
  EXPECT_EQ(ids.size(), lines.size());
  fs::remove_all(dir);
}

TEST(FileSink, ReopenMovesToTheNewFileWithoutLosingALine) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "e.ndjson";
  FileSink sink(FileSinkConfig(path.string()));
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      ASSERT_TRUE(sink.write(ev(std::to_string(i))).is_ok());
      ++written;
    }
  });
  for (int r = 1; r <= 5; ++r) {  // rotate five times while writing
    while (written < r * 200) std::this_thread::yield();
    fs::rename(path, dir / ("e.ndjson." + std::to_string(r)));
    ASSERT_TRUE(sink.reopen().is_ok());
  }
  stop = true;
  writer.join();
  std::size_t total = evtest::read_lines(path).size();
  for (int r = 1; r <= 5; ++r) {
    total += evtest::read_lines(dir / ("e.ndjson." + std::to_string(r))).size();
  }
  EXPECT_EQ(total, static_cast<std::size_t>(written.load()));
  fs::remove_all(dir);
}

TEST(FileSink, UnopenablePathThrowsWithTheReason) {
  try {
    FileSink sink(FileSinkConfig("/proc/evroute-no/such.ndjson"));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/evroute-no"), std::string::npos) << e.what();
  }
}

// A wall clock the test moves by hand.
class TestClock {
 public:
  explicit TestClock(std::chrono::system_clock::time_point start) : now_(start) {}
  FileSink::WallClock fn() {
    return [this] { return now_.load(); };
  }
  void advance(std::chrono::seconds d) { now_ = now_.load() + d; }

 private:
  std::atomic<std::chrono::system_clock::time_point> now_;
};

// 2026-11-26T23:59:00Z
const auto kLateEvening = std::chrono::system_clock::from_time_t(1795737540);

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

FileSinkConfig rotating(const fs::path& path, std::uint64_t max_bytes, std::uint64_t keep = 100) {
  FileSinkConfig c;
  c.path = path.string();
  c.rotate = FileRotation{.max_bytes = max_bytes, .keep = keep};
  return c;
}

// 20 lines of 30-31 bytes rotated at max_bytes 100: three per file, in order, none split, lost or
// doubled.
void expect_twenty_lines_in_files_of_three(const fs::path& dir, const fs::path& path,
                                           const std::vector<std::string>& expected) {
  EXPECT_EQ(evtest::read_rotated_lines(path), expected);
  EXPECT_EQ(names_in(dir),
            (std::vector<std::string>{"e.ndjson", "e.ndjson.1", "e.ndjson.2", "e.ndjson.3",
                                      "e.ndjson.4", "e.ndjson.5", "e.ndjson.6"}));
  for (int n = 1; n <= 6; ++n) {
    const fs::path f = dir / ("e.ndjson." + std::to_string(n));
    EXPECT_LE(fs::file_size(f), 100u) << f;
    EXPECT_EQ(evtest::read_lines(f).size(), 3u) << f;
  }
}

TEST(FileSinkRotation, BySizeRotatesBetweenLinesNeverPastMaxBytes) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "e.ndjson";
  {
    FileSink sink(rotating(path, 100));
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(sink.write(ev(std::to_string(i), 10)).is_ok());
  }  // each line is 30 or 31 bytes: 3 per file
  std::vector<std::string> expected;
  for (int i = 0; i < 20; ++i) {
    expected.push_back(R"({"id":")" + std::to_string(i) + R"(","pad":"xxxxxxxxxx"})");
  }
  expect_twenty_lines_in_files_of_three(dir, path, expected);
  fs::remove_all(dir);
}

TEST(FileSinkRotation, BatchesRotateBetweenLinesExactlyAsSingleWritesDo) {
  // The same 20 lines as above, handed over as batches of 7, 1 and 12 (a batch spans rotations):
  // the same files, the same lines in each.
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "e.ndjson";
  std::vector<evroute::Event> events;
  std::vector<std::string> expected;
  for (int i = 0; i < 20; ++i) {
    events.push_back(ev(std::to_string(i), 10));
    expected.push_back(R"({"id":")" + std::to_string(i) + R"(","pad":"xxxxxxxxxx"})");
  }
  {
    FileSink sink(rotating(path, 100));
    std::vector<evroute::Status> results(20, evroute::Status::unavailable("unset"));
    const std::span<const evroute::Event> all(events);
    const std::span<evroute::Status> out(results);
    ASSERT_TRUE(sink.write_batch(all.subspan(0, 7), out.subspan(0, 7)).is_ok());
    ASSERT_TRUE(sink.write_batch(all.subspan(7, 1), out.subspan(7, 1)).is_ok());
    ASSERT_TRUE(sink.write_batch(all.subspan(8), out.subspan(8)).is_ok());
    for (const auto& r : results) EXPECT_TRUE(r.is_ok()) << r;
    sink.close();
    std::vector<evroute::Status> after(2);
    EXPECT_EQ(sink.write_batch(all.subspan(0, 2), after).code(), evroute::Code::kClosed);
    EXPECT_EQ(after[1].code(), evroute::Code::kClosed);
  }
  expect_twenty_lines_in_files_of_three(dir, path, expected);
  fs::remove_all(dir);
}

TEST(FileSinkRotation, ALineLongerThanMaxBytesGetsAFileOfItsOwn) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "e.ndjson";
  {
    FileSink sink(rotating(path, 50));
    ASSERT_TRUE(sink.write(ev("a")).is_ok());
    ASSERT_TRUE(sink.write(ev("big", 200)).is_ok());
    ASSERT_TRUE(sink.write(ev("b")).is_ok());
  }
  EXPECT_EQ(evtest::read_lines(dir / "e.ndjson.1").size(), 1u);
  EXPECT_EQ(evtest::read_lines(dir / "e.ndjson.2").size(), 1u);
  EXPECT_GT(fs::file_size(dir / "e.ndjson.2"), 200u);
  EXPECT_EQ(evtest::read_lines(path), (std::vector<std::string>{R"({"id":"b","pad":""})"}));
  fs::remove_all(dir);
}

TEST(FileSinkRotation, ByIntervalAtTheFirstLineAfterItNeverAnEmptyFile) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "e.ndjson";
  TestClock clock(kLateEvening);
  FileSinkConfig c;
  c.path = path.string();
  c.rotate = FileRotation{.interval = std::chrono::minutes(1)};
  {
    FileSink sink(c, clock.fn());
    ASSERT_TRUE(sink.write(ev("1")).is_ok());
    clock.advance(std::chrono::seconds(59));
    ASSERT_TRUE(sink.write(ev("2")).is_ok());  // same file
    EXPECT_FALSE(fs::exists(dir / "e.ndjson.1"));
    clock.advance(std::chrono::seconds(1));
    ASSERT_TRUE(sink.write(ev("3")).is_ok());  // a minute since it opened: rotated first
    EXPECT_EQ(evtest::read_lines(dir / "e.ndjson.1").size(), 2u);
    clock.advance(std::chrono::seconds(59));
    ASSERT_TRUE(sink.write(ev("4")).is_ok());  // the new file is 59 s old
    EXPECT_FALSE(fs::exists(dir / "e.ndjson.2"));
    clock.advance(std::chrono::hours(2));
    ASSERT_TRUE(sink.write(ev("5")).is_ok());
    EXPECT_EQ(evtest::read_lines(dir / "e.ndjson.2").size(), 2u);
    EXPECT_EQ(evtest::read_lines(path).size(), 1u);
  }
  fs::remove_all(dir);
}

TEST(FileSinkRotation, ReopeningTheSameFileKeepsItsAgeAMovedOneStartsAfresh) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "e.ndjson";
  TestClock clock(kLateEvening);
  FileSinkConfig c(path.string());
  c.rotate = FileRotation{.interval = std::chrono::minutes(1)};
  FileSink sink(c, clock.fn());
  ASSERT_TRUE(sink.write(ev("1")).is_ok());
  clock.advance(std::chrono::seconds(30));
  ASSERT_TRUE(sink.reopen().is_ok());  // SIGHUP, nobody moved the file
  clock.advance(std::chrono::seconds(30));
  ASSERT_TRUE(sink.write(ev("2")).is_ok());
  EXPECT_TRUE(fs::exists(dir / "e.ndjson.1"));  // a minute old: rotated
  fs::rename(path, dir / "moved.ndjson");
  clock.advance(std::chrono::seconds(50));
  ASSERT_TRUE(sink.reopen().is_ok());  // logrotate moved it: a new file, a new age
  ASSERT_TRUE(sink.write(ev("3")).is_ok());
  clock.advance(std::chrono::seconds(50));
  ASSERT_TRUE(sink.write(ev("4")).is_ok());
  EXPECT_FALSE(fs::exists(dir / "e.ndjson.2"));
  EXPECT_EQ(evtest::read_lines(path).size(), 2u);
  sink.close();
  fs::remove_all(dir);
}

TEST(FileSinkRotation, KeepsTheNewestKeepFiles) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "e.ndjson";
  {
    FileSink sink(rotating(path, 25, 3));  // each line 20 bytes: one per file
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(sink.write(ev(std::to_string(i))).is_ok());
  }  // close() waits for the background pruning
  EXPECT_EQ(names_in(dir),
            (std::vector<std::string>{"e.ndjson", "e.ndjson.7", "e.ndjson.8", "e.ndjson.9"}));
  EXPECT_EQ(evtest::read_lines(dir / "e.ndjson.7"),
            (std::vector<std::string>{R"({"id":"6","pad":""})"}));
  {  // a restart continues the numbering, never overwriting
    FileSink sink(rotating(path, 25, 3));
    ASSERT_TRUE(sink.write(ev("10")).is_ok());
  }
  EXPECT_EQ(names_in(dir),
            (std::vector<std::string>{"e.ndjson", "e.ndjson.10", "e.ndjson.8", "e.ndjson.9"}));
  fs::remove_all(dir);
}

TEST(FileSinkRotation, GzipCompressesRotatedFilesOnly) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "e.ndjson";
  FileSinkConfig c = rotating(path, 1000, 100);
  c.compress = FileCompression::kGzip;
  {
    FileSink sink(c);
    for (int i = 0; i < 250; ++i) ASSERT_TRUE(sink.write(ev(std::to_string(i), 20)).is_ok());
  }
  std::size_t rotated = 0, lines = 0;
  for (const std::string& name : names_in(dir)) {
    if (name == "e.ndjson") continue;
    ASSERT_TRUE(name.ends_with(".gz")) << name;  // no plain rotated file, no .tmp left
    ++rotated;
    const auto part = evtest::read_gzip_lines(dir / name);
    EXPECT_GE(part.size(), 20u) << name;
    lines += part.size();
  }
  EXPECT_GE(rotated, 10u);
  lines += evtest::read_lines(path).size();
  EXPECT_EQ(lines, 250u);
  const auto all = evtest::read_rotated_lines(path);
  ASSERT_EQ(all.size(), 250u);
  EXPECT_EQ(all.front(), R"({"id":"0","pad":"xxxxxxxxxxxxxxxxxxxx"})");
  EXPECT_EQ(all.back(), R"({"id":"249","pad":"xxxxxxxxxxxxxxxxxxxx"})");
  fs::remove_all(dir);
}

TEST(FileSinkRotation, StartFinishesWhatACrashInterrupted) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "e.ndjson";
  std::ofstream(dir / "e.ndjson.1") << "{\"id\":\"old\"}\n";    // rotated, never compressed
  std::ofstream(dir / "e.ndjson.2") << "{\"id\":\"older\"}\n";  // compressed, not yet removed
  std::ofstream(dir / "e.ndjson.2.gz.tmp") << "half a gzip";
  FileSinkConfig c = rotating(path, 1000);
  c.compress = FileCompression::kGzip;
  { FileSink sink(c); }
  EXPECT_EQ(names_in(dir),
            (std::vector<std::string>{"e.ndjson", "e.ndjson.1.gz", "e.ndjson.2.gz"}));
  EXPECT_EQ(evtest::read_gzip_lines(dir / "e.ndjson.1.gz"),
            (std::vector<std::string>{"{\"id\":\"old\"}"}));
  EXPECT_EQ(evtest::read_gzip_lines(dir / "e.ndjson.2.gz"),
            (std::vector<std::string>{"{\"id\":\"older\"}"}));
  fs::remove_all(dir);
}

TEST(FileSinkTemplate, OpensANewFileWhenTheUtcDateChanges) {
  const fs::path dir = evtest::make_temp_dir();
  TestClock clock(kLateEvening);
  {
    FileSink sink(FileSinkConfig((dir / "events-%Y-%m-%d.ndjson").string()), clock.fn());
    EXPECT_EQ(sink.current_path(), (dir / "events-2026-11-26.ndjson").string());
    ASSERT_TRUE(sink.write(ev("1")).is_ok());
    clock.advance(std::chrono::seconds(59));
    ASSERT_TRUE(sink.write(ev("2")).is_ok());
    clock.advance(std::chrono::seconds(1));  // midnight UTC
    ASSERT_TRUE(sink.write(ev("3")).is_ok());
    EXPECT_EQ(sink.current_path(), (dir / "events-2026-11-27.ndjson").string());
  }
  EXPECT_EQ(evtest::read_lines(dir / "events-2026-11-26.ndjson").size(), 2u);
  EXPECT_EQ(evtest::read_lines(dir / "events-2026-11-27.ndjson"),
            (std::vector<std::string>{R"({"id":"3","pad":""})"}));
  fs::remove_all(dir);
}

TEST(FileSinkTemplate, ExpandsInUtcAndChecksConversions) {
  EXPECT_EQ(expand_path_template("d/%Y/%m/%d/%H%M%S-%%.log", kLateEvening),
            "d/2026/11/26/235900-%.log");
  EXPECT_EQ(expand_path_template("plain.ndjson", kLateEvening), "plain.ndjson");
  EXPECT_TRUE(check_path_template("e-%Y-%m-%d.ndjson").is_ok());
  EXPECT_FALSE(check_path_template("e-%Q.ndjson").is_ok());
  EXPECT_FALSE(check_path_template("e-%n.ndjson").is_ok());  // a newline in a path: no
  EXPECT_FALSE(check_path_template("e-%").is_ok());
}

TEST(FileSinkFsync, EveryModeWritesEveryLine) {
  const fs::path dir = evtest::make_temp_dir();
  for (evroute::SyncPolicy mode : {evroute::SyncPolicy::kAlways, evroute::SyncPolicy::kInterval,
                                   evroute::SyncPolicy::kNever}) {
    const fs::path path = dir / ("e" + std::to_string(static_cast<int>(mode)) + ".ndjson");
    FileSinkConfig c = rotating(path, 64);
    c.fsync = mode;
    c.fsync_interval = std::chrono::milliseconds(1);
    {
      FileSink sink(c);
      for (int i = 0; i < 20; ++i) ASSERT_TRUE(sink.write(ev(std::to_string(i))).is_ok());
    }
    EXPECT_EQ(evtest::read_rotated_lines(path).size(), 20u);
  }
  fs::remove_all(dir);
}

// Several writers through rotation by size, gzip, and reopen (SIGUSR1) at the same time: every line
// arrives exactly once, whole.
TEST(FileSinkRotation, ConcurrentWritersAcrossManyRotationsLoseSplitAndDoubleNothing) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "e.ndjson";
  FileSinkConfig c = rotating(path, 4096, 1000000);
  c.compress = FileCompression::kGzip;
  constexpr int kThreads = 4, kEach = 2000;
  {
    FileSink sink(c);
    std::atomic<bool> done{false};
    std::thread reopener([&] {
      while (!done) {
        EXPECT_TRUE(sink.reopen().is_ok());
        std::this_thread::yield();
      }
    });
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          ASSERT_TRUE(sink.write(ev(std::to_string(t) + "-" + std::to_string(i), i % 97)).is_ok());
        }
      });
    }
    for (auto& w : writers) w.join();
    done = true;
    reopener.join();
  }
  std::size_t rotated = 0;
  for (const std::string& name : names_in(dir)) rotated += name.ends_with(".gz");
  EXPECT_GE(rotated, 50u);
  const auto lines = evtest::read_rotated_lines(path);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kEach));
  std::set<std::string> ids;
  std::map<int, int> last_of_thread;
  for (const auto& line : lines) {
    const std::string id = line.substr(7, line.find('"', 7) - 7);
    const int i = std::stoi(id.substr(id.find('-') + 1));
    ASSERT_EQ(line, R"({"id":")" + id + R"(","pad":")" + std::string(i % 97, 'x') + "\"}")
        << "torn line";
    ids.insert(id);
    // Each writer's lines stay in its order across the files.
    const int t = std::stoi(id.substr(0, id.find('-')));
    if (last_of_thread.count(t)) {
      EXPECT_GT(i, last_of_thread[t]) << id;
    }
    last_of_thread[t] = i;
  }
  EXPECT_EQ(ids.size(), lines.size());
  fs::remove_all(dir);
}

TEST(FileSinkRotation, ReopenAfterLogrotateMovedTheFileKeepsRotating) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "e.ndjson";
  {
    FileSink sink(rotating(path, 45));  // two 20-byte lines per file
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(sink.write(ev(std::to_string(i))).is_ok());
    fs::rename(path, dir / "e.ndjson.5");  // an outside tool takes the current file as .5
    ASSERT_TRUE(sink.reopen().is_ok());
    for (int i = 3; i < 8; ++i) ASSERT_TRUE(sink.write(ev(std::to_string(i))).is_ok());
  }
  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"e.ndjson", "e.ndjson.1", "e.ndjson.5",
                                                     "e.ndjson.6", "e.ndjson.7"}));
  EXPECT_EQ(evtest::read_rotated_lines(path).size(), 8u);
  fs::remove_all(dir);
}

std::vector<std::string> config_errors(const std::string& sink_yaml) {
  std::vector<std::string> out;
  for (const auto& e :
       load_config_text("sinks:\n  f:\n    type: file\n" + sink_yaml, "t.yaml").errors) {
    out.push_back(e.to_string());
  }
  return out;
}

TEST(FileSinkConfig, TheDocumentedKeysParse) {
  auto r = load_config_text(R"(sinks:
  f:
    type: file
    path: ./data/events-%Y-%m-%d.ndjson
    rotate: { max_bytes: 64MiB, interval: 1h, keep: 3 }
    compress: gzip
    fsync: interval
    fsync_interval: 250ms
  g:
    type: file
    path: ./data/g.ndjson
    fsync: always
)",
                            "t.yaml");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.config->sinks[0].spec->describe(), "file ./data/events-%Y-%m-%d.ndjson");
}

TEST(FileSinkConfig, MistakesAreReportedWithLineAndColumn) {
  EXPECT_EQ(config_errors("    path: x\n    rotate: { keep: 2 }\n"),
            (std::vector<std::string>{
                "t.yaml:5:13: sink 'f'.rotate: set 'max_bytes', 'interval' or both"}));
  EXPECT_EQ(config_errors("    path: x\n    rotate: { max_bytes: 0, keep: 0 }\n"),
            (std::vector<std::string>{
                "t.yaml:5:26: sink 'f'.rotate: 'max_bytes' must be more than 0",
                "t.yaml:5:35: sink 'f'.rotate: 'keep' must be a whole number from 1 to 1000000, "
                "not '0'"}));
  EXPECT_EQ(config_errors("    path: x\n    compress: gzip\n"),
            (std::vector<std::string>{
                "t.yaml:5:15: sink 'f': 'compress' applies to rotated files: set 'rotate' too"}));
  EXPECT_EQ(config_errors("    path: x\n    rotate: { interval: 1h }\n    compress: zip\n"),
            (std::vector<std::string>{
                "t.yaml:6:15: sink 'f': 'compress' must be one of none, gzip, not 'zip'"}));
  EXPECT_EQ(config_errors("    path: x\n    fsync: sometimes\n"),
            (std::vector<std::string>{
                "t.yaml:5:12: sink 'f': 'fsync' must be one of always, interval, never, not "
                "'sometimes'"}));
  EXPECT_EQ(config_errors("    path: x\n    fsync: always\n    fsync_interval: 1s\n"),
            (std::vector<std::string>{"t.yaml:6:21: sink 'f': 'fsync_interval' applies to "
                                      "'fsync: interval' only"}));
  const auto bad_template = config_errors("    path: ./e-%Q.ndjson\n");
  ASSERT_EQ(bad_template.size(), 1u);
  EXPECT_TRUE(bad_template[0].starts_with("t.yaml:4:11: sink 'f': 'path': '%Q' is not a date"))
      << bad_template[0];
  EXPECT_EQ(config_errors("    path: x\n    rotate: { max_bytes: 1MiB, colour: red }\n").size(),
            1u);
}

// --- Disk errors, injected through the FileSystem seam -------------------------------------------

using evtest::FaultyFileSystem;
using FaultOp = FaultyFileSystem::Op;

struct FileFault {
  const char* name;
  FaultyFileSystem::Fault fault;
};
void PrintTo(const FileFault& f, std::ostream* os) { *os << f.name; }

class FileSinkFault : public ::testing::TestWithParam<FileFault> {
 protected:
  void SetUp() override { dir_ = evtest::make_temp_dir(); }
  void TearDown() override { fs::remove_all(dir_); }
  FileSinkConfig config() {
    FileSinkConfig c((dir_ / "events.ndjson").string());
    c.fsync = evroute::SyncPolicy::kAlways;
    return c;
  }
  std::vector<std::string> lines() { return evtest::read_lines(dir_ / "events.ndjson"); }
  static std::string line(const std::string& id) { return R"({"id":")" + id + R"(","pad":""})"; }

  fs::path dir_;
  std::shared_ptr<FaultyFileSystem> faults_ = std::make_shared<FaultyFileSystem>();
};

TEST_P(FileSinkFault, AFailedWriteIsRetryableAndTheRetryWritesTheLineOnceWhole) {
  FileSink sink(config(), {}, faults_);
  ASSERT_TRUE(sink.write(ev("a")).is_ok());
  faults_->inject(GetParam().fault);
  const evroute::Status failed = sink.write(ev("b"));
  EXPECT_EQ(failed.code(), evroute::Code::kUnavailable) << failed.to_string();
  EXPECT_TRUE(failed.is_retryable());
  EXPECT_EQ(lines(), (std::vector<std::string>{line("a")}));  // nothing torn left behind
  ASSERT_TRUE(sink.write(ev("b")).is_ok());                   // the retry
  ASSERT_TRUE(sink.write(ev("c")).is_ok());
  EXPECT_EQ(lines(), (std::vector<std::string>{line("a"), line("b"), line("c")}));
}

TEST_P(FileSinkFault, AFailedBatchFailsEveryEventInItAndLeavesTheFileAsItWas) {
  FileSink sink(config(), {}, faults_);
  ASSERT_TRUE(sink.write(ev("a")).is_ok());
  faults_->inject(GetParam().fault);
  const std::vector<evroute::Event> batch = {ev("b"), ev("c"), ev("d")};
  std::vector<evroute::Status> results(batch.size());
  EXPECT_FALSE(sink.write_batch(batch, results).is_ok());
  for (const auto& r : results) EXPECT_TRUE(r.is_retryable()) << r.to_string();
  EXPECT_EQ(lines(), (std::vector<std::string>{line("a")}));
  ASSERT_TRUE(sink.write_batch(batch, results).is_ok());
  EXPECT_EQ(lines(), (std::vector<std::string>{line("a"), line("b"), line("c"), line("d")}));
}

INSTANTIATE_TEST_SUITE_P(
    Faults, FileSinkFault,
    ::testing::Values(FileFault{"EnospcAfterAShortWrite",
                                FaultyFileSystem::fault(FaultOp::kWrite, ENOSPC, 1,
                                                        FaultyFileSystem::kHalf)},
                      FileFault{"Eio", FaultyFileSystem::fault(FaultOp::kWrite, EIO)},
                      FileFault{"FailingFdatasync", FaultyFileSystem::fault(FaultOp::kSync, EIO)}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace evrouted
