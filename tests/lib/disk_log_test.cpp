#include "evroute/disk_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "support/eventually.h"
#include "support/faulty_file_system.h"

namespace evroute {
namespace {

namespace fs = std::filesystem;
using Position = DiskLog::Position;

class DiskLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("evroute-disklog-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  DiskLog::Options options(DiskLog::Sync sync = DiskLog::Sync::kAlways) {
    DiskLog::Options o;
    o.dir = dir_;
    o.sync = sync;
    return o;
  }

  std::unique_ptr<DiskLog> open(DiskLog::Options o, DiskLog::RecoveryReport* report = nullptr) {
    Status error;
    auto log = DiskLog::open(std::move(o), &error, report);
    EXPECT_TRUE(error.is_ok()) << error.message();
    return log;
  }

  static DiskLog::Record record(const std::string& id, const std::string& meta = "") {
    return DiskLog::Record{Event::make(id, "{\"id\":\"" + id + "\"}", {{"type", "t." + id}}), meta};
  }

  static std::vector<std::string> ids(const std::vector<DiskLog::ReadRecord>& records) {
    std::vector<std::string> out;
    for (const auto& r : records) out.emplace_back(r.event.id());
    return out;
  }

  std::vector<DiskLog::ReadRecord> read_all(const DiskLog& log) {
    std::vector<DiskLog::ReadRecord> out;
    EXPECT_TRUE(log.read(log.begin(), 1u << 20, &out).is_ok());
    return out;
  }

  std::vector<fs::path> segment_files() {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".seg") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  fs::path dir_;
};

TEST_F(DiskLogTest, RecordsRoundTripWithMetadata) {
  auto log = open(options());
  const auto received = Event::TimePoint(std::chrono::nanoseconds(1'700'000'000'123'456'789));
  const Event event =
      Event::make("e1", "{\"a\":1}", {{"type", "invoice.paid"}, {"k", "v"}}, received);
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{{event, "billing,archive"}}).is_ok());

  std::vector<DiskLog::ReadRecord> out;
  ASSERT_TRUE(log->read(log->begin(), 10, &out).is_ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].event.id(), "e1");
  EXPECT_EQ(out[0].event.payload(), "{\"a\":1}");
  EXPECT_EQ(out[0].event.type(), "invoice.paid");
  EXPECT_EQ(out[0].event.attribute("k").value_or(""), "v");
  EXPECT_EQ(out[0].event.received(), received);
  EXPECT_EQ(out[0].meta, "billing,archive");
  EXPECT_EQ(out[0].position, log->begin());
  EXPECT_EQ(out[0].next, log->end());
  EXPECT_EQ(out[0].next.offset, DiskLog::framed_size({event, "billing,archive"}));

  out.clear();  // nothing past the end
  ASSERT_TRUE(log->read(log->end(), 10, &out).is_ok());
  EXPECT_TRUE(out.empty());
}

TEST_F(DiskLogTest, ReadsInStepsFromReturnedPositions) {
  auto log = open(options());
  std::vector<DiskLog::Record> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(record("e" + std::to_string(i)));
  ASSERT_TRUE(log->append(batch).is_ok());
  std::vector<std::string> seen;
  Position pos = log->begin();
  for (int step = 0; step < 10; ++step) {
    std::vector<DiskLog::ReadRecord> out;
    ASSERT_TRUE(log->read(pos, 3, &out).is_ok());
    if (out.empty()) break;
    EXPECT_LE(out.size(), 3u);
    for (const auto& id : ids(out)) seen.push_back(id);
    pos = out.back().next;
  }
  ASSERT_EQ(seen.size(), 10u);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(seen[static_cast<std::size_t>(i)], "e" + std::to_string(i));
}

TEST_F(DiskLogTest, ReopenFindsEveryRecordAndAppendsAfterThem) {
  {
    auto log = open(options());
    ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("a"), record("b")}).is_ok());
  }
  DiskLog::RecoveryReport report;
  auto log = open(options(), &report);
  EXPECT_EQ(report.records, 2u);
  EXPECT_EQ(report.truncated_bytes, 0u);
  EXPECT_TRUE(report.problems.empty());
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("c")}).is_ok());
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(DiskLogTest, RotatesSegmentsAndReleaseReclaimsThem) {
  auto o = options();
  o.segment_bytes = 200;  // a few records per segment
  auto log = open(o);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("e" + std::to_string(i))}).is_ok());
  }
  EXPECT_GT(segment_files().size(), 5u);
  const auto all = read_all(*log);
  ASSERT_EQ(all.size(), 30u);
  const std::uint64_t before = log->stats().live_bytes;

  // A consumer done with the first 20 records: segments wholly before that go.
  ASSERT_TRUE(log->release(all[19].next).is_ok());
  EXPECT_LT(log->stats().live_bytes, before);
  EXPECT_LT(segment_files().size(), log->stats().segments + 1);
  EXPECT_EQ(segment_files().size(), log->stats().segments);
  // Nothing the consumer still needs was deleted, and an old position reads from the new begin.
  std::vector<DiskLog::ReadRecord> rest;
  ASSERT_TRUE(log->read(all[0].position, 100, &rest).is_ok());
  ASSERT_FALSE(rest.empty());
  EXPECT_LE(rest.front().position, all[20].position);
  EXPECT_EQ(rest.back().event.id(), "e29");
  std::set<std::string> remaining;
  for (const auto& id : ids(rest)) remaining.insert(id);
  for (int i = 20; i < 30; ++i) EXPECT_TRUE(remaining.count("e" + std::to_string(i))) << i;

  // Releasing everything keeps the active segment.
  ASSERT_TRUE(log->release(log->end()).is_ok());
  EXPECT_EQ(segment_files().size(), 1u);
}

TEST_F(DiskLogTest, RefusesWhatWouldExceedMaxBytesUntilReleased) {
  auto o = options();
  o.segment_bytes = 100;
  o.max_bytes = 5 * DiskLog::framed_size(record("e0"));
  auto log = open(o);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("e" + std::to_string(i))}).is_ok());
  }
  const Status full = log->append(std::vector<DiskLog::Record>{record("e5")});
  EXPECT_EQ(full.code(), Code::kFull) << full.message();
  EXPECT_EQ(log->stats().rejected_full, 1u);
  EXPECT_FALSE(
      log->wait_for_room(DiskLog::framed_size(record("e5")), std::chrono::steady_clock::now()));

  std::thread releaser([&] {
    const auto all = read_all(*log);
    ASSERT_TRUE(log->release(all[2].next).is_ok());
  });
  EXPECT_TRUE(log->wait_for_room(DiskLog::framed_size(record("e5")),
                                 std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  releaser.join();
  EXPECT_TRUE(log->append(std::vector<DiskLog::Record>{record("e5")}).is_ok());
}

TEST_F(DiskLogTest, TornTailIsReportedAndCutAndTheGoodRecordsStay) {
  {
    auto log = open(options());
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(
          log->append(std::vector<DiskLog::Record>{record("e" + std::to_string(i))}).is_ok());
    }
  }
  const fs::path segment = segment_files().back();
  const auto size = fs::file_size(segment);
  fs::resize_file(segment, size - 5);  // the last record loses its end, as in a crash mid-write

  DiskLog::RecoveryReport report;
  auto log = open(options(), &report);
  EXPECT_EQ(report.records, 2u);
  EXPECT_EQ(report.truncated_bytes, DiskLog::framed_size(record("e2")) - 5);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("torn record"), std::string::npos) << report.problems[0];
  EXPECT_NE(report.problems[0].find(segment.filename().string()), std::string::npos);
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("e3")}).is_ok());
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"e0", "e1", "e3"}));
}

TEST_F(DiskLogTest, CorruptRecordIsDetectedByItsChecksum) {
  {
    auto log = open(options());
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(
          log->append(std::vector<DiskLog::Record>{record("e" + std::to_string(i))}).is_ok());
    }
  }
  const fs::path segment = segment_files().back();
  {  // flip one payload byte of the last record
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(segment) - 3));
    f.put('X');
  }
  DiskLog::RecoveryReport report;
  auto log = open(options(), &report);
  EXPECT_EQ(report.records, 2u);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("checksum mismatch"), std::string::npos) << report.problems[0];
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"e0", "e1"}));
}

// A record larger than what one read takes (64 KiB to 1 MiB, judged by the records before it) is
// read whole wherever it starts, after a reopen too (recovery and read share the reader): a
// 3 MiB one used to read as corrupt when a read began at it.
TEST_F(DiskLogTest, RecordsLargerThanAReadChunkAreReadWhole) {
  const std::vector<std::size_t> sizes = {100, 200u << 10, 3u << 20, 100, 70u << 10};
  {
    auto log = open(options(DiskLog::Sync::kNever));
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const std::string id = "r" + std::to_string(i);
      ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{
                                  {Event::make(id, std::string(sizes[i], 'x')), ""}})
                      .is_ok());
    }
  }
  DiskLog::RecoveryReport report;
  auto log = open(options(DiskLog::Sync::kNever), &report);
  EXPECT_TRUE(report.problems.empty()) << report.problems[0];
  const auto all = read_all(*log);
  ASSERT_EQ(all.size(), sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(all[i].event.payload().size(), sizes[i]) << i;
    // And a read that starts at this record, one record at a time and all the rest.
    std::vector<DiskLog::ReadRecord> one, rest;
    ASSERT_TRUE(log->read(all[i].position, 1, &one).is_ok());
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].event.id(), all[i].event.id());
    ASSERT_TRUE(log->read(all[i].position, 100, &rest).is_ok());
    EXPECT_EQ(rest.size(), sizes.size() - i);
  }
}

// CRC-32 (ISO-HDLC: reflected 0xEDB88320, init and final xor 0xFFFFFFFF), bit by bit: the oracle
// for the record checksum, whichever implementation (ISA-L or zlib) the library was built with.
std::uint32_t reference_crc32(std::string_view data) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::uint32_t le32(const std::string& bytes, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// The checksum is part of the on-disk format (disk_log_record.h): a log written by one build must
// read in another. Every record header's CRC is the standard CRC-32 of its body.
TEST_F(DiskLogTest, RecordChecksumsAreTheStandardCrc32OfTheBody) {
  {
    auto log = open(options());
    std::vector<DiskLog::Record> records;
    for (int i = 0; i < 5; ++i) {
      records.push_back({Event::make("id-" + std::to_string(i), std::string(37 * i + 1, 'a' + i),
                                     {{"type", "t"}}),
                         "meta"});
    }
    ASSERT_TRUE(log->append(records).is_ok());
  }
  std::ifstream in(segment_files().front(), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t at = 0, checked = 0;
  while (at + 8 <= bytes.size()) {
    const std::uint32_t length = le32(bytes, at);
    ASSERT_LE(at + 8 + length, bytes.size());
    EXPECT_EQ(le32(bytes, at + 4), reference_crc32(std::string_view(bytes).substr(at + 8, length)))
        << "record " << checked;
    at += 8 + length;
    ++checked;
  }
  EXPECT_EQ(checked, 5u);
  EXPECT_EQ(at, bytes.size());
}

TEST_F(DiskLogTest, GarbageAfterTheLastRecordIsCut) {
  {
    auto log = open(options());
    ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("e0")}).is_ok());
  }
  {
    std::ofstream f(segment_files().back(), std::ios::app | std::ios::binary);
    f << std::string(3, '\xff') << "garbage that is not a record at all";
  }
  DiskLog::RecoveryReport report;
  auto log = open(options(), &report);
  EXPECT_EQ(report.records, 1u);
  EXPECT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"e0"}));
}

TEST_F(DiskLogTest, ConcurrentAppendersAreGroupCommittedAndNothingIsLostOrDuplicated) {
  auto log = open(options(DiskLog::Sync::kAlways));
  constexpr int kThreads = 4, kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const Status s = log->append(
            std::vector<DiskLog::Record>{record(std::to_string(t) + "-" + std::to_string(i))});
        EXPECT_TRUE(s.is_ok()) << s.message();
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto all = read_all(*log);
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::set<std::string> unique;
  for (const auto& id : ids(all)) unique.insert(id);
  EXPECT_EQ(unique.size(), all.size());
  const auto stats = log->stats();
  EXPECT_EQ(stats.appended_records, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(stats.syncs, stats.writes);             // kAlways: every write is synced...
  EXPECT_LE(stats.writes, stats.appended_records);  // ...and one write may carry many appends
  // Each thread's records keep their order.
  std::map<std::string, int> last;
  for (const auto& id : ids(all)) {
    const auto dash = id.find('-');
    const int n = std::stoi(id.substr(dash + 1));
    auto [it, fresh] = last.emplace(id.substr(0, dash), n);
    if (!fresh) {
      EXPECT_GT(n, it->second) << id;
      it->second = n;
    }
  }
}

TEST_F(DiskLogTest, ReadersSeeRecordsWhileTheyAreAppended) {
  auto o = options(DiskLog::Sync::kNever);
  o.segment_bytes = 1000;
  auto log = open(o);
  constexpr int kCount = 500;
  std::thread writer([&] {
    for (int i = 0; i < kCount; ++i) {
      ASSERT_TRUE(
          log->append(std::vector<DiskLog::Record>{record("e" + std::to_string(i))}).is_ok());
    }
  });
  std::vector<std::string> seen;
  Position pos = log->begin();
  while (seen.size() < static_cast<std::size_t>(kCount)) {
    if (!log->wait_beyond(pos, std::chrono::steady_clock::now() + std::chrono::seconds(30))) break;
    std::vector<DiskLog::ReadRecord> out;
    ASSERT_TRUE(log->read(pos, 64, &out).is_ok());
    for (const auto& r : out) seen.emplace_back(r.event.id());
    if (!out.empty()) pos = out.back().next;
  }
  writer.join();
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(kCount));
  for (int i = 0; i < kCount; ++i)
    EXPECT_EQ(seen[static_cast<std::size_t>(i)], "e" + std::to_string(i));
}

TEST_F(DiskLogTest, CloseWakesWaitersAndRefusesAppends) {
  auto log = open(options(DiskLog::Sync::kInterval));
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("a")}).is_ok());
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    EXPECT_FALSE(
        log->wait_beyond(log->end(), std::chrono::steady_clock::now() + std::chrono::hours(1)));
    woke = true;
  });
  ASSERT_TRUE(log->close().is_ok());
  waiter.join();
  EXPECT_TRUE(woke);
  EXPECT_EQ(log->append(std::vector<DiskLog::Record>{record("b")}).code(), Code::kClosed);
  EXPECT_GE(log->stats().syncs, 1u);  // close() synced what kInterval had only written
  EXPECT_TRUE(log->close().is_ok());  // idempotent
}

TEST_F(DiskLogTest, RejectsEmptyEventsAndWritesNothingForThem) {
  auto log = open(options());
  const auto end = log->end();
  EXPECT_EQ(log->append(std::vector<DiskLog::Record>{record("a"), DiskLog::Record{}}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(log->end(), end);
}

TEST_F(DiskLogTest, CursorFileStoresAndLoadsAPosition) {
  fs::create_directories(dir_);
  CursorFile cursor(dir_ / "cursor-billing");
  Position p{7, 7};
  ASSERT_TRUE(cursor.load(&p).is_ok());
  EXPECT_EQ(p, Position{});  // none yet: from the beginning
  ASSERT_TRUE(cursor.store(Position{3, 1234}).is_ok());
  ASSERT_TRUE(cursor.store(Position{4, 56}).is_ok());
  ASSERT_TRUE(CursorFile(dir_ / "cursor-billing").load(&p).is_ok());
  EXPECT_EQ(p, (Position{4, 56}));
  EXPECT_FALSE(fs::exists(dir_ / "cursor-billing.tmp"));

  std::ofstream(dir_ / "cursor-bad") << "not a cursor";
  EXPECT_EQ(CursorFile(dir_ / "cursor-bad").load(&p).code(), Code::kUnavailable);
}

// --- The write cache ---------------------------------------------------------------------------

// What a reader gets, field by field, in a form to compare with another read.
std::string describe(const DiskLog::ReadRecord& r) {
  std::string out = std::to_string(r.position.segment) + ":" + std::to_string(r.position.offset) +
                    "-" + std::to_string(r.next.segment) + ":" + std::to_string(r.next.offset) +
                    " " + std::string(r.event.id()) + " " + std::string(r.event.payload()) + " " +
                    std::to_string(r.event.received().time_since_epoch().count()) + " [" + r.meta +
                    "]";
  for (std::size_t i = 0; i < r.event.attribute_count(); ++i) {
    const Attribute a = r.event.attribute_at(i);
    out += " " + std::string(a.key) + "=" + std::string(a.value);
  }
  return out;
}

std::vector<std::string> describe(const std::vector<DiskLog::ReadRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(describe(r));
  return out;
}

TEST_F(DiskLogTest, TheWriteCacheHandsAFollowingReaderTheEventsWrittenOnceAndTheFileAgrees) {
  DiskLog::Options o = options();
  o.cache_bytes = 1u << 20;
  auto log = open(o);
  std::vector<DiskLog::Record> written;
  for (int batch = 0; batch < 3; ++batch) {
    std::vector<DiskLog::Record> records;
    for (int i = 0; i < 4; ++i) records.push_back(record("e" + std::to_string(batch * 4 + i), "m"));
    ASSERT_TRUE(log->append(records).is_ok());
    written.insert(written.end(), records.begin(), records.end());
  }
  // Followed in steps, from the start: every record from the cache, the events themselves.
  std::vector<DiskLog::ReadRecord> followed;
  Position pos = log->begin();
  while (followed.size() < written.size()) {
    const std::size_t before = followed.size();
    ASSERT_TRUE(log->read(pos, 5, &followed).is_ok());
    ASSERT_GT(followed.size(), before);
    pos = followed.back().next;
  }
  ASSERT_EQ(followed.size(), written.size());
  for (std::size_t i = 0; i < written.size(); ++i) {
    EXPECT_TRUE(followed[i].event.same_as(written[i].event)) << i;
    EXPECT_EQ(followed[i].meta, "m");
  }
  EXPECT_EQ(log->stats().cache_hits, written.size());
  // Handed out once: a second reader reads the file, and gets the same records at the same places.
  const auto from_file = read_all(*log);
  EXPECT_EQ(log->stats().cache_hits, written.size());
  ASSERT_EQ(from_file.size(), written.size());
  EXPECT_FALSE(from_file[0].event.same_as(written[0].event));
  EXPECT_EQ(describe(from_file), describe(followed));
  EXPECT_EQ(followed.back().next, log->end());
}

TEST_F(DiskLogTest, TheWriteCacheIsServedWithoutTheFile) {
  DiskLog::Options o = options();
  o.cache_bytes = 1u << 20;
  auto log = open(o);
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("a"), record("b")}).is_ok());
  for (const auto& file : segment_files()) fs::remove(file);  // the writer's descriptor stays
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"a", "b"}));
  // Without the cache the same read finds no file and nothing to read.
  EXPECT_TRUE(read_all(*log).empty());
}

TEST_F(DiskLogTest, AReaderBehindTheWriteCacheReadsTheFileThenCatchesUpWithTheCache) {
  DiskLog::Options o = options();
  o.cache_bytes = 3 * DiskLog::framed_size(record("e0"));  // the newest three records
  auto log = open(o);
  std::vector<DiskLog::Record> written;
  for (int i = 0; i < 10; ++i) {
    written.push_back(record("e" + std::to_string(i)));
    ASSERT_TRUE(log->append(std::span<const DiskLog::Record>(&written.back(), 1)).is_ok());
  }
  std::vector<DiskLog::ReadRecord> got;
  ASSERT_TRUE(log->read(log->begin(), 6, &got).is_ok());  // e0..e5: the file
  EXPECT_EQ(log->stats().cache_hits, 0u);
  ASSERT_TRUE(log->read(got.back().next, 1, &got).is_ok());  // e6: the file; the cache has e7..
  ASSERT_TRUE(log->read(got.back().next, 6, &got).is_ok());  // e7..e9: the cache
  EXPECT_EQ(log->stats().cache_hits, 3u);
  ASSERT_EQ(got.size(), 10u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].event.id(), written[i].event.id());
    EXPECT_EQ(got[i].event.same_as(written[i].event), i >= 7) << i;
  }
  EXPECT_EQ(describe(got), describe(read_all(*log)));
}

TEST_F(DiskLogTest, TheWriteCacheFollowsTheLogAcrossSegments) {
  DiskLog::Options o = options();
  o.cache_bytes = 1u << 20;
  o.segment_bytes = 1;  // every batch starts a segment
  auto log = open(o);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("a" + std::to_string(i)),
                                                         record("b" + std::to_string(i))})
                    .is_ok());
  }
  ASSERT_EQ(segment_files().size(), 4u);
  std::vector<DiskLog::ReadRecord> got;
  Position pos = log->begin();
  for (int step = 0; step < 8; ++step) {  // one record at a time: each segment's end is crossed
    ASSERT_TRUE(log->read(pos, 1, &got).is_ok());
    pos = got.back().next;
  }
  EXPECT_EQ(log->stats().cache_hits, 8u);
  EXPECT_EQ(describe(got), describe(read_all(*log)));
}

TEST_F(DiskLogTest, RecordsOfAFailedAppendAreNotCached) {
  auto faults = std::make_shared<evtest::FaultyFileSystem>();
  DiskLog::Options o = options();
  o.cache_bytes = 1u << 20;
  o.fs = faults;
  auto log = open(o);
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("a")}).is_ok());
  for (const auto op :
       {evtest::FaultyFileSystem::Op::kWrite, evtest::FaultyFileSystem::Op::kSync}) {
    faults->inject(evtest::FaultyFileSystem::fault(op, EIO));
    EXPECT_FALSE(log->append(std::vector<DiskLog::Record>{record("lost")}).is_ok());
  }
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("b")}).is_ok());
  std::vector<DiskLog::ReadRecord> got;
  ASSERT_TRUE(log->read(log->begin(), 10, &got).is_ok());
  EXPECT_EQ(ids(got), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(log->stats().cache_hits, 2u);
  EXPECT_EQ(describe(got), describe(read_all(*log)));
}

// --- Disk errors, injected through the FileSystem seam -------------------------------------------

using evtest::FaultyFileSystem;
using Op = FaultyFileSystem::Op;

class DiskLogFaultTest : public DiskLogTest {
 protected:
  DiskLog::Options faulty_options(DiskLog::Sync sync = DiskLog::Sync::kAlways) {
    DiskLog::Options o = options(sync);
    o.fs = faults_;
    return o;
  }
  // The bytes of the only segment, as a reader of the file would see them.
  std::uint64_t file_bytes() {
    const auto files = segment_files();
    return files.empty() ? 0 : fs::file_size(files.back());
  }
  std::shared_ptr<FaultyFileSystem> faults_ = std::make_shared<FaultyFileSystem>();
};

struct FaultCase {
  const char* name;
  FaultyFileSystem::Fault fault;
};
void PrintTo(const FaultCase& c, std::ostream* os) { *os << c.name; }

class DiskLogWriteFault : public DiskLogFaultTest,
                          public ::testing::WithParamInterface<FaultCase> {};

TEST_P(DiskLogWriteFault, FailedAppendIsReportedCutOffAndTheNextOneSucceeds) {
  auto log = open(faulty_options());
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("a"), record("b")}).is_ok());
  const Position good_end = log->end();

  faults_->inject(GetParam().fault);
  const Status failed = log->append(std::vector<DiskLog::Record>{record("c"), record("d")});
  EXPECT_EQ(failed.code(), Code::kUnavailable) << failed.to_string();
  EXPECT_EQ(faults_->injected(), 1u);
  // Reported, and nothing of the failed batch is left in the file or visible to readers.
  EXPECT_EQ(log->health().code(), Code::kUnavailable);
  EXPECT_EQ(log->stats().write_errors, 1u);
  EXPECT_EQ(log->end(), good_end);
  EXPECT_EQ(file_bytes(), good_end.offset);
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"a", "b"}));

  // The fault is gone: the very next append works, without a reopen.
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("e")}).is_ok());
  EXPECT_TRUE(log->health().is_ok());
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"a", "b", "e"}));
  log.reset();

  DiskLog::RecoveryReport report;
  auto reopened = open(options(), &report);
  EXPECT_EQ(report.truncated_bytes, 0u);
  EXPECT_EQ(ids(read_all(*reopened)), (std::vector<std::string>{"a", "b", "e"}));
}

INSTANTIATE_TEST_SUITE_P(
    Faults, DiskLogWriteFault,
    ::testing::Values(FaultCase{"EnospcAfterAShortWrite",
                                FaultyFileSystem::fault(Op::kWrite, ENOSPC, 1,
                                                        FaultyFileSystem::kHalf)},
                      FaultCase{"Eio", FaultyFileSystem::fault(Op::kWrite, EIO)},
                      FaultCase{"FailingFdatasync", FaultyFileSystem::fault(Op::kSync, EIO)}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(DiskLogFaultTest, ACutThatFailsIsRetriedBeforeTheNextWriteAndNoGarbageIsEverRead) {
  auto log = open(faulty_options());
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("a")}).is_ok());
  const Position good_end = log->end();
  faults_->inject(FaultyFileSystem::fault(Op::kWrite, ENOSPC, 1, FaultyFileSystem::kHalf));
  faults_->inject(FaultyFileSystem::fault(Op::kTruncate, EIO));
  EXPECT_EQ(log->append(std::vector<DiskLog::Record>{record("b")}).code(), Code::kUnavailable);
  EXPECT_GT(file_bytes(), good_end.offset);  // the torn half-record is still in the file...
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"a"}));  // ...but never read

  faults_->inject(
      FaultyFileSystem::fault(Op::kTruncate, EIO));  // the cut fails again: so does the append
  EXPECT_EQ(log->append(std::vector<DiskLog::Record>{record("c")}).code(), Code::kUnavailable);
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"a"}));

  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("d")}).is_ok());
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"a", "d"}));
  log.reset();
  DiskLog::RecoveryReport report;
  auto reopened = open(options(), &report);
  EXPECT_EQ(report.truncated_bytes, 0u);
  EXPECT_EQ(ids(read_all(*reopened)), (std::vector<std::string>{"a", "d"}));
}

TEST_F(DiskLogFaultTest, AFailedRotationKeepsTheOldSegmentAndIsTriedAgain) {
  DiskLog::Options o = faulty_options();
  o.segment_bytes = 1;  // every batch after the first starts a new segment
  auto log = open(o);
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("a")}).is_ok());
  faults_->inject(FaultyFileSystem::fault(Op::kSyncDir, EIO));
  EXPECT_EQ(log->append(std::vector<DiskLog::Record>{record("b")}).code(), Code::kUnavailable);
  EXPECT_EQ(segment_files().size(), 1u);  // the new segment was not kept
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("c")}).is_ok());
  EXPECT_EQ(segment_files().size(), 2u);
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"a", "c"}));

  // The same, and the failed segment cannot even be removed: the next rotation reuses it.
  faults_->inject(FaultyFileSystem::fault(Op::kSyncDir, EIO));
  faults_->inject(FaultyFileSystem::fault(Op::kRemove, EIO));
  EXPECT_EQ(log->append(std::vector<DiskLog::Record>{record("d")}).code(), Code::kUnavailable);
  EXPECT_EQ(segment_files().size(), 3u);  // the stray one
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("e")}).is_ok());
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"a", "c", "e"}));
  log.reset();
  auto reopened = open(options());
  EXPECT_EQ(ids(read_all(*reopened)), (std::vector<std::string>{"a", "c", "e"}));
}

TEST_F(DiskLogFaultTest, ProbeClearsTheFailureOnceTheDiskTakesWritesAgain) {
  auto log = open(faulty_options());
  EXPECT_TRUE(log->probe().is_ok());  // healthy: nothing to do
  faults_->fail_always(Op::kWrite, ENOSPC);
  EXPECT_EQ(log->append(std::vector<DiskLog::Record>{record("a")}).code(), Code::kUnavailable);
  EXPECT_EQ(log->probe().code(), Code::kUnavailable);  // still full
  EXPECT_FALSE(log->health().is_ok());
  faults_->clear();
  EXPECT_TRUE(log->probe().is_ok());
  EXPECT_TRUE(log->health().is_ok());
  EXPECT_FALSE(fs::exists(dir_ / "probe"));
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("b")}).is_ok());
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"b"}));
}

TEST_F(DiskLogFaultTest, AFailedIntervalSyncIsReportedAndRetried) {
  DiskLog::Options o = faulty_options(DiskLog::Sync::kInterval);
  o.sync_interval = std::chrono::milliseconds(5);
  auto log = open(o);
  faults_->inject(FaultyFileSystem::fault(Op::kSync, EIO));
  ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("a")}).is_ok());
  EXPECT_TRUE(evtest::eventually([&] { return log->stats().write_errors == 1; }));
  // The next interval syncs again, and that one works.
  EXPECT_TRUE(
      evtest::eventually([&] { return faults_->calls(Op::kSync) >= 2 && log->health().is_ok(); }));
  EXPECT_EQ(ids(read_all(*log)), (std::vector<std::string>{"a"}));
}

// kInterval: a full segment is synced by the next background sync, not by the append that starts
// the next segment (which would hold every append for as long as an interval's writes take to
// sync). Every sync fails here, and the appends across four rotations do not notice; the close
// syncs every completed segment and the active one.
TEST_F(DiskLogFaultTest,
       IntervalAppendsRotateWithoutSyncingAndTheBackgroundSyncCoversTheFullSegments) {
  DiskLog::Options o = faulty_options(DiskLog::Sync::kInterval);
  o.sync_interval = std::chrono::hours(1);  // no background sync within the test but close's
  o.segment_bytes = 200;                    // a few records per segment
  auto log = open(o);
  faults_->fail_always(Op::kSync, EIO);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(log->append(std::vector<DiskLog::Record>{record("e" + std::to_string(i))}).is_ok())
        << "append " << i;
  }
  const std::uint64_t segments = log->stats().segments;
  EXPECT_GE(segments, 5u);
  EXPECT_TRUE(log->health().is_ok());  // no append met a sync
  faults_->clear();
  const std::uint64_t before = faults_->calls(Op::kSync);
  EXPECT_TRUE(log->close().is_ok());
  EXPECT_EQ(faults_->calls(Op::kSync) - before, segments);  // each completed one, and the active
}

TEST_F(DiskLogFaultTest, UnderRandomFaultsExactlyTheAcknowledgedRecordsSurvive) {
  auto log = open(faulty_options());
  // Every 7th write fails after a short write, every 11th sync fails.
  for (std::uint64_t n = 1; n <= 400; n += 7) {
    faults_->inject(FaultyFileSystem::fault(Op::kWrite, ENOSPC, n, FaultyFileSystem::kHalf));
  }
  for (std::uint64_t n = 1; n <= 400; n += 11) {
    faults_->inject(FaultyFileSystem::fault(Op::kSync, EIO, n));
  }
  std::mutex mu;
  std::set<std::string> acknowledged;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (log->append(std::vector<DiskLog::Record>{record(id)}).is_ok()) {
          std::lock_guard<std::mutex> g(mu);
          acknowledged.insert(id);
        } else {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(failures.load(), 0);
  const auto live = ids(read_all(*log));
  EXPECT_EQ(std::set<std::string>(live.begin(), live.end()), acknowledged);
  EXPECT_EQ(live.size(), acknowledged.size());
  log.reset();
  DiskLog::RecoveryReport report;
  auto reopened = open(options(), &report);
  EXPECT_EQ(report.truncated_bytes, 0u);
  const auto recovered = ids(read_all(*reopened));
  EXPECT_EQ(std::set<std::string>(recovered.begin(), recovered.end()), acknowledged);
  EXPECT_EQ(recovered.size(), acknowledged.size());
}

TEST_F(DiskLogFaultTest, ACursorThatCannotBeStoredLeavesTheOldOneAndNoTemporary) {
  fs::create_directories(dir_);
  CursorFile cursor(dir_ / "cursor", faults_);
  ASSERT_TRUE(cursor.store(Position{1, 10}).is_ok());
  for (const Op op : {Op::kWrite, Op::kSync, Op::kRename, Op::kSyncDir}) {
    faults_->inject(FaultyFileSystem::fault(op, op == Op::kWrite ? ENOSPC : EIO));
    EXPECT_EQ(cursor.store(Position{2, 20}).code(), Code::kUnavailable);
    Position p;
    ASSERT_TRUE(CursorFile(dir_ / "cursor").load(&p).is_ok());
    // A failed directory sync comes after the rename: the new position is there, maybe not durable.
    EXPECT_EQ(p, op == Op::kSyncDir ? (Position{2, 20}) : (Position{1, 10}));
    EXPECT_FALSE(fs::exists(dir_ / "cursor.tmp"));
    ASSERT_TRUE(cursor.store(Position{1, 10}).is_ok());
  }
}

}  // namespace
}  // namespace evroute
