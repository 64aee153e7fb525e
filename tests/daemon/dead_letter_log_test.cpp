// DeadLetters (the dead-letter log) against a failing disk, through the FileSystem seam: a give-up
// that cannot be written is reported and counted and leaves no torn line; take() rewrites the file
// as the disk log's cursor file is (temporary, fsync, rename, directory fsync), and when any step
// fails the old file is left intact and nothing is taken.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "dead_letters.h"
#include "support/daemon_process.h"
#include "support/faulty_file_system.h"

namespace evrouted {
namespace {

namespace fs = std::filesystem;
using evtest::FaultyFileSystem;
using Op = FaultyFileSystem::Op;

class DeadLetterLog : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = evtest::make_temp_dir();
    path_ = dir_ / "dead-letters" / "hook.ndjson";
  }
  void TearDown() override { fs::remove_all(dir_); }

  static evroute::Event ev(const std::string& id) {
    return evroute::Event::make(id, R"({"id":")" + id + R"("})", {{"type", "t"}});
  }
  static evroute::Status give_up() { return evroute::Status::rejected("HTTP 400"); }
  std::vector<std::string> listed(const DeadLetters& log) {
    std::vector<std::string> ids;
    for (const auto& e : log.list(0, 100).entries) ids.push_back(e["id"].get<std::string>());
    return ids;
  }

  fs::path dir_, path_;
  std::shared_ptr<FaultyFileSystem> faults_ = std::make_shared<FaultyFileSystem>();
};

TEST_F(DeadLetterLog, AnAddThatFailsIsReportedCountedAndLeavesNoTornLine) {
  for (const auto& fault :
       {FaultyFileSystem::fault(Op::kWrite, ENOSPC, 1, FaultyFileSystem::kHalf),
        FaultyFileSystem::fault(Op::kWrite, EIO), FaultyFileSystem::fault(Op::kSync, EIO)}) {
    fs::remove_all(path_.parent_path());
    DeadLetters log(path_, faults_);
    ASSERT_TRUE(log.add(ev("a"), give_up(), 1).is_ok());
    const auto size = fs::file_size(path_);
    faults_->inject(fault);
    EXPECT_EQ(log.add(ev("b"), give_up(), 1).code(), evroute::Code::kUnavailable);
    EXPECT_EQ(log.write_errors(), 1u);
    EXPECT_EQ(log.added(), 1u);
    EXPECT_EQ(fs::file_size(path_), size);  // cut back to whole lines
    ASSERT_TRUE(log.add(ev("c"), give_up(), 1).is_ok());
    EXPECT_EQ(listed(log), (std::vector<std::string>{"a", "c"}));
  }
}

TEST_F(DeadLetterLog, ACutThatFailsIsRetriedByTheNextAdd) {
  DeadLetters log(path_, faults_);
  ASSERT_TRUE(log.add(ev("a"), give_up(), 1).is_ok());
  faults_->inject(FaultyFileSystem::fault(Op::kWrite, ENOSPC, 1, FaultyFileSystem::kHalf));
  faults_->inject(FaultyFileSystem::fault(Op::kTruncate, EIO));
  EXPECT_FALSE(log.add(ev("b"), give_up(), 1).is_ok());
  // Without the cut, "c" would be glued to the torn half of "b", and both lost.
  ASSERT_TRUE(log.add(ev("c"), give_up(), 1).is_ok());
  EXPECT_EQ(listed(log), (std::vector<std::string>{"a", "c"}));
}

TEST_F(DeadLetterLog, TakeWritesSyncsAndRenamesATemporaryThenSyncsTheDirectory) {
  DeadLetters log(path_, faults_);
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(log.add(ev(id), give_up(), 1).is_ok());
  const auto syncs = faults_->calls(Op::kSync), dir_syncs = faults_->calls(Op::kSyncDir);
  const auto renames = faults_->calls(Op::kRename);
  std::vector<evroute::Event> events;
  ASSERT_TRUE(log.take(std::set<std::string>{"b"}, &events).is_ok());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].id(), "b");
  EXPECT_EQ(faults_->calls(Op::kSync), syncs + 1);
  EXPECT_EQ(faults_->calls(Op::kRename), renames + 1);
  EXPECT_EQ(faults_->calls(Op::kSyncDir), dir_syncs + 1);
  EXPECT_EQ(listed(log), (std::vector<std::string>{"a", "c"}));
}

TEST_F(DeadLetterLog, ATakeThatCannotRewriteTheFileLeavesItIntactAndTakesNothing) {
  DeadLetters log(path_, faults_);
  for (const char* id : {"a", "b"}) ASSERT_TRUE(log.add(ev(id), give_up(), 1).is_ok());
  std::ifstream before_in(path_);
  const std::string before((std::istreambuf_iterator<char>(before_in)), {});
  for (const auto& fault :
       {FaultyFileSystem::fault(Op::kOpen, EIO),
        FaultyFileSystem::fault(Op::kWrite, ENOSPC, 1, FaultyFileSystem::kHalf),
        FaultyFileSystem::fault(Op::kSync, EIO), FaultyFileSystem::fault(Op::kRename, EIO)}) {
    faults_->inject(fault);
    std::vector<evroute::Event> events;
    const evroute::Status s = log.take(std::nullopt, &events);
    EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s.to_string();
    EXPECT_TRUE(events.empty());
    std::ifstream in(path_);
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), before);
    EXPECT_FALSE(fs::exists(path_.string() + ".tmp"));
  }
  std::vector<evroute::Event> events;
  ASSERT_TRUE(log.take(std::nullopt, &events).is_ok());
  EXPECT_EQ(events.size(), 2u);
  EXPECT_TRUE(listed(log).empty());
}

}  // namespace
}  // namespace evrouted
