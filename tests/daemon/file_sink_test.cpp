// The file and stdout sinks: whole lines, never interleaved, reopen for logrotate.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "sinks/file_sink.h"
#include "sinks/stdout_sink.h"
#include "support/daemon_process.h"

namespace evrouted {
namespace {

namespace fs = std::filesystem;

evroute::Event ev(const std::string& id, std::size_t pad = 0) {
  return evroute::Event::make(id,
                              R"({"id":")" + id + R"(","pad":")" + std::string(pad, 'x') + "\"}");
}

TEST(FileSink, AppendsLinesAndCreatesParentDirectories) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "a/b/events.ndjson";
  {
    FileSink sink({path.string()});
    ASSERT_TRUE(sink.write(ev("1")).is_ok());
    ASSERT_TRUE(sink.write(ev("2")).is_ok());
    EXPECT_TRUE(sink.close().is_ok());
    EXPECT_EQ(sink.write(ev("3")).code(), evroute::Code::kClosed);
  }
  FileSink again({path.string()});  // appends, never truncates
  ASSERT_TRUE(again.write(ev("4")).is_ok());
  EXPECT_EQ(evtest::read_lines(path),
            (std::vector<std::string>{R"({"id":"1","pad":""})", R"({"id":"2","pad":""})",
                                      R"({"id":"4","pad":""})"}));
  fs::remove_all(dir);
}

TEST(FileSink, ConcurrentWritersNeverInterleaveLines) {
  const fs::path dir = evtest::make_temp_dir();
  FileSink sink({(dir / "e.ndjson").string()});
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        ASSERT_TRUE(sink.write(ev(std::to_string(t) + "-" + std::to_string(i), 5000)).is_ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  auto lines = evtest::read_lines(dir / "e.ndjson");
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kEach));
  std::set<std::string> ids;
  for (const auto& line : lines) {
    ASSERT_EQ(line.size(), 5018 + line.substr(7, line.find('"', 7) - 7).size()) << "torn line";
    ids.insert(line.substr(7, line.find('"', 7) - 7));
  }
  EXPECT_EQ(ids.size(), lines.size());
  fs::remove_all(dir);
}

TEST(FileSink, ReopenMovesToTheNewFileWithoutLosingALine) {
  const fs::path dir = evtest::make_temp_dir();
  const fs::path path = dir / "e.ndjson";
  FileSink sink({path.string()});
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      ASSERT_TRUE(sink.write(ev(std::to_string(i))).is_ok());
      ++written;
    }
  });
  for (int r = 1; r <= 5; ++r) {  // rotate five times while writing
    while (written < r * 200) std::this_thread::yield();
    fs::rename(path, dir / ("e.ndjson." + std::to_string(r)));
    ASSERT_TRUE(sink.reopen().is_ok());
  }
  stop = true;
  writer.join();
  std::size_t total = evtest::read_lines(path).size();
  for (int r = 1; r <= 5; ++r) {
    total += evtest::read_lines(dir / ("e.ndjson." + std::to_string(r))).size();
  }
  EXPECT_EQ(total, static_cast<std::size_t>(written.load()));
  fs::remove_all(dir);
}

TEST(FileSink, UnopenablePathThrowsWithTheReason) {
  try {
    FileSink sink({"/proc/evroute-no/such.ndjson"});
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/evroute-no"), std::string::npos) << e.what();
  }
}

TEST(StdoutSink, WritesWholeLinesToItsDescriptor) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  StdoutSink sink(fds[1]);
  ASSERT_TRUE(sink.write(ev("a")).is_ok());
  ASSERT_TRUE(sink.write(ev("b")).is_ok());
  sink.close();
  EXPECT_EQ(sink.write(ev("c")).code(), evroute::Code::kClosed);
  EXPECT_EQ(sink.write(evroute::Event()).code(), evroute::Code::kInvalidArgument);
  ::close(fds[1]);
  std::string out;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, n);
  ::close(fds[0]);
  EXPECT_EQ(out, "{\"id\":\"a\",\"pad\":\"\"}\n{\"id\":\"b\",\"pad\":\"\"}\n");
}

TEST(StdoutSink, AClosedPipeIsARetryableError) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ::close(fds[0]);
  signal(SIGPIPE, SIG_IGN);
  StdoutSink sink(fds[1]);
  const auto s = sink.write(ev("a"));
  EXPECT_EQ(s.code(), evroute::Code::kUnavailable) << s;
  ::close(fds[1]);
}

}  // namespace
}  // namespace evrouted
