// evrouted's ingest over TLS (server.tls), against the real binary: curl posts over HTTPS, plain
// HTTP on the TLS port fails without harm, mutual TLS (client_ca_file) refuses clients without a
// certificate, SIGHUP re-reads the certificate (open connections keep working, new ones get the
// renewal, a bad file keeps the old one) and a bad certificate at start is exit 1.
//
// The certificates are made at test time with the openssl CLI: a CA, a server certificate for
// 127.0.0.1 (serial 1001), its renewal (serial 1002) and a client certificate, all signed by the
// CA, and a self-signed "stranger" certificate.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "support/daemon_process.h"
#include "support/raw_client.h"

namespace evtest {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes `text` to `path` atomically (a rename), as a certificate renewal would.
void replace_file(const fs::path& path, const std::string& text) {
  std::ofstream(path.string() + ".new", std::ios::binary) << text;
  fs::rename(path.string() + ".new", path);
}

// The certificates, made once for this test binary in a temporary directory.
struct Pki {
  fs::path dir;
  fs::path ca() const { return dir / "ca.pem"; }
  fs::path cert(const std::string& name) const { return dir / (name + ".pem"); }
  fs::path key(const std::string& name) const { return dir / (name + ".key"); }

  static const Pki& get() {
    static const Pki pki = make();
    return pki;
  }

 private:
  static Pki make() {
    Pki p{make_temp_dir()};
    const std::string d = p.dir.string();
    const std::string newkey = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    auto run = [&](const std::string& cmd) {
      const int rc = std::system((cmd + " >>" + d + "/openssl.log 2>&1").c_str());
      if (rc != 0) ADD_FAILURE() << cmd << ": " << rc << "\n" << read_file(p.dir / "openssl.log");
    };
    run("openssl req -x509" + newkey + " -keyout " + d + "/ca.key -out " + d +
        "/ca.pem -days 2 -subj /CN=evroute-test-ca");
    auto issue = [&](const std::string& name, int serial, const std::string& extensions) {
      std::ofstream(p.dir / (name + ".ext")) << extensions;
      run("openssl req" + newkey + " -keyout " + d + "/" + name + ".key -out " + d + "/" + name +
          ".csr -subj /CN=" + name);
      run("openssl x509 -req -in " + d + "/" + name + ".csr -CA " + d + "/ca.pem -CAkey " + d +
          "/ca.key -set_serial " + std::to_string(serial) + " -days 2 -out " + d + "/" + name +
          ".pem -extfile " + d + "/" + name + ".ext");
    };
    issue("server", 1001, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    issue("renewed", 1002, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    issue("client", 2001, "extendedKeyUsage=clientAuth\n");
    run("openssl req -x509" + newkey + " -keyout " + d + "/stranger.key -out " + d +
        "/stranger.pem -days 2 -subj /CN=stranger");  // self-signed: not by the CA
    return p;
  }
};

class PkiCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(Pki::get().dir, ec);
  }
};
const auto* const kPkiCleanup = ::testing::AddGlobalTestEnvironment(new PkiCleanup);

// A directory for one evrouted: server.pem/server.key (the first certificate) and ca.pem copied
// into it, removed at the end.
struct WorkDir {
  fs::path path = make_temp_dir();
  WorkDir() {
    const Pki& pki = Pki::get();
    fs::copy_file(pki.cert("server"), path / "server.pem");
    fs::copy_file(pki.key("server"), path / "server.key");
    fs::copy_file(pki.ca(), path / "ca.pem");
  }
  ~WorkDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// TLS with ./server.pem and ./server.key, then `tls_keys` (indented four spaces) under tls: and
// `server_keys` (two) under server:.
std::string tls_config(const std::string& tls_keys = "", const std::string& server_keys = "") {
  return "server:\n  listen: \"127.0.0.1:0\"\n  tls:\n    cert_file: ./server.pem\n"
         "    key_file: ./server.key\n" +
         tls_keys + server_keys + "sinks:\n  archive: { type: file, path: ./data/events.ndjson }\n";
}

struct CurlResult {
  int exit_code = -1;
  std::string status;  // %{http_code}: "000" when there was no answer
  std::string err;
};

// Runs the curl binary against https://127.0.0.1:PORT/PATH with `options`.
CurlResult curl(const fs::path& dir, int port, const std::string& path,
                const std::string& options) {
  const std::string cmd = "curl -sS --max-time 10 -o /dev/null -w '%{http_code}' --cacert " +
                          Pki::get().ca().string() + " " + options +
                          " https://127.0.0.1:" + std::to_string(port) + path + " 2>" +
                          (dir / "curl.err").string();
  CurlResult r;
  FILE* out = ::popen(cmd.c_str(), "r");
  if (!out) return r;
  char buf[256];
  while (std::fgets(buf, sizeof buf, out)) r.status += buf;
  const int status = ::pclose(out);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(dir / "curl.err");
  return r;
}

std::string post_options(const std::string& id) {
  return "-H 'Content-Type: application/json' --data-binary '{\"id\":\"" + id + "\"}'";
}

// A TLS client on one connection that checks the server against the test CA (and 127.0.0.1).
class TlsClient {
 public:
  explicit TlsClient(int port) : tcp_(port) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, Pki::get().ca().c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    ssl_ = SSL_new(ctx_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
    if (!tcp_.connected()) return;
    const timeval timeout{5, 0};  // bounds every blocking SSL_read
    setsockopt(tcp_.fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    SSL_set_fd(ssl_, tcp_.fd());
    ok_ = SSL_connect(ssl_) == 1;
  }
  ~TlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool handshake_ok() const { return ok_; }
  // The serial number of the certificate the server presented; -1 without one.
  long peer_serial() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    const long serial = cert ? ASN1_INTEGER_get(X509_get_serialNumber(cert)) : -1;
    X509_free(cert);
    return serial;
  }
  // Sends `request` and reads one response: its status, 0 when none came within 5 s.
  int exchange(const std::string& request) {
    if (!ok_ || SSL_write(ssl_, request.data(), static_cast<int>(request.size())) <= 0) return 0;
    const auto deadline = Clock::now() + 5s;
    char buf[16384];
    while (Clock::now() < deadline) {
      RawResponse r;
      const std::size_t used = parse_response(pending_, false, &r);
      if (used == std::string::npos) return 0;
      if (used > 0) {
        pending_.erase(0, used);
        return r.status;
      }
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) return 0;
      pending_.append(buf, static_cast<std::size_t>(n));
    }
    return 0;
  }

 private:
  RawClient tcp_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
  std::string pending_;
};

// Waits until evrouted has logged, after `offset` of its stderr, a line for which `pred` holds.
bool wait_log_after(const DaemonProcess& d, std::size_t offset,
                    const std::function<bool(std::string_view)>& pred) {
  return d.wait_err([&](const std::string& err) {
    return err.size() > offset && pred(std::string_view(err).substr(offset));
  });
}

TEST(Tls, CurlPostsOverTls) {
  WorkDir dir;
  auto d = DaemonProcess::start_in(dir.path, tls_config());
  ASSERT_TRUE(d);
  const CurlResult post = curl(dir.path, d->port(), "/v1/events", post_options("tls-1"));
  EXPECT_EQ(post.status, "202") << post.err;
  EXPECT_EQ(post.exit_code, 0) << post.err;
  EXPECT_EQ(curl(dir.path, d->port(), "/healthz", "").status, "200");
  ASSERT_TRUE(wait_lines(dir.path / "data" / "events.ndjson", 1));
  EXPECT_NE(read_lines(dir.path / "data" / "events.ndjson")[0].find("\"tls-1\""),
            std::string::npos);
}

TEST(Tls, PlainHttpOnTheTlsPortFailsCleanly) {
  WorkDir dir;
  auto d = DaemonProcess::start_in(dir.path, tls_config());
  ASSERT_TRUE(d);
  for (int i = 0; i < 3; ++i) {
    RawClient c(d->port());
    c.send(post_events(R"({"id":"plain"})"));
    const RawReply reply = c.read(SIZE_MAX, 5s);
    EXPECT_TRUE(reply.closed) << "plain HTTP on the TLS port: the connection stayed open";
    for (const RawResponse& r : reply.responses) EXPECT_GE(r.status, 400) << r.head;
  }
  EXPECT_TRUE(d->running());
  EXPECT_EQ(curl(dir.path, d->port(), "/healthz", "").status, "200");
  EXPECT_EQ(read_lines(dir.path / "data" / "events.ndjson").size(), 0u);
}

TEST(Tls, MutualTlsRequiresAClientCertificate) {
  WorkDir dir;
  auto d = DaemonProcess::start_in(dir.path, tls_config("    client_ca_file: ./ca.pem\n"));
  ASSERT_TRUE(d);
  const CurlResult anonymous = curl(dir.path, d->port(), "/v1/events", post_options("anonymous"));
  EXPECT_NE(anonymous.exit_code, 0) << anonymous.status;
  EXPECT_NE(anonymous.status, "202") << anonymous.err;
  const Pki& pki = Pki::get();
  const CurlResult with_cert =
      curl(dir.path, d->port(), "/v1/events",
           post_options("mutual") + " --cert " + pki.cert("client").string() + " --key " +
               pki.key("client").string());
  EXPECT_EQ(with_cert.status, "202") << with_cert.err;
  // A certificate the CA did not sign is refused as well.
  const CurlResult other =
      curl(dir.path, d->port(), "/v1/events",
           post_options("stranger") + " --cert " + pki.cert("stranger").string() + " --key " +
               pki.key("stranger").string());
  EXPECT_NE(other.status, "202") << other.err;
  ASSERT_TRUE(wait_lines(dir.path / "data" / "events.ndjson", 1));
  const auto lines = read_lines(dir.path / "data" / "events.ndjson");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("\"mutual\""), std::string::npos) << lines[0];
}

TEST(Tls, SighupReloadsTheCertificateAndOpenConnectionsKeepWorking) {
  WorkDir dir;
  auto d = DaemonProcess::start_in(dir.path, tls_config());
  ASSERT_TRUE(d);
  TlsClient open(d->port());
  ASSERT_TRUE(open.handshake_ok());
  EXPECT_EQ(open.peer_serial(), 1001);
  EXPECT_EQ(open.exchange(http_request("GET", "/healthz")), 200);

  const Pki& pki = Pki::get();
  replace_file(dir.path / "server.key", read_file(pki.key("renewed")));
  replace_file(dir.path / "server.pem", read_file(pki.cert("renewed")));
  const std::size_t offset = d->err().size();
  d->signal(SIGHUP);
  ASSERT_TRUE(wait_log_after(*d, offset, [](std::string_view log) {
    return log.find("server.tls") != std::string_view::npos ||
           log.find("is valid and unchanged") != std::string_view::npos;
  })) << d->err();
  EXPECT_EQ(d->err().find("keeping the previous certificate", offset), std::string::npos)
      << d->err();

  EXPECT_EQ(open.exchange(http_request("GET", "/healthz")), 200) << "the open connection broke";
  // New connections get the renewal (the log line may come just before the swap).
  long serial = -1;
  const auto deadline = Clock::now() + 5s;
  while (serial != 1002 && Clock::now() < deadline) {
    TlsClient fresh(d->port());
    ASSERT_TRUE(fresh.handshake_ok());
    serial = fresh.peer_serial();
    EXPECT_EQ(fresh.exchange(http_request("GET", "/healthz")), 200);
  }
  EXPECT_EQ(serial, 1002) << "new connections still get the old certificate";
  EXPECT_EQ(open.exchange(post_events(R"({"id":"after-reload"})")), 202);
}

TEST(Tls, BadCertificateOnReloadKeepsThePreviousOne) {
  WorkDir dir;
  auto d = DaemonProcess::start_in(dir.path, tls_config());
  ASSERT_TRUE(d);
  replace_file(dir.path / "server.pem", "-----BEGIN CERTIFICATE-----\nbroken\n");
  const std::size_t offset = d->err().size();
  d->signal(SIGHUP);
  ASSERT_TRUE(wait_log_after(*d, offset, [](std::string_view log) {
    return log.find("keeping the previous certificate") != std::string_view::npos;
  })) << d->err();
  const std::string log = d->err().substr(offset);
  EXPECT_NE(log.find("SIGHUP: server.tls"), std::string::npos) << log;
  EXPECT_NE(log.find("server.pem"), std::string::npos) << "the log does not name the file: " << log;
  TlsClient fresh(d->port());
  ASSERT_TRUE(fresh.handshake_ok());
  EXPECT_EQ(fresh.peer_serial(), 1001);
  EXPECT_EQ(fresh.exchange(post_events(R"({"id":"still-served"})")), 202);
  EXPECT_TRUE(d->running());
}

// With TLS the bounds close without an answer (there is no HTTP to answer in before the
// handshake): past max_connections, and a handshake not done within request_timeout.
TEST(Tls, BoundsCloseWithoutAnAnswer) {
  WorkDir dir;
  auto d = DaemonProcess::start_in(dir.path,
                                   tls_config("", "  max_connections: 2\n  request_timeout: 1s\n"));
  ASSERT_TRUE(d);
  RawClient half_handshake(d->port());
  half_handshake.send(std::string("\x16\x03\x01\x00", 4));  // the start of a record header
  TlsClient served(d->port());
  ASSERT_TRUE(served.handshake_ok());
  EXPECT_EQ(served.exchange(http_request("GET", "/healthz")), 200);
  RawClient third(d->port());
  const RawReply refused = third.read(SIZE_MAX, 5s);
  EXPECT_TRUE(refused.closed) << "the connection past max_connections stayed open";
  EXPECT_EQ(refused.rest, "");
  const RawReply timed_out = half_handshake.read(SIZE_MAX, 5s);
  EXPECT_TRUE(timed_out.closed) << "a stalled handshake outlived request_timeout";
  EXPECT_TRUE(d->running());
  EXPECT_EQ(served.exchange(http_request("GET", "/healthz")), 200);
}

TEST(Tls, BadCertificateAtStartIsExit1WithTheReason) {
  struct Case {
    std::string name;
    std::function<void(const fs::path&)> spoil;
  };
  const std::vector<Case> cases = {
      {"garbage", [](const fs::path& d) { replace_file(d / "server.pem", "not a certificate\n"); }},
      {"missing", [](const fs::path& d) { fs::remove(d / "server.pem"); }},
      {"key of another certificate",
       [](const fs::path& d) {
         fs::copy_file(Pki::get().key("renewed"), d / "server.key",
                       fs::copy_options::overwrite_existing);
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    WorkDir dir;
    c.spoil(dir.path);
    std::ofstream(dir.path / "config.yaml") << tls_config();
    DaemonProcess d({"--config", (dir.path / "config.yaml").string()}, dir.path);
    EXPECT_EQ(d.wait_exit(10s), 1);
    EXPECT_NE(d.err().find("server.tls"), std::string::npos) << d.err();
    const bool named =
        d.err().find("server.pem") != std::string::npos ||
        (c.name == "key of another certificate" && d.err().find("server.key") != std::string::npos);
    EXPECT_TRUE(named) << "the reason does not name the file: " << d.err();
    EXPECT_EQ(d.err().find("listening on"), std::string::npos) << d.err();
  }
}

}  // namespace
}  // namespace evtest
