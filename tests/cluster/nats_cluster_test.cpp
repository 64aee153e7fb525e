// Smoke tests of the NATS JetStream harness (support/nats_cluster.h) against real nats-server
// processes: a 3-node cluster comes up, a replicas-3 stream deduplicates by Nats-Msg-Id, the kill
// -9 of the stream's leader is survived, and the independent npm client
// (tests/interop/nats_read.mjs) reads what the libnats C client published. These check the harness
// itself, so that the daemon's JetStream tests can trust it.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/command.h"
#include "support/daemon_process.h"
#include "support/nats_cluster.h"
#include "support/nats_reader.h"

namespace evtest {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// libnats keeps library-wide state (threads, timers): release it once the tests are done, so leak
// checkers see only the tests' own allocations.
class NatsLibrary : public ::testing::Environment {
 public:
  void TearDown() override { nats_CloseAndWait(5000); }
};
const auto* const nats_library = ::testing::AddGlobalTestEnvironment(new NatsLibrary);

struct Deleter {
  void operator()(natsConnection* nc) const { natsConnection_Destroy(nc); }
  void operator()(jsCtx* js) const { jsCtx_Destroy(js); }
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
  void operator()(jsPubAck* pa) const { jsPubAck_Destroy(pa); }
  void operator()(jsStreamInfo* si) const { jsStreamInfo_Destroy(si); }
  void operator()(natsOptions* o) const { natsOptions_Destroy(o); }
};
template <class T>
using Owned = std::unique_ptr<T, Deleter>;

std::string describe(natsStatus s, jsErrCode jerr = static_cast<jsErrCode>(0)) {
  std::string out = natsStatus_GetText(s);
  if (jerr != 0) out += " (JetStream error " + std::to_string(static_cast<int>(jerr)) + ")";
  const char* last = nats_GetLastError(nullptr);
  if (last && *last) out += ": " + std::string(last);
  return out;
}

// A libnats connection to every node of the cluster, reconnecting quickly to a survivor.
struct Client {
  Owned<natsConnection> nc;
  Owned<jsCtx> js;
};

Client connect(const NatsCluster& cluster) {
  Client c;
  natsOptions* raw = nullptr;
  EXPECT_EQ(natsOptions_Create(&raw), NATS_OK);
  Owned<natsOptions> opts(raw);
  const auto urls = cluster.urls();
  std::vector<const char*> servers;
  for (const auto& u : urls) servers.push_back(u.c_str());
  natsOptions_SetServers(opts.get(), servers.data(), static_cast<int>(servers.size()));
  natsOptions_SetMaxReconnect(opts.get(), -1);
  natsOptions_SetReconnectWait(opts.get(), 100);
  natsOptions_SetTimeout(opts.get(), 2000);
  if (!cluster.token().empty()) natsOptions_SetToken(opts.get(), cluster.token().c_str());
  natsConnection* nc = nullptr;
  natsStatus s = natsConnection_Connect(&nc, opts.get());
  if (s != NATS_OK) {
    ADD_FAILURE() << "cannot connect to " << cluster.yaml_servers() << ": " << describe(s);
    return c;
  }
  c.nc.reset(nc);
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, nc, nullptr);
  if (s != NATS_OK) {
    ADD_FAILURE() << "no JetStream context: " << describe(s);
    return c;
  }
  c.js.reset(js);
  return c;
}

// Creates a file stream `name` on `subjects` with `replicas` replicas.
bool add_stream(jsCtx* js, const std::string& name, const std::string& subjects, int replicas) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name.c_str();
  const char* subj[] = {subjects.c_str()};
  cfg.Subjects = subj;
  cfg.SubjectsLen = 1;
  cfg.Replicas = replicas;
  cfg.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_AddStream(&si, js, &cfg, nullptr, &jerr);
  Owned<jsStreamInfo> owned(si);
  if (s != NATS_OK) ADD_FAILURE() << "js_AddStream(" << name << "): " << describe(s, jerr);
  return s == NATS_OK;
}

Owned<natsMsg> message(const std::string& subject, const std::string& data,
                       const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  natsMsg* m = nullptr;
  EXPECT_EQ(
      natsMsg_Create(&m, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size())),
      NATS_OK);
  for (const auto& [k, v] : headers) natsMsgHeader_Set(m, k.c_str(), v.c_str());
  return Owned<natsMsg>(m);
}

struct Published {
  natsStatus status = NATS_ERR;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  Owned<jsPubAck> ack;
};

Published publish(jsCtx* js, natsMsg* m, const std::string& msg_id) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = msg_id.c_str();
  po.MaxWait = 2000;
  Published p;
  jsPubAck* ack = nullptr;
  p.status = js_PublishMsg(&ack, js, m, &po, &p.jerr);
  p.ack.reset(ack);
  return p;
}

Owned<jsStreamInfo> stream_info(jsCtx* js, const std::string& name) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_GetStreamInfo(&si, js, name.c_str(), nullptr, &jerr) != NATS_OK) return nullptr;
  return Owned<jsStreamInfo>(si);
}

TEST(NatsCluster, ThreeNodesStoreAReplicatedStreamAndDeduplicateByMsgId) {
  auto cluster = NatsCluster::start(3);
  ASSERT_TRUE(cluster);
  ASSERT_EQ(cluster->urls().size(), 3u);
  EXPECT_EQ(cluster->yaml_servers().front(), '[');
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(cluster->running(i));
    EXPECT_EQ(cluster->url(i), "nats://127.0.0.1:" + std::to_string(cluster->client_port(i)));
    EXPECT_GE(cluster->client_port(i), 20000);
    EXPECT_LT(cluster->client_port(i), 32768);
  }
  EXPECT_GE(cluster->meta_leader(), 0);

  Client c = connect(*cluster);
  ASSERT_TRUE(c.js) << cluster->logs();
  ASSERT_TRUE(add_stream(c.js.get(), "DEDUP", "dedup.>", 3)) << cluster->logs();
  auto si = stream_info(c.js.get(), "DEDUP");
  ASSERT_TRUE(si);
  ASSERT_NE(si->Cluster, nullptr);
  EXPECT_EQ(si->Cluster->ReplicasLen, 2);  // the followers; the leader is Cluster->Leader
  EXPECT_GE(cluster->index_of(si->Cluster->Leader), 0) << si->Cluster->Leader;

  auto m = message("dedup.a", "hello");
  Published first = publish(c.js.get(), m.get(), "event-1");
  ASSERT_EQ(first.status, NATS_OK) << describe(first.status, first.jerr);
  EXPECT_FALSE(first.ack->Duplicate);
  EXPECT_EQ(first.ack->Sequence, 1u);
  Published second = publish(c.js.get(), m.get(), "event-1");
  ASSERT_EQ(second.status, NATS_OK) << describe(second.status, second.jerr);
  EXPECT_TRUE(second.ack->Duplicate);
  EXPECT_EQ(second.ack->Sequence, 1u);
  si = stream_info(c.js.get(), "DEDUP");
  ASSERT_TRUE(si);
  EXPECT_EQ(si->State.Msgs, 1u);
}

TEST(NatsCluster, KillingTheStreamLeaderIsSurvivedAndTheNodeRestarts) {
  auto cluster = NatsCluster::start(3);
  ASSERT_TRUE(cluster);
  Client c = connect(*cluster);
  ASSERT_TRUE(c.js) << cluster->logs();
  ASSERT_TRUE(add_stream(c.js.get(), "FAILOVER", "failover.>", 3)) << cluster->logs();
  auto m1 = message("failover.a", "before");
  Published p1 = publish(c.js.get(), m1.get(), "before-1");
  ASSERT_EQ(p1.status, NATS_OK) << describe(p1.status, p1.jerr);

  auto si = stream_info(c.js.get(), "FAILOVER");
  ASSERT_TRUE(si && si->Cluster && si->Cluster->Leader);
  const int leader = cluster->index_of(si->Cluster->Leader);
  ASSERT_GE(leader, 0) << si->Cluster->Leader;
  // The monitoring endpoint agrees with the client about who leads the stream.
  EXPECT_EQ(cluster->stream_leader("FAILOVER"), leader);

  const auto killed_at = Clock::now();
  cluster->kill(leader);
  EXPECT_FALSE(cluster->running(leader));

  // A publish succeeds again once the survivors elected a new stream leader.
  auto m2 = message("failover.a", "after");
  Published p2;
  int attempts = 0;
  std::set<std::string> errors;  // what the client saw meanwhile, for the log
  const auto give_up = Clock::now() + std::chrono::seconds(20);
  do {
    ++attempts;
    p2 = publish(c.js.get(), m2.get(), "after-1");
    if (p2.status == NATS_OK) break;
    errors.insert(describe(p2.status, p2.jerr));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (Clock::now() < give_up);
  ASSERT_EQ(p2.status, NATS_OK) << "no publish succeeded within 20 s of killing "
                                << cluster->server_name(leader) << " (" << attempts
                                << " attempts), last: " << describe(p2.status, p2.jerr) << "\n"
                                << cluster->logs();
  const auto recovered_in =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed_at);
  std::printf("publish succeeded again %lld ms after the kill (%d attempts)\n",
              static_cast<long long>(recovered_in.count()), attempts);
  for (const auto& e : errors) std::printf("  meanwhile: %s\n", e.c_str());
  EXPECT_FALSE(p2.ack->Duplicate);
  EXPECT_EQ(p2.ack->Sequence, 2u);

  si = stream_info(c.js.get(), "FAILOVER");
  ASSERT_TRUE(si && si->Cluster && si->Cluster->Leader);
  EXPECT_EQ(si->State.Msgs, 2u);
  EXPECT_NE(cluster->index_of(si->Cluster->Leader), leader);

  const auto restarting = Clock::now();
  ASSERT_TRUE(cluster->restart(leader));
  std::printf("%s restarted and the cluster healthy in %lld ms\n",
              cluster->server_name(leader).c_str(),
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - restarting)
                      .count()));
  EXPECT_TRUE(cluster->running(leader));
  // The restarted node catches up: its own /jsz reports both messages of its replica.
  const auto caught_up_by = Clock::now() + std::chrono::seconds(15);
  std::uint64_t replica_msgs = 0;
  while (Clock::now() < caught_up_by) {
    const Json jsz = Json::parse(cluster->monitor(leader, "/jsz?streams=true"), nullptr, false);
    replica_msgs = jsz.is_discarded() ? 0 : jsz.value("messages", std::uint64_t{0});
    if (replica_msgs == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(replica_msgs, 2u) << cluster->log(leader);
}

TEST(NatsCluster, OneNodeRunsWithoutAClusterAndChecksItsToken) {
  auto cluster = NatsCluster::start(1, NatsCluster::Options{.token = "s3cret"});
  ASSERT_TRUE(cluster);
  EXPECT_EQ(cluster->yaml_servers(), "[\"" + cluster->url(0) + "\"]");
  EXPECT_EQ(cluster->log(0).find("Cluster"), std::string::npos) << cluster->log(0);

  // Without the token the server refuses the connection.
  natsConnection* nc = nullptr;
  const natsStatus refused = natsConnection_ConnectTo(&nc, cluster->url(0).c_str());
  natsConnection_Destroy(nc);
  EXPECT_NE(refused, NATS_OK);

  Client c = connect(*cluster);
  ASSERT_TRUE(c.js) << cluster->log(0);
  ASSERT_TRUE(add_stream(c.js.get(), "SOLO", "solo.>", 1));
  auto m = message("solo.a", "x");
  Published p = publish(c.js.get(), m.get(), "solo-1");
  EXPECT_EQ(p.status, NATS_OK) << describe(p.status, p.jerr);

  cluster->stop(0);
  EXPECT_FALSE(cluster->running(0));
  ASSERT_TRUE(cluster->restart(0));
  // The store directory survived the restart.
  c = connect(*cluster);
  ASSERT_TRUE(c.js);
  auto si = stream_info(c.js.get(), "SOLO");
  ASSERT_TRUE(si);
  EXPECT_EQ(si->State.Msgs, 1u);
}

std::string servers_arg(const NatsCluster& cluster) {
  std::string out;
  for (const auto& u : cluster.urls()) out += (out.empty() ? "" : ",") + u;
  return out;
}

TEST(NatsCluster, TheNpmClientReadsWhatLibnatsPublished) {
  ASSERT_TRUE(nats_reader_ready());
  auto cluster = NatsCluster::start(3);
  ASSERT_TRUE(cluster);
  Client c = connect(*cluster);
  ASSERT_TRUE(c.js) << cluster->logs();
  ASSERT_TRUE(add_stream(c.js.get(), "INTEROP", "interop.>", 3));
  for (int i = 0; i < 3; ++i) {
    // Another subject in between: the reader must filter it out.
    auto noise = message("interop.other", "noise");
    ASSERT_EQ(publish(c.js.get(), noise.get(), "noise-" + std::to_string(i)).status, NATS_OK);
    auto m = message("interop.events", "data " + std::to_string(i) + " é",
                     {{"Ce-Id", "id-" + std::to_string(i)}, {"Ce-Type", "test.event"}});
    const Published p = publish(c.js.get(), m.get(), "id-" + std::to_string(i));
    ASSERT_EQ(p.status, NATS_OK) << describe(p.status, p.jerr);
  }

  const std::string cmd = nats_reader_command(
      "--servers " + servers_arg(*cluster) +
      " --stream INTEROP --subject interop.events --count 3" + " --timeout-ms 15000");
  const auto [status, out] = run_command(cmd);
  ASSERT_EQ(status, 0) << cmd << "\n" << out;
  std::vector<std::string> lines;
  std::stringstream in(out);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  const auto msgs = parse_reader_lines(lines);
  ASSERT_EQ(msgs.size(), 3u) << out;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(msgs[i]["subject"], "interop.events") << msgs[i];
    EXPECT_EQ(msgs[i]["seq"], 2 * (i + 1)) << msgs[i];
    EXPECT_EQ(msgs[i]["data"], "data " + std::to_string(i) + " é") << msgs[i];
    EXPECT_EQ(msgs[i]["headers"]["Ce-Id"], "id-" + std::to_string(i)) << msgs[i];
    EXPECT_EQ(msgs[i]["headers"]["Ce-Type"], "test.event") << msgs[i];
    EXPECT_EQ(msgs[i]["headers"]["Nats-Msg-Id"], "id-" + std::to_string(i)) << msgs[i];
  }

  // Asking for more than the stream holds ends in a timeout (exit 1), with what it got printed.
  const std::string more = nats_reader_command(
      "--servers " + servers_arg(*cluster) +
      " --stream INTEROP --subject interop.events --count 4" + " --timeout-ms 1500");
  const auto [timed_out, more_out] = run_command(more);
  EXPECT_EQ(timed_out, 1) << more_out;
  EXPECT_EQ(std::count(more_out.begin(), more_out.end(), '\n'), 3) << more_out;
}

TEST(NatsCluster, TheNpmClientSubscribesWithCoreNats) {
  ASSERT_TRUE(nats_reader_ready());
  auto cluster = NatsCluster::start(3);
  ASSERT_TRUE(cluster);
  const std::string cmd =
      nats_reader_command("--core --servers " + cluster->url(1) +
                          " --subject core.events --count 2 --timeout-ms 15000");
  std::FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_TRUE(pipe) << cmd;
  char line[4096];
  // READY: the subscription reached the server; messages published from now on arrive.
  ASSERT_TRUE(std::fgets(line, sizeof line, pipe)) << cmd;
  ASSERT_EQ(std::string(line), "READY\n");

  // Published on the reader's node by another connection: the reader's flushed SUB is there
  // already (through another node, the interest would cross the routes asynchronously).
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, cluster->url(1).c_str()), NATS_OK);
  Owned<natsConnection> other(nc);
  std::vector<std::string> lines;
  for (int i = 0; i < 2; ++i) {
    auto m = message("core.events", "core " + std::to_string(i), {{"X-N", std::to_string(i)}});
    ASSERT_EQ(natsConnection_PublishMsg(other.get(), m.get()), NATS_OK);
  }
  ASSERT_EQ(natsConnection_Flush(other.get()), NATS_OK);
  while (std::fgets(line, sizeof line, pipe)) lines.emplace_back(line);
  const int status = pclose(pipe);
  ASSERT_EQ(status, 0) << cmd;
  const auto msgs = parse_reader_lines(lines);
  ASSERT_EQ(msgs.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(msgs[i]["subject"], "core.events");
    EXPECT_EQ(msgs[i]["data"], "core " + std::to_string(i));
    EXPECT_EQ(msgs[i]["headers"]["X-N"], std::to_string(i));
  }
}

}  // namespace
}  // namespace evtest
