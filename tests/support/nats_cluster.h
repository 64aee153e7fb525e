// NatsCluster: real nats-server processes with JetStream on loopback, for tests of evroute's NATS
// JetStream support.
//
// start(n) runs n `nats-server` processes (found on PATH, or in /usr/sbin where Debian puts it),
// named n1..nN, each bound to 127.0.0.1 only, with its own temp directory (make_temp_dir()) holding
// its config file, its JetStream store and its log (stdout and stderr). With more than one node
// they form one cluster ("evroute") whose routes name every node. Client, route and monitoring
// ports are chosen free below the ephemeral port range (20000-32000, probed with bind), so a killed
// node can rebind its ports at once when restarted.
//
// start() waits until the cluster is usable: every node's `/healthz` answers 200 and, with more
// than one node, every node's `/jsz` names the same meta leader. It fails the current test with the
// nodes' logs and returns nullptr if that does not happen within the timeout, or if nats-server is
// missing (the message names scripts/install-deps --test: a missing server is a failure, never a
// skip).
//
// kill(), stop() and restart() act on one node; node i is 0-based (server name "n<i+1>"). The
// destructor SIGKILLs every process the cluster started (only those PIDs) and removes its temp
// directories. Every process also dies with the test process (PR_SET_PDEATHSIG), however that ends.
//
// Thread-safety: none. Use one NatsCluster from one thread (the test's), or synchronize externally.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace evtest {

class NatsCluster {
 public:
  struct Options {
    std::string token;  // non-empty: clients must authenticate with it (`authorization { token }`)
    std::chrono::milliseconds timeout = std::chrono::seconds(30);  // for start() to become healthy
  };

  // Starts `nodes` (>= 1) servers and waits until they are healthy; nullptr (and a test failure)
  // otherwise.
  static std::unique_ptr<NatsCluster> start(int nodes = 3);
  static std::unique_ptr<NatsCluster> start(int nodes, Options options);
  ~NatsCluster();
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  int size() const { return static_cast<int>(nodes_.size()); }
  const std::string& token() const { return options_.token; }
  // "nats://127.0.0.1:PORT" for every node, running or not, in node order.
  std::vector<std::string> urls() const;
  std::string url(int i) const;
  // The urls as a YAML flow list, for evrouted's `nats: servers:`: ["nats://127.0.0.1:P1", ...].
  std::string yaml_servers() const;
  int client_port(int i) const;
  int monitor_port(int i) const;
  std::string server_name(int i) const;                // "n1".."nN"
  int index_of(const std::string& server_name) const;  // -1 for an unknown name
  const std::filesystem::path& dir(int i) const;       // node i's temp directory

  // SIGKILL, then reap: the node is gone when this returns.
  void kill(int i);
  // SIGTERM, then wait for the exit (SIGKILL after 10 s).
  void stop(int i);
  // Starts a killed or stopped node again on the same ports and store directory, then waits until
  // the cluster is healthy. False (and a test failure) if the node is running or does not come
  // back.
  bool restart(int i, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  bool running(int i);

  // Waits until every running node's /healthz answers 200 and, with more than one node, all running
  // nodes name the same meta leader, which is itself a running node. False on timeout (no test
  // failure: the caller says what it waited for).
  bool wait_healthy(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // GET `path` (e.g. "/jsz?streams=true") from node i's monitoring port: the body of a 200 answer,
  // or "" when the node does not answer or answers something else.
  std::string monitor(int i, const std::string& path) const;
  // The node the running nodes' /jsz?streams=true name as the leader of `stream`, or -1.
  int stream_leader(const std::string& stream) const;
  // The node all running nodes name as meta leader, or -1 (also while they disagree).
  int meta_leader() const;

  std::string log(int i) const;  // everything node i wrote to stdout and stderr, over all its runs
  std::string logs() const;      // the tail of every node's log, labelled, for failure messages

 private:
  struct Node {
    std::string name;
    int client_port = 0, route_port = 0, monitor_port = 0;
    std::filesystem::path dir;
    pid_t pid = -1;
  };
  explicit NatsCluster(Options options) : options_(std::move(options)) {}
  bool spawn(int i);
  void reap(int i, std::chrono::milliseconds timeout);
  bool healthy_now();
  // wait_healthy(), failing the test at once if a node of `must_run` exits meanwhile.
  bool wait_healthy_with(const std::vector<int>& must_run, std::chrono::milliseconds timeout);

  Options options_;
  std::string server_path_;
  std::vector<Node> nodes_;
};

}  // namespace evtest
