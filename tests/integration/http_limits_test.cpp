// The bounds of evrouted's HTTP core (issue 12), against the real binary over raw sockets: slow and
// idle clients, header floods, deadlines, the connection limit, request framing (Content-Length,
// Transfer-Encoding, Expect, pipelining) and compressed bodies. Each bound is answered with the
// status and error text README.md documents, the connection is closed where it says so, and the
// daemon goes on serving; what is accepted arrives in a file sink, and nothing else does.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <zlib.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/raw_client.h"

namespace evtest {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// evrouted with a file sink at ./data/events.ndjson and `server_keys` (indented two spaces)
// added under server:.
std::string config(const std::string& server_keys = "") {
  return "server:\n  listen: \"127.0.0.1:0\"\n" + server_keys +
         "sinks:\n  archive: { type: file, path: ./data/events.ndjson }\n";
}

std::filesystem::path events_file(const DaemonProcess& d) {
  return d.workdir() / "data" / "events.ndjson";
}

// The "id" of every line the file sink wrote, in order.
std::vector<std::string> arrived_ids(const DaemonProcess& d) {
  std::vector<std::string> ids;
  for (const std::string& line : read_lines(events_file(d))) {
    const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    ids.push_back(j.is_object() ? j.value("id", "?") : "not JSON: " + line);
  }
  return ids;
}

// `r` is `status` with a JSON body {"error": "...needle..."}.
void expect_error(const RawResponse& r, int status, const std::string& needle) {
  EXPECT_EQ(r.status, status) << r.head << r.body.substr(0, 300);
  const Json body = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(body.is_object()) << "not JSON: " << r.body.substr(0, 300);
  EXPECT_NE(body.value("error", "").find(needle), std::string::npos) << r.body.substr(0, 300);
}

// Reads what the peer sends until it closes (at most `timeout`): exactly one response is expected,
// `status` with `needle` in its error and `Connection: close`, and then the close.
void expect_error_and_close(RawClient& c, int status, const std::string& needle,
                            std::chrono::milliseconds timeout = 5s) {
  const RawReply reply = c.read(SIZE_MAX, timeout);
  ASSERT_EQ(reply.responses.size(), 1u) << "rest: " << reply.rest.substr(0, 300);
  expect_error(reply.responses[0], status, needle);
  EXPECT_EQ(reply.responses[0].header("connection"), "close") << reply.responses[0].head;
  EXPECT_TRUE(reply.closed) << "the connection stayed open after " << status;
}

// One request on a new connection: the response (status 0: none within 5 s).
RawResponse answer_to(int port, const std::string& request) {
  RawClient c(port);
  c.send(request);
  RawReply reply = c.read(1, 5s);
  return reply.responses.empty() ? RawResponse{} : std::move(reply.responses[0]);
}

int request_status(int port, const std::string& request) { return answer_to(port, request).status; }

// Posts a sentinel event last and waits for it: once it arrived, nothing sent before can still be
// on its way, so the file sink holds exactly the sentinel and nothing of the rejected requests.
void expect_only_the_sentinel_arrives(const DaemonProcess& d) {
  EXPECT_EQ(request_status(d.port(), post_events(R"({"id":"sentinel"})")), 202);
  ASSERT_TRUE(wait_lines(events_file(d), 1));
  EXPECT_EQ(arrived_ids(d), std::vector<std::string>{"sentinel"});
}

void expect_alive(DaemonProcess& d) {
  EXPECT_EQ(request_status(d.port(), http_request("GET", "/healthz")), 200) << d.err();
  EXPECT_TRUE(d.running());
}

// A field of /proc/PID/status in KiB (VmRSS: resident now; VmHWM: the peak since start or the
// last reset_peak_rss), -1 when unreadable.
long proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

// Resets VmHWM to the current RSS (clear_refs "5"); without the permission VmHWM keeps the peak
// since start, which only makes the bound below stricter.
void reset_peak_rss(pid_t pid) {
  std::ofstream("/proc/" + std::to_string(pid) + "/clear_refs") << "5";
}

// `text` compressed by zlib: windowBits 31 writes gzip, 15 zlib ("deflate" in HTTP).
std::string compress(std::string_view text, int window_bits) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, text.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A gzip body of [{"id":"bomb","pad":"000..."}] whose pad is `zeros` bytes, compressed in pieces
// so the test never holds it whole.
std::string gzip_bomb(std::size_t zeros) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out;
  char buf[1 << 16];
  auto feed = [&](std::string_view in, int flush) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = sizeof buf;
      deflate(&z, flush);
      out.append(buf, sizeof buf - z.avail_out);
    } while (z.avail_out == 0);
  };
  feed(R"([{"id":"bomb","pad":")", Z_NO_FLUSH);
  const std::string piece(1 << 20, '0');
  for (std::size_t left = zeros; left > 0; left -= std::min(left, piece.size())) {
    feed(std::string_view(piece).substr(0, std::min(left, piece.size())), Z_NO_FLUSH);
  }
  feed("\"}]", Z_FINISH);
  deflateEnd(&z);
  return out;
}

TEST(HttpLimits, SlowlorisDoesNotStarveOtherClients) {
  constexpr int kSlow = 1000;
  constexpr int kRequests = 120;
  rlimit files{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &files), 0);
  if (files.rlim_cur < 2 * kSlow + 200) {  // evrouted inherits it
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, 4 * kSlow);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &files), 0);
  }
  ASSERT_GE(files.rlim_cur, 2 * kSlow + 200u) << "RLIMIT_NOFILE hard limit too low";
  auto d = DaemonProcess::start(config());
  ASSERT_TRUE(d);

  const std::string line = "POST /v1/events HTTP/1.1\r\n";
  std::vector<RawClient> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.emplace_back(d->port());
    ASSERT_TRUE(slow.back().connected()) << "connection " << i;
    slow.back().send(line.substr(0, 1));
  }
  // All of them are open in evrouted (one descriptor each), not waiting in the listen backlog.
  const std::string fd_dir = "/proc/" + std::to_string(d->pid()) + "/fd";
  auto open_fds = [&] {
    std::error_code ec;
    auto it = std::filesystem::directory_iterator(fd_dir, ec);
    return ec ? 0 : std::distance(it, std::filesystem::directory_iterator());
  };
  eventually([&] { return open_fds() >= kSlow; }, 5s, 20ms);
  EXPECT_GE(open_fds(), kSlow) << "evrouted did not accept the slow connections";

  // A byte of the request line every second on every slow connection, while the normal client
  // runs.
  std::atomic<bool> done{false};
  std::thread pacer([&] {
    for (std::size_t next = 1; !done; next = (next + 1) % line.size()) {
      for (int i = 0; i < 100 && !done; ++i) std::this_thread::sleep_for(10ms);
      for (RawClient& c : slow) c.send(line.substr(next, 1));
    }
  });
  int answered = 0, failed = 0, within_100ms = 0, posted = 0;
  std::chrono::microseconds slowest{0};
  const auto phase_deadline = Clock::now() + 9s;
  for (int i = 0; i < kRequests && failed < 2 && Clock::now() < phase_deadline; ++i) {
    const bool post = i % 2 == 1;
    const std::string req = post ? post_events(R"({"id":"n)" + std::to_string(i) + R"("})")
                                 : http_request("GET", "/healthz");
    const auto start = Clock::now();
    RawClient c(d->port(), 1s);
    const int status = c.connected() ? c.exchange(req, 1s) : 0;
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
    if (status == (post ? 202 : 200)) {
      ++answered;
      posted += post ? 1 : 0;
      within_100ms += took <= 100ms ? 1 : 0;
      slowest = std::max(slowest, took);
    } else {
      ++failed;
      ADD_FAILURE() << "request " << i << ": status " << status << " after " << took.count()
                    << " us";
    }
    std::this_thread::sleep_for(25ms);  // pacing: the requests span several slowloris bytes
  }
  done = true;
  pacer.join();
  std::cout << "[ measured ] " << answered << " answered, " << within_100ms
            << " within 100 ms, slowest " << slowest.count() << " us\n";
  EXPECT_GE(answered * 100, kRequests * 99) << failed << " failed";
  EXPECT_TRUE(wait_lines(events_file(*d), static_cast<std::size_t>(posted)));
  EXPECT_TRUE(d->running());
}

TEST(HttpLimits, HeaderFloodIs431AndMemoryStaysBounded) {
  auto d = DaemonProcess::start(config());
  ASSERT_TRUE(d);
  {  // Just over the count: 431, closed. Just under: served.
    RawClient c(d->port());
    c.send(http_request("GET", "/healthz", std::vector<std::string>(100, "x-a: 1")));
    expect_error_and_close(c, 431, "more than max_header_count (100) header fields");
    EXPECT_EQ(request_status(d->port(), http_request("GET", "/healthz",
                                                     std::vector<std::string>(90, "x-a: 1"))),
              200);
  }
  // Four connections send up to 16 MiB of tiny header fields each.
  std::string fields;
  for (int i = 0; i < 4000; ++i) fields += "a:b\r\n";
  reset_peak_rss(d->pid());
  const long before = proc_status_kib(d->pid(), "VmRSS");
  ASSERT_GT(before, 0);
  std::atomic<int> running{4};
  std::vector<RawReply> replies(4);
  std::vector<std::thread> flooders;
  for (int t = 0; t < 4; ++t) {
    flooders.emplace_back([&, t] {
      RawClient c(d->port());
      c.send("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n");
      for (std::size_t sent = 0; sent < (16u << 20) && c.send(fields); sent += fields.size()) {
      }
      replies[static_cast<std::size_t>(t)] = c.read(SIZE_MAX, 5s);
      --running;
    });
  }
  long peak = before;
  while (running > 0) {
    peak = std::max(peak, proc_status_kib(d->pid(), "VmRSS"));
    std::this_thread::sleep_for(5ms);
  }
  for (auto& t : flooders) t.join();
  peak = std::max(peak, proc_status_kib(d->pid(), "VmHWM"));
  std::cout << "[ measured ] VmRSS " << before << " KiB before the flood, peak " << peak
            << " KiB\n";
  EXPECT_LT(peak - before, 32 * 1024) << "evrouted grew by " << (peak - before) << " KiB";
  for (const RawReply& r : replies) {
    ASSERT_EQ(r.responses.size(), 1u) << "no answer to a header flood";
    // Whichever bound the flood passes first, as it arrives: the count or the bytes.
    expect_error(r.responses[0], 431, "max_header_");
    EXPECT_TRUE(r.closed);
  }
  expect_alive(*d);
  EXPECT_EQ(read_lines(events_file(*d)).size(), 0u);
}

TEST(HttpLimits, OversizedHeaderIs431) {
  auto d = DaemonProcess::start(config());
  ASSERT_TRUE(d);
  RawClient c(d->port());
  c.send(http_request("GET", "/healthz", {"X-Big: " + std::string(20000, 'a')}));
  expect_error_and_close(c, 431, "request header larger than max_header_bytes (16384)");
  // Below the bound a large field is fine.
  EXPECT_EQ(request_status(d->port(),
                           http_request("GET", "/healthz", {"X-Big: " + std::string(12000, 'a')})),
            200);
  auto small = DaemonProcess::start(config("  max_header_bytes: 1KiB\n"));
  ASSERT_TRUE(small);
  RawClient s(small->port());
  s.send(http_request("GET", "/healthz", {"X-Big: " + std::string(2000, 'a')}));
  expect_error_and_close(s, 431, "request header larger than max_header_bytes (1024)");
  expect_alive(*d);
}

TEST(HttpLimits, RequestNotReadWithinRequestTimeoutIs408) {
  auto d = DaemonProcess::start(config("  request_timeout: 1s\n"));
  ASSERT_TRUE(d);
  const auto start = Clock::now();
  RawClient half_head(d->port());
  half_head.send("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le");
  RawClient half_body(d->port());
  half_body.send(post_events(R"({"id":"late"})").substr(0, 90));
  expect_error_and_close(half_head, 408, "request not received within request_timeout (1s)");
  expect_error_and_close(half_body, 408, "request not received within request_timeout (1s)");
  EXPECT_GE(Clock::now() - start, 900ms) << "408 before request_timeout";
  expect_alive(*d);
  EXPECT_EQ(read_lines(events_file(*d)).size(), 0u);
}

TEST(HttpLimits, IdleConnectionIsClosedWithoutAnAnswer) {
  auto d = DaemonProcess::start(config("  idle_timeout: 1s\n"));
  ASSERT_TRUE(d);
  RawClient after_request(d->port());
  EXPECT_EQ(after_request.exchange(http_request("GET", "/healthz")), 200);
  RawClient silent(d->port());  // never sends a byte: no request in progress either
  for (RawClient* c : {&after_request, &silent}) {
    const RawReply reply = c->read(SIZE_MAX, 5s);
    EXPECT_TRUE(reply.closed) << "an idle connection stayed open";
    EXPECT_TRUE(reply.responses.empty()) << reply.responses[0].head;
    EXPECT_EQ(reply.rest, "");
  }
  expect_alive(*d);
}

TEST(HttpLimits, MaxConnections) {
  auto d = DaemonProcess::start(config("  max_connections: 10\n"));
  ASSERT_TRUE(d);
  std::vector<RawClient> open;
  for (int i = 0; i < 10; ++i) {
    open.emplace_back(d->port());
    ASSERT_EQ(open.back().exchange(http_request("GET", "/healthz")), 200) << "connection " << i;
  }
  {  // The 11th: answered without sending anything, then closed.
    RawClient eleventh(d->port());
    expect_error_and_close(eleventh, 503, "too many connections (server.max_connections: 10)");
  }
  open.erase(open.begin() + 7, open.end());  // closes three
  // evrouted sees the closes (it may take a moment): then three new connections are served.
  eventually(
      [&] {
        RawClient c(d->port());
        if (c.exchange(http_request("GET", "/healthz")) == 200) open.push_back(std::move(c));
        return open.size() >= 10;
      },
      5s);
  EXPECT_EQ(open.size(), 10u) << "closed connections were not freed";
  for (RawClient& c : open) EXPECT_EQ(c.exchange(http_request("GET", "/healthz")), 200);
  RawClient over(d->port());
  expect_error_and_close(over, 503, "too many connections");
  EXPECT_TRUE(d->running());
}

TEST(HttpLimits, ListenAddressIsExclusive) {
  auto first = DaemonProcess::start(config());
  ASSERT_TRUE(first);
  const auto dir = make_temp_dir();
  const std::string address = "127.0.0.1:" + std::to_string(first->port());
  std::ofstream(dir / "config.yaml")
      << "server:\n  listen: \"" << address << "\"\nsinks:\n  out: { type: stdout }\n";
  DaemonProcess second({"--config", (dir / "config.yaml").string()}, dir);
  EXPECT_EQ(second.wait_exit(10s), 1);
  EXPECT_NE(
      second.err().find("cannot listen on " + address + ": Address already in use; not starting"),
      std::string::npos)
      << second.err();
  std::filesystem::remove_all(dir);
  expect_alive(*first);
}

TEST(HttpLimits, AmbiguousFramingIs400AndClosed) {
  auto d = DaemonProcess::start(config());
  ASSERT_TRUE(d);
  const std::string body = R"({"id":"smuggled"})";
  const std::string cl = "Content-Length: " + std::to_string(body.size());
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{cl, cl}, "more than one Content-Length header"},
      {{cl, "Content-Length: 3"}, "more than one Content-Length header"},
      {{cl, "Transfer-Encoding: chunked"}, ""},
  };
  for (const auto& [fields, error] : cases) {
    SCOPED_TRACE(fields[1]);
    RawClient c(d->port());
    std::vector<std::string> all = {"Content-Type: application/json"};
    all.insert(all.end(), fields.begin(), fields.end());
    const std::string chunked = "11\r\n" + body + "\r\n0\r\n\r\n";
    c.send(http_request("POST", "/v1/events", all, error.empty() ? chunked : body));
    const RawReply reply = c.read(SIZE_MAX, 5s);
    ASSERT_EQ(reply.responses.size(), 1u) << reply.rest.substr(0, 300);
    expect_error(reply.responses[0], 400, error);
    EXPECT_TRUE(reply.closed);
  }
  {
    RawClient c(d->port());
    c.send("GET /healthz HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n");  // no colon
    expect_error_and_close(c, 400, "malformed HTTP request: ");
  }
  expect_only_the_sentinel_arrives(*d);
}

TEST(HttpLimits, CompressedBodiesAreDecoded) {
  auto d = DaemonProcess::start(config());
  ASSERT_TRUE(d);
  struct Case {
    std::string encoding;
    int window_bits;  // 0: sent as it is
  };
  const std::vector<Case> cases = {{"gzip", 31}, {"x-gzip", 31}, {"deflate", 15}, {"identity", 0}};
  std::vector<std::string> expected;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.encoding);
    const std::string json =
        R"([{"id":")" + c.encoding + R"(-1"},{"id":")" + c.encoding + R"(-2"}])";
    const std::string body = c.window_bits ? compress(json, c.window_bits) : json;
    RawClient client(d->port());
    client.send(post_events(body, {"Content-Encoding: " + c.encoding}));
    const RawReply reply = client.read(1, 5s);
    ASSERT_EQ(reply.responses.size(), 1u);
    ASSERT_EQ(reply.responses[0].status, 202) << reply.responses[0].body;
    EXPECT_EQ(Json::parse(reply.responses[0].body)["ids"],
              Json::array({c.encoding + "-1", c.encoding + "-2"}));
    expected.push_back(c.encoding + "-1");
    expected.push_back(c.encoding + "-2");
  }
  ASSERT_TRUE(wait_lines(events_file(*d), expected.size()));
  EXPECT_EQ(arrived_ids(*d), expected);
}

TEST(HttpLimits, GzipBombIs413AndMemoryStaysBounded) {
  auto d = DaemonProcess::start(config("  max_body_bytes: 1MiB\n"));
  ASSERT_TRUE(d);
  const std::string bomb = gzip_bomb(100u << 20);  // 100 MiB when decoded
  ASSERT_LT(bomb.size(), 1u << 20);                // within max_body_bytes as it is sent
  reset_peak_rss(d->pid());
  const long before = proc_status_kib(d->pid(), "VmRSS");
  {
    RawClient c(d->port());
    c.send(post_events(bomb, {"Content-Encoding: gzip"}));
    const RawReply reply = c.read(1, 5s);
    ASSERT_EQ(reply.responses.size(), 1u) << reply.rest.substr(0, 300);
    expect_error(reply.responses[0], 413, "request body larger than max_body_bytes (1048576)");
    // The body was read whole (it is small on the wire), so the connection may stay open; if it
    // does, it is still in step.
    if (reply.responses[0].header("connection") != "close") {
      EXPECT_EQ(c.exchange(http_request("GET", "/healthz")), 200);
    }
  }
  const long peak = proc_status_kib(d->pid(), "VmHWM");
  std::cout << "[ measured ] VmRSS " << before << " KiB before the bomb, peak " << peak << " KiB\n";
  EXPECT_LT(peak - before, 32 * 1024) << "evrouted grew by " << (peak - before) << " KiB";
  expect_alive(*d);
  EXPECT_EQ(read_lines(events_file(*d)).size(), 0u);
}

TEST(HttpLimits, CorruptOrUnknownEncodingIsRejected) {
  auto d = DaemonProcess::start(config());
  ASSERT_TRUE(d);
  std::string corrupt = compress(R"([{"id":"corrupt"}])", 31);
  corrupt.replace(10, 4, "\xff\xff\xff\xff");  // the deflate data after the 10-byte gzip header
  expect_error(answer_to(d->port(), post_events(corrupt, {"Content-Encoding: gzip"})), 400,
               "malformed gzip body");
  expect_error(answer_to(d->port(), post_events("not gzip at all", {"Content-Encoding: gzip"})),
               400, "malformed gzip body");
  // The contract names the status, not the text: any {"error": ...} body.
  expect_error(answer_to(d->port(), post_events(R"({"id":"br"})", {"Content-Encoding: br"})), 415,
               "");
  expect_only_the_sentinel_arrives(*d);
}

TEST(HttpLimits, PipelinedRequestsAreAnsweredInOrder) {
  auto d = DaemonProcess::start(config());
  ASSERT_TRUE(d);
  RawClient c(d->port());
  ASSERT_TRUE(c.send(post_events(R"({"id":"p1"})") + post_events(R"({"id":"p2"})") +
                     post_events(R"({"id":"p3"})") + http_request("GET", "/healthz")));
  const RawReply reply = c.read(4, 5s);
  ASSERT_EQ(reply.responses.size(), 4u) << reply.rest.substr(0, 300);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(reply.responses[i].status, 202) << reply.responses[i].body;
    EXPECT_EQ(Json::parse(reply.responses[i].body, nullptr, false)["ids"],
              Json::array({"p" + std::to_string(i + 1)}));
  }
  EXPECT_EQ(reply.responses[3].status, 200);
  EXPECT_FALSE(reply.closed);
  ASSERT_TRUE(wait_lines(events_file(*d), 3));
  EXPECT_EQ(arrived_ids(*d), (std::vector<std::string>{"p1", "p2", "p3"}));
}

TEST(HttpLimits, ExpectContinue) {
  auto d = DaemonProcess::start(config("  max_body_bytes: 1MiB\n"));
  ASSERT_TRUE(d);
  {
    const std::string body = R"({"id":"continued"})";
    RawClient c(d->port());
    c.send(http_request("POST", "/v1/events",
                        {"Content-Type: application/json", "Expect: 100-continue",
                         "Content-Length: " + std::to_string(body.size())}));
    const RawReply interim = c.read(1, 5s);
    ASSERT_EQ(interim.responses.size(), 1u) << "no 100 Continue";
    EXPECT_EQ(interim.responses[0].head.substr(0, 25), "HTTP/1.1 100 Continue\r\n");
    c.send(body);
    const RawReply final_reply = c.read(1, 5s);
    ASSERT_EQ(final_reply.responses.size(), 1u);
    EXPECT_EQ(final_reply.responses[0].status, 202) << final_reply.responses[0].body;
  }
  {  // Too large: 413 at once, no 100 Continue, and the body is never read.
    RawClient c(d->port());
    c.send(http_request("POST", "/v1/events",
                        {"Content-Type: application/json", "Expect: 100-continue",
                         "Content-Length: " + std::to_string(2 << 20)}));
    expect_error_and_close(c, 413, "request body larger than max_body_bytes (1048576)");
  }
  {  // The same without Expect: answered before the body is sent.
    RawClient c(d->port());
    c.send(http_request("POST", "/v1/events",
                        {"Content-Type: application/json", "Content-Length: 2000000"}));
    expect_error_and_close(c, 413, "request body larger than max_body_bytes (1048576)");
  }
  ASSERT_TRUE(wait_lines(events_file(*d), 1));
  EXPECT_EQ(arrived_ids(*d), std::vector<std::string>{"continued"});
}

TEST(HttpLimits, ChunkedBodies) {
  auto d = DaemonProcess::start(config("  max_body_bytes: 1MiB\n"));
  ASSERT_TRUE(d);
  {
    RawClient c(d->port());
    c.send(http_request("POST", "/v1/events",
                        {"Content-Type: application/json", "Transfer-Encoding: chunked"}));
    for (std::string_view part : {R"([{"id":"c1"},)", R"({"id":)", R"("c2"}])"}) {
      std::ostringstream chunk;
      chunk << std::hex << part.size() << "\r\n" << part << "\r\n";
      c.send(chunk.str());
    }
    c.send("0\r\n\r\n");
    const RawReply reply = c.read(1, 5s);
    ASSERT_EQ(reply.responses.size(), 1u);
    EXPECT_EQ(reply.responses[0].status, 202) << reply.responses[0].body;
  }
  {  // Over max_body_bytes: 413 once it passes.
    RawClient c(d->port());
    c.send(http_request("POST", "/v1/events",
                        {"Content-Type: application/json", "Transfer-Encoding: chunked"}));
    const std::string chunk = "10000\r\n" + std::string(0x10000, ' ') + "\r\n";
    for (int i = 0; i < 24 && c.send(chunk); ++i) {
    }
    c.send("0\r\n\r\n");
    expect_error_and_close(c, 413, "request body larger than max_body_bytes (1048576)");
  }
  ASSERT_TRUE(wait_lines(events_file(*d), 2));
  EXPECT_EQ(arrived_ids(*d), (std::vector<std::string>{"c1", "c2"}));
}

}  // namespace
}  // namespace evtest

namespace evtest {
namespace {

// server.max_buffered_bytes bounds the request bodies held at once over every connection: a body
// that would take it past its bound gets 503 with Retry-After (and is not read); once the body
// holding the budget is done, the same request is accepted.
TEST(HttpLimits, BodiesHeldAtOnceAreBoundedByMaxBufferedBytes) {
  auto d = DaemonProcess::start(config("  max_body_bytes: 1MiB\n  max_buffered_bytes: 1MiB\n"));
  ASSERT_TRUE(d);
  // A holds 700 KB of the budget while its body is still arriving. Its body is charged when its
  // header is complete, before the `100 Continue`: once that has come, B cannot be first.
  const std::string big_event = R"({"id":"big","pad":")" + std::string(700000, 'x') + "\"}";
  const std::string big_head =
      http_request("POST", "/v1/events",
                   {"Content-Type: application/json", "Expect: 100-continue",
                    "Content-Length: " + std::to_string(big_event.size())});
  RawClient a(d->port());
  ASSERT_TRUE(a.send(big_head));
  const RawReply interim = a.read(1, 5s);
  ASSERT_EQ(interim.responses.size(), 1u) << "no 100 Continue";
  ASSERT_EQ(interim.responses[0].status, 100);
  ASSERT_TRUE(a.send(std::string_view(big_event).substr(0, big_event.size() - 1000)));
  // B's 400 KB do not fit beside it: 503 before its body is read, and the connection closes.
  const std::string other_event = R"({"id":"other","pad":")" + std::string(400000, 'y') + "\"}";
  const std::string other = post_events(other_event);
  const std::string other_head = other.substr(0, other.find("\r\n\r\n") + 4);
  const auto refused = [&] {  // A's bytes may still be on their way into evrouted: poll
    return eventually(
        [&] {
          RawClient b(d->port());
          b.send(other_head);
          RawReply reply = b.read(1, 2s);
          if (reply.responses.empty() || reply.responses[0].status != 503) return false;
          EXPECT_EQ(reply.responses[0].header("retry-after"), "1");
          expect_error(reply.responses[0], 503, "max_buffered_bytes");
          return true;
        },
        5s);
  };
  EXPECT_TRUE(refused());
  // A completes and is answered; its budget is given back, and B's request is accepted.
  ASSERT_TRUE(a.send(std::string_view(big_event).substr(big_event.size() - 1000)));
  RawReply a_reply = a.read(1, 5s);
  ASSERT_EQ(a_reply.responses.size(), 1u);
  EXPECT_EQ(a_reply.responses[0].status, 202) << a_reply.responses[0].body;
  EXPECT_EQ(request_status(d->port(), other), 202);
  ASSERT_TRUE(wait_lines(events_file(*d), 2));
  EXPECT_EQ(arrived_ids(*d), (std::vector<std::string>{"big", "other"}));
}

}  // namespace
}  // namespace evtest
