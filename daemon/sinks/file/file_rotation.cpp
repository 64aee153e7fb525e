#include "sinks/file/file_rotation.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>

namespace evrouted {

namespace fs = std::filesystem;

namespace {

// Date and time conversions only: none of them can produce a '/' or depend on the locale's
// spelling of a path.
constexpr std::string_view kAllowedConversions = "YmdHMSjyGgVUWuwaAbBhepIFTsCDzZ%";

// The directory holding `path` ("." when it has none) and the file name.
std::pair<fs::path, std::string> split(const std::string& path) {
  const fs::path p(path);
  return {p.has_parent_path() ? p.parent_path() : fs::path("."), p.filename().string()};
}

// Parses "<name>.N", "<name>.N.gz" or "<name>.N.gz.tmp" (the part after "<name>.").
struct Suffix {
  std::uint64_t index = 0;
  bool gzipped = false;
  bool temporary = false;
};
std::optional<Suffix> parse_suffix(std::string_view rest) {
  std::size_t digits = 0;
  while (digits < rest.size() && digits < 19 && rest[digits] >= '0' && rest[digits] <= '9') {
    ++digits;
  }
  if (digits == 0 || rest[0] == '0') return std::nullopt;
  Suffix s;
  s.index = std::stoull(std::string(rest.substr(0, digits)));
  rest.remove_prefix(digits);
  if (rest.empty()) return s;
  if (rest == ".gz") {
    s.gzipped = true;
    return s;
  }
  if (rest == ".gz.tmp") {
    s.temporary = true;
    return s;
  }
  return std::nullopt;
}

// Calls f(suffix, path) for every PATH.N[.gz[.tmp]] file.
template <typename F>
void for_each_rotated(const std::string& path, F&& f) {
  const auto [dir, name] = split(path);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string entry = it->path().filename().string();
    if (entry.size() <= name.size() + 1 || entry.compare(0, name.size(), name) != 0 ||
        entry[name.size()] != '.') {
      continue;
    }
    if (auto s = parse_suffix(std::string_view(entry).substr(name.size() + 1))) {
      f(*s, (dir / entry).string());
    }
  }
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

std::string expand_path_template(const std::string& path_template,
                                 std::chrono::system_clock::time_point t) {
  if (path_template.find('%') == std::string::npos) return path_template;
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  std::string out(path_template.size() + 128, '\0');
  for (;;) {
    const std::size_t n = std::strftime(out.data(), out.size(), path_template.c_str(), &tm);
    if (n > 0) {
      out.resize(n);
      return out;
    }
    if (out.size() > 65536) return "";  // nothing sensible expands that far
    out.resize(out.size() * 2);
  }
}

evroute::Status check_path_template(const std::string& path_template) {
  for (std::size_t i = path_template.find('%'); i != std::string::npos;
       i = path_template.find('%', i + 2)) {
    if (i + 1 >= path_template.size()) {
      return evroute::Status::invalid_argument("ends with a lone '%' (write %% for a '%')");
    }
    const char c = path_template[i + 1];
    if (kAllowedConversions.find(c) == std::string_view::npos) {
      return evroute::Status::invalid_argument(
          std::string("'%") + c + "' is not a date or time conversion (allowed: %" +
          std::string(kAllowedConversions.substr(0, kAllowedConversions.size() - 1)) +
          " as in strftime(3), and %% for '%')");
    }
  }
  return evroute::Status::ok();
}

std::vector<RotatedFile> list_rotated(const std::string& path) {
  std::vector<RotatedFile> files;
  for_each_rotated(path, [&](const Suffix& s, std::string file) {
    if (!s.temporary) files.push_back({s.index, std::move(file), s.gzipped});
  });
  std::sort(files.begin(), files.end(), [](const RotatedFile& a, const RotatedFile& b) {
    return std::tie(a.index, a.gzipped) < std::tie(b.index, b.gzipped);
  });
  return files;
}

std::uint64_t next_rotation_index(const std::string& path) {
  std::uint64_t highest = 0;
  for_each_rotated(
      path, [&](const Suffix& s, const std::string&) { highest = std::max(highest, s.index); });
  return highest + 1;
}

void remove_stale_temporaries(const std::string& path) {
  for_each_rotated(path, [](const Suffix& s, const std::string& file) {
    if (s.temporary) ::unlink(file.c_str());
  });
}

std::vector<std::string> prune_rotated(const std::string& path, std::uint64_t keep) {
  const std::vector<RotatedFile> files = list_rotated(path);
  std::set<std::uint64_t> indices;
  for (const RotatedFile& f : files) indices.insert(f.index);
  std::vector<std::string> removed;
  if (indices.size() <= keep) return removed;
  // The lowest index that survives.
  const std::uint64_t first_kept =
      *std::next(indices.begin(), static_cast<std::ptrdiff_t>(indices.size() - keep));
  for (const RotatedFile& f : files) {
    if (f.index < first_kept && ::unlink(f.path.c_str()) == 0) removed.push_back(f.path);
  }
  return removed;
}

void sync_parent_directory(const std::string& path) {
  const int fd = ::open(split(path).first.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

evroute::Status gzip_file(const std::string& file) {
  const std::string gz_path = file + ".gz";
  const std::string tmp_path = gz_path + ".tmp";
  const int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return evroute::Status::unavailable(errno_text("cannot open " + file));
  const int out = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    ::close(in);
    return evroute::Status::unavailable(errno_text("cannot create " + tmp_path));
  }
  // gzclose() closes the descriptor it was given: give it a duplicate, keep `out` for fsync.
  const int gz_fd = ::dup(out);
  gzFile gz = gz_fd < 0 ? nullptr : gzdopen(gz_fd, "wb");
  std::string error;
  if (!gz) {
    if (gz_fd >= 0) ::close(gz_fd);
    error = "cannot start gzip for " + tmp_path;
  } else {
    std::vector<char> buffer(1 << 16);
    for (;;) {
      const ssize_t n = ::read(in, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error = errno_text("read " + file);
        break;
      }
      if (n == 0) break;
      if (gzwrite(gz, buffer.data(), static_cast<unsigned>(n)) != static_cast<int>(n)) {
        int zerr = 0;
        error = "gzip " + tmp_path + ": " + gzerror(gz, &zerr);
        break;
      }
    }
    if (gzclose(gz) != Z_OK && error.empty()) error = "gzip " + tmp_path + ": cannot finish";
  }
  ::close(in);
  if (error.empty() && ::fsync(out) != 0) error = errno_text("fsync " + tmp_path);
  ::close(out);
  if (error.empty() && ::rename(tmp_path.c_str(), gz_path.c_str()) != 0) {
    error = errno_text("rename " + tmp_path);
  }
  if (!error.empty()) {
    ::unlink(tmp_path.c_str());
    return evroute::Status::unavailable(error);
  }
  sync_parent_directory(gz_path);  // the .gz is durable before the original goes
  if (::unlink(file.c_str()) != 0) {
    return evroute::Status::unavailable(errno_text("remove " + file));
  }
  return evroute::Status::ok();
}

}  // namespace evrouted
