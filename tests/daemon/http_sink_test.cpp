// The http sink against a real HTTP receiver: body and headers, keep-alive, how each answer maps to
// a Status, timeouts, close during a request, and retries composed with evroute::Retrying.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "evroute/retry.h"
#include "sinks/http_sink.h"
#include "support/daemon_process.h"
#include "support/receiver.h"

namespace evrouted {
namespace {

using namespace std::chrono_literals;

HttpSinkConfig config_for(const std::string& url, Duration timeout = 5s) {
  HttpSinkConfig c;
  EXPECT_FALSE(parse_webhook_url(url, &c));
  c.timeout = timeout;
  return c;
}

evroute::Event ev(const std::string& id) {
  return evroute::Event::make(id, R"({"id":")" + id + R"(","type":"t"})");
}

TEST(HttpSink, PostsThePayloadWithWebhookHeaders) {
  evtest::Receiver hook;
  auto config = config_for(hook.url("/in?x=1"));
  config.headers = {{"X-Team", "billing"}};
  HttpSink sink(config);
  ASSERT_TRUE(sink.write(ev("evt-1")).is_ok());
  auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].path, "/in");
  EXPECT_EQ(reqs[0].body, R"({"id":"evt-1","type":"t"})");
  EXPECT_EQ(reqs[0].header("Content-Type"), "application/json");
  EXPECT_EQ(reqs[0].header("X-Team"), "billing");
  EXPECT_EQ(reqs[0].header("webhook-id"), "evt-1");
  EXPECT_EQ(reqs[0].header("User-Agent").rfind("evroute/", 0), 0u);
  const long ts = std::stol(reqs[0].header("webhook-timestamp"));
  const long now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  EXPECT_NEAR(ts, now, 60);
  EXPECT_EQ(sink.stats().responses_2xx, 1u);
}

TEST(HttpSink, KeepsOneConnectionAlive) {
  evtest::Receiver hook;
  HttpSink sink(config_for(hook.url()));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(sink.write(ev(std::to_string(i))).is_ok());
  std::set<std::string> ports;
  for (auto& r : hook.requests()) ports.insert(r.header("REMOTE_PORT"));
  EXPECT_EQ(ports.size(), 1u);
}

TEST(HttpSink, AnswersMapToRetryableOrRejected) {
  struct Case {
    int status;
    evroute::Code code;
  } cases[] = {{200, evroute::Code::kOk},          {204, evroute::Code::kOk},
               {500, evroute::Code::kUnavailable}, {503, evroute::Code::kUnavailable},
               {429, evroute::Code::kUnavailable}, {408, evroute::Code::kUnavailable},
               {400, evroute::Code::kRejected},    {404, evroute::Code::kRejected},
               {410, evroute::Code::kRejected},    {301, evroute::Code::kRejected},
               {302, evroute::Code::kRejected}};
  for (const auto& c : cases) {
    evtest::Receiver hook;
    hook.set_respond([&](std::size_t) { return c.status; });
    HttpSink sink(config_for(hook.url()));
    const auto s = sink.write(ev("x"));
    EXPECT_EQ(s.code(), c.code) << c.status << ": " << s;
    EXPECT_EQ(hook.requests().size(), 1u) << c.status << ": a redirect was followed?";
  }
}

TEST(HttpSink, RetryAfterIsParsed) {
  const auto now = std::chrono::system_clock::from_time_t(1700000000);  // Tue, 14 Nov 2023 22:13:20
  EXPECT_EQ(parse_retry_after("7", now), 7s);
  EXPECT_EQ(parse_retry_after("", now), 0s);
  EXPECT_EQ(parse_retry_after("soon", now), 0s);
  EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now), 30s);
  EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), 0s);  // in the past

  httplib::Server server;
  server.Post("/", [](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_header("Retry-After", "7");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  HttpSink sink(config_for("http://127.0.0.1:" + std::to_string(port) + "/"));
  const auto s = sink.write(ev("x"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable);
  EXPECT_EQ(s.retry_after(), 7s);
  sink.close();  // drops the kept-alive connection, so stop() need not wait it out
  server.stop();
  t.join();
}

TEST(HttpSink, ConnectionRefusedIsRetryable) {
  HttpSink sink(config_for("http://127.0.0.1:" + std::to_string(evtest::free_port()) + "/"));
  const auto s = sink.write(ev("x"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_NE(s.message().find("POST http://127.0.0.1:"), std::string::npos) << s;
  EXPECT_EQ(sink.stats().transport_errors, 1u);
}

TEST(HttpSink, ASilentReceiverTimesOut) {
  evtest::Receiver hook;
  hook.close_gate();
  HttpSink sink(config_for(hook.url(), 300ms));
  const auto start = std::chrono::steady_clock::now();
  const auto s = sink.write(ev("x"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  hook.open_gate();
}

TEST(HttpSink, CloseInterruptsAWriteInFlight) {
  evtest::Receiver hook;
  hook.close_gate();
  auto sink = std::make_shared<HttpSink>(config_for(hook.url(), 30s));
  evroute::Status result;
  std::thread writer([&] { result = sink->write(ev("x")); });
  std::this_thread::sleep_for(200ms);
  const auto start = std::chrono::steady_clock::now();
  sink->close();
  writer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_FALSE(result.is_ok());
  EXPECT_EQ(sink->write(ev("y")).code(), evroute::Code::kClosed);
  hook.open_gate();
}

// https against a local server whose self-signed certificate (made here with the openssl CLI) is
// trusted through tls.ca_file — and refused without it.
TEST(HttpSink, HttpsVerifiesTheServerCertificate) {
  const auto dir = evtest::make_temp_dir();
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
      " -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl CLI failed";
  httplib::SSLServer server(cert.c_str(), key.c_str());
  ASSERT_TRUE(server.is_valid());
  std::atomic<int> received{0};
  server.Post("/hooks", [&](const httplib::Request&, httplib::Response& res) {
    ++received;
    res.status = 204;
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/hooks";

  auto trusted = config_for(url);
  trusted.ca_file = cert;
  EXPECT_TRUE(HttpSink(trusted).write(ev("a")).is_ok());
  EXPECT_EQ(received.load(), 1);

  const auto untrusted = HttpSink(config_for(url)).write(ev("b"));  // system CAs only
  EXPECT_EQ(untrusted.code(), evroute::Code::kUnavailable) << untrusted;
  EXPECT_EQ(received.load(), 1);

  server.stop();
  t.join();
  std::filesystem::remove_all(dir);
}

// Standard Webhooks: the published test vector (from the spec's reference implementations).
TEST(WebhookSignature, ReproducesThePublishedTestVector) {
  auto key = decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key);
  EXPECT_EQ(webhook_signature({*key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                              R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_FALSE(decode_webhook_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));  // no whsec_
  EXPECT_FALSE(decode_webhook_secret("whsec_not*base64"));
}

// A verifier written from the spec, sharing no code with evroute's signer: its own base64 and
// OpenSSL's EVP_Q_mac. Returns the "v1,<base64>" entry for one secret.
std::string expected_signature(const std::string& whsec, const std::string& id,
                               const std::string& timestamp, const std::string& body) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string key;
  int bits = 0, value = 0;
  for (char c : whsec.substr(6)) {  // after "whsec_"
    if (c == '=') break;
    value = (value << 6) | static_cast<int>(kAlphabet.find(c));
    if ((bits += 6) >= 8) key += static_cast<char>((value >> (bits -= 8)) & 0xff);
  }
  const std::string message = id + "." + timestamp + "." + body;
  unsigned char mac[64];
  size_t mac_len = 0;
  char digest[] = "SHA256";
  EXPECT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, digest, nullptr, key.data(), key.size(),
                      reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac,
                      sizeof mac, &mac_len),
            nullptr);
  std::string out = "v1,";
  for (size_t i = 0; i < mac_len; i += 3) {
    const int n = static_cast<int>(std::min<size_t>(3, mac_len - i));
    const unsigned v = (mac[i] << 16) | (n > 1 ? mac[i + 1] << 8 : 0) | (n > 2 ? mac[i + 2] : 0);
    for (int j = 0; j < 4; ++j) out += j <= n ? kAlphabet[(v >> (18 - 6 * j)) & 63] : '=';
  }
  return out;
}

TEST(HttpSink, SignsEveryAttemptWithEachSecret) {
  const std::string old_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const std::string new_secret = "whsec_c2VjcmV0LWtleS1mb3Itcm90YXRpb24tdGVzdHM=";
  evtest::Receiver hook;
  hook.set_respond([](std::size_t n) { return n == 0 ? 503 : 200; });
  auto config = config_for(hook.url());
  config.signing_keys = {*decode_webhook_secret(old_secret), *decode_webhook_secret(new_secret)};
  HttpSink sink(config);
  EXPECT_FALSE(sink.write(ev("evt-7")).is_ok());  // 503: the retry is signed anew
  EXPECT_TRUE(sink.write(ev("evt-7")).is_ok());
  auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 2u);
  for (const auto& r : reqs) {
    const std::string ts = r.header("webhook-timestamp");
    EXPECT_EQ(r.header("webhook-signature"),
              expected_signature(old_secret, "evt-7", ts, r.body) + " " +
                  expected_signature(new_secret, "evt-7", ts, r.body));
  }
}

TEST(HttpSink, BadSecretIsAConfigError) {
  ConfigErrors errors("t.yaml");
  ConfigReader reader(YAML::Load("url: http://127.0.0.1:9/\nsecret: whsec_%%%\n"), errors,
                      "sink 'a'");
  EXPECT_FALSE(parse_http_sink(reader));
  ASSERT_EQ(errors.all().size(), 1u);
  EXPECT_EQ(errors.all()[0].to_string(),
            "t.yaml:2:9: sink 'a': 'secret' must be whsec_ followed by base64 (Standard Webhooks)");
  ConfigErrors ok_errors("t.yaml");
  ConfigReader ok(
      YAML::Load("url: http://127.0.0.1:9/\nsecret: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, "
                 "whsec_c2VjcmV0]\n"),
      ok_errors, "sink 'a'");
  EXPECT_TRUE(parse_http_sink(ok));
  EXPECT_TRUE(ok_errors.empty());
}

TEST(HttpSink, RetryingDeliversOnTheThirdAttemptWithTheSameId) {
  evtest::Receiver hook;
  hook.set_respond([](std::size_t n) { return n < 2 ? 500 : 200; });
  auto clock = std::make_shared<evroute::FakeClock>();
  evroute::Retrying retrying(std::make_shared<HttpSink>(config_for(hook.url())),
                             std::make_shared<evroute::ExponentialBackoff>(
                                 evroute::ExponentialBackoff::Options{.base = 100ms, .jitter = 0}),
                             {.max_attempts = 5, .clock = clock});
  ASSERT_TRUE(retrying.write(ev("evt-9")).is_ok());
  auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (auto& r : reqs) EXPECT_EQ(r.header("webhook-id"), "evt-9");
  EXPECT_EQ(clock->sleeps(), (std::vector<evroute::Clock::Duration>{100ms, 200ms}));
}

}  // namespace
}  // namespace evrouted
