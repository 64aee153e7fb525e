// The file sink (`type: file`): appends each event as one JSON line to `path`.
//
// One writev(2) per line on an O_APPEND descriptor, under a mutex, so lines never interleave or
// split. Parent directories are created. reopen() (SIGUSR1/SIGHUP) closes and reopens the path
// under the same mutex, so logrotate can move the file away without a line being lost or split.
// Thread-safety: write(), reopen() and close() from any thread.
#pragma once

#include <mutex>
#include <string>

#include "sinks/registry.h"

namespace evrouted {

struct FileSinkConfig {
  std::string path;
};

class FileSink final : public evroute::Sink, public Reopenable {
 public:
  // Opens (creating) the file; throws std::runtime_error("cannot open PATH: why").
  explicit FileSink(FileSinkConfig config);
  ~FileSink() override;

  evroute::Status write(const evroute::Event& event) override;
  evroute::Status close() override;
  evroute::Status reopen() override;

 private:
  int open_file(std::string* error) const;

  const FileSinkConfig config_;
  std::mutex mu_;
  int fd_ = -1;  // -1 once closed
};

std::unique_ptr<SinkSpec> parse_file_sink(ConfigReader& reader);

}  // namespace evrouted
