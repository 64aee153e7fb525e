// The nats sink against a real nats-server (a single `nats-server -js` this test starts on a free
// 127.0.0.1 port, with its own store directory; no mocks): core publishes reach a subscriber with
// their data and headers, JetStream stores an event once however often it is written, a subject no
// stream captures fails retryably naming it, a dead server fails retryably and a restarted one
// takes the writes again, an event over max_payload is rejected alone, and close() ends a write
// waiting for its PubAck.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "evroute/event.h"
#include "nats/link.h"
#include "sinks/nats/nats_sink.h"
#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/nats_server.h"

namespace evrouted {
namespace {

using namespace std::chrono_literals;

class NatsSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(server_.start());
    NatsConfig config;
    config.servers = {server_.url()};
    auto link = nats::Link::open(config, /*streams=*/false);
    ASSERT_TRUE(link.ok()) << link.status();
    link_ = std::move(*link);
    ASSERT_TRUE(evtest::eventually([&] { return link_->connected(); }, 10s, 5ms));
  }

  std::unique_ptr<NatsSink> sink(const std::string& subject, bool jetstream,
                                 Duration timeout = 5s) {
    NatsSinkConfig config;
    config.subject = subject;
    config.jetstream = jetstream;
    config.timeout = timeout;
    return std::make_unique<NatsSink>(config, link_);
  }

  evtest::NatsServer server_;
  std::shared_ptr<nats::Link> link_;
};

evroute::Event order(const std::string& id) {
  return evroute::Event::make(id, R"({"id":")" + id + R"(","type":"order.created"})",
                              {{"type", "order.created"}});
}

TEST_F(NatsSinkTest, CorePublishReachesASubscriberWithDataAndHeaders) {
  evtest::NatsClient sub(server_.url());
  ASSERT_NO_FATAL_FAILURE(sub.subscribe("orders.created"));
  auto s = sink("orders.created", false);
  ASSERT_TRUE(s->write(order("ev-1")).is_ok());
  evtest::NatsMsgPtr m = sub.next();
  ASSERT_TRUE(m);
  EXPECT_EQ(std::string(natsMsg_GetData(m.get()), natsMsg_GetDataLength(m.get())),
            R"({"id":"ev-1","type":"order.created"})");
  EXPECT_EQ(evtest::header(m.get(), "Nats-Msg-Id"), "ev-1");
  EXPECT_EQ(evtest::header(m.get(), "Evroute-Type"), "order.created");

  // A batch: every event, in order; a type unsafe in a header is left out.
  const std::vector<evroute::Event> batch = {
      order("ev-2"), evroute::Event::make("ev-3", "{}", {{"type", "x\r\nNats-Msg-Id: forged"}}),
      order("ev-4")};
  std::vector<evroute::Status> results(batch.size());
  ASSERT_TRUE(s->write_batch(batch, results).is_ok());
  for (const char* id : {"ev-2", "ev-3", "ev-4"}) {
    m = sub.next();
    ASSERT_TRUE(m) << id;
    EXPECT_EQ(evtest::header(m.get(), "Nats-Msg-Id"), id);
    EXPECT_EQ(evtest::header(m.get(), "Evroute-Type"),
              std::string(id) == "ev-3" ? "(none)" : "order.created");
  }
}

TEST_F(NatsSinkTest, AnEventOverTheServersMaxPayloadIsRejectedAndTheRestSent) {
  evtest::NatsClient sub(server_.url());
  ASSERT_NO_FATAL_FAILURE(sub.subscribe("orders.created"));
  auto s = sink("orders.created", false);
  const std::int64_t max = natsConnection_GetMaxPayload(link_->connection());
  ASSERT_GT(max, 0);
  const std::vector<evroute::Event> batch = {
      order("ev-1"),
      evroute::Event::make("ev-big", std::string(static_cast<std::size_t>(max), 'x')),
      order("ev-2")};
  std::vector<evroute::Status> results(batch.size());
  EXPECT_EQ(s->write_batch(batch, results).code(), evroute::Code::kRejected);
  EXPECT_TRUE(results[0].is_ok()) << results[0];
  EXPECT_EQ(results[1].code(), evroute::Code::kRejected) << results[1];
  EXPECT_NE(results[1].message().find("max_payload"), std::string::npos) << results[1];
  EXPECT_TRUE(results[2].is_ok()) << results[2];
  for (const char* id : {"ev-1", "ev-2"}) {
    evtest::NatsMsgPtr m = sub.next();
    ASSERT_TRUE(m) << id;
    EXPECT_EQ(evtest::header(m.get(), "Nats-Msg-Id"), id);
  }
}

TEST_F(NatsSinkTest, JetStreamStoresAnEventOnceWhenWrittenTwice) {
  evtest::NatsClient admin(server_.url());
  ASSERT_NO_FATAL_FAILURE(admin.add_stream("ORDERS", "orders.created"));
  auto s = sink("orders.created", true);
  ASSERT_TRUE(s->write(order("ev-1")).is_ok());
  ASSERT_TRUE(s->write(order("ev-1")).is_ok());  // a retry: a duplicate, acknowledged as stored
  const std::vector<evroute::Event> batch = {order("ev-1"), order("ev-2")};
  std::vector<evroute::Status> results(batch.size());
  ASSERT_TRUE(s->write_batch(batch, results).is_ok());
  EXPECT_TRUE(results[0].is_ok() && results[1].is_ok());
  EXPECT_EQ(admin.stored("ORDERS"), 2u);
}

TEST_F(NatsSinkTest, JetStreamToASubjectNoStreamCapturesFailsRetryably) {
  auto s = sink("orders.lost", true);
  const evroute::Status st = s->write(order("ev-1"));
  EXPECT_TRUE(st.is_retryable()) << st;
  EXPECT_EQ(st.code(), evroute::Code::kUnavailable) << st;
  EXPECT_NE(st.message().find("no JetStream stream captures subject orders.lost"),
            std::string::npos)
      << st;
}

TEST_F(NatsSinkTest, JetStreamWithoutAPubAckTimesOutRetryably) {
  evtest::NatsClient silent(
      server_.url());  // a core subscriber: a responder that never acknowledges
  ASSERT_NO_FATAL_FAILURE(silent.subscribe("orders.silent"));
  auto s = sink("orders.silent", true, 200ms);
  const evroute::Status st = s->write(order("ev-1"));
  EXPECT_EQ(st.code(), evroute::Code::kUnavailable) << st;
  EXPECT_EQ(st.message(),
            "nats orders.silent: NATS JetStream did not store the events: no PubAck in time");
}

TEST_F(NatsSinkTest, CloseEndsAWriteWaitingForItsPubAck) {
  evtest::NatsClient silent(server_.url());
  ASSERT_NO_FATAL_FAILURE(silent.subscribe("orders.silent"));
  auto s = sink("orders.silent", true, 60s);
  auto write = std::async(std::launch::async, [&] { return s->write(order("ev-1")); });
  ASSERT_TRUE(silent.next(10s));  // the write is in flight: published, waiting for its PubAck
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(s->close().is_ok());
  ASSERT_EQ(write.wait_for(10s), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_TRUE(write.get().is_closed());
  EXPECT_TRUE(s->write(order("ev-2")).is_closed());
}

TEST_F(NatsSinkTest, ADeadServerFailsRetryablyAndARestartedOneTakesWritesAgain) {
  {
    evtest::NatsClient admin(server_.url());
    ASSERT_NO_FATAL_FAILURE(admin.add_stream("ORDERS", "orders.created"));
  }
  auto js = sink("orders.created", true, 1s);
  auto core = sink("orders.core", false, 1s);
  ASSERT_TRUE(js->write(order("ev-1")).is_ok());

  server_.kill();
  ASSERT_TRUE(evtest::eventually([&] { return !link_->connected(); }, 10s, 5ms));
  for (NatsSink* s : {js.get(), core.get()}) {
    const evroute::Status st = s->write(order("ev-2"));
    EXPECT_EQ(st.code(), evroute::Code::kUnavailable) << st;
    EXPECT_NE(st.message().find("NATS is not reachable (" + server_.url()), std::string::npos)
        << st;
  }

  ASSERT_NO_FATAL_FAILURE(server_.start());  // the same port and store: the stream is still there
  ASSERT_TRUE(evtest::eventually([&] { return link_->connected(); }, 15s, 10ms));
  // JetStream may need a moment after the restart before it answers: retried as Retrying would.
  EXPECT_TRUE(evtest::eventually([&] { return js->write(order("ev-2")).is_ok(); }, 15s, 100ms));
  EXPECT_TRUE(evtest::eventually([&] { return core->write(order("ev-2")).is_ok(); }, 15s, 100ms));
  evtest::NatsClient admin(server_.url());
  EXPECT_EQ(admin.stored("ORDERS"), 2u);
}

}  // namespace
}  // namespace evrouted

namespace evrouted {
namespace {

// The link waits for libnats' last connection callback before it goes (a callback running after
// would touch a destroyed Link): promptly, also when no server ever answered.
TEST(NatsLink, ClosesPromptlyWhetherConnectedOrNot) {
  for (const bool with_server : {true, false}) {
    evtest::NatsServer server;
    if (with_server) {
      ASSERT_NO_FATAL_FAILURE(server.start());
    }
    NatsConfig config;
    config.servers = {server.url()};
    auto link = nats::Link::open(config, /*streams=*/false);
    ASSERT_TRUE(link.ok()) << link.status();
    if (with_server) {
      ASSERT_TRUE(evtest::eventually([&] { return (*link)->connected(); }, 10s, 5ms));
    }
    const auto t0 = std::chrono::steady_clock::now();
    link->reset();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "with_server " << with_server;
  }
}

}  // namespace
}  // namespace evrouted
