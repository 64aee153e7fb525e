// evrouted --dry-run: what every sink would send, from the real binary, with nothing sent, written
// or listened on. The webhook signature it shows is checked with the published Standard Webhooks
// verifier (the `standardwebhooks` npm package, tests/interop).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/command.h"
#include "support/daemon_process.h"
#include "support/receiver.h"

namespace evtest {
namespace {

namespace fs = std::filesystem;

const std::string kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct DryRunOutput {
  int code = -1;
  std::string out, err;
};

DryRunOutput dry_run(const fs::path& dir, const std::string& yaml, const std::string& input) {
  std::ofstream(dir / "config.yaml") << yaml;
  std::ofstream(dir / "events.ndjson") << input;
  // A separate directory to run in: the test keeps `dir` (DaemonProcess removes its workdir).
  const fs::path workdir = dir / "run";
  fs::create_directories(workdir);
  DaemonProcess p({"--dry-run", "--config", (dir / "config.yaml").string()}, workdir, {},
                  dir / "events.ndjson");
  DryRunOutput r;
  r.code = p.wait_exit(20s).value_or(-1);
  r.out = p.out();
  r.err = p.err();
  return r;
}

// The lines of `text` from the one after `header` up to the next line starting with "  sink " or
// "event ", with the 6-space preview indent removed.
std::vector<std::string> preview_after(const std::string& text, const std::string& header) {
  std::vector<std::string> lines;
  const std::size_t at = text.find(header + "\n");
  if (at == std::string::npos) return lines;
  std::istringstream in(text.substr(at + header.size() + 1));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  sink ", 0) == 0 || line.rfind("event ", 0) == 0) break;
    lines.push_back(line.size() >= 6 ? line.substr(6) : line);
  }
  return lines;
}

// Runs the standardwebhooks package's Webhook.verify(); returns its answer ("ok" or the error).
std::string verify_with_standardwebhooks(const std::string& id, const std::string& timestamp,
                                         const std::string& signature, const std::string& body) {
  const fs::path dir = make_temp_dir();
  std::ofstream(dir / "verify.js") << R"(
const { Webhook } = require(process.argv[2] + "/node_modules/standardwebhooks");
const [secret, id, ts, sig, body] = process.argv.slice(3);
try {
  new Webhook(secret).verify(body, { "webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig });
  console.log("ok");
} catch (e) { console.log("rejected: " + e.message); }
)";
  const auto arg = shell_quote;
  const std::string command = "node " + arg((dir / "verify.js").string()) + " " +
                              arg((source_dir() / "tests/interop").string()) + " " + arg(kSecret) +
                              " " + arg(id) + " " + arg(timestamp) + " " + arg(signature) + " " +
                              arg(body) + " 2>&1";
  std::string out = run_command(command).out;
  fs::remove_all(dir);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

TEST(DryRun, ShowsWhatEachSinkWouldSendAndSendsWritesNothing) {
  Receiver hook;
  const fs::path dir = make_temp_dir();
  const std::string yaml = R"(
server: { listen: "127.0.0.1:0" }
sinks:
  billing:
    type: http
    url: )" + hook.url("/hooks?team=b") +
                           R"(
    headers: { X-Team: billing }
    secret: )" + kSecret + R"(
    filter:
      type: ["invoice.*", "payment.failed"]
  archive:
    type: file
    path: ./data/events-%Y.ndjson
    rotate: { max_bytes: 1MiB }
    compress: gzip
  console:
    type: stdout
)";
  const DryRunOutput r = dry_run(dir, yaml,
                                 "{\"id\":\"evt-1\",\"type\":\"invoice.paid\",\"amount\":12}\n"
                                 "\n"
                                 "{\"type\": \"user.signup\"}\n");
  ASSERT_EQ(r.code, 0) << r.err;

  // Event 1 reaches every sink.
  EXPECT_NE(r.out.find("event 1 (line 1): id \"evt-1\", type \"invoice.paid\"\n"),
            std::string::npos)
      << r.out;
  const std::string body = R"({"id":"evt-1","type":"invoice.paid","amount":12})";
  const auto request = preview_after(
      r.out, "  sink billing (http): filter matched: type \"invoice.paid\" ~ \"invoice.*\"");
  ASSERT_GE(request.size(), 9u) << r.out;
  EXPECT_EQ(request[0], "POST http://127.0.0.1:" + std::to_string(hook.port()) + "/hooks?team=b");
  std::map<std::string, std::string> headers;
  std::size_t i = 1;
  for (; i < request.size() && !request[i].empty(); ++i) {
    const auto colon = request[i].find(": ");
    ASSERT_NE(colon, std::string::npos) << request[i];
    headers[request[i].substr(0, colon)] = request[i].substr(colon + 2);
  }
  ASSERT_EQ(i + 2, request.size()) << r.out;  // a blank line, then the body
  EXPECT_EQ(request[i + 1], body);
  EXPECT_EQ(headers["Content-Type"], "application/json");
  EXPECT_EQ(headers["X-Team"], "billing");
  EXPECT_EQ(headers["webhook-id"], "evt-1");
  EXPECT_TRUE(headers["User-Agent"].starts_with("evroute/"));
  const long long ts = std::stoll(headers["webhook-timestamp"]);
  EXPECT_LE(std::abs(ts - static_cast<long long>(std::time(nullptr))), 60);
  EXPECT_EQ(verify_with_standardwebhooks("evt-1", headers["webhook-timestamp"],
                                         headers["webhook-signature"], body),
            "ok");
  // The verifier does reject a signature that does not fit (so "ok" above means something).
  EXPECT_NE(verify_with_standardwebhooks("evt-2", headers["webhook-timestamp"],
                                         headers["webhook-signature"], body),
            "ok");

  const std::string year = [] {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    return std::to_string(tm.tm_year + 1900);
  }();
  EXPECT_EQ(preview_after(r.out, "  sink archive (file): no filter")[0],
            "append to ./data/events-" + year + ".ndjson:");
  EXPECT_EQ(preview_after(r.out, "  sink archive (file): no filter")[1], body);
  EXPECT_EQ(preview_after(r.out, "  sink console (stdout): no filter"),
            (std::vector<std::string>{"write to stdout:", body}));

  // Event 2 (line 3): filtered out of billing; its generated id is in the file and stdout lines.
  const auto e2 = r.out.find("event 2 (line 3): id \"");
  ASSERT_NE(e2, std::string::npos) << r.out;
  const std::string id2 = r.out.substr(e2 + 22, r.out.find('"', e2 + 22) - e2 - 22);
  EXPECT_EQ(id2.size(), 36u) << id2;  // a UUIDv7, as the server makes
  const std::string rest = r.out.substr(e2);
  EXPECT_NE(rest.find("  sink billing (http): filtered out: type \"user.signup\" matches none of "
                      "\"invoice.*\", \"payment.failed\"\n  sink archive"),
            std::string::npos)
      << rest;
  EXPECT_NE(rest.find("      {\"id\":\"" + id2 + "\",\"type\": \"user.signup\"}\n"),
            std::string::npos)
      << rest;

  // Nothing was sent, written or listened on.
  EXPECT_TRUE(hook.requests().empty());
  EXPECT_FALSE(fs::exists(dir / "run" / "data"));
  EXPECT_EQ(r.err.find("listening"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dry run: 2 event(s), 0 bad line(s)"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

TEST(DryRun, ShowsWhatANatsSinkWouldPublishWithoutConnecting) {
  const fs::path dir = make_temp_dir();
  // Nothing listens on port 9 (discard): a dry run must not try it.
  const DryRunOutput r = dry_run(dir, R"(
nats: { servers: ["nats://127.0.0.1:9"] }
sinks:
  bus: { type: nats, subject: orders.created, jetstream: true }
  core: { type: nats, subject: orders.core }
)",
                                 "{\"id\":\"evt-1\",\"type\":\"order.created\"}\n");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string body = R"({"id":"evt-1","type":"order.created"})";
  EXPECT_EQ(preview_after(r.out, "  sink bus (nats): no filter"),
            (std::vector<std::string>{
                "publish to NATS subject orders.created (JetStream, PubAck awaited)",
                "Nats-Msg-Id: evt-1", "Evroute-Type: order.created", "", body}))
      << r.out;
  EXPECT_EQ(preview_after(r.out, "  sink core (nats): no filter")[0],
            "publish to NATS subject orders.core (core NATS)")
      << r.out;
  EXPECT_EQ(r.err.find("nats: "), std::string::npos) << r.err;  // no connection, no warning
  fs::remove_all(dir);
}

TEST(DryRun, BadLinesAreReportedWithTheirNumberAndFailTheRun) {
  const fs::path dir = make_temp_dir();
  const DryRunOutput r =
      dry_run(dir, "sinks: { console: { type: stdout } }\n",
              "{\"type\":\"a\"}\nnot json\n[1,2]\n{\"id\":7}\n{\"type\":\"b\"}\n");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("line 2: malformed JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 3: not a JSON object"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 4: field \"id\" must be a string"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("event 2 (line 5)"), std::string::npos) << r.out;  // the rest still shown
  fs::remove_all(dir);
}

TEST(DryRun, ABadConfigIsReportedAsByCheck) {
  const fs::path dir = make_temp_dir();
  const DryRunOutput r =
      dry_run(dir, "sinks:\n  f: { type: file, path: x, fsync: sometimes }\n", "{}\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("config.yaml:2:36: sink 'f': 'fsync' must be one of"), std::string::npos)
      << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace evtest
