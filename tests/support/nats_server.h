// NatsServer: a real nats-server process with JetStream for tests (a single `nats-server -js` on a
// free 127.0.0.1 port, with its own store directory), started and killed by the test — only it, by
// its pid — and dying with the test process however that ends. start() waits until it accepts
// connections (polled, bounded); kill() and start() again restart it on the same port and store.
// Fails the current test when nats-server is missing (apt install nats-server): a missing server
// must not pass as a skip. NatsClient is a plain libnats client to watch what arrives.
#pragma once

#include <gtest/gtest.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "support/daemon_process.h"
#include "support/eventually.h"

namespace evtest {

// Debian's nats-server package installs it in /usr/sbin; EVROUTE_NATS_SERVER overrides.
inline std::string nats_server_path() {
  if (const char* p = std::getenv("EVROUTE_NATS_SERVER"); p && *p) return p;
  for (const char* p : {"/usr/sbin/nats-server", "/usr/bin/nats-server"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "nats-server (not found in /usr/sbin or /usr/bin)";
}

// Whether something accepts TCP connections on 127.0.0.1:port.
inline bool accepts_tcp(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// One nats-server process with JetStream, started by the test and killed by it (only it: by its
// pid). Its log goes to DIR/server.log, its store to DIR/store.
class NatsServer {
 public:
  NatsServer() : port_(free_port()), dir_(make_temp_dir()) {}
  ~NatsServer() {
    kill();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the server (again, on the same port and store) and waits until it accepts connections.
  void start() {
    const std::string binary = nats_server_path();
    ASSERT_EQ(access(binary.c_str(), X_OK), 0) << binary << ": apt install nats-server";
    ASSERT_LT(pid_, 0) << "already running";
    const std::string port = std::to_string(port_);
    const std::string store = (dir_ / "store").string();
    const std::string log = (dir_ / "server.log").string();
    std::vector<const char*> argv = {binary.c_str(), "-js",        "-a",   "127.0.0.1",
                                     "-p",           port.c_str(), "-sd",  store.c_str(),
                                     "-l",           log.c_str(),  nullptr};
    const pid_t parent = getpid();
    pid_ = fork();
    ASSERT_GE(pid_, 0) << "fork failed";
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test, however it ends
      if (getppid() != parent) _exit(125);
      execv(argv[0], const_cast<char* const*>(argv.data()));
      _exit(127);
    }
    ASSERT_TRUE(eventually(
        [&] {
          int status;
          if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;  // it exited: no point waiting
            return true;
          }
          return accepts_tcp(port_);
        },
        15s, 10ms));
    ASSERT_GT(pid_, 0) << "nats-server exited at start; see " << log;
  }

  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

 private:
  const int port_;
  const std::filesystem::path dir_;
  pid_t pid_ = -1;
};

struct NatsMsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using NatsMsgPtr = std::unique_ptr<natsMsg, NatsMsgDeleter>;

// A plain libnats client: a test's subscriber, or the administrator of its streams.
class NatsClient {
 public:
  explicit NatsClient(const std::string& url) {
    EXPECT_EQ(natsConnection_ConnectTo(&nc_, url.c_str()), NATS_OK);
    EXPECT_EQ(natsConnection_JetStream(&js_, nc_, nullptr), NATS_OK);
  }
  ~NatsClient() {
    if (sub_) natsSubscription_Destroy(sub_);
    if (js_) jsCtx_Destroy(js_);
    if (nc_) natsConnection_Destroy(nc_);
  }
  void subscribe(const std::string& subject) {
    ASSERT_EQ(natsConnection_SubscribeSync(&sub_, nc_, subject.c_str()), NATS_OK);
    ASSERT_EQ(natsConnection_Flush(nc_), NATS_OK);  // the server knows it before anyone publishes
  }
  // The next message on the subscription, or null after `timeout`.
  NatsMsgPtr next(std::chrono::milliseconds timeout = 5s) {
    natsMsg* m = nullptr;
    natsSubscription_NextMsg(&m, sub_, timeout.count());
    return NatsMsgPtr(m);
  }
  void add_stream(const std::string& name, const std::string& subject) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char* subjects[] = {subject.c_str()};
    cfg.Name = name.c_str();
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jsStreamInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    ASSERT_EQ(js_AddStream(&info, js_, &cfg, nullptr, &code), NATS_OK) << code;
    jsStreamInfo_Destroy(info);
  }
  std::uint64_t stored(const std::string& stream) {
    jsStreamInfo* info = nullptr;
    if (js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, nullptr) != NATS_OK) return ~0ull;
    const std::uint64_t n = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    return n;
  }

 private:
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  natsSubscription* sub_ = nullptr;
};

// The value of header `name` of `m`, or "(none)".
inline std::string header(natsMsg* m, const char* name) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(m, name, &value) != NATS_OK || !value) return "(none)";
  return value;
}

}  // namespace evtest
