// The verdict and the rendering of --inspect-queues (inspect_queues.h), on hand-made reports; the
// real queues are inspected by tests/integration/inspect_queues_test and
// tests/cluster/inspect_jetstream_test.
#include <gtest/gtest.h>

#include "inspect_queues.h"

namespace evrouted {
namespace {

using Kind = evroute::DiskLogInspection::Problem::Kind;

DiskQueueReport disk(const std::string& sink, bool orphaned = false) {
  DiskQueueReport q;
  q.sink = sink;
  q.dir = "./data/queues/" + sink;
  q.orphaned = orphaned;
  q.log.exists = true;
  return q;
}

DiskQueueReport with_problem(DiskQueueReport q, Kind kind) {
  q.log.problems.push_back({kind, q.dir / "00000000000000000001.seg", 10, 5, "what"});
  return q;
}

TEST(InspectQueuesReport, AnOrphanAloneIsClean) {
  QueuesReport r;
  r.disk = {disk("a"), disk("old", true)};
  EXPECT_EQ(r.exit_code(), kInspectClean);
  const std::string text = queues_text(r);
  EXPECT_NE(text.find("1 orphaned (not corruption)"), std::string::npos) << text;
  EXPECT_NE(text.find("exit 0 (clean)"), std::string::npos) << text;
  EXPECT_EQ(queues_json(r)["verdict"], "clean");
}

TEST(InspectQueuesReport, ATornOrCorruptQueueIsExit1EvenWhenAnotherCouldNotBeRead) {
  for (const Kind kind : {Kind::kTornTail, Kind::kCorrupt, Kind::kBadCursor}) {
    QueuesReport r;
    DiskQueueReport unreadable = disk("b");
    unreadable.error = evroute::Status::unavailable("cannot list ./data/queues/b");
    r.disk = {with_problem(disk("a", true), kind), unreadable};
    EXPECT_EQ(r.exit_code(), kInspectCorrupt);
    EXPECT_EQ(queues_json(r)["verdict"], "corrupt");
    EXPECT_EQ(queues_json(r)["queues"][0]["state"], kind == Kind::kTornTail ? "torn" : "corrupt");
  }
}

TEST(InspectQueuesReport, AQueueThatCouldNotBeReadOrNatsDownIsExit2) {
  QueuesReport r;
  r.disk = {disk("a")};
  JetStreamQueueReport js;
  js.sink = "j";
  js.error = evroute::Status::unavailable("nats unavailable: NATS is not reachable");
  r.jetstream = {js};
  r.stream = "EVROUTE";
  r.stream_error = js.error;
  EXPECT_EQ(r.exit_code(), kInspectFailed);
  const auto json = queues_json(r);
  EXPECT_EQ(json["verdict"], "incomplete");
  EXPECT_EQ(json["queues"][1]["state"], "unavailable");
  EXPECT_TRUE(json["queues"][1]["pending"].is_null());
  EXPECT_TRUE(json["stream"]["exists"].is_null());
  EXPECT_NE(queues_text(r).find("(not corruption)"), std::string::npos);
}

TEST(InspectQueuesReport, EveryKeyIsThereForAnEmptyQueue) {
  QueuesReport r;
  DiskQueueReport empty = disk("a");
  empty.log.exists = false;
  r.disk = {empty};
  const auto q = queues_json(r)["queues"][0];
  EXPECT_EQ(q["state"], "empty");
  for (const char* key :
       {"sink", "type", "state", "orphaned", "dir", "segments", "records", "bytes", "pending",
        "delivered", "cursor", "oldest", "newest", "next_pending", "problems", "error"}) {
    EXPECT_TRUE(q.contains(key)) << key;
  }
  EXPECT_TRUE(q["oldest"].is_null());
  EXPECT_TRUE(queues_json(r)["stream"].is_null());
}

}  // namespace
}  // namespace evrouted
