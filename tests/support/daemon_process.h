// DaemonProcess: runs the real evrouted binary for integration tests.
//
// start() writes the given YAML to a fresh temporary directory, runs evrouted there (so relative
// paths like ./data land in it) with `listen: 127.0.0.1:0` expected in the YAML, and reads the port
// evrouted actually bound from its start-up log line. stdout and stderr are captured by reader
// threads and can be waited on. The destructor SIGKILLs the process if it still runs.
#pragma once

#include <httplib.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace evtest {

using namespace std::chrono_literals;

std::string evrouted_path();  // EVROUTE_TEST_BINARY overrides the build's evrouted
std::filesystem::path source_dir();
std::filesystem::path make_temp_dir();

class DaemonProcess {
 public:
  // Runs `evrouted args...` in `workdir` with extra environment variables, and standard input from
  // `stdin_path` when one is given.
  DaemonProcess(std::vector<std::string> args, std::filesystem::path workdir,
                std::map<std::string, std::string> env = {},
                const std::filesystem::path& stdin_path = {});
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Writes config.yaml into a new temp dir, starts evrouted on it and waits until it listens.
  // Fails the current test (and returns nullptr) if it does not come up.
  static std::unique_ptr<DaemonProcess> start(const std::string& yaml,
                                              std::map<std::string, std::string> env = {},
                                              std::vector<std::string> extra_args = {});
  // The same in a given directory (e.g. to restart on the data a previous run left there), which
  // is left in place afterwards: the caller removes it.
  static std::unique_ptr<DaemonProcess> start_in(const std::filesystem::path& dir,
                                                 const std::string& yaml,
                                                 std::map<std::string, std::string> env = {},
                                                 std::vector<std::string> extra_args = {});

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::filesystem::path& workdir() const { return workdir_; }
  httplib::Client client() const;

  std::string out() const;  // everything written to stdout so far
  std::string err() const;  // everything written to stderr so far
  // Waits until pred(stdout text) holds.
  bool wait_out(const std::function<bool(const std::string&)>& pred,
                std::chrono::milliseconds timeout = 10s) const;
  // Waits until pred(stderr text) holds.
  bool wait_err(const std::function<bool(const std::string&)>& pred,
                std::chrono::milliseconds timeout = 10s) const;
  bool wait_err_contains(const std::string& needle, std::chrono::milliseconds timeout = 10s) const;

  void signal(int sig) const;
  // Waits for the process to exit; returns its exit code (128+signal if killed), or nullopt.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = 20s);
  bool running();

 private:
  void pump(int fd, std::string* into);

  pid_t pid_ = -1;
  int port_ = 0;
  std::optional<int> exit_code_;
  std::filesystem::path workdir_;
  bool remove_workdir_ = false;  // start() made it: the destructor removes it
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::string out_, err_;
  int closed_pipes_ = 0;  // stdout and stderr at EOF (guarded by mu_)
  std::thread out_reader_, err_reader_;
};

// Counts the lines of a file (0 if it does not exist).
std::vector<std::string> read_lines(const std::filesystem::path& path);
// The lines of a gzip file (decompressed with zlib); empty if it does not exist.
std::vector<std::string> read_gzip_lines(const std::filesystem::path& path);
// Every line a file sink wrote for `path`: its rotated files PATH.1, PATH.2... (plain or .gz) in
// rotation order, then PATH itself.
std::vector<std::string> read_rotated_lines(const std::filesystem::path& path);
// Waits until `path` has at least n lines.
bool wait_lines(const std::filesystem::path& path, std::size_t n,
                std::chrono::milliseconds timeout = 10s);
// A loopback port with nothing listening on it (bound, then released), below the kernel's
// ephemeral range, so that no outgoing connection takes it before the test binds it.
int free_port();

// Posts n events to d's /v1/events, one request each: the i-th with the body body(i) ({"n":i}
// when no body is given) and `headers` (a token, say). Returns the ids evrouted acknowledged, in
// order. A request not answered 202 fails the test and ends the posting: the ids so far come back.
std::vector<std::string> post_n(const DaemonProcess& d, int n,
                                const std::function<std::string(int i)>& body = {},
                                const httplib::Headers& headers = {});

}  // namespace evtest
