#include "evroute/disk_log_inspection.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

namespace evroute {
namespace {

namespace fs = std::filesystem;
using Kind = DiskLogInspection::Problem::Kind;
using Position = DiskLog::Position;

class DiskLogInspectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("evroute-inspect-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Appends events id0..id{n-1} (received at second i of the epoch) in batches of one, to a log
  // with small segments; returns where each record starts and ends.
  std::vector<DiskLog::ReadRecord> fill(int n, std::uint64_t segment_bytes = 1u << 20) {
    DiskLog::Options o;
    o.dir = dir_;
    o.segment_bytes = segment_bytes;
    Status error;
    auto log = DiskLog::open(o, &error);
    EXPECT_TRUE(log) << error.message();
    for (int i = 0; i < n; ++i) {
      const DiskLog::Record r{
          Event::make("id" + std::to_string(i), "{\"n\":" + std::to_string(i) + "}", {},
                      Event::TimePoint(std::chrono::seconds(1000 + i))),
          ""};
      EXPECT_TRUE(log->append({&r, 1}).is_ok());
    }
    std::vector<DiskLog::ReadRecord> records;
    EXPECT_TRUE(log->read(log->begin(), 1u << 20, &records).is_ok());
    log->close();
    return records;
  }

  fs::path segment(int number) const {
    std::ostringstream name;
    name << std::setw(20) << std::setfill('0') << number << ".seg";
    return dir_ / name.str();
  }

  // Every file in the directory and its bytes.
  std::map<std::string, std::string> snapshot() const {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::ifstream in(e.path(), std::ios::binary);
      files[e.path().filename().string()] = std::string(std::istreambuf_iterator<char>(in), {});
    }
    return files;
  }

  DiskLogInspection inspect() {
    Result<DiskLogInspection> r = inspect_disk_log(dir_);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : DiskLogInspection{};
  }

  fs::path dir_;
};

TEST_F(DiskLogInspectionTest, AMissingDirectoryIsAnEmptyQueueAndIsNotCreated) {
  const DiskLogInspection i = inspect();
  EXPECT_FALSE(i.exists);
  EXPECT_EQ(i.records, 0u);
  EXPECT_TRUE(i.clean());
  EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(DiskLogInspectionTest, CountsRecordsAndSplitsThemAtTheCursor) {
  const auto records = fill(10, 200);  // several segments
  ASSERT_EQ(records.size(), 10u);
  ASSERT_TRUE(CursorFile(dir_ / "cursor").store(records[3].next).is_ok());  // 4 delivered

  const DiskLogInspection i = inspect();
  EXPECT_TRUE(i.exists);
  EXPECT_TRUE(i.clean());
  EXPECT_GT(i.segments, 1u);
  EXPECT_EQ(i.records, 10u);
  std::uint64_t bytes = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.path().extension() == ".seg") bytes += fs::file_size(e.path());
  }
  EXPECT_EQ(i.bytes, bytes);
  EXPECT_EQ(i.delivered, 4u);
  EXPECT_EQ(i.pending, 6u);
  ASSERT_TRUE(i.cursor && i.oldest && i.newest && i.next_pending);
  EXPECT_EQ(*i.cursor, records[3].next);
  EXPECT_EQ(i.oldest->event_id, "id0");
  EXPECT_EQ(i.oldest->received, Event::TimePoint(std::chrono::seconds(1000)));
  EXPECT_EQ(i.newest->event_id, "id9");
  EXPECT_EQ(i.newest->position, records[9].position);
  EXPECT_EQ(i.next_pending->event_id, "id4");
}

TEST_F(DiskLogInspectionTest, WithoutACursorEverythingIsPending) {
  fill(3);
  const DiskLogInspection i = inspect();
  EXPECT_FALSE(i.cursor);
  EXPECT_EQ(i.pending, 3u);
  EXPECT_EQ(i.delivered, 0u);
}

TEST_F(DiskLogInspectionTest, ATornTailIsReportedWhereItStartsAndNothingIsCut) {
  const auto records = fill(5);
  const fs::path seg = segment(1);
  const std::uint64_t cut_at = records[4].position.offset + 8 + 3;  // in the last body
  fs::resize_file(seg, cut_at);
  const auto before = snapshot();

  const DiskLogInspection i = inspect();
  EXPECT_EQ(i.records, 4u);
  ASSERT_EQ(i.problems.size(), 1u);
  EXPECT_EQ(i.problems[0].kind, Kind::kTornTail);
  EXPECT_EQ(i.problems[0].file, seg);
  EXPECT_EQ(i.problems[0].offset, records[4].position.offset);
  EXPECT_EQ(i.problems[0].bytes_after, 11u);
  EXPECT_EQ(i.problems[0].what,
            "torn record (3 of " +
                std::to_string(records[4].next.offset - records[4].position.offset - 8) +
                " bytes)");
  EXPECT_EQ(i.newest->event_id, "id3");
  EXPECT_EQ(snapshot(), before) << "inspection must not modify the queue";

  // What open() then cuts is exactly what inspection reported.
  DiskLog::Options o;
  o.dir = dir_;
  Status error;
  DiskLog::RecoveryReport report;
  auto log = DiskLog::open(o, &error, &report);
  ASSERT_TRUE(log);
  EXPECT_EQ(report.records, i.records);
  EXPECT_EQ(report.truncated_bytes, i.problems[0].bytes_after);
}

TEST_F(DiskLogInspectionTest, AFlippedByteIsCorruptionAndTheRecordsAfterItAreNotCounted) {
  const auto records = fill(5);
  const fs::path seg = segment(1);
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(records[2].position.offset + 12);  // in the body
    f.seekg(at);
    const char c = static_cast<char>(f.get());
    f.seekp(at);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  const auto before = snapshot();
  const DiskLogInspection i = inspect();
  EXPECT_EQ(i.records, 2u);
  ASSERT_EQ(i.problems.size(), 1u);
  EXPECT_EQ(i.problems[0].kind, Kind::kCorrupt);
  EXPECT_EQ(i.problems[0].what, "checksum mismatch");
  EXPECT_EQ(i.problems[0].offset, records[2].position.offset);
  EXPECT_EQ(i.problems[0].bytes_after, fs::file_size(seg) - records[2].position.offset);
  EXPECT_EQ(snapshot(), before);
}

TEST_F(DiskLogInspectionTest, ACorruptSegmentDoesNotHideTheSegmentsAfterIt) {
  const auto records = fill(10, 100);
  ASSERT_GE(records.back().position.segment, 3u);
  std::uint64_t in_first = 0;
  for (const auto& r : records) in_first += r.position.segment == 1;
  ASSERT_GE(in_first, 2u);
  fs::resize_file(segment(1), records[1].position.offset + 3);  // a torn header in segment 1

  const DiskLogInspection i = inspect();
  ASSERT_EQ(i.problems.size(), 1u);
  EXPECT_EQ(i.problems[0].kind, Kind::kTornTail);
  EXPECT_EQ(i.problems[0].what, "torn record header");
  EXPECT_EQ(i.problems[0].file, segment(1));
  EXPECT_EQ(i.records, 10u - (in_first - 1));  // as recovery keeps them
  EXPECT_EQ(i.newest->event_id, "id9");
}

TEST_F(DiskLogInspectionTest, AMalformedCursorIsAProblem) {
  fill(2);
  std::ofstream(dir_ / "cursor") << "not a cursor\n";
  const DiskLogInspection i = inspect();
  ASSERT_EQ(i.problems.size(), 1u);
  EXPECT_EQ(i.problems[0].kind, Kind::kBadCursor);
  EXPECT_EQ(i.problems[0].file, dir_ / "cursor");
  EXPECT_FALSE(i.cursor);
  EXPECT_EQ(i.records, 2u);
}

}  // namespace
}  // namespace evroute
