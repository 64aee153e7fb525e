// The stdout sink: whole lines on its descriptor, batches in order, a closed pipe retryable.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "sinks/stdout/stdout_sink.h"

namespace evrouted {
namespace {

evroute::Event ev(const std::string& id, std::size_t pad = 0) {
  return evroute::Event::make(id,
                              R"({"id":")" + id + R"(","pad":")" + std::string(pad, 'x') + "\"}");
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

TEST(StdoutSink, WritesABatchAsWholeLinesInOrder) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  StdoutSink sink(fds[1]);
  const std::vector<evroute::Event> events{ev("a"), ev("b"), ev("c")};
  std::vector<evroute::Status> results(3, evroute::Status::unavailable("unset"));
  ASSERT_TRUE(sink.write_batch(events, results).is_ok());
  for (const auto& r : results) EXPECT_TRUE(r.is_ok()) << r;
  sink.close();
  EXPECT_EQ(sink.write_batch(events, results).code(), evroute::Code::kClosed);
  EXPECT_EQ(results[2].code(), evroute::Code::kClosed);
  ::close(fds[1]);
  std::string out;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, n);
  ::close(fds[0]);
  EXPECT_EQ(
      out,
      "{\"id\":\"a\",\"pad\":\"\"}\n{\"id\":\"b\",\"pad\":\"\"}\n{\"id\":\"c\",\"pad\":\"\"}\n");
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
