#include "sinks/file_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "sinks/fd_writer.h"

namespace evrouted {

FileSink::FileSink(FileSinkConfig config) : config_(std::move(config)) {
  std::string error;
  fd_ = open_file(&error);
  if (fd_ < 0) throw std::runtime_error(error);
}

FileSink::~FileSink() { close(); }

int FileSink::open_file(std::string* error) const {
  const std::filesystem::path path(config_.path);
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) {
    *error = "cannot create " + path.parent_path().string() + ": " + ec.message();
    return -1;
  }
  const int fd = ::open(config_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) *error = "cannot open " + config_.path + ": " + std::strerror(errno);
  return fd;
}

evroute::Status FileSink::write(const evroute::Event& event) {
  if (!event) return evroute::Status::invalid_argument("empty event");
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) return evroute::Status::closed();
  return write_line(fd_, event.payload(), config_.path);
}

evroute::Status FileSink::reopen() {
  std::string error;
  const int fd = open_file(&error);
  if (fd < 0) return evroute::Status::unavailable(error);  // keep writing to the old file
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) {
    ::close(fd);
    return evroute::Status::closed();
  }
  ::close(fd_);
  fd_ = fd;
  return evroute::Status::ok();
}

evroute::Status FileSink::close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  return evroute::Status::ok();
}

namespace {

class FileSpec final : public SinkSpec {
 public:
  explicit FileSpec(FileSinkConfig config) : config_(std::move(config)) {}
  std::shared_ptr<evroute::Sink> build() const override {
    return std::make_shared<FileSink>(config_);
  }
  std::string describe() const override { return "file " + config_.path; }

 private:
  const FileSinkConfig config_;
};

}  // namespace

std::unique_ptr<SinkSpec> parse_file_sink(ConfigReader& reader) {
  auto path = reader.required_string("path");
  if (!path) return nullptr;
  return std::make_unique<FileSpec>(FileSinkConfig{*path});
}

}  // namespace evrouted
