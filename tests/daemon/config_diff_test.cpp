// diff_configs: which sinks a reload adds, removes, changes or keeps, and which settings need a
// restart. Sink fingerprints ignore comments and layout, and see every setting of the sink.
#include <gtest/gtest.h>

#include "config.h"
#include "config_diff.h"

namespace evrouted {
namespace {

Config load(const std::string& yaml) {
  LoadResult r = load_config_text(yaml, "t.yaml");
  EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return r.config ? *r.config : Config{};
}

const char* kBase = R"(
server: { listen: "127.0.0.1:0" }
sinks:
  console:
    type: stdout
  archive:
    type: file
    path: ./a.ndjson
  hook:
    type: http
    url: http://127.0.0.1:1/h
    filter: { type: ["order.*"] }
    retry: { max_attempts: 3 }
)";

// kBase with its one occurrence of `from` replaced by `to`.
Config base_with(const std::string& from, const std::string& to) {
  std::string yaml = kBase;
  const auto at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) yaml.replace(at, from.size(), to);
  return load(yaml);
}

TEST(ConfigDiff, SameFileIsUnchanged) {
  const ConfigDiff d = diff_configs(load(kBase), load(kBase));
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(d.unchanged, (std::vector<std::string>{"console", "archive", "hook"}));
}

TEST(ConfigDiff, CommentsLayoutStyleQuotingAndKeyOrderAreNotChanges) {
  const ConfigDiff d = diff_configs(load(kBase), load(R"(
# a comment
server:
  listen: "127.0.0.1:0"
sinks:
  console: { type: stdout }   # same sink, flow style
  archive: { type: file, path: "./a.ndjson" }
  hook:
    retry:
      max_attempts: 3
    type: http
    filter:
      type:
        - order.*
    url: 'http://127.0.0.1:1/h'
)"));
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(d.unchanged, (std::vector<std::string>{"console", "archive", "hook"}));
}

TEST(ConfigDiff, AddedRemovedAndChangedSinks) {
  const ConfigDiff d = diff_configs(load(kBase), load(R"(
server: { listen: "127.0.0.1:0" }
sinks:
  console:
    type: stdout
  hook:
    type: http
    url: http://127.0.0.1:1/h
    filter: { type: ["order.*", "invoice.*"] }
    retry: { max_attempts: 3 }
  audit:
    type: file
    path: ./audit.ndjson
)"));
  EXPECT_EQ(d.added, std::vector<std::string>{"audit"});
  EXPECT_EQ(d.removed, std::vector<std::string>{"archive"});
  EXPECT_EQ(d.changed, std::vector<std::string>{"hook"});
  EXPECT_EQ(d.unchanged, std::vector<std::string>{"console"});
  EXPECT_TRUE(d.topology_changed());
  EXPECT_TRUE(d.restart_needed.empty());
}

TEST(ConfigDiff, RetryAndQueueSettingsAreChanges) {
  const ConfigDiff retry =
      diff_configs(load(kBase), base_with("max_attempts: 3", "max_attempts: 4"));
  EXPECT_EQ(retry.changed, std::vector<std::string>{"hook"});

  const ConfigDiff queue = diff_configs(
      load(kBase), base_with("type: stdout\n", "type: stdout\n    queue: { capacity: 5 }\n"));
  EXPECT_EQ(queue.changed, std::vector<std::string>{"console"});
  EXPECT_TRUE(queue.restart_needed.empty());
}

TEST(ConfigDiff, QueueTypeChangeNeedsARestart) {
  const ConfigDiff d = diff_configs(
      load(kBase),
      base_with("path: ./a.ndjson\n", "path: ./a.ndjson\n    queue: { type: disk }\n"));
  EXPECT_EQ(d.changed, std::vector<std::string>{"archive"});
  EXPECT_EQ(d.restart_needed,
            std::vector<std::string>{"sink 'archive': queue.type changed (memory -> disk)"});
}

TEST(ConfigDiff, ServerLimitsAndDataDirNeedARestartTokensDoNot) {
  const ConfigDiff d =
      diff_configs(load(kBase), base_with("server: { listen: \"127.0.0.1:0\" }\n", R"(
server:
  listen: "127.0.0.1:1"
  threads: 3
  max_body_bytes: 1KiB
  auth: { tokens: ["t"] }
limits: { memory: 1MiB }
data_dir: ./elsewhere
)"));
  EXPECT_EQ(d.restart_needed,
            (std::vector<std::string>{"server.listen changed", "server.threads changed",
                                      "server.max_body_bytes changed", "limits.memory changed",
                                      "data_dir changed"}));
  EXPECT_TRUE(d.tokens_changed);  // applied by a reload, not a restart
  EXPECT_FALSE(diff_configs(load(kBase), load(kBase)).tokens_changed);
  // data_dir is part of every sink's fingerprint (disk queues and dead letters live there).
  EXPECT_EQ(d.changed, (std::vector<std::string>{"console", "archive", "hook"}));
}

}  // namespace
}  // namespace evrouted

namespace evrouted {
namespace {

// The one NATS connection is opened at start (or by the reload that adds `nats:`): a change needs a
// restart.
TEST(ConfigDiff, ANatsChangeNeedsARestart) {
  const auto with_nats = [](const std::string& servers) {
    auto r = load_config_text(
        "nats: { servers: [" + servers + "] }\nsinks:\n  a: { type: stdout }\n", "t.yaml");
    return *r.config;
  };
  const Config one = with_nats("\"nats://a:4222\"");
  EXPECT_TRUE(diff_configs(one, with_nats("\"nats://a:4222\"")).restart_needed.empty());
  EXPECT_EQ(diff_configs(one, with_nats("\"nats://b:4222\"")).restart_needed,
            std::vector<std::string>{"nats changed"});
  auto none = load_config_text("sinks:\n  a: { type: stdout }\n", "t.yaml");
  EXPECT_EQ(diff_configs(one, *none.config).restart_needed,
            std::vector<std::string>{"nats removed"});
  EXPECT_TRUE(diff_configs(*none.config, one).restart_needed.empty());  // added: connects
}

}  // namespace
}  // namespace evrouted
