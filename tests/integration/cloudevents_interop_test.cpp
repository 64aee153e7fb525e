// CloudEvents in and out, checked against a real client: the CloudEvents SDK from npm
// (tests/interop/node_modules, installed by scripts/install-deps --test). The SDK sends to the real
// evrouted in structured, binary and batched mode (tests/interop/cloudevents_send.js); evrouted's
// http sinks post to a real receiver in each `format`, and the SDK parses and validates what they
// sent (tests/interop/cloudevents_receive.js).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cloudevents.h"
#include "support/command.h"
#include "support/daemon_process.h"
#include "support/receiver.h"

namespace evtest {
namespace {

using Json = nlohmann::json;

// Runs `node tests/interop/<script> args...` and returns its stdout parsed as JSON. Fails the test
// (never skips it) when node or the SDK is missing.
Json run_node(const std::string& script, const std::string& args) {
  const std::string node = EVROUTE_NODE;
  const auto interop = source_dir() / "tests/interop";
  if (node.empty() || node.ends_with("NOTFOUND")) {
    ADD_FAILURE() << "node was not found when configuring: run scripts/install-deps --test";
    return nullptr;
  }
  if (!std::filesystem::exists(interop / "node_modules/cloudevents/package.json")) {
    ADD_FAILURE() << "the cloudevents SDK is not installed: run scripts/install-deps --test";
    return nullptr;
  }
  // `timeout` bounds a client that would hang; its stderr goes to the test's output.
  const std::string cmd = "timeout 60 " + node + " " + (interop / script).string() + " " + args;
  const CommandResult r = run_command(cmd);
  if (r.exit_code != 0) {
    ADD_FAILURE() << cmd << " failed (exit " << r.exit_code << "): " << r.out;
    return nullptr;
  }
  return Json::parse(r.out);
}

std::string base64(const std::string& bytes) { return evrouted::cloudevents::base64_encode(bytes); }

// What the SDK made of each request: its events by id.
std::map<std::string, Json> parse_with_sdk(const std::vector<ReceivedRequest>& requests,
                                           const std::filesystem::path& dir,
                                           const std::string& name) {
  Json dump = Json::array();
  for (const auto& r : requests) {
    Json headers = Json::object();
    for (const auto& [k, v] : r.headers) headers[k] = v;
    dump.push_back({{"headers", headers}, {"body_base64", base64(r.body)}});
  }
  const auto file = dir / (name + ".json");
  std::ofstream(file) << dump.dump();
  Json parsed = run_node("cloudevents_receive.js", file.string());
  std::map<std::string, Json> by_id;
  if (!parsed.is_array()) return by_id;
  for (auto& event : parsed) {
    EXPECT_FALSE(event.contains("error")) << name << ": the SDK rejected a request: " << event;
    if (event.contains("id")) by_id[event["id"].get<std::string>()] = event;
  }
  return by_id;
}

// Standard Webhooks, written from the spec: base64(HMAC-SHA256(key, "id.timestamp.body")).
std::string expected_signature(const std::string& key, const ReceivedRequest& r) {
  const std::string message =
      r.header("webhook-id") + "." + r.header("webhook-timestamp") + "." + r.body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  return "v1," + base64(std::string(reinterpret_cast<char*>(mac), len));
}

constexpr const char* kSecretKey = "cloudevents-test-key";  // whsec_ + base64 of this

std::string config(const Receiver& hook) {
  return R"(
server: { listen: "127.0.0.1:0" }
sinks:
  archive:
    type: file
    path: ./data/events.ndjson
  structured:
    type: http
    url: )" +
         hook.url("/structured") +
         R"(
    format: cloudevents-structured
  binary:
    type: http
    url: )" +
         hook.url("/binary") +
         R"(
    format: cloudevents-binary
    secret: whsec_)" +
         base64(kSecretKey) +
         R"(
    cloudevents: { source: "/evroute/test", default_type: com.example.untyped }
  orders:
    type: http
    url: )" +
         hook.url("/orders") +
         R"(
    format: cloudevents-binary
    filter: { type: ["com.example.order.*"] }
)";
}

std::vector<ReceivedRequest> on_path(const Receiver& hook, const std::string& path) {
  std::vector<ReceivedRequest> out;
  for (auto& r : hook.delivered()) {
    if (r.path == path) out.push_back(r);
  }
  return out;
}

TEST(CloudEventsInterop, SdkSendsEveryModeAndParsesWhatEachFormatEmits) {
  Receiver hook;
  auto d = DaemonProcess::start(config(hook));
  ASSERT_TRUE(d);

  // (a) The SDK sends: structured, binary (JSON, text, bytes), a batch of two, and one invalid.
  const Json replies = run_node("cloudevents_send.js",
                                "http://127.0.0.1:" + std::to_string(d->port()) + "/v1/events");
  ASSERT_TRUE(replies.is_object());
  EXPECT_EQ(replies["structured"], Json::parse(R"({"accepted":1,"ids":["sdk-structured-1"]})"));
  EXPECT_EQ(replies["binary-json"], Json::parse(R"({"accepted":1,"ids":["sdk-binary-json-1"]})"));
  EXPECT_EQ(replies["binary-text"], Json::parse(R"({"accepted":1,"ids":["sdk-binary-text-1"]})"));
  EXPECT_EQ(replies["binary-bytes"], Json::parse(R"({"accepted":1,"ids":["sdk-binary-bytes-1"]})"));
  EXPECT_EQ(replies["batch"], Json::parse(R"({"accepted":2,"ids":["sdk-batch-1","sdk-batch-2"]})"));
  EXPECT_EQ(replies["invalid"], Json::parse(R"({"error":"missing required attribute: type"})"));

  // Plain JSON events, which the CloudEvents formats wrap.
  auto c = d->client();
  for (const char* body : {R"({"id":"plain-1","type":"com.example.order.plain","n":7})",
                           R"({"id":"plain-2","n":8})"}) {
    auto res = c.Post("/v1/events", body, "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
  }

  // The file sink stores each CloudEvent in its structured form.
  const auto file = d->workdir() / "data/events.ndjson";
  ASSERT_TRUE(wait_lines(file, 8));
  std::map<std::string, Json> stored;
  for (const auto& line : read_lines(file)) {
    Json j = Json::parse(line);
    stored[j["id"]] = j;
  }
  EXPECT_EQ(stored["sdk-binary-json-1"]["data"], Json::parse(R"({"order":2})"));
  EXPECT_EQ(stored["sdk-binary-json-1"]["tenant"], "acme");
  EXPECT_EQ(stored["sdk-binary-text-1"]["data"], "héllo wörld");
  EXPECT_EQ(stored["sdk-binary-bytes-1"]["data_base64"], "AAEC/v8=");
  EXPECT_EQ(stored["sdk-binary-bytes-1"]["datacontenttype"], "application/octet-stream");
  EXPECT_EQ(stored["sdk-structured-1"]["subject"], "order-1");

  // 8 events to each format sink; `type` drove the orders filter: 3 of them.
  ASSERT_TRUE(hook.wait_delivered(8 + 8 + 3));
  const auto dir = d->workdir();

  // (b) The SDK parses and validates what each format sent.
  for (const std::string path : {"/structured", "/binary"}) {
    SCOPED_TRACE(path);
    const auto requests = on_path(hook, path);
    for (const auto& r : requests) {
      EXPECT_EQ(r.header("webhook-id").empty(), false);
      if (path == "/structured") {
        EXPECT_EQ(r.header("Content-Type"), "application/cloudevents+json");
      } else {  // signed over the body actually sent, which is not the stored payload
        EXPECT_EQ(r.header("webhook-signature"), expected_signature(kSecretKey, r));
      }
    }
    auto events = parse_with_sdk(requests, dir, path.substr(1));
    ASSERT_EQ(events.size(), 8u);
    const Json& s = events["sdk-structured-1"];
    EXPECT_EQ(s["source"], "/interop/sdk");
    EXPECT_EQ(s["type"], "com.example.order.created");
    EXPECT_EQ(s["subject"], "order-1");
    EXPECT_EQ(s["tenant"], "acme");
    EXPECT_EQ(s["data"], Json::parse(R"({"order":1,"items":["a","b"]})"));
    EXPECT_EQ(events["sdk-binary-json-1"]["data"], Json::parse(R"({"order":2})"));
    EXPECT_EQ(events["sdk-binary-text-1"]["data"], "héllo wörld");
    EXPECT_EQ(events["sdk-binary-text-1"]["datacontenttype"], "text/plain");
    EXPECT_EQ(events["sdk-binary-bytes-1"]["data_base64"], "AAEC/v8=");
    EXPECT_EQ(events["sdk-batch-2"]["data"], Json::parse(R"({"n":2})"));

    // Wrapped plain events: id, the event's type (or the default), the configured source, and
    // the event itself as JSON data.
    const bool configured = path == "/binary";
    const Json& p1 = events["plain-1"];
    EXPECT_EQ(p1["specversion"], "1.0");
    EXPECT_EQ(p1["type"], "com.example.order.plain");
    EXPECT_EQ(p1["source"], configured ? "/evroute/test" : "evroute");
    EXPECT_EQ(p1["datacontenttype"], "application/json");
    EXPECT_EQ(p1["data"],
              Json::parse(R"({"id":"plain-1","type":"com.example.order.plain","n":7})"));
    EXPECT_FALSE(p1["time"].get<std::string>().empty());
    EXPECT_EQ(events["plain-2"]["type"], configured ? "com.example.untyped" : "evroute.event");
    EXPECT_EQ(events["plain-2"]["data"], Json::parse(R"({"id":"plain-2","n":8})"));
  }
  const auto orders = parse_with_sdk(on_path(hook, "/orders"), dir, "orders");
  std::vector<std::string> order_ids;
  for (const auto& [id, event] : orders) order_ids.push_back(id);
  EXPECT_EQ(order_ids,
            (std::vector<std::string>{"plain-1", "sdk-binary-json-1", "sdk-structured-1"}));
}

// Binary mode with percent-encoded header values (HTTP binding 3.1.3.2), both ways: evrouted
// decodes what it receives and encodes what it sends, so a decoding receiver (cpp-httplib's server
// here) gets the original values back. (That the bytes on the wire are encoded is checked in
// tests/daemon/cloudevents_test.cpp.)
TEST(CloudEventsInterop, BinaryModeHeaderValuesArePercentDecodedAndEncoded) {
  Receiver hook;
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
sinks:
  archive:
    type: file
    path: ./data/events.ndjson
  binary:
    type: http
    url: )" + hook.url("/binary") +
                                R"(
    format: cloudevents-binary
)");
  ASSERT_TRUE(d);
  httplib::Headers headers = {
      {"ce-specversion", "1.0"},
      {"ce-id", "pct-1"},
      {"ce-source", "/sensors/k%25C3%25B6ln"},  // a URI with %-escapes of its own
      {"ce-type", "com.example.reading"},
      {"ce-subject", "Gr%C3%BC%C3%9Fe%20%22aus%22%20100%25"},
      {"CE-Room", "b12"}};
  auto res = d->client().Post("/v1/events", headers, R"({"celsius":21.5})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  ASSERT_TRUE(wait_lines(d->workdir() / "data/events.ndjson", 1));
  EXPECT_EQ(read_lines(d->workdir() / "data/events.ndjson")[0],
            R"({"specversion":"1.0","id":"pct-1","source":"/sensors/k%C3%B6ln",)"
            R"("type":"com.example.reading","room":"b12","subject":"Grüße \"aus\" 100%",)"
            R"("datacontenttype":"application/json","data":{"celsius":21.5}})");

  ASSERT_TRUE(hook.wait_delivered(1));
  const auto r = hook.delivered()[0];
  EXPECT_EQ(r.header("ce-source"), "/sensors/k%C3%B6ln");
  EXPECT_EQ(r.header("ce-subject"), "Grüße \"aus\" 100%");
  EXPECT_EQ(r.header("ce-room"), "b12");
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(r.body, R"({"celsius":21.5})");
  auto events = parse_with_sdk({r}, d->workdir(), "pct");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events["pct-1"]["subject"], "Grüße \"aus\" 100%");
  EXPECT_EQ(events["pct-1"]["data"], Json::parse(R"({"celsius":21.5})"));
}

TEST(CloudEventsInterop, InvalidCloudEventsGet400NamingTheProblem) {
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
sinks:
  console: { type: stdout }
)");
  ASSERT_TRUE(d);
  auto c = d->client();
  struct Case {
    httplib::Headers headers;
    std::string body, content_type, error;
  };
  const std::vector<Case> cases = {
      {{},
       R"({"specversion":"1.0","id":"a"})",
       "application/cloudevents+json",
       "missing required attributes: source, type"},
      {{},
       R"({"specversion":"0.3","id":"a","source":"s","type":"t"})",
       "application/cloudevents+json",
       "specversion must be \"1.0\", not \"0.3\""},
      {{},
       R"([{"specversion":"1.0","id":"a","source":"s","type":"t"},{"specversion":"1.0","id":"b","type":"t"}])",
       "application/cloudevents-batch+json",
       "element 1: missing required attribute: source"},
      {{{"ce-id", "a"}, {"ce-type", "t"}},
       "{}",
       "application/json",
       "missing required headers: ce-source, ce-specversion"},
      {{{"ce-id", "a"}, {"ce-type", "t"}, {"ce-source", "s"}, {"ce-specversion", "1.0"}},
       "{not json",
       "application/json",
       "the body is not valid JSON, but its Content-Type is application/json"},
      {{{"ce-id", "a"},
        {"ce-type", "t"},
        {"ce-source", "s"},
        {"ce-specversion", "1.0"},
        {"ce-subject", "%FF"}},
       "",
       "text/plain",
       "header ce-subject: the value is not UTF-8"},
  };
  for (const auto& k : cases) {
    auto res = c.Post("/v1/events", k.headers, k.body, k.content_type.c_str());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << k.body;
    EXPECT_EQ(Json::parse(res->body)["error"], k.error);
  }
  // Other content types still get 415.
  auto res = c.Post("/v1/events", "x", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 415);
  // Nothing of the rejected requests was accepted (not even the batch's valid element "a"): the
  // only event on stdout is the one valid request sent last.
  res = c.Post("/v1/events", R"({"specversion":"1.0","id":"ok","source":"s","type":"t"})",
               "application/cloudevents+json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202);
  ASSERT_TRUE(
      d->wait_out([](const std::string& out) { return out.find("\n") != std::string::npos; }));
  EXPECT_EQ(d->out(), R"({"specversion":"1.0","id":"ok","source":"s","type":"t"})"
                      "\n");
}

}  // namespace
}  // namespace evtest
