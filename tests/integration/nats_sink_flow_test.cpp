// The nats sink in the real evrouted, against a real nats-server (support/nats_server.h): a POSTed
// event reaches a core NATS subscriber and a JetStream stream with its headers, and an event
// accepted while NATS is down is retried into the stream once the server is back.
#include <gtest/gtest.h>

#include <string>

#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/nats_server.h"

namespace evtest {
namespace {

TEST(NatsSinkFlow, EventsReachCoreSubscribersAndTheStreamAndSurviveAnOutage) {
  NatsServer server;
  ASSERT_NO_FATAL_FAILURE(server.start());
  NatsClient sub(server.url());
  ASSERT_NO_FATAL_FAILURE(sub.subscribe("orders.core"));
  ASSERT_NO_FATAL_FAILURE(sub.add_stream("ORDERS", "orders.created"));

  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
nats: { servers: [")" + server.url() +
                                R"("] }
sinks:
  bus:
    type: nats
    subject: orders.created
    jetstream: true
    timeout: 1s
    retry: { max_attempts: 0, max_elapsed: 1m, initial_backoff: 50ms, max_backoff: 200ms, breaker: false }
  core:
    type: nats
    subject: orders.core
)");
  ASSERT_TRUE(d);
  auto c = d->client();
  auto res = c.Post("/v1/events", R"({"id":"evt-1","type":"order.created"})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;

  NatsMsgPtr m = sub.next(10s);
  ASSERT_TRUE(m) << d->err();
  EXPECT_EQ(std::string(natsMsg_GetData(m.get()), natsMsg_GetDataLength(m.get())),
            R"({"id":"evt-1","type":"order.created"})");
  EXPECT_EQ(header(m.get(), "Nats-Msg-Id"), "evt-1");
  EXPECT_EQ(header(m.get(), "Evroute-Type"), "order.created");
  EXPECT_TRUE(eventually([&] { return sub.stored("ORDERS") == 1; }, 10s, 20ms)) << d->err();

  // NATS goes away: the event is accepted (memory queue) and retried until the server is back.
  server.kill();
  ASSERT_TRUE(d->wait_err_contains("nats: disconnected"));
  res = c.Post("/v1/events", R"({"id":"evt-2","type":"order.created"})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  ASSERT_TRUE(d->wait_err_contains("NATS is not reachable")) << d->err();
  ASSERT_NO_FATAL_FAILURE(server.start());
  NatsClient admin(server.url());
  EXPECT_TRUE(eventually([&] { return admin.stored("ORDERS") == 2; }, 20s, 50ms)) << d->err();
}

}  // namespace
}  // namespace evtest
