// The http sink against real HTTP receivers (cpp-httplib servers on 127.0.0.1; no mocks): body and
// headers, keep-alive, how each answer maps to a Status, timeouts, close during a request, https,
// signing, retries composed with evroute::Retrying, and the `type: http` config parser.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <array>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "evroute/retry.h"
#include "http_sink_support.h"
#include "sinks/http/http_sink.h"
#include "sinks/http/retry_after.h"
#include "sinks/http/webhook_signature.h"
#include "support/daemon_process.h"
#include "support/receiver.h"

namespace evrouted {
namespace {

using namespace std::chrono_literals;

// As evrouted's main does (for its cpp-httplib server; the sink needs no such help: see
// http_sink_hostile_test.cpp).
const bool kSigpipeIgnored = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();

// An httplib::Server on 127.0.0.1 with the test's own handlers, for answers evtest::Receiver does
// not give (headers, redirects, bodies). Declare sinks after it: a sink's destructor drops its
// kept-alive connection, which the server's stop() would otherwise wait out.
class LocalServer {
 public:
  explicit LocalServer(const std::function<void(httplib::Server&)>& setup) {
    setup(server_);
    port_ = server_.bind_to_any_port("127.0.0.1");
    EXPECT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~LocalServer() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path = "/hooks") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(HttpSink, PostsThePayloadWithWebhookHeaders) {
  ASSERT_TRUE(kSigpipeIgnored);
  evtest::Receiver hook;
  auto config = config_for(hook.url("/in?x=1"));
  config.headers = {{"X-Team", "billing"}, {"Authorization", "Bearer t0k"}};
  HttpSink sink(config);
  ASSERT_TRUE(sink.write(ev("evt-1")).is_ok());
  auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].path, "/in");
  EXPECT_EQ(reqs[0].body, R"({"id":"evt-1","type":"t"})");
  EXPECT_EQ(reqs[0].header("Content-Type"), "application/json");
  EXPECT_EQ(reqs[0].headers.count("Content-Type"), 1u);
  EXPECT_EQ(reqs[0].header("X-Team"), "billing");
  EXPECT_EQ(reqs[0].header("Authorization"), "Bearer t0k");
  EXPECT_EQ(reqs[0].header("webhook-id"), "evt-1");
  EXPECT_EQ(reqs[0].header("User-Agent"), "evroute/" EVROUTE_VERSION);
  EXPECT_EQ(reqs[0].headers.count("webhook-signature"), 0u);  // no secret configured
  const long ts = std::stol(reqs[0].header("webhook-timestamp"));
  const long now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  EXPECT_NEAR(ts, now, 60);
  EXPECT_EQ(sink.stats().responses_2xx, 1u);
}

TEST(HttpSink, ConfiguredUserAgentReplacesTheDefault) {
  evtest::Receiver hook;
  auto config = config_for(hook.url());
  config.headers = {{"user-agent", "billing-hooks/2"}};
  HttpSink sink(config);
  ASSERT_TRUE(sink.write(ev("evt-1")).is_ok());
  auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].headers.count("User-Agent"), 1u);
  EXPECT_EQ(reqs[0].header("User-Agent"), "billing-hooks/2");
}

TEST(HttpSink, KeepsOneConnectionAlive) {
  evtest::Receiver hook;
  HttpSink sink(config_for(hook.url()));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(sink.write(ev(std::to_string(i))).is_ok());
  std::set<std::string> ports;  // cpp-httplib's server puts req.remote_port in REMOTE_PORT
  for (auto& r : hook.requests()) ports.insert(r.header("REMOTE_PORT"));
  EXPECT_EQ(ports.size(), 1u);
}

// Receivers drop idle connections (here after 1 s): the next write must notice and reconnect, not
// fail on the dead socket.
TEST(HttpSink, ReconnectsWhenTheReceiverDropsAnIdleConnection) {
  std::mutex mu;
  std::set<int> ports;
  LocalServer server([&](httplib::Server& s) {
    s.set_keep_alive_timeout(1);
    s.Post("/hooks", [&](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu);
      ports.insert(req.remote_port);
      res.status = 204;
    });
  });
  HttpSink sink(config_for(server.url()));
  ASSERT_TRUE(sink.write(ev("a")).is_ok());
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(sink.write(ev("b")).is_ok());
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(ports.size(), 2u);
}

// An IPv6 literal in the URL: the connection goes to it, and Host names it in brackets.
TEST(HttpSink, PostsToAnIpv6Literal) {
  httplib::Server server;
  std::mutex mu;
  std::string host;
  server.Post("/hooks", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    host = req.get_header_value("Host");
    res.status = 204;
  });
  const int port = server.bind_to_any_port("::1");
  if (port <= 0) GTEST_SKIP() << "no IPv6 loopback here";
  std::thread t([&] { server.listen_after_bind(); });
  {
    HttpSink sink(config_for("http://[::1]:" + std::to_string(port) + "/hooks"));
    EXPECT_TRUE(sink.write(ev("v6")).is_ok());
  }
  server.stop();
  t.join();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(host, "[::1]:" + std::to_string(port));
}

TEST(HttpSink, AnswersMapToRetryableOrRejected) {
  struct Case {
    int status;
    evroute::Code code;
  } cases[] = {{200, evroute::Code::kOk},          {204, evroute::Code::kOk},
               {500, evroute::Code::kUnavailable}, {503, evroute::Code::kUnavailable},
               {429, evroute::Code::kUnavailable}, {408, evroute::Code::kUnavailable},
               {400, evroute::Code::kRejected},    {404, evroute::Code::kRejected},
               {501, evroute::Code::kUnavailable}, {409, evroute::Code::kRejected}};
  for (const auto& c : cases) {
    evtest::Receiver hook;
    hook.set_respond([&](std::size_t) { return c.status; });
    HttpSink sink(config_for(hook.url()));
    const auto s = sink.write(ev("x"));
    EXPECT_EQ(s.code(), c.code) << c.status << ": " << s;
    EXPECT_EQ(s.is_retryable(), c.code == evroute::Code::kUnavailable) << c.status;
    if (!s.is_ok()) {
      EXPECT_EQ(s.message(), "POST " + hook.url() + ": HTTP " + std::to_string(c.status));
    }
    EXPECT_EQ(hook.requests().size(), 1u) << c.status;
  }
}

TEST(HttpSink, RedirectsAreRejectedNotFollowed) {
  std::atomic<int> status{301}, at_target{0};
  LocalServer server([&](httplib::Server& s) {
    s.Post("/hooks", [&](const httplib::Request&, httplib::Response& res) {
      res.status = status.load();
      res.set_header("Location", "/target");  // same server: a followed redirect would land here
    });
    s.Post("/target", [&](const httplib::Request&, httplib::Response& res) {
      ++at_target;
      res.status = 200;
    });
  });
  for (int code : {301, 302, 303, 307, 308}) {
    status = code;
    HttpSink sink(config_for(server.url()));
    const auto s = sink.write(ev("x"));
    EXPECT_EQ(s.code(), evroute::Code::kRejected) << code << ": " << s;
    EXPECT_EQ(sink.stats().responses_3xx, 1u);
  }
  EXPECT_EQ(at_target.load(), 0);
}

std::string http_date(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

TEST(HttpSink, RetryAfterIsParsed) {
  const auto now = std::chrono::system_clock::from_time_t(1700000000);  // Tue, 14 Nov 2023 22:13:20
  EXPECT_EQ(parse_retry_after("7", now), 7s);
  EXPECT_EQ(parse_retry_after("0", now), 0s);
  EXPECT_EQ(parse_retry_after("", now), 0s);
  EXPECT_EQ(parse_retry_after("soon", now), 0s);
  EXPECT_EQ(parse_retry_after("-5", now), 0s);
  EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now), 30s);
  EXPECT_EQ(parse_retry_after("Tuesday, 14-Nov-23 22:14:20 GMT", now), 60s);  // RFC 850
  EXPECT_EQ(parse_retry_after("Tue Nov 14 22:15:20 2023", now), 120s);        // asctime
  EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), 0s);     // in the past
  EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT junk", now), 0s);
}

TEST(HttpSink, RetryAfterComesFromTheAnswer) {
  std::mutex mu;  // guards the answer: the test sets it, server threads read it
  int status = 503;
  std::string retry_after = "7";
  auto answer = [&](int st, std::string ra) {
    std::lock_guard<std::mutex> lock(mu);
    status = st;
    retry_after = std::move(ra);
  };
  LocalServer server([&](httplib::Server& s) {
    s.Post("/hooks", [&](const httplib::Request&, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu);
      res.status = status;
      if (!retry_after.empty()) res.set_header("Retry-After", retry_after);
    });
  });
  HttpSink sink(config_for(server.url()));

  auto s = sink.write(ev("x"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_EQ(s.retry_after(), 7s);

  answer(429, http_date(std::chrono::system_clock::now() + 30s));
  s = sink.write(ev("x"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_GT(s.retry_after(), 25s);
  EXPECT_LE(s.retry_after(), 30s);

  answer(500, "");
  s = sink.write(ev("x"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_EQ(s.retry_after(), 0s);
}

TEST(HttpSink, ConnectionRefusedIsRetryableAtOnce) {
  const std::string url = "http://127.0.0.1:" + std::to_string(evtest::free_port()) + "/";
  HttpSink sink(config_for(url));
  const auto start = std::chrono::steady_clock::now();
  const auto s = sink.write(ev("x"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_EQ(s.message().rfind("POST " + url + ": ", 0), 0u) << s;
  EXPECT_EQ(sink.stats().transport_errors, 1u);
  EXPECT_EQ(sink.stats().last_status, 0);
  EXPECT_EQ(sink.stats().last_error, s.message());
}

TEST(HttpSink, AStalledReceiverTimesOut) {
  evtest::Receiver hook;
  hook.close_gate();  // handlers wait for the gate (up to 30 s; the receiver opens it on stop)
  HttpSink sink(config_for(hook.url(), 300ms));
  const auto start = std::chrono::steady_clock::now();
  const auto s = sink.write(ev("x"));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
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
  EXPECT_TRUE(sink->close().is_ok());
  writer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(result.code(), evroute::Code::kClosed) << result;
  EXPECT_EQ(sink->write(ev("y")).code(), evroute::Code::kClosed);
  EXPECT_TRUE(sink->close().is_ok());  // idempotent
  hook.open_gate();
}

// close() at any moment of a busy writer's loop — including between its closed-check and the start
// of its request — ends the writer promptly.
TEST(HttpSink, CloseEndsABusyWriterWhateverItIsDoing) {
  evtest::Receiver hook;
  hook.set_respond([](std::size_t n) { return n % 3 == 2 ? 503 : 200; });
  for (int round = 0; round < 20; ++round) {
    auto sink = std::make_shared<HttpSink>(config_for(hook.url(), 30s));
    std::atomic<bool> done{false};
    std::thread writer([&] {
      while (!sink->write(ev("x")).is_closed()) {
      }
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::microseconds(500 * round));
    if (round % 2) hook.close_gate();  // half the rounds: the writer is stalled mid-request
    const auto start = std::chrono::steady_clock::now();
    sink->close();
    writer.join();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "round " << round;
    EXPECT_TRUE(done.load());
    hook.open_gate();
  }
}

TEST(HttpSink, CountsAnswersAndKeepsTheLastError) {
  evtest::Receiver hook;
  hook.set_respond([](std::size_t n) { return std::array{200, 204, 302, 404, 503, 200}[n % 6]; });
  HttpSink sink(config_for(hook.url()));
  for (int i = 0; i < 6; ++i) (void)sink.write(ev(std::to_string(i)));
  const auto st = sink.stats();
  EXPECT_EQ(st.requests, 6u);
  EXPECT_EQ(st.responses_2xx, 3u);
  EXPECT_EQ(st.responses_3xx, 1u);
  EXPECT_EQ(st.responses_4xx, 1u);
  EXPECT_EQ(st.responses_5xx, 1u);
  EXPECT_EQ(st.transport_errors, 0u);
  EXPECT_EQ(st.last_status, 200);
  EXPECT_EQ(st.last_error, "POST " + hook.url() + ": HTTP 503");
}

// The answer's body is read and dropped, and the connection stays usable after it.
TEST(HttpSink, ALargeAnswerBodyIsReadAndTheConnectionKept) {
  std::mutex mu;
  std::set<int> ports;
  LocalServer server([&](httplib::Server& s) {
    s.Post("/hooks", [&](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu);
      ports.insert(req.remote_port);
      res.status = ports.size() == 1 && req.get_header_value("webhook-id") == "a" ? 500 : 200;
      res.set_content(std::string(4 << 20, 'x'), "text/html");
    });
  });
  HttpSink sink(config_for(server.url()));
  EXPECT_EQ(sink.write(ev("a")).code(), evroute::Code::kUnavailable);
  EXPECT_TRUE(sink.write(ev("b")).is_ok());
  EXPECT_TRUE(sink.write(ev("c")).is_ok());
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(ports.size(), 1u);
}

// https against a local server whose self-signed certificate (made here with the openssl CLI) is
// trusted through tls.ca_file — and refused without it, unless verification is turned off.
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
  server.Post("/hooks", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.body == R"({"id":"a","type":"t"})") ++received;
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

  auto unverified = config_for(url);
  unverified.tls_verify = false;
  EXPECT_TRUE(HttpSink(unverified).write(ev("a")).is_ok());
  EXPECT_EQ(received.load(), 2);

  server.stop();
  t.join();
  std::filesystem::remove_all(dir);
}

// The certificate must name the host of the URL: one for "localhost" is accepted at
// https://localhost (sent as SNI), refused at https://127.0.0.1 even though its CA is trusted.
TEST(HttpSink, HttpsVerifiesTheHostName) {
  const auto dir = evtest::make_temp_dir();
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
      " -addext subjectAltName=DNS:localhost -keyout " +
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

  auto by_name = config_for("https://localhost:" + std::to_string(port) + "/hooks");
  by_name.ca_file = cert;
  EXPECT_TRUE(HttpSink(by_name).write(ev("a")).is_ok());
  EXPECT_EQ(received.load(), 1);

  auto by_address = config_for("https://127.0.0.1:" + std::to_string(port) + "/hooks");
  by_address.ca_file = cert;
  const auto s = HttpSink(by_address).write(ev("b"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_EQ(received.load(), 1);

  server.stop();
  t.join();
  std::filesystem::remove_all(dir);
}

std::string build_error(const std::string& ca_file) {
  auto config = config_for("https://127.0.0.1:9/");
  config.ca_file = ca_file;
  try {
    HttpSink sink(config);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(built)";
}

TEST(HttpSink, AnUnloadableCaFileFailsTheBuild) {
  EXPECT_EQ(build_error("/nonexistent/ca.pem"),
            "cannot read /nonexistent/ca.pem: No such file or directory");
  const auto dir = evtest::make_temp_dir();
  const std::string not_pem = (dir / "ca.pem").string();
  std::ofstream(not_pem) << "not a certificate\n";
  EXPECT_EQ(build_error(not_pem),
            "cannot load CA certificates from " + not_pem + ": no certificate or crl found");
  std::filesystem::remove_all(dir);
}

// Standard Webhooks: the published test vector (from the spec's reference implementations).
TEST(WebhookSignature, ReproducesThePublishedTestVector) {
  auto key = decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(webhook_signature({*key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                              R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_FALSE(decode_webhook_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").ok());  // no whsec_
  EXPECT_FALSE(decode_webhook_secret("whsec_not*base64").ok());
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

// Retrying(HttpSink): two 500s, then 200. FakeClock: the backoff waits are recorded, not slept.
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
  EXPECT_EQ(retrying.stats().retries, 2u);
}

// retry_on replaces the default list: here 503 and every 4xx but 410 retry, 500 does not.
TEST(HttpSink, RetryOnChoosesWhichStatusesAreRetried) {
  auto config = config_for("http://127.0.0.1:9/");
  config.retry_on.reset();
  EXPECT_TRUE(add_retry_on("503", &config.retry_on).is_ok());
  EXPECT_TRUE(add_retry_on("4XX", &config.retry_on).is_ok());
  for (int status : {503, 400, 404, 429, 499}) EXPECT_TRUE(config.retry_on.test(status)) << status;
  for (int status : {500, 502, 410, 200, 302}) EXPECT_FALSE(config.retry_on.test(status)) << status;
  EXPECT_EQ(add_retry_on("2xx", &config.retry_on).message(),
            "'2xx' is not a status from 400 to 599 or a class (4xx, 5xx)");
  EXPECT_EQ(add_retry_on("302", &config.retry_on).message(),
            "'302' is not a status from 400 to 599 or a class (4xx, 5xx)");
  EXPECT_EQ(add_retry_on("410", &config.retry_on).message(),
            "410 Gone is never retried: it disables the sink");

  std::atomic<int> status{500};
  evtest::Receiver hook;
  hook.set_respond([&](std::size_t) { return status.load(); });
  auto live = config_for(hook.url());
  live.retry_on = config.retry_on;
  HttpSink sink(live);
  for (int st : {500, 503, 404, 418}) {
    status = st;
    const auto s = sink.write(ev("x"));
    EXPECT_EQ(s.is_retryable(), config.retry_on.test(st)) << st << ": " << s;
  }
  // The default: 408, 429 and 5xx.
  const auto d = HttpSinkConfig::default_retry_on();
  for (int st : {408, 429, 500, 503, 599}) EXPECT_TRUE(d.test(st)) << st;
  for (int st : {400, 404, 409, 410, 301}) EXPECT_FALSE(d.test(st)) << st;
}

// Polls (bounded) until the sink has disabled itself.
bool wait_disabled(const HttpSink& sink) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!sink.state().disabled) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// 410 Gone: the sink disables itself and holds the event (no failure reaches the caller, nothing
// is lost) until enable(); then the same event goes out again, signed anew.
TEST(HttpSink, GoneDisablesTheSinkAndHoldsTheEventUntilEnabled) {
  evtest::Receiver hook;
  hook.set_respond([](std::size_t n) { return n == 0 ? 410 : 200; });
  auto sink = std::make_shared<HttpSink>(config_for(hook.url()));
  std::mutex mu;
  std::vector<Disableable::State> seen;
  sink->on_disabled([&](const Disableable::State& s) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(s);
  });
  EXPECT_FALSE(sink->state().disabled);
  EXPECT_FALSE(sink->enable());  // not disabled: nothing to do

  std::atomic<bool> returned{false};
  evroute::Status result;
  std::thread writer([&] {
    result = sink->write(ev("evt-g"));
    returned = true;
  });
  ASSERT_TRUE(wait_disabled(*sink));
  const auto state = sink->state();
  EXPECT_EQ(state.reason, "POST " + hook.url() + ": HTTP 410 Gone");
  EXPECT_LE(std::chrono::system_clock::now() - state.since, 10s);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].reason, state.reason);
  }
  EXPECT_FALSE(returned.load());  // held, not failed
  EXPECT_EQ(hook.requests().size(), 1u);

  EXPECT_TRUE(sink->enable());
  writer.join();
  EXPECT_TRUE(result.is_ok()) << result;
  EXPECT_FALSE(sink->state().disabled);
  const auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].status, 200);
  EXPECT_EQ(reqs[1].header("webhook-id"), "evt-g");
  EXPECT_EQ(reqs[1].body, reqs[0].body);
}

// close() ends a write held by a disabled sink at once, with kClosed (the caller still owns the
// event: a Queue counts it as undelivered).
TEST(HttpSink, CloseEndsAWriteHeldWhileDisabled) {
  evtest::Receiver hook;
  hook.set_respond([](std::size_t) { return 410; });
  auto sink = std::make_shared<HttpSink>(config_for(hook.url()));
  evroute::Status result;
  std::thread writer([&] { result = sink->write(ev("x")); });
  ASSERT_TRUE(wait_disabled(*sink));
  EXPECT_TRUE(sink->close().is_ok());
  writer.join();
  EXPECT_EQ(result.code(), evroute::Code::kClosed) << result;
  EXPECT_EQ(hook.requests().size(), 1u);
}

// A CA, a server certificate and a client certificate it signed, made with the openssl CLI.
struct TestPki {
  std::filesystem::path dir = evtest::make_temp_dir();
  std::string file(const char* name) const { return (dir / name).string(); }
  bool make() {
    std::ofstream(dir / "server.ext") << "subjectAltName=IP:127.0.0.1\n"
                                         "extendedKeyUsage=serverAuth\n";
    std::ofstream(dir / "client.ext") << "extendedKeyUsage=clientAuth\n";
    const std::string d = dir.string();
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string cmd =
        "cd " + d + " && openssl req -x509" + key +
        " -days 1 -subj /CN=evroute-test-ca -keyout ca.key -out ca.pem && openssl req" + key +
        " -subj /CN=127.0.0.1 -keyout server.key -out server.csr && openssl x509 -req -in "
        "server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile server.ext -out "
        "server.pem && openssl req" +
        key +
        " -subj /CN=evroute-client -keyout client.key -out client.csr && openssl x509 -req -in "
        "client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile client.ext -out "
        "client.pem >/dev/null 2>&1";
    return std::system(("(" + cmd + ") >/dev/null 2>&1").c_str()) == 0;
  }
  ~TestPki() { std::filesystem::remove_all(dir); }
};

// An https receiver (httplib::SSLServer) on 127.0.0.1 that, with a client CA, requires a client
// certificate signed by it (mTLS).
class TlsReceiver {
 public:
  TlsReceiver(const TestPki& pki, bool require_client_cert)
      : server_(pki.file("server.pem").c_str(), pki.file("server.key").c_str(),
                require_client_cert ? pki.file("ca.pem").c_str() : nullptr) {
    EXPECT_TRUE(server_.is_valid());
    server_.Post("/hooks", [this](const httplib::Request&, httplib::Response& res) {
      ++received_;
      res.status = 204;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~TlsReceiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/hooks"; }
  int received() const { return received_.load(); }

 private:
  httplib::SSLServer server_;
  int port_ = 0;
  std::atomic<int> received_{0};
  std::thread thread_;
};

TEST(HttpSink, TlsVerifiesWithTheCaFileAndRetriesThenGivesUpWithoutIt) {
  TestPki pki;
  ASSERT_TRUE(pki.make()) << "openssl CLI failed";
  TlsReceiver receiver(pki, false);

  auto trusted = config_for(receiver.url());
  trusted.ca_file = pki.file("ca.pem");
  EXPECT_TRUE(HttpSink(trusted).write(ev("a")).is_ok());
  EXPECT_EQ(receiver.received(), 1);

  // Without the CA the handshake fails: retryable (the receiver might fix its certificate), so
  // Retrying tries max_attempts times, then gives up; nothing reaches the receiver.
  auto clock = std::make_shared<evroute::FakeClock>();
  std::atomic<int> gave_up{0};
  evroute::Retrying retrying(
      std::make_shared<HttpSink>(config_for(receiver.url())),
      std::make_shared<evroute::ExponentialBackoff>(
          evroute::ExponentialBackoff::Options{.base = 100ms, .jitter = 0}),
      {.max_attempts = 3,
       .clock = clock,
       .on_give_up = [&](const evroute::Event&, const evroute::Status&, std::uint32_t n) {
         gave_up = static_cast<int>(n);
       }});
  const auto s = retrying.write(ev("b"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_EQ(gave_up.load(), 3);
  EXPECT_EQ(clock->sleeps(), (std::vector<evroute::Clock::Duration>{100ms, 200ms}));
  EXPECT_EQ(receiver.received(), 1);
}

TEST(HttpSink, MutualTlsNeedsTheClientCertificate) {
  TestPki pki;
  ASSERT_TRUE(pki.make()) << "openssl CLI failed";
  TlsReceiver receiver(pki, true);

  auto with_cert = config_for(receiver.url());
  with_cert.ca_file = pki.file("ca.pem");
  with_cert.client_cert = pki.file("client.pem");
  with_cert.client_key = pki.file("client.key");
  HttpSink sink(with_cert);
  EXPECT_TRUE(sink.write(ev("a")).is_ok());
  EXPECT_TRUE(sink.write(ev("b")).is_ok());
  EXPECT_EQ(receiver.received(), 2);

  auto without_cert = config_for(receiver.url());
  without_cert.ca_file = pki.file("ca.pem");
  const auto s = HttpSink(without_cert).write(ev("c"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  EXPECT_EQ(receiver.received(), 2);
}

// parse_http_sink over YAML text; returns every error as "FILE:LINE:COL: message".
std::vector<std::string> parse_errors(const std::string& yaml,
                                      std::unique_ptr<SinkSpec>* spec = nullptr) {
  ConfigErrors errors("t.yaml");
  ConfigReader reader(YAML::Load(yaml), errors, "sink 'a'");
  auto parsed = parse_http_sink(reader);
  EXPECT_EQ(parsed == nullptr, !errors.empty()) << yaml;
  if (spec) *spec = std::move(parsed);
  std::vector<std::string> out;
  for (const auto& e : errors.all()) out.push_back(e.to_string());
  return out;
}

TEST(HttpSinkConfig, ParsesAValidConfig) {
  std::unique_ptr<SinkSpec> spec;
  EXPECT_TRUE(parse_errors("url: https://hooks.example.com:8443/in?team=b\n"
                           "headers: { Authorization: Bearer x, X-Team: billing }\n"
                           "timeout: 250ms\n"
                           "tls: { verify: true }\n",
                           &spec)
                  .empty());
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->describe(), "http POST https://hooks.example.com:8443/in?team=b");

  // build() makes a working sink.
  evtest::Receiver hook;
  ASSERT_TRUE(parse_errors("url: " + hook.url() + "\nheaders: {X-A: b}\n", &spec).empty());
  auto sink = spec->build().sink;
  ASSERT_TRUE(sink->write(ev("evt-1")).is_ok());
  ASSERT_EQ(hook.requests().size(), 1u);
  EXPECT_EQ(hook.requests()[0].header("X-A"), "b");
}

TEST(HttpSinkConfig, ErrorsPointAtTheValue) {
  using V = std::vector<std::string>;
  EXPECT_EQ(parse_errors("timeout: 1s\n"), V{"t.yaml:1:1: sink 'a': missing required key 'url'"});
  EXPECT_EQ(parse_errors("url: ftp://x/\n"),
            V{"t.yaml:1:6: sink 'a': invalid url 'ftp://x/': scheme must be http or https, not "
              "'ftp'"});
  EXPECT_EQ(parse_errors("url: http:///hooks\n"),
            V{"t.yaml:1:6: sink 'a': invalid url 'http:///hooks': no host"});
  EXPECT_EQ(parse_errors("url: http://h:0/\n"),
            V{"t.yaml:1:6: sink 'a': invalid url 'http://h:0/': port must be a number from 1 to "
              "65535"});
  EXPECT_EQ(parse_errors("url: http://h:http/\n"),
            V{"t.yaml:1:6: sink 'a': invalid url 'http://h:http/': port must be a number from 1 "
              "to 65535"});
  EXPECT_EQ(parse_errors("url: hooks.example.com/in\n"),
            V{"t.yaml:1:6: sink 'a': invalid url 'hooks.example.com/in': not a URL of the form "
              "http(s)://host[:port]/path"});
  EXPECT_EQ(parse_errors("url: http://u:p@h/\n"),
            V{"t.yaml:1:6: sink 'a': invalid url 'http://u:p@h/': credentials in the URL are not "
              "supported (set an Authorization header instead)"});
  EXPECT_EQ(parse_errors("url: http://[fe80::1]/\n"),
            V{"t.yaml:1:6: sink 'a': invalid url 'http://[fe80::1]/': only IPv6 addresses of "
              "digits and colons (e.g. [::1]) are supported; use a host name"});
  EXPECT_EQ(parse_errors("url: http://ex ample/\n"),
            V{"t.yaml:1:6: sink 'a': invalid url 'http://ex ample/': invalid host 'ex ample'"});
  EXPECT_EQ(parse_errors("url: http://h/\ntimeout: 0s\n"),
            V{"t.yaml:2:10: sink 'a': 'timeout' must be more than 0"});
  EXPECT_EQ(parse_errors("url: http://h/\nheaders:\n  Content-Type: text/plain\n  X-Ok: 1\n"),
            V{"t.yaml:3:3: sink 'a': header 'Content-Type' is set by the http sink itself"});
  EXPECT_EQ(parse_errors("url: http://h/\nheaders: { \"X-A\": \"1\\r\\nX-B: 2\" }\n"),
            V{"t.yaml:2:12: sink 'a': header 'X-A' has a control character (e.g. a newline) in "
              "its value"});
  EXPECT_EQ(parse_errors("url: http://h/\nheaders: { \"X A\": 1 }\n"),
            V{"t.yaml:2:12: sink 'a': 'X A' is not a valid header name"});
  EXPECT_EQ(parse_errors("url: http://h/\ntls: { verify: false }\n"),
            V{"t.yaml:2:6: sink 'a': 'tls' applies to https urls only"});
  EXPECT_EQ(parse_errors("url: https://h/\ntls: { ca_file: /nonexistent/ca.pem, pin: x }\n"),
            (V{"t.yaml:2:17: sink 'a': tls.ca_file: cannot read /nonexistent/ca.pem: No such "
               "file or directory",
               "t.yaml:2:38: unknown key 'pin' in sink 'a'.tls (known keys: ca_file, client_cert, "
               "client_key, verify)"}));
}

TEST(HttpSinkConfig, ClientCertificateErrors) {
  TestPki pki;
  ASSERT_TRUE(pki.make()) << "openssl CLI failed";
  const std::string cert = pki.file("client.pem"), key = pki.file("client.key");
  std::unique_ptr<SinkSpec> spec;
  EXPECT_TRUE(
      parse_errors("url: https://h/\ntls: { client_cert: " + cert + ", client_key: " + key + " }\n",
                   &spec)
          .empty());
  using V = std::vector<std::string>;
  EXPECT_EQ(parse_errors("url: https://h/\ntls: { client_cert: " + cert + " }\n"),
            V{"t.yaml:2:21: sink 'a': tls.client_cert and tls.client_key go together: set both "
              "or neither"});
  EXPECT_EQ(parse_errors("url: https://h/\ntls: { client_cert: " + cert +
                         ", client_key: " + pki.file("server.key") + " }\n"),
            V{"t.yaml:2:" + std::to_string(21 + cert.size() + 14) +
              ": sink 'a': tls: the private key in " + pki.file("server.key") +
              " does not match the certificate in " + cert});
  EXPECT_EQ(parse_errors("url: https://h/\ntls: { client_cert: /nonexistent.pem, client_key: " +
                         key + " }\n"),
            V{"t.yaml:2:21: sink 'a': tls: cannot read /nonexistent.pem: No such file or "
              "directory"});
  EXPECT_EQ(
      parse_errors("url: https://h/\ntls: { client_cert: " + key + ", client_key: " + key + " }\n")
          .size(),
      1u);  // a key is not a certificate
}

TEST(HttpSinkConfig, RetryOnErrorsPointAtTheEntry) {
  using V = std::vector<std::string>;
  std::unique_ptr<SinkSpec> spec;
  EXPECT_TRUE(parse_errors("url: http://h/\nretry_on: [408, 429, 5xx, 404]\n", &spec).empty());
  EXPECT_TRUE(parse_errors("url: http://h/\nretry_on: []\n", &spec).empty());
  EXPECT_EQ(parse_errors("url: http://h/\nretry_on: [503, 2xx, 410]\n"),
            (V{"t.yaml:2:17: sink 'a': retry_on: '2xx' is not a status from 400 to 599 or a "
               "class (4xx, 5xx)",
               "t.yaml:2:22: sink 'a': retry_on: 410 Gone is never retried: it disables the "
               "sink"}));
}

}  // namespace
}  // namespace evrouted
