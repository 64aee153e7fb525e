#include "support/daemon_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "support/eventually.h"

namespace evtest {

// EVROUTE_TEST_BINARY runs the tests against another build (e.g. an older commit's, to see a new
// test fail there before its fix).
std::string evrouted_path() {
  const char* other = std::getenv("EVROUTE_TEST_BINARY");
  return other && *other ? other : EVROUTED_PATH;
}
std::filesystem::path source_dir() { return EVROUTE_SOURCE_DIR; }

std::filesystem::path make_temp_dir() {
  std::string templ = (std::filesystem::temp_directory_path() / "evroute-test-XXXXXX").string();
  if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  return templ;
}

DaemonProcess::DaemonProcess(std::vector<std::string> args, std::filesystem::path workdir,
                             std::map<std::string, std::string> env,
                             const std::filesystem::path& stdin_path)
    : workdir_(std::move(workdir)) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  // Everything the child needs is prepared before fork(): it only calls async-signal-safe
  // functions.
  std::vector<std::string> storage = std::move(args);
  storage.insert(storage.begin(), evrouted_path());
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) env_storage.emplace_back(*e);
  for (auto& [k, v] : env) env_storage.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string dir = workdir_.string();
  const std::string input = stdin_path.string();

  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // Die with the test process, however it ends (a sanitizer's halt skips our destructors).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);  // the parent died before prctl took effect
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (!input.empty()) {
      const int in = open(input.c_str(), O_RDONLY);
      if (in < 0 || dup2(in, 0) < 0) _exit(124);
    }
    if (chdir(dir.c_str()) != 0) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  out_reader_ = std::thread([this, fd = out_pipe[0]] { pump(fd, &out_); });
  err_reader_ = std::thread([this, fd = err_pipe[0]] { pump(fd, &err_); });
}

DaemonProcess::~DaemonProcess() {
  if (running()) {
    kill(pid_, SIGKILL);
    wait_exit(10s);
  }
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
  std::error_code ec;
  if (remove_workdir_) std::filesystem::remove_all(workdir_, ec);
}

std::unique_ptr<DaemonProcess> DaemonProcess::start(const std::string& yaml,
                                                    std::map<std::string, std::string> env,
                                                    std::vector<std::string> extra_args) {
  const auto dir = make_temp_dir();
  auto d = start_in(dir, yaml, std::move(env), std::move(extra_args));
  if (d) {
    d->remove_workdir_ = true;
  } else {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return d;
}

std::unique_ptr<DaemonProcess> DaemonProcess::start_in(const std::filesystem::path& dir,
                                                       const std::string& yaml,
                                                       std::map<std::string, std::string> env,
                                                       std::vector<std::string> extra_args) {
  std::ofstream(dir / "config.yaml") << yaml;
  std::vector<std::string> args = {"--config", (dir / "config.yaml").string()};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  auto d = std::make_unique<DaemonProcess>(args, dir, std::move(env));

  static const std::regex listening(R"(listening on [0-9.]+:([0-9]+))");
  std::unique_lock<std::mutex> lock(d->mu_);
  std::smatch m;
  // Both pipes at EOF: the process is gone (exit_code_ is set only by a wait).
  const bool up = d->changed_.wait_for(lock, 20s, [&] {
    return std::regex_search(d->err_, m, listening) || d->exit_code_.has_value() ||
           d->closed_pipes_ == 2;
  });
  if (!up || d->exit_code_ || !std::regex_search(d->err_, m, listening)) {
    ADD_FAILURE() << "evrouted did not start; stderr:\n" << d->err_;
    return nullptr;
  }
  d->port_ = std::stoi(m[1].str());
  return d;
}

void DaemonProcess::pump(int fd, std::string* into) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard<std::mutex> g(mu_);
    into->append(buf, static_cast<std::size_t>(n));
    changed_.notify_all();
  }
  close(fd);
  std::lock_guard<std::mutex> g(mu_);
  ++closed_pipes_;
  changed_.notify_all();
}

httplib::Client DaemonProcess::client() const {
  httplib::Client c("127.0.0.1", port_);
  c.set_connection_timeout(5s);
  c.set_read_timeout(30s);
  return c;
}

std::string DaemonProcess::out() const {
  std::lock_guard<std::mutex> g(mu_);
  return out_;
}

std::string DaemonProcess::err() const {
  std::lock_guard<std::mutex> g(mu_);
  return err_;
}

bool DaemonProcess::wait_out(const std::function<bool(const std::string&)>& pred,
                             std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, timeout, [&] { return pred(out_); });
}

bool DaemonProcess::wait_err(const std::function<bool(const std::string&)>& pred,
                             std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, timeout, [&] { return pred(err_); });
}

bool DaemonProcess::wait_err_contains(const std::string& needle,
                                      std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, timeout, [&] { return err_.find(needle) != std::string::npos; });
}

void DaemonProcess::signal(int sig) const { kill(pid_, sig); }

bool DaemonProcess::running() {
  if (exit_code_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

std::optional<int> DaemonProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (!eventually([&] { return !running(); }, timeout, 10ms)) {
    // A process that should have exited and did not: where each of its threads is, for the test's
    // log (gdb, installed by scripts/install-deps --test; bounded).
    const std::string cmd = "command -v gdb >/dev/null && timeout 60 gdb -batch -p " +
                            std::to_string(pid_) +
                            " -ex 'thread apply all bt' 2>&1 | head -600 >&2";
    std::fprintf(stderr, "evrouted (pid %d) did not exit within %lld ms; its threads:\n",
                 static_cast<int>(pid_), static_cast<long long>(timeout.count()));
    (void)std::system(cmd.c_str());
    return std::nullopt;
  }
  // The process is gone: read what it wrote to the end (EOF) before anyone looks at it.
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
  return exit_code_;
}

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> read_gzip_lines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) return lines;
  std::string text;
  char buf[1 << 16];
  for (int n; (n = gzread(gz, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  gzclose(gz);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> read_rotated_lines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::map<std::uint64_t, std::filesystem::path> rotated;  // by N
  const std::string prefix = path.filename().string() + ".";
  for (const auto& entry : std::filesystem::directory_iterator(path.parent_path())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    std::string rest = name.substr(prefix.size());
    if (rest.ends_with(".gz")) rest.resize(rest.size() - 3);
    if (rest.empty() || rest.find_first_not_of("0123456789") != std::string::npos) continue;
    rotated[std::stoull(rest)] = entry.path();
  }
  for (const auto& [n, file] : rotated) {
    auto part = file.extension() == ".gz" ? read_gzip_lines(file) : read_lines(file);
    lines.insert(lines.end(), part.begin(), part.end());
  }
  auto current = read_lines(path);
  lines.insert(lines.end(), current.begin(), current.end());
  return lines;
}

bool wait_lines(const std::filesystem::path& path, std::size_t n,
                std::chrono::milliseconds timeout) {
  return eventually([&] { return read_lines(path).size() >= n; }, timeout, 10ms);
}

namespace {

// Whether `port` on 127.0.0.1 can be bound now.
bool can_bind(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

// A port below the kernel's ephemeral range (net.ipv4.ip_local_port_range): a test often binds it
// only later (a receiver that is down at first), and a port from the ephemeral range can be taken
// meanwhile as the source port of any outgoing connection on the machine, even one to that very
// port (a TCP self-connect), and then "receiver: cannot bind".
int free_port() {
  int low = 32768, high = 60999;
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) range >> low >> high;
  const int top = low - 1, bottom = std::max(1024, low - 20000);
  if (top > bottom) {
    thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<int> pick(bottom, top);
    for (int tries = 0; tries < 200; ++tries) {
      const int port = pick(rng);
      if (can_bind(port)) return port;
    }
  }
  // No room below the range: any free port (the kernel's choice).
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::vector<std::string> post_n(const DaemonProcess& d, int n,
                                const std::function<std::string(int i)>& body,
                                const httplib::Headers& headers) {
  std::vector<std::string> ids;
  auto c = d.client();
  for (int i = 0; i < n; ++i) {
    const std::string json = body ? body(i) : R"({"n":)" + std::to_string(i) + "}";
    auto res = c.Post("/v1/events", headers, json, "application/json");
    if (!res || res->status != 202) {
      ADD_FAILURE() << "POST " << i << " failed: " << (res ? res->body : "no response");
      return ids;
    }
    ids.push_back(nlohmann::json::parse(res->body)["ids"][0]);
  }
  return ids;
}

}  // namespace evtest
