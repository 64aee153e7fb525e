// The command line: --check, --version, and refusing to start on a bad config.
#include <gtest/gtest.h>

#include <signal.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/daemon_process.h"

namespace evtest {
namespace {

struct ProcessResult {
  int code;
  std::string out, err;
};

// Runs evrouted to completion. "CONFIG" in args stands for dir/config.yaml, written from `yaml`.
ProcessResult run_evrouted(std::vector<std::string> args, const std::string& yaml = "",
                           std::map<std::string, std::string> env = {},
                           std::filesystem::path dir = make_temp_dir()) {
  if (!yaml.empty()) std::ofstream(dir / "config.yaml") << yaml;
  for (auto& a : args) {
    if (a == "CONFIG") a = (dir / "config.yaml").string();
  }
  DaemonProcess p(args, dir, std::move(env));
  auto code = p.wait_exit(20s);
  if (!code) ADD_FAILURE() << "evrouted did not exit";
  return {code.value_or(-1), p.out(), p.err()};
}

TEST(Cli, CheckAcceptsTheShippedConfigs) {
  for (const char* file :
       {"config/evroute.yaml", "config/examples/full.yaml", "config/docker.yaml"}) {
    ProcessResult r =
        run_evrouted({"--check", "--config", (source_dir() / file).string()}, "",
                     {{"EVROUTE_TOKEN", "t0ken"},
                      {"BILLING_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}});
    EXPECT_EQ(r.code, 0) << file << "\n" << r.err;
    EXPECT_NE(r.out.find("OK"), std::string::npos) << r.out;
  }
}

const char* kBadConfig = R"(server:
  listen: "127.0.0.1:PORT"
sinks:
  archive:
    type: file
    path: ./data/x.ndjson
    colour: blue
  hook:
    type: http
    url: ftp://example.com/
    timeout: 5
)";

TEST(Cli, CheckReportsEveryProblemWithLineAndColumn) {
  ProcessResult r = run_evrouted({"--check", "--config", "CONFIG"}, kBadConfig);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("config.yaml:7:5: "), std::string::npos) << r.err;    // colour
  EXPECT_NE(r.err.find("config.yaml:10:10: "), std::string::npos) << r.err;  // url
  EXPECT_NE(r.err.find("config.yaml:11:14: "), std::string::npos) << r.err;  // timeout
  EXPECT_NE(r.err.find("colour"), std::string::npos);
}

TEST(Cli, DaemonRefusesABadConfigWithTheSameMessagesAndNeverListens) {
  const int port = free_port();
  std::string yaml = kBadConfig;
  yaml.replace(yaml.find("PORT"), 4, std::to_string(port));
  // Both runs read the same file, so their messages must be identical.
  const auto dir = make_temp_dir();
  std::ofstream(dir / "config.yaml") << yaml;
  const std::string path = (dir / "config.yaml").string();
  ProcessResult check = run_evrouted({"--check", "--config", path}, "", {}, make_temp_dir());
  ProcessResult daemon = run_evrouted({"--config", path}, "", {}, make_temp_dir());
  std::filesystem::remove_all(dir);
  EXPECT_EQ(daemon.code, 1);
  EXPECT_EQ(daemon.err.find("listening"), std::string::npos) << daemon.err;
  // Every line --check printed, the daemon printed too.
  std::istringstream lines(check.err);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_NE(daemon.err.find(line), std::string::npos) << line;
  }
  httplib::Client c("127.0.0.1", port);
  EXPECT_FALSE(c.Get("/healthz"));
}

TEST(Cli, MissingConfigFileIsAClearError) {
  ProcessResult r = run_evrouted({"--config", "/nonexistent/evroute.yaml"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("/nonexistent/evroute.yaml"), std::string::npos) << r.err;
}

TEST(Cli, SinkThatCannotStartStopsTheDaemon) {
  ProcessResult r = run_evrouted({"--config", "CONFIG"}, R"(
server: { listen: "127.0.0.1:0" }
sinks:
  archive: { type: file, path: /proc/evroute-cannot-write/x.ndjson }
)");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("sink 'archive'"), std::string::npos) << r.err;
  // What only starting can find is still reported at the sink's line and column.
  EXPECT_NE(r.err.find("config.yaml:4:3: sink 'archive': cannot create /proc/evroute-cannot-write"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("listening"), std::string::npos) << r.err;
}

// --check and the daemon report the same problems, with a position: a file sink whose path is a
// directory used to pass --check, then stop the daemon without FILE:LINE:COL.
TEST(Cli, CheckAndDaemonAgreeOnAFilePathThatIsADirectory) {
  const auto dir = make_temp_dir();
  std::filesystem::create_directories(dir / "data");
  const std::string yaml = R"(server: { listen: "127.0.0.1:0" }
sinks:
  archive: { type: file, path: ./data }
)";
  ProcessResult check = run_evrouted({"--check", "--config", "CONFIG"}, yaml, {}, dir);
  EXPECT_EQ(check.code, 1);
  EXPECT_NE(check.err.find("config.yaml:3:32: sink 'archive': 'path': ./data is a directory"),
            std::string::npos)
      << check.err;
  ProcessResult daemon = run_evrouted({"--config", "CONFIG"}, yaml, {}, dir);
  EXPECT_EQ(daemon.code, 1);
  EXPECT_NE(daemon.err.find("config.yaml:3:32: sink 'archive': 'path': ./data is a directory"),
            std::string::npos)
      << daemon.err;
  std::filesystem::remove_all(dir);
}

// Sink names become directories under data_dir: "a" and "./a" shared one disk queue, "../../x"
// created one outside data_dir. Now both are errors at the name's position, for --check and the
// daemon alike, and nothing is created.
TEST(Cli, SinkNamesThatArePathsAreRefused) {
  const auto dir = make_temp_dir();
  const std::string yaml = R"(server: { listen: "127.0.0.1:0" }
data_dir: ./data
sinks:
  a: { type: stdout, queue: { type: disk } }
  "./a": { type: stdout, queue: { type: disk } }
  "../../x": { type: stdout, queue: { type: disk } }
)";
  for (const bool check : {true, false}) {
    ProcessResult r = check ? run_evrouted({"--check", "--config", "CONFIG"}, yaml, {}, dir)
                            : run_evrouted({"--config", "CONFIG"}, yaml, {}, dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("config.yaml:5:3: sink name './a': a sink name is 1 to 64 of the "
                         "characters A-Z a-z 0-9 _ -"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("config.yaml:6:3: sink name '../../x'"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "data"));
  EXPECT_FALSE(std::filesystem::exists(dir / "x"));  // data/queues/../../x
  std::filesystem::remove_all(dir);
}

// A listener beyond loopback without tokens is open to whoever reaches it: said at --check and at
// start; the Docker image's config takes its tokens from the environment when given.
TEST(Cli, AnExposedListenerWithoutTokensIsWarnedAbout) {
  ProcessResult open = run_evrouted({"--check", "--config", "CONFIG"}, R"(
server: { listen: "0.0.0.0:8080" }
sinks: { out: { type: stdout } }
)");
  EXPECT_EQ(open.code, 0);
  EXPECT_NE(open.err.find("listening on 0.0.0.0:8080 without server.auth.tokens: anyone who can "
                          "reach this address can post events, read dead letters, replay and "
                          "enable sinks"),
            std::string::npos)
      << open.err;
  ProcessResult loopback = run_evrouted({"--check", "--config", "CONFIG"}, R"(
server: { listen: "127.0.0.1:8080" }
sinks: { out: { type: stdout } }
)");
  EXPECT_EQ(loopback.err.find("without server.auth.tokens"), std::string::npos) << loopback.err;
  const std::string docker = (source_dir() / "config/docker.yaml").string();
  ProcessResult no_token = run_evrouted({"--check", "--config", docker});
  EXPECT_EQ(no_token.code, 0) << no_token.err;
  EXPECT_NE(no_token.err.find("without server.auth.tokens"), std::string::npos) << no_token.err;
  ProcessResult token = run_evrouted({"--check", "--config", docker}, "", {{"EVROUTE_TOKEN", "t"}});
  EXPECT_EQ(token.code, 0) << token.err;
  EXPECT_EQ(token.err.find("without server.auth.tokens"), std::string::npos) << token.err;
}

TEST(Cli, JsonLogsAreOneObjectPerLine) {
  auto d = DaemonProcess::start(R"(
server: { listen: "127.0.0.1:0" }
sinks: { console: { type: stdout } }
)",
                                {}, {"--log-format", "json"});
  ASSERT_TRUE(d);
  d->signal(SIGTERM);
  ASSERT_EQ(d->wait_exit(), 0);
  std::istringstream lines(d->err());
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
  }
  EXPECT_GE(n, 3);  // started, draining, stopped
  EXPECT_NE(d->err().find(R"("msg":"evrouted )"), std::string::npos) << d->err();
}

TEST(Cli, Version) {
  ProcessResult r = run_evrouted({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("evrouted "), std::string::npos);
}

}  // namespace
}  // namespace evtest
