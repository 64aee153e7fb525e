#include "support/nats_cluster.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "support/daemon_process.h"

namespace evtest {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Ports below the ephemeral range (32768-60999 here), so nothing the kernel hands out to outgoing
// connections can take a killed node's port before it restarts.
constexpr int kFirstPort = 20000;
constexpr int kLastPort = 32000;

std::string find_nats_server() {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream in(path);
    for (std::string d; std::getline(in, d, ':');) dirs.push_back(d.empty() ? "." : d);
  }
  // Debian installs it in /usr/sbin, which a non-root PATH often lacks.
  dirs.insert(dirs.end(), {"/usr/sbin", "/usr/local/sbin"});
  for (const auto& d : dirs) {
    const std::string candidate = d + "/nats-server";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

bool port_is_free(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// A free port from [kFirstPort, kLastPort], starting at a random place (two test processes run at
// once under ctest -j) and skipping those this process already handed out.
int pick_port() {
  static std::mutex mu;
  static std::set<int> taken;
  static std::mt19937 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  const int span = kLastPort - kFirstPort + 1;
  const int start = std::uniform_int_distribution<int>(0, span - 1)(rng);
  for (int k = 0; k < span; ++k) {
    const int port = kFirstPort + (start + k) % span;
    if (taken.count(port) == 0 && port_is_free(port)) {
      taken.insert(port);
      return port;
    }
  }
  throw std::runtime_error("no free port in 20000-32000");
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::unique_ptr<NatsCluster> NatsCluster::start(int nodes) { return start(nodes, Options{}); }

std::unique_ptr<NatsCluster> NatsCluster::start(int nodes, Options options) {
  if (nodes < 1) {
    ADD_FAILURE() << "NatsCluster::start: need at least one node, not " << nodes;
    return nullptr;
  }
  std::unique_ptr<NatsCluster> c(new NatsCluster(std::move(options)));
  c->server_path_ = find_nats_server();
  if (c->server_path_.empty()) {
    ADD_FAILURE()
        << "nats-server is not on PATH (nor in /usr/sbin): run scripts/install-deps --test";
    return nullptr;
  }
  for (int i = 0; i < nodes; ++i) {
    Node n;
    n.name = "n" + std::to_string(i + 1);
    n.client_port = pick_port();
    n.route_port = pick_port();
    n.monitor_port = pick_port();
    n.dir = make_temp_dir();
    c->nodes_.push_back(std::move(n));
  }
  for (int i = 0; i < nodes; ++i) {
    const Node& n = c->nodes_[i];
    std::ofstream conf(n.dir / "nats.conf");
    conf << "server_name: " << n.name << "\n"
         << "listen: 127.0.0.1:" << n.client_port << "\n"
         << "http: 127.0.0.1:" << n.monitor_port
         << "\n"
         // A fixed max_file_store lets a large replicas-3 stream reserve space whatever the disk.
         << "jetstream { store_dir: " << Json((n.dir / "jetstream").string()).dump()
         << ", max_file_store: 4GB, max_memory_store: 256MB }\n";
    if (nodes > 1) {
      conf << "cluster { name: evroute, listen: 127.0.0.1:" << n.route_port << ", routes: [";
      for (int j = 0; j < nodes; ++j) {
        conf << (j ? ", " : "") << "nats-route://127.0.0.1:" << c->nodes_[j].route_port;
      }
      conf << "] }\n";
    }
    if (!c->options_.token.empty()) {
      conf << "authorization { token: " << Json(c->options_.token).dump() << " }\n";
    }
  }
  for (int i = 0; i < nodes; ++i) {
    if (!c->spawn(i)) {
      ADD_FAILURE() << "cannot start " << c->server_path_ << " for " << c->nodes_[i].name;
      return nullptr;
    }
  }
  std::vector<int> all(nodes);
  for (int i = 0; i < nodes; ++i) all[i] = i;
  if (!c->wait_healthy_with(all, c->options_.timeout)) {
    ADD_FAILURE() << "the " << nodes << "-node NATS cluster did not become healthy (/healthz 200"
                  << (nodes > 1 ? " and one meta leader on every node" : "") << ") within "
                  << c->options_.timeout.count() << " ms (or a node exited)\n"
                  << c->logs();
    return nullptr;
  }
  return c;
}

NatsCluster::~NatsCluster() {
  for (int i = 0; i < size(); ++i) {
    if (nodes_[i].pid > 0) kill(i);
    std::error_code ec;
    std::filesystem::remove_all(nodes_[i].dir, ec);
  }
}

bool NatsCluster::spawn(int i) {
  Node& n = nodes_[i];
  // Everything the child needs is prepared before fork(): it only calls async-signal-safe
  // functions.
  const std::string conf = (n.dir / "nats.conf").string();
  std::vector<std::string> args = {server_path_, "-c", conf};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Appending: a restarted node's log follows its previous run's.
  const int log_fd =
      open((n.dir / "nats.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return false;
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return false;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  n.pid = pid;
  return true;
}

void NatsCluster::reap(int i, std::chrono::milliseconds timeout) {
  Node& n = nodes_[i];
  const auto give_up = Clock::now() + timeout;
  while (n.pid > 0) {
    int status = 0;
    const pid_t r = waitpid(n.pid, &status, WNOHANG);
    if (r == n.pid || (r < 0 && errno == ECHILD)) {
      n.pid = -1;
      return;
    }
    if (Clock::now() > give_up) {
      ::kill(n.pid, SIGKILL);
      waitpid(n.pid, &status, 0);
      n.pid = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void NatsCluster::kill(int i) {
  if (nodes_[i].pid <= 0) return;
  ::kill(nodes_[i].pid, SIGKILL);
  reap(i, std::chrono::seconds(10));
}

void NatsCluster::stop(int i) {
  if (nodes_[i].pid <= 0) return;
  ::kill(nodes_[i].pid, SIGTERM);
  reap(i, std::chrono::seconds(10));
}

bool NatsCluster::running(int i) {
  Node& n = nodes_[i];
  if (n.pid <= 0) return false;
  int status = 0;
  const pid_t r = waitpid(n.pid, &status, WNOHANG);
  if (r == n.pid || (r < 0 && errno == ECHILD)) {
    n.pid = -1;
    return false;
  }
  return true;
}

bool NatsCluster::restart(int i, std::chrono::milliseconds timeout) {
  if (running(i)) {
    ADD_FAILURE() << "NatsCluster::restart: " << nodes_[i].name << " is still running";
    return false;
  }
  if (!spawn(i)) {
    ADD_FAILURE() << "cannot start " << server_path_ << " again for " << nodes_[i].name;
    return false;
  }
  if (!wait_healthy_with({i}, timeout)) {
    ADD_FAILURE() << nodes_[i].name << " did not come back healthy within " << timeout.count()
                  << " ms\n"
                  << logs();
    return false;
  }
  return true;
}

std::string NatsCluster::monitor(int i, const std::string& path) const {
  httplib::Client cli("127.0.0.1", nodes_[i].monitor_port);
  cli.set_connection_timeout(std::chrono::seconds(1));
  cli.set_read_timeout(std::chrono::seconds(2));
  auto res = cli.Get(path);
  if (!res || res->status != 200) return "";
  return res->body;
}

bool NatsCluster::healthy_now() {
  std::set<std::string> leaders;
  std::set<std::string> alive;
  for (int i = 0; i < size(); ++i) {
    if (!running(i)) continue;
    alive.insert(nodes_[i].name);
    if (monitor(i, "/healthz").empty()) return false;
    if (size() == 1) continue;
    const Json jsz = Json::parse(monitor(i, "/jsz"), nullptr, false);
    if (jsz.is_discarded()) return false;
    const std::string leader = jsz.value("/meta_cluster/leader"_json_pointer, std::string());
    if (leader.empty()) return false;
    leaders.insert(leader);
  }
  if (alive.empty()) return false;
  return size() == 1 || (leaders.size() == 1 && alive.count(*leaders.begin()) == 1);
}

bool NatsCluster::wait_healthy(std::chrono::milliseconds timeout) {
  return wait_healthy_with({}, timeout);
}

bool NatsCluster::wait_healthy_with(const std::vector<int>& must_run,
                                    std::chrono::milliseconds timeout) {
  const auto give_up = Clock::now() + timeout;
  for (;;) {
    // A node that exited (a port taken meanwhile, a bad config) will not come back by waiting, and
    // the survivors alone may look healthy: say so at once instead.
    for (int i : must_run) {
      if (!running(i)) {
        ADD_FAILURE() << nodes_[i].name << " (" << server_path_ << ") exited:\n" << log(i);
        return false;
      }
    }
    if (healthy_now()) return true;
    if (Clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int NatsCluster::stream_leader(const std::string& stream) const {
  for (int i = 0; i < size(); ++i) {
    if (nodes_[i].pid <= 0) continue;
    const Json jsz = Json::parse(monitor(i, "/jsz?streams=true"), nullptr, false);
    if (jsz.is_discarded() || !jsz.contains("account_details")) continue;
    for (const auto& account : jsz["account_details"]) {
      for (const auto& s : account.value("stream_detail", Json::array())) {
        if (s.value("name", "") != stream) continue;
        const std::string leader = s.value("/cluster/leader"_json_pointer, std::string());
        if (!leader.empty()) return index_of(leader);
      }
    }
  }
  return -1;
}

int NatsCluster::meta_leader() const {
  std::set<std::string> leaders;
  for (int i = 0; i < size(); ++i) {
    if (nodes_[i].pid <= 0) continue;
    const Json jsz = Json::parse(monitor(i, "/jsz"), nullptr, false);
    if (jsz.is_discarded()) return -1;
    leaders.insert(jsz.value("/meta_cluster/leader"_json_pointer, std::string()));
  }
  return leaders.size() == 1 ? index_of(*leaders.begin()) : -1;
}

std::vector<std::string> NatsCluster::urls() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(url(i));
  return out;
}

std::string NatsCluster::url(int i) const {
  return "nats://127.0.0.1:" + std::to_string(nodes_[i].client_port);
}

std::string NatsCluster::yaml_servers() const {
  std::string out = "[";
  for (int i = 0; i < size(); ++i) out += (i ? ", \"" : "\"") + url(i) + "\"";
  return out + "]";
}

int NatsCluster::client_port(int i) const { return nodes_[i].client_port; }
int NatsCluster::monitor_port(int i) const { return nodes_[i].monitor_port; }
std::string NatsCluster::server_name(int i) const { return nodes_[i].name; }
const std::filesystem::path& NatsCluster::dir(int i) const { return nodes_[i].dir; }

int NatsCluster::index_of(const std::string& server_name) const {
  for (int i = 0; i < size(); ++i) {
    if (nodes_[i].name == server_name) return i;
  }
  return -1;
}

std::string NatsCluster::log(int i) const { return read_file(nodes_[i].dir / "nats.log"); }

std::string NatsCluster::logs() const {
  constexpr std::size_t kTail = 6000;
  std::string out;
  for (int i = 0; i < size(); ++i) {
    std::string l = log(i);
    if (l.size() > kTail) l = "...\n" + l.substr(l.size() - kTail);
    out += "---- " + nodes_[i].name + " (" + url(i) + ") log:\n" + l + "\n";
  }
  return out;
}

}  // namespace evtest
