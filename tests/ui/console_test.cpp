// The console (GET /ui) in a real browser: Debian's chromium, driven by puppeteer-core
// (tests/interop/console_check.mjs, pinned in tests/interop/package-lock.json), against the real
// evrouted with real receivers. The browser does what an operator would; this test sets the
// scene and then checks, at the receivers and through the API, that the clicks did what they say.
// Screenshots (1280 and 375 px) are written to EVROUTE_SCREENSHOT_DIR. Without node, the npm
// package or chromium the test fails, naming scripts/install-deps --test: never a skip.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "support/command.h"
#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/receiver.h"

namespace evtest {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kIngest = "ingest-token-1";
constexpr const char* kAdmin = "admin-token-1";

// Whether node, puppeteer-core and chromium are there (else the test fails, saying how to fix).
bool browser_ready() {
  const std::string node = EVROUTE_NODE;
  if (node.empty() || node.ends_with("NOTFOUND")) {
    ADD_FAILURE() << "node was not found when configuring: run scripts/install-deps --test";
    return false;
  }
  if (!fs::exists(fs::path(EVROUTE_INTEROP_DIR) / "node_modules/puppeteer-core/package.json")) {
    ADD_FAILURE() << "puppeteer-core is not installed: run scripts/install-deps --test";
    return false;
  }
  if (!fs::exists("/usr/bin/chromium")) {
    ADD_FAILURE() << "chromium is not installed: run scripts/install-deps --test";
    return false;
  }
  return true;
}

// Runs console_check.mjs's `scenario` against `d`; its JSON result (null when it did not print
// one). Its stderr goes to the test's output.
Json run_browser(const std::string& scenario, const DaemonProcess& d, Json options) {
  fs::create_directories(EVROUTE_SCREENSHOT_DIR);
  options["url"] = "http://127.0.0.1:" + std::to_string(d.port());
  options["out_dir"] = EVROUTE_SCREENSHOT_DIR;
  options["chromium"] = "/usr/bin/chromium";
  const std::string cmd = "timeout 180 " + shell_quote(EVROUTE_NODE) + " " +
                          shell_quote(std::string(EVROUTE_INTEROP_DIR) + "/console_check.mjs") +
                          " " + scenario + " " + shell_quote(options.dump());
  const CommandResult r = run_command(cmd);
  const std::string last = r.out.substr(r.out.find_last_of('\n', r.out.size() - 2) + 1);
  Json result = Json::parse(r.out.empty() ? std::string("null") : last, nullptr, false);
  EXPECT_EQ(r.exit_code, 0) << "the browser run failed (screenshot in " << EVROUTE_SCREENSHOT_DIR
                            << "): " << r.out << "\nevrouted's log:\n"
                            << d.err();
  return result.is_discarded() ? Json() : result;
}

httplib::Headers admin() { return {{"Authorization", std::string("Bearer ") + kAdmin}}; }

Json get(const DaemonProcess& d, const std::string& path) {
  auto c = d.client();
  auto res = c.Get(path, admin());
  if (!res || res->status != 200) {
    ADD_FAILURE() << path << ": " << (res ? std::to_string(res->status) + res->body : "no answer");
    return Json();
  }
  return Json::parse(res->body);
}

std::string sink_state(const DaemonProcess& d, const std::string& name) {
  const Json sinks = get(d, "/v1/sinks");  // held: a range-for would not keep the temporary
  for (const Json& s : sinks["sinks"]) {
    if (s["name"] == name) return s["state"].get<std::string>();
  }
  return "";
}

constexpr auto kPoll = std::chrono::milliseconds(20);  // each poll is a request to evrouted

TEST(Console, LiveNumbersDeadLettersReplayAndEnableInTheBrowser) {
  ASSERT_TRUE(browser_ready());
  Receiver hook;  // refuses (400: not retryable) until fixed: the events become dead letters
  Receiver gone;  // 410 Gone until fixed: the sink is disabled, its events wait
  std::atomic<bool> fixed{false};
  hook.set_respond([&](std::size_t) { return fixed ? 200 : 400; });
  gone.set_respond([&](std::size_t) { return fixed ? 200 : 410; });
  auto d = DaemonProcess::start(R"(
server:
  listen: "127.0.0.1:0"
  auth: { tokens: [")" + std::string(kIngest) +
                                R"("], admin_tokens: [")" + std::string(kAdmin) + R"("] }
data_dir: ./state
sinks:
  hooks:
    type: http
    url: )" + hook.url() + R"(
    retry: { max_attempts: 2, initial_backoff: 10ms, max_backoff: 20ms, breaker: false }
  gone:
    type: http
    url: )" + gone.url() + R"(
    filter: { type: ["order.*"] }
    concurrency: 1
  archive:
    type: file
    path: ./archive.ndjson
    filter: { type: ["order.*"] }
)");
  ASSERT_TRUE(d);
  auto c = d->client();
  // 30 dead letters: more than the console's page of 25.
  std::set<std::string> want;
  Json events = Json::array();
  for (int i = 1; i <= 30; ++i) {
    want.insert("dl-" + std::to_string(i));
    events.push_back({{"id", "dl-" + std::to_string(i)}, {"type", "order.created"}});
  }
  auto res = c.Post("/v1/events", {{"Authorization", std::string("Bearer ") + kIngest}},
                    events.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  ASSERT_TRUE(eventually([&] { return get(*d, "/v1/sinks/hooks/dead-letters")["total"] == 30; },
                         std::chrono::seconds(10), kPoll));
  ASSERT_TRUE(eventually([&] { return sink_state(*d, "gone") == "disabled"; },
                         std::chrono::seconds(10), kPoll))
      << get(*d, "/v1/sinks").dump();
  fixed = true;  // from now on both receivers take everything: replay and enable must deliver

  const Json result = run_browser(
      "full", *d, {{"ingest_token", kIngest}, {"admin_token", kAdmin}, {"wrong_token", "nope"}});
  ASSERT_EQ(result.value("ok", false), true) << result.dump(2);

  // What the clicks did: every dead letter replayed and delivered, the sink enabled and caught up.
  EXPECT_TRUE(wait_for_all(hook, want, std::chrono::seconds(15)));
  for (int i = 0; i < 40; ++i) want.insert("live-" + std::to_string(i));
  EXPECT_TRUE(wait_for_all(
      gone, want, std::chrono::seconds(15)));  // the 410'd event, the others queued, the live ones
  EXPECT_EQ(get(*d, "/v1/sinks/hooks/dead-letters")["total"], 0);
  EXPECT_EQ(sink_state(*d, "gone"), "open");
  for (const char* png : {"console-1280.png", "console-375.png", "console-sink-1280.png"}) {
    EXPECT_GT(fs::file_size(fs::path(EVROUTE_SCREENSHOT_DIR) / png), 10000u) << png;
  }
}

TEST(Console, TwoHundredSinksAreShownAndThePageStaysResponsive) {
  ASSERT_TRUE(browser_ready());
  std::string yaml = R"(
server:
  listen: "127.0.0.1:0"
data_dir: ./state
sinks:
)";
  for (int i = 0; i < 200; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "sink-%03d", i);
    yaml += std::string("  ") + name + ":\n    type: file\n    path: ./out/" + name +
            ".ndjson\n    filter: { type: [\"t-" + std::to_string(i) + "\"] }\n";
  }
  auto d = DaemonProcess::start(yaml);
  ASSERT_TRUE(d);
  const Json result = run_browser("many", *d, Json::object());
  ASSERT_EQ(result.value("ok", false), true) << result.dump(2);
  // Responsive: no task of the page, once the 200 cards are there, blocks it for long (a poll
  // redraws every card on screen). Chromium reports tasks over 50 ms; this bound is 5x that.
  EXPECT_LT(result["longest_task_ms"].get<int>(), 250) << result.dump(2);
  std::cerr << "200 sinks: " << result.dump() << "\n";
}

}  // namespace
}  // namespace evtest
