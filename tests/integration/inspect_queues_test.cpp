// `evrouted --inspect-queues` on the disk queue a real evrouted left: a clean queue (records,
// pending and delivered from the cursor, the oldest, newest and next event), a torn tail and a
// corrupt record (where, how many bytes; exit 1), an orphaned queue (not corruption: exit 0), a
// config error (exit 2) — and the queue's files byte for byte the same after every inspection.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "support/daemon_process.h"
#include "support/durable_config.h"
#include "support/eventually.h"
#include "support/receiver.h"

namespace evtest {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

struct Inspection {
  int code;
  std::string out, err;
};

// Every file under `dir` and its bytes.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    files[fs::relative(e.path(), dir).string()] =
        std::string(std::istreambuf_iterator<char>(in), {});
  }
  return files;
}

class InspectQueuesTest : public ::testing::Test {
 protected:
  // Once for the suite: a real evrouted delivers 3 events (the cursor moves past them), then its
  // receiver fails and 5 more stay pending; SIGTERM keeps them on disk. Each test gets a copy.
  static void SetUpTestSuite() {
    template_dir_ = new fs::path(make_temp_dir());
    ids_ = new std::vector<std::string>();
    Receiver hook;
    hook.set_respond([](std::size_t n) { return n < 3 ? 200 : 503; });
    auto d = DaemonProcess::start_in(*template_dir_, durable_config(hook.port()));
    ASSERT_TRUE(d);
    *ids_ = post_n(*d, 3);
    ASSERT_TRUE(hook.wait_delivered(3));
    const fs::path cursor = *template_dir_ / "state/queues/hook/cursor";
    ASSERT_TRUE(eventually([&] { return fs::exists(cursor); }, 10s)) << "the cursor is stored";
    const auto more = post_n(*d, 5);
    ids_->insert(ids_->end(), more.begin(), more.end());
    ASSERT_EQ(ids_->size(), 8u);
    ASSERT_TRUE(eventually([&] { return hook.requests().size() > 3; }, 10s));  // being retried
    d->signal(SIGTERM);
    ASSERT_EQ(d->wait_exit(20s), 0) << d->err();
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*template_dir_, ec);
    delete template_dir_;
    delete ids_;
  }

  void SetUp() override {
    dir_ = make_temp_dir();
    fs::copy(*template_dir_, dir_, fs::copy_options::recursive);
    queue_ = dir_ / "state/queues/hook";
    segment_ = queue_ / "00000000000000000001.seg";
    ASSERT_TRUE(fs::exists(segment_));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs `evrouted --inspect-queues [--json] --config dir/config.yaml` in dir (data_dir ./state is
  // relative to it), with `yaml` written to config.yaml when given; checks that no file under
  // state/ changed.
  Inspection inspect(bool json, const std::string& yaml = "") {
    if (!yaml.empty()) std::ofstream(dir_ / "config.yaml") << yaml;
    const auto before = snapshot(dir_ / "state");
    std::vector<std::string> args = {"--inspect-queues", "--config",
                                     (dir_ / "config.yaml").string()};
    if (json) args.push_back("--json");
    DaemonProcess p(args, dir_);
    const auto code = p.wait_exit(20s);
    EXPECT_TRUE(code) << "evrouted --inspect-queues did not exit";
    EXPECT_EQ(snapshot(dir_ / "state"), before) << "inspection modified the queue";
    return {code.value_or(-1), p.out(), p.err()};
  }

  // The --json document's queue of sink `sink`.
  Json queue_json(const Inspection& r, const std::string& sink) {
    const Json doc = Json::parse(r.out, nullptr, false);
    EXPECT_FALSE(doc.is_discarded()) << r.out;
    if (doc.is_discarded()) return Json::object();
    EXPECT_EQ(doc["exit_code"], r.code);
    for (const Json& q : doc["queues"]) {
      if (q["sink"] == sink) return q;
    }
    ADD_FAILURE() << "no queue " << sink << " in " << r.out;
    return Json::object();
  }

  static fs::path* template_dir_;
  static std::vector<std::string>* ids_;  // the 8 events, in order: 3 delivered, 5 pending
  fs::path dir_, queue_, segment_;
};

fs::path* InspectQueuesTest::template_dir_ = nullptr;
std::vector<std::string>* InspectQueuesTest::ids_ = nullptr;

TEST_F(InspectQueuesTest, ACleanQueueShowsItsRecordsPendingDeliveredAndEvents) {
  const Inspection text = inspect(false);
  EXPECT_EQ(text.code, 0) << text.out << text.err;
  EXPECT_NE(text.out.find("disk queue 'hook' (./state/queues/hook): clean"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("records      8 in 1 segment(s)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("pending      5, next " + ids_->at(3)), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("delivered    3"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("oldest       " + ids_->at(0)), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("newest       " + ids_->at(7)), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("exit 0 (clean)"), std::string::npos) << text.out;

  const Inspection json = inspect(true);
  EXPECT_EQ(json.code, 0);
  const Json q = queue_json(json, "hook");
  EXPECT_EQ(q["type"], "disk");
  EXPECT_EQ(q["state"], "clean");
  EXPECT_EQ(q["orphaned"], false);
  EXPECT_EQ(q["records"], 8);
  EXPECT_EQ(q["pending"], 5);
  EXPECT_EQ(q["delivered"], 3);
  EXPECT_EQ(q["bytes"], fs::file_size(segment_));
  EXPECT_EQ(q["oldest"]["id"], ids_->at(0));
  EXPECT_EQ(q["newest"]["id"], ids_->at(7));
  EXPECT_EQ(q["next_pending"]["id"], ids_->at(3));
  EXPECT_EQ(q["cursor"]["offset"], q["next_pending"]["offset"]);
  EXPECT_TRUE(q["problems"].empty());
  EXPECT_EQ(q["oldest"]["received"].get<std::string>().size(), 27u);  // ...T00:00:00.000000Z
}

TEST_F(InspectQueuesTest, ATornTailIsReportedWithItsOffsetAndBytesAndIsNotCut) {
  const Json clean = queue_json(inspect(true), "hook");
  const std::uint64_t last = clean["newest"]["offset"];
  fs::resize_file(segment_, last + 8 + 3);  // the header and 3 bytes of the last record's body

  const Inspection json = inspect(true);
  EXPECT_EQ(json.code, 1);
  const Json q = queue_json(json, "hook");
  EXPECT_EQ(q["state"], "torn");
  EXPECT_EQ(q["records"], 7);
  EXPECT_EQ(q["pending"], 4);
  EXPECT_EQ(q["newest"]["id"], ids_->at(6));
  ASSERT_EQ(q["problems"].size(), 1u) << q.dump();
  EXPECT_EQ(q["problems"][0]["kind"], "torn_tail");
  EXPECT_EQ(q["problems"][0]["offset"], last);
  EXPECT_EQ(q["problems"][0]["bytes_after"], 11);
  EXPECT_EQ(q["problems"][0]["file"], "./state/queues/hook/00000000000000000001.seg");

  const Inspection text = inspect(false);
  EXPECT_EQ(text.code, 1);
  EXPECT_NE(text.out.find("torn tail in ./state/queues/hook/00000000000000000001.seg at offset " +
                          std::to_string(last) + ": torn record (3 of "),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("11 byte(s) from there"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("exit 1 (torn or corrupt)"), std::string::npos) << text.out;
  EXPECT_EQ(fs::file_size(segment_), last + 11) << "never cut";
}

TEST_F(InspectQueuesTest, AFlippedByteIsReportedAsCorrupt) {
  const Json clean = queue_json(inspect(true), "hook");
  const std::uint64_t at = clean["next_pending"]["offset"];  // the 4th record
  {
    std::fstream f(segment_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(at + 12));
    const char c = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(at + 12));
    f.put(static_cast<char>(c ^ 0x5a));
  }
  const Inspection json = inspect(true);
  EXPECT_EQ(json.code, 1);
  const Json q = queue_json(json, "hook");
  EXPECT_EQ(q["state"], "corrupt");
  EXPECT_EQ(q["records"], 3);
  EXPECT_EQ(q["pending"], 0);
  ASSERT_EQ(q["problems"].size(), 1u);
  EXPECT_EQ(q["problems"][0]["kind"], "corrupt");
  EXPECT_EQ(q["problems"][0]["what"], "checksum mismatch");
  EXPECT_EQ(q["problems"][0]["offset"], at);
  EXPECT_EQ(q["problems"][0]["bytes_after"], fs::file_size(segment_) - at);

  const Inspection text = inspect(false);
  EXPECT_EQ(text.code, 1);
  EXPECT_NE(text.out.find("corrupt record in ./state/queues/hook/00000000000000000001.seg at "
                          "offset " +
                          std::to_string(at) + ": checksum mismatch"),
            std::string::npos)
      << text.out;
}

TEST_F(InspectQueuesTest, AQueueOfARemovedSinkIsOrphanedWhichIsNotCorruption) {
  const std::string yaml = R"(
server: { listen: "127.0.0.1:0" }
data_dir: ./state
sinks:
  fresh:
    type: http
    url: http://127.0.0.1:9/hooks
    queue: { type: disk }
)";
  const Inspection text = inspect(false, yaml);
  EXPECT_EQ(text.code, 0) << text.out << text.err;
  EXPECT_NE(text.out.find("disk queue 'fresh' (./state/queues/fresh): empty"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("disk queue 'hook' (./state/queues/hook): clean\n  orphaned     no "
                          "configured sink 'hook' has a disk queue"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("1 orphaned (not corruption)"), std::string::npos) << text.out;
  EXPECT_FALSE(fs::exists(dir_ / "state/queues/fresh")) << "nothing is created";

  const Inspection json = inspect(true, yaml);
  EXPECT_EQ(json.code, 0);
  const Json q = queue_json(json, "hook");
  EXPECT_EQ(q["orphaned"], true);
  EXPECT_EQ(q["state"], "clean");
  EXPECT_EQ(q["pending"], 5);
  EXPECT_EQ(queue_json(json, "fresh")["state"], "empty");
}

TEST_F(InspectQueuesTest, AQueueThatCannotBeReadIsReportedAndExit2) {
  fs::remove_all(queue_);
  std::ofstream(queue_) << "not a directory";
  const Inspection json = inspect(true);
  EXPECT_EQ(json.code, 2);
  const Json q = queue_json(json, "hook");
  EXPECT_EQ(q["state"], "unreadable");
  EXPECT_NE(q["error"].get<std::string>().find("./state/queues/hook"), std::string::npos)
      << q.dump();
  const Inspection text = inspect(false);
  EXPECT_EQ(text.code, 2);
  EXPECT_NE(text.out.find("1 could not be read"), std::string::npos) << text.out;
}

TEST_F(InspectQueuesTest, AConfigErrorIsReportedWithItsPositionAndExit2) {
  const Inspection r = inspect(false, "data_dir: ./state\nsinks:\n  hook:\n    type: htp\n");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("config.yaml:4:11: "), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace evtest
