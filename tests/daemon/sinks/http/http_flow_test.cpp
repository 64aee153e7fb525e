// The http sink's batching and concurrency against a real receiver (cpp-httplib on 127.0.0.1), a
// rejected batch split by evroute::Retrying so only the poison event fails, and the
// rate_limit / concurrency / batch config keys.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <csignal>
#include <future>
#include <set>
#include <thread>

#include "config.h"
#include "evroute/retry.h"
#include "sinks/http/http_sink.h"
#include "sinks/http/webhook_url.h"
#include "support/events.h"
#include "support/receiver.h"

namespace evrouted {
namespace {

using namespace std::chrono_literals;

const bool kSigpipeIgnored = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();

evroute::Event ev(const std::string& id) { return evtest::json_ev(id, "t"); }

HttpSinkConfig batching_config(const std::string& url, BatchConfig::Encoding encoding) {
  HttpSinkConfig c;
  EXPECT_TRUE(parse_webhook_url(url, &c).is_ok());
  c.delivery.batch = BatchConfig{.encoding = encoding};
  return c;
}

std::string hex_sha256(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr), 1);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", digest[i]);
    out += buf;
  }
  return out;
}

std::string hmac_base64(const std::string& key, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len);
  unsigned char b64[128];
  const int n = EVP_EncodeBlock(b64, mac, static_cast<int>(mac_len));
  return std::string(reinterpret_cast<char*>(b64), static_cast<std::size_t>(n));
}

TEST(HttpBatch, PostsOneJsonArraySignedOverTheExactBody) {
  ASSERT_TRUE(kSigpipeIgnored);
  evtest::Receiver hook;
  auto config = batching_config(hook.url(), BatchConfig::Encoding::kJsonArray);
  config.signing_keys = {"k3y"};
  HttpSink sink(config);
  const std::vector<evroute::Event> batch{ev("a"), ev("b"), ev("c")};
  std::vector<evroute::Status> results(3, evroute::Status::unavailable("unset"));
  ASSERT_TRUE(sink.write_batch(batch, results).is_ok());
  for (const auto& r : results) EXPECT_TRUE(r.is_ok());
  const auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].body, R"([{"id":"a","type":"t"},{"id":"b","type":"t"},{"id":"c","type":"t"}])");
  EXPECT_EQ(reqs[0].header("Content-Type"), "application/json");
  const std::string id = reqs[0].header("webhook-id");
  EXPECT_EQ(id, "batch_" + hex_sha256("a\nb\nc").substr(0, 32));
  const std::string ts = reqs[0].header("webhook-timestamp");
  EXPECT_EQ(reqs[0].header("webhook-signature"),
            "v1," + hmac_base64("k3y", id + "." + ts + "." + reqs[0].body));
  EXPECT_EQ(sink.stats().requests, 1u);
}

TEST(HttpBatch, NdjsonAndBatchesOfOneKeepTheirShape) {
  evtest::Receiver hook;
  HttpSink sink(batching_config(hook.url(), BatchConfig::Encoding::kNdjson));
  const std::vector<evroute::Event> batch{ev("a"), ev("b")};
  std::vector<evroute::Status> results(2);
  ASSERT_TRUE(sink.write_batch(batch, results).is_ok());
  ASSERT_TRUE(sink.write(ev("solo")).is_ok());  // a batching sink sends even one event as a batch
  const auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].body, "{\"id\":\"a\",\"type\":\"t\"}\n{\"id\":\"b\",\"type\":\"t\"}\n");
  EXPECT_EQ(reqs[0].header("Content-Type"), "application/x-ndjson");
  EXPECT_EQ(reqs[1].body, "{\"id\":\"solo\",\"type\":\"t\"}\n");
  EXPECT_EQ(reqs[1].header("webhook-id"), "solo");  // a batch of one carries its event's id
}

TEST(HttpBatch, BatchIdIsStableAndDependsOnTheIdsAndTheirOrder) {
  const std::vector<evroute::Event> ab{ev("a"), ev("b")}, ab2{ev("a"), ev("b")},
      ba{ev("b"), ev("a")};
  EXPECT_EQ(batch_webhook_id(ab), batch_webhook_id(ab2));
  EXPECT_NE(batch_webhook_id(ab), batch_webhook_id(ba));
  EXPECT_EQ(batch_webhook_id(std::span<const evroute::Event>(ab).first(1)), "a");
}

TEST(HttpBatch, RejectedBatchIsSplitAndOnlyThePoisonEventFails) {
  // A receiver that refuses (400) any body with the poison event in it, batch or not.
  std::mutex mu;
  std::vector<std::string> bodies;
  httplib::Server server;
  server.Post("/hooks", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    bodies.push_back(req.body);
    res.status = req.body.find("poison") != std::string::npos ? 400 : 200;
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread thread([&] { server.listen_after_bind(); });
  {
    auto sink = std::make_shared<HttpSink>(batching_config(
        "http://127.0.0.1:" + std::to_string(port) + "/hooks", BatchConfig::Encoding::kJsonArray));
    std::vector<std::string> given_up;
    evroute::Retrying::Options ro;
    ro.on_give_up = [&](const evroute::Event& e, const evroute::Status&, std::uint32_t) {
      given_up.emplace_back(e.id());
    };
    evroute::Retrying retrying(sink, std::make_shared<evroute::Breaker>(5, 1s), ro);
    const std::vector<evroute::Event> batch{ev("a"), ev("poison"), ev("c")};
    std::vector<evroute::Status> results(3);
    EXPECT_EQ(retrying.write_batch(batch, results).code(), evroute::Code::kRejected);
    EXPECT_TRUE(results[0].is_ok());
    EXPECT_EQ(results[1].code(), evroute::Code::kRejected);
    EXPECT_TRUE(results[2].is_ok());
    EXPECT_EQ(given_up, std::vector<std::string>{"poison"});
    EXPECT_EQ(retrying.stats().delivered, 2u);
    EXPECT_EQ(retrying.stats().gave_up, 1u);
    retrying.close();
  }
  server.stop();
  thread.join();
  ASSERT_EQ(bodies.size(), 4u);  // the batch, then each event alone (as a batch of one)
  EXPECT_EQ(bodies[1], R"([{"id":"a","type":"t"}])");
  EXPECT_EQ(bodies[2], R"([{"id":"poison","type":"t"}])");
  EXPECT_EQ(bodies[3], R"([{"id":"c","type":"t"}])");
}

TEST(HttpConcurrency, ConcurrentWritesUseConnectionsOfTheirOwn) {
  evtest::Receiver hook;
  hook.close_gate();  // a slow endpoint: requests wait until the gate opens
  HttpSinkConfig config;
  ASSERT_TRUE(parse_webhook_url(hook.url(), &config).is_ok());
  HttpSink sink(config);
  std::vector<std::future<evroute::Status>> writes;
  for (int i = 0; i < 3; ++i) {
    writes.push_back(
        std::async(std::launch::async, [&, i] { return sink.write(ev("e" + std::to_string(i))); }));
  }
  EXPECT_TRUE(hook.wait_in_flight(3));  // all three at the receiver at once
  hook.open_gate();
  for (auto& w : writes) EXPECT_TRUE(w.get().is_ok());
  EXPECT_EQ(hook.delivered().size(), 3u);
  EXPECT_EQ(hook.max_in_flight(), 3u);
}

TEST(HttpConcurrency, CloseInterruptsEveryWriteInFlight) {
  evtest::Receiver hook;
  hook.close_gate();
  HttpSinkConfig config;
  ASSERT_TRUE(parse_webhook_url(hook.url(), &config).is_ok());
  config.timeout = 60s;
  HttpSink sink(config);
  std::vector<std::future<evroute::Status>> writes;
  for (int i = 0; i < 3; ++i) {
    writes.push_back(
        std::async(std::launch::async, [&, i] { return sink.write(ev("e" + std::to_string(i))); }));
  }
  ASSERT_TRUE(hook.wait_in_flight(3));
  ASSERT_TRUE(sink.close().is_ok());
  for (auto& w : writes) {
    ASSERT_EQ(w.wait_for(10s), std::future_status::ready);  // not the 60 s timeout
    EXPECT_TRUE(w.get().is_closed());
  }
  hook.open_gate();
}

std::vector<std::string> errors_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& e : load_config_text(yaml, "t.yaml").errors) out.push_back(e.to_string());
  return out;
}

TEST(DeliveryConfig, ParsesRateLimitConcurrencyAndBatch) {
  auto r = load_config_text(R"(
sinks:
  a:
    type: http
    url: http://127.0.0.1:9/a
    rate_limit: 2.5
    concurrency: 4
    batch: { max_events: 50, max_bytes: 64KiB, max_wait: 250ms, encoding: ndjson }
  b:
    type: http
    url: http://127.0.0.1:9/b
    rate_limit: { per_second: 100, burst: 20 }
    batch: {}
  c:
    type: http
    url: http://127.0.0.1:9/c
)",
                            "t.yaml");
  ASSERT_TRUE(r.config) << ::testing::PrintToString(errors_of(""));
  const auto a = r.config->sinks[0].spec->delivery();
  ASSERT_TRUE(a.rate_limit);
  EXPECT_EQ(a.rate_limit->per_second, 2.5);
  EXPECT_EQ(a.rate_limit->burst, 1);
  EXPECT_EQ(a.concurrency, 4u);
  ASSERT_TRUE(a.batch);
  EXPECT_EQ(a.batch->max_events, 50u);
  EXPECT_EQ(a.batch->max_bytes, 64u * 1024);
  EXPECT_EQ(a.batch->max_wait, 250ms);
  EXPECT_EQ(a.batch->encoding, BatchConfig::Encoding::kNdjson);
  const auto b = r.config->sinks[1].spec->delivery();
  EXPECT_EQ(b.rate_limit->per_second, 100);
  EXPECT_EQ(b.rate_limit->burst, 20);
  EXPECT_EQ(b.concurrency, 1u);
  ASSERT_TRUE(b.batch);  // defaults
  EXPECT_EQ(b.batch->max_events, 100u);
  EXPECT_EQ(b.batch->max_bytes, 1u << 20);
  EXPECT_EQ(b.batch->max_wait, 1s);
  EXPECT_EQ(b.batch->encoding, BatchConfig::Encoding::kJsonArray);
  const auto c = r.config->sinks[2].spec->delivery();
  EXPECT_FALSE(c.rate_limit);
  EXPECT_EQ(c.concurrency, 1u);
  EXPECT_FALSE(c.batch);
}

TEST(DeliveryConfig, MistakesHaveTheirLineAndColumn) {
  using V = std::vector<std::string>;
  const std::string head = "sinks:\n  a:\n    type: http\n    url: http://h/\n";
  EXPECT_EQ(errors_of(head + "    rate_limit: 0\n"),
            V{"t.yaml:5:17: sink 'a': 'rate_limit' must be more than 0 (events per second)"});
  EXPECT_EQ(errors_of(head + "    rate_limit: { burst: 3 }\n"),
            V{"t.yaml:5:17: sink 'a'.rate_limit: needs 'per_second' (events per second)"});
  EXPECT_EQ(errors_of(head + "    concurrency: 0\n"),
            V{"t.yaml:5:18: sink 'a': 'concurrency' must be a whole number from 1 to 256, not "
              "'0'"});
  EXPECT_EQ(errors_of(head + "    batch: { encoding: xml }\n"),
            V{"t.yaml:5:24: sink 'a'.batch: 'encoding' must be one of json, ndjson, not 'xml'"});
  EXPECT_EQ(errors_of(head + "    batch: { max_events: 0, size: 3 }\n"),
            (V{"t.yaml:5:26: sink 'a'.batch: 'max_events' must be a whole number from 1 to "
               "100000, not '0'",
               "t.yaml:5:29: unknown key 'size' in sink 'a'.batch (known keys: encoding, "
               "max_bytes, max_events, max_wait)"}));
  // Only http sinks batch: elsewhere the keys are unknown.
  const auto errors = errors_of("sinks:\n  f:\n    type: file\n    path: x\n    batch: {}\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("t.yaml:5:5: unknown key 'batch' in sink 'f'", 0), 0u) << errors[0];
}

}  // namespace
}  // namespace evrouted
