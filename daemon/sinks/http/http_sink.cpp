#include "sinks/http/http_sink.h"

#include "sinks/http/webhook_client.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <thread>

namespace evrouted {

namespace {

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::optional<std::string> parse_webhook_url(const std::string& url, HttpSinkConfig* out) {
  const std::size_t npos = std::string::npos;
  const std::size_t colon = url.find("://");
  if (colon == npos || colon == 0 || url.find_first_of("/?#") < colon) {
    return "not a URL of the form http(s)://host[:port]/path";
  }
  const std::string scheme = lowercase(url.substr(0, colon));
  if (scheme != "http" && scheme != "https") {
    return "scheme must be http or https, not '" + scheme + "'";
  }
  const std::size_t authority_end = url.find_first_of("/?#", colon + 3);
  std::string host = url.substr(colon + 3, authority_end - colon - 3);
  const std::string rest = authority_end == npos ? "" : url.substr(authority_end);
  if (host.find('@') != npos) {
    return "credentials in the URL are not supported (set an Authorization header instead)";
  }
  // host[:port], where host may be an IPv6 literal in brackets.
  const std::size_t port_colon = host.find(':', host.rfind(']') == npos ? 0 : host.rfind(']'));
  std::optional<std::string> port;
  if (port_colon != npos) {
    port = host.substr(port_colon + 1);
    host.resize(port_colon);
  }
  if (host.empty()) return "no host";
  if (host[0] == '[') {
    // Only IPv6 literals of digits and colons (no zone id, no embedded IPv4): what the sink has
    // always accepted (its first HTTP client parsed no others).
    if (host.size() < 3 || host.back() != ']' ||
        host.find_first_not_of("0123456789:", 1) != host.size() - 1) {
      return "only IPv6 addresses of digits and colons (e.g. [::1]) are supported; use a host name";
    }
  } else if (host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789.-_") != npos) {
    return "invalid host '" + host + "'";
  }
  if (port && (port->empty() || port->size() > 5 || port->find_first_not_of("0123456789") != npos ||
               std::stoi(*port) < 1 || std::stoi(*port) > 65535)) {
    return "port must be a number from 1 to 65535";
  }
  if (rest.find('#') != npos) return "a webhook URL cannot have a #fragment";
  out->url = url;
  out->scheme_host_port = scheme + "://" + host + (port ? ":" + *port : "");
  out->path = rest.empty() ? "/" : rest[0] == '?' ? "/" + rest : rest;
  return std::nullopt;
}

std::optional<std::string> decode_webhook_secret(std::string_view secret) {
  constexpr std::string_view kPrefix = "whsec_";
  if (secret.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  const std::string_view b64 = secret.substr(kPrefix.size());
  if (b64.empty() || b64.size() % 4 != 0) return std::nullopt;
  std::string key(b64.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()),
                                static_cast<int>(b64.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the bytes that '=' padding stands for: drop them.
  std::size_t padding = 0;
  for (std::size_t i = b64.size(); i > 0 && b64[i - 1] == '='; --i) ++padding;
  key.resize(static_cast<std::size_t>(n) - padding);
  return key;
}

std::string webhook_signature(const std::vector<std::string>& keys, std::string_view id,
                              std::string_view timestamp, std::string_view body) {
  std::string message;
  message.reserve(id.size() + timestamp.size() + body.size() + 2);
  message.append(id).append(".").append(timestamp).append(".").append(body);
  std::string header;
  for (const std::string& key : keys) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len);
    unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    const int b64_len = EVP_EncodeBlock(b64, mac, static_cast<int>(mac_len));
    if (!header.empty()) header += ' ';
    header += "v1,";
    header.append(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(b64_len));
  }
  return header;
}

namespace {

// The request around `body`: the configured headers, Content-Type, `extra` (CloudEvents binary
// mode's ce-*), webhook-id/timestamp/signature and User-Agent.
WebhookRequest finish_request(const HttpSinkConfig& config, const std::string& id, std::string body,
                              const std::string& content_type,
                              const std::vector<std::pair<std::string, std::string>>& extra,
                              std::chrono::system_clock::time_point now) {
  const std::string timestamp = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  WebhookRequest req;
  req.method = "POST";
  req.path = config.path;
  req.headers.assign(config.headers.begin(), config.headers.end());
  if (!content_type.empty()) req.headers.emplace_back("Content-Type", content_type);
  req.headers.insert(req.headers.end(), extra.begin(), extra.end());
  req.headers.emplace_back("webhook-id", id);
  req.headers.emplace_back("webhook-timestamp", timestamp);
  if (!config.signing_keys.empty()) {  // signed per attempt, over the exact body sent
    req.headers.emplace_back("webhook-signature",
                             webhook_signature(config.signing_keys, id, timestamp, body));
  }
  bool has_user_agent = false;
  for (const auto& header : config.headers) {
    has_user_agent = has_user_agent || lowercase(header.first) == "user-agent";
  }
  if (!has_user_agent) req.headers.emplace_back("User-Agent", "evroute/" EVROUTE_VERSION);
  req.body = std::move(body);
  return req;
}

}  // namespace

WebhookRequest build_webhook_request(const HttpSinkConfig& config, const evroute::Event& event,
                                     std::chrono::system_clock::time_point now) {
  if (config.cloudevents_mode) {
    cloudevents::HttpMessage message =
        cloudevents::to_http(event, *config.cloudevents_mode, config.cloudevents);
    if (!message.error.empty()) {
      WebhookRequest failed;
      failed.error = std::move(message.error);
      return failed;
    }
    return finish_request(config, std::string(event.id()), std::move(message.body),
                          message.content_type, message.headers, now);
  }
  return finish_request(config, std::string(event.id()), std::string(event.payload()),
                        "application/json", {}, now);
}

std::chrono::milliseconds parse_retry_after(const std::string& value,
                                            std::chrono::system_clock::time_point now) {
  // Anything longer is absurd; the sink's max_retry_after clamps it further.
  constexpr std::chrono::seconds kCap = std::chrono::hours(24 * 365);
  if (value.empty()) return std::chrono::milliseconds(0);
  if (value.find_first_not_of("0123456789") == std::string::npos) {
    if (value.size() > 9) return kCap;
    return std::min<std::chrono::seconds>(std::chrono::seconds(std::stoll(value)), kCap);
  }
  // RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms, always in GMT.
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%a, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* end = strptime(value.c_str(), format, &tm);
    if (!end || *end != '\0') continue;
    // Compared in seconds first: a date centuries ahead would overflow the clock's nanoseconds.
    const std::time_t at = timegm(&tm);
    const std::time_t now_t = std::chrono::system_clock::to_time_t(now);
    if (at == static_cast<std::time_t>(-1) || at <= now_t - 1) return std::chrono::milliseconds(0);
    if (at - now_t > kCap.count()) return kCap;
    const auto when = std::chrono::system_clock::from_time_t(at);
    if (when <= now) return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(when - now);
  }
  return std::chrono::milliseconds(0);
}

std::bitset<600> HttpSinkConfig::default_retry_on() {
  std::bitset<600> on;
  on.set(408).set(429);
  for (int s = 500; s < 600; ++s) on.set(s);
  return on;
}

std::optional<std::string> add_retry_on(const std::string& entry, std::bitset<600>* out) {
  const std::string e = lowercase(entry);
  if (e == "4xx" || e == "5xx") {
    const int first = e[0] == '4' ? 400 : 500;
    for (int s = first; s < first + 100; ++s) out->set(s);
    if (first == 400) out->reset(410);  // 410 always disables the sink
    return std::nullopt;
  }
  if (e.size() != 3 || e.find_first_not_of("0123456789") != std::string::npos || e < "400" ||
      e > "599") {
    return "'" + entry + "' is not a status from 400 to 599 or a class (4xx, 5xx)";
  }
  if (e == "410") return "410 Gone is never retried: it disables the sink";
  out->set(static_cast<std::size_t>(std::stoi(e)));
  return std::nullopt;
}

namespace {

// Loads a PEM CA file as the transport will (WebhookTarget), to report a bad one up front.
std::optional<std::string> ca_file_problem(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (!file) return "cannot read " + path + ": " + std::strerror(errno);
  std::fclose(file);
  X509_STORE* store = X509_STORE_new();
  const bool ok = store && X509_STORE_load_file(store, path.c_str()) == 1;
  X509_STORE_free(store);
  const char* why = ERR_reason_error_string(ERR_peek_last_error());
  ERR_clear_error();
  if (ok) return std::nullopt;
  return "cannot load CA certificates from " + path + ": " + (why ? why : "unknown error");
}

// Loads a PEM client certificate and its private key as the transport will, and checks they
// belong together, to report a bad pair up front.
std::optional<std::string> client_identity_problem(const std::string& cert_path,
                                                   const std::string& key_path) {
  auto why = [] {
    const char* r = ERR_reason_error_string(ERR_peek_last_error());
    ERR_clear_error();
    return std::string(r ? r : "unknown error");
  };
  std::FILE* file = std::fopen(cert_path.c_str(), "r");
  if (!file) return "cannot read " + cert_path + ": " + std::strerror(errno);
  X509* cert = PEM_read_X509(file, nullptr, nullptr, nullptr);
  std::fclose(file);
  if (!cert) return "cannot load a PEM certificate from " + cert_path + ": " + why();
  file = std::fopen(key_path.c_str(), "r");
  if (!file) {
    X509_free(cert);
    return "cannot read " + key_path + ": " + std::strerror(errno);
  }
  // No passphrase callback: an encrypted key fails here instead of prompting on a terminal.
  EVP_PKEY* key = PEM_read_PrivateKey(
      file, nullptr, [](char*, int, int, void*) { return 0; }, nullptr);
  std::fclose(file);
  std::optional<std::string> problem;
  if (!key) {
    problem = "cannot load a PEM private key (unencrypted) from " + key_path + ": " + why();
  } else if (X509_check_private_key(cert, key) != 1) {
    ERR_clear_error();
    problem = "the private key in " + key_path + " does not match the certificate in " + cert_path;
  }
  EVP_PKEY_free(key);
  X509_free(cert);
  return problem;
}

}  // namespace

std::string batch_webhook_id(std::span<const evroute::Event> events) {
  if (events.size() == 1) return std::string(events[0].id());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0) EVP_DigestUpdate(ctx, "\n", 1);
    EVP_DigestUpdate(ctx, events[i].id().data(), events[i].id().size());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "batch_";
  for (unsigned int i = 0; i < 16 && i < len; ++i) {
    id += kHex[digest[i] >> 4];
    id += kHex[digest[i] & 0xf];
  }
  return id;
}

WebhookRequest build_batch_request(const HttpSinkConfig& config,
                                   std::span<const evroute::Event> events,
                                   std::chrono::system_clock::time_point now) {
  const bool ndjson =
      config.delivery.batch && config.delivery.batch->encoding == BatchConfig::Encoding::kNdjson;
  std::size_t size = 2;
  for (const evroute::Event& e : events) size += e.payload().size() + 1;
  std::string body;
  body.reserve(size);
  if (!ndjson) body += '[';
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0 && !ndjson) body += ',';
    body += events[i].payload();
    if (ndjson) body += '\n';
  }
  if (!ndjson) body += ']';
  return finish_request(config, batch_webhook_id(events), std::move(body),
                        ndjson ? "application/x-ndjson" : "application/json", {}, now);
}

HttpSink::HttpSink(HttpSinkConfig config)
    : config_(std::move(config)), target_([this] {
        if (!config_.client_cert.empty()) {
          if (auto problem = client_identity_problem(config_.client_cert, config_.client_key)) {
            throw std::runtime_error(*problem);
          }
        }
        if (!config_.ca_file.empty()) {
          if (auto problem = ca_file_problem(config_.ca_file)) throw std::runtime_error(*problem);
        }
        return std::make_shared<const WebhookTarget>(config_);
      }()) {}

HttpSink::~HttpSink() { close(); }

evroute::Status HttpSink::write(const evroute::Event& event) {
  if (!event) return evroute::Status::invalid_argument("empty event");
  if (config_.delivery.batch) {  // every request of a batching sink has the batch shape
    evroute::Status result;
    return write_batch(std::span<const evroute::Event>(&event, 1),
                       std::span<evroute::Status>(&result, 1));
  }
  return deliver([&](std::chrono::system_clock::time_point now) {
    return build_webhook_request(config_, event, now);
  });
}

evroute::Status HttpSink::write_batch(std::span<const evroute::Event> events,
                                      std::span<evroute::Status> results) {
  if (evroute::Status s = evroute::check_batch(events, results); !s.is_ok()) return s;
  if (events.empty()) return evroute::Status::ok();
  const evroute::Status status = deliver([&](std::chrono::system_clock::time_point now) {
    return build_batch_request(config_, events, now);
  });
  std::fill(results.begin(), results.end(), status);
  return status;
}

evroute::Status HttpSink::deliver(
    const std::function<WebhookRequest(std::chrono::system_clock::time_point)>& build) {
  for (;;) {
    if (disabled_.load(std::memory_order_acquire)) {  // hold the event: it goes once enabled
      std::unique_lock<std::mutex> wait(wait_mu_);
      enabled_.wait(wait, [this] {
        return closed_.load(std::memory_order_acquire) ||
               !disabled_.load(std::memory_order_acquire);
      });
    }
    if (closed_.load(std::memory_order_acquire)) return evroute::Status::closed();
    bool gone = false;
    const auto now = std::chrono::system_clock::now();
    WebhookRequest request = build(now);
    if (!request.error.empty()) {  // not sendable: never retried, dead-lettered with the reason
      return failed(evroute::Status::rejected("cannot send event: " + request.error));
    }
    evroute::Status status = send(std::move(request), now, &gone);
    if (!gone) return status;
    State state;
    {
      std::lock_guard<std::mutex> g(state_mu_);
      if (!disabled_.load(std::memory_order_acquire)) {  // the first of concurrent writes to see it
        state_ = State{true, status.message(), std::chrono::system_clock::now()};
        disabled_.store(true, std::memory_order_release);
        state = state_;
      }
    }
    if (state.disabled && on_disabled_) on_disabled_(state);
  }
}

evroute::Status HttpSink::send(WebhookRequest built, std::chrono::system_clock::time_point now,
                               bool* gone) {
  std::unique_ptr<WebhookConnection> connection;
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (closed_.load(std::memory_order_acquire)) return evroute::Status::closed();
    if (idle_.empty()) {
      connection = std::make_unique<WebhookConnection>(target_);
    } else {
      connection = std::move(idle_.back());
      idle_.pop_back();
    }
    busy_.push_back(connection.get());
  }
  struct GiveBack {  // returns the connection to the pool however the request ends
    HttpSink* sink;
    std::unique_ptr<WebhookConnection>& connection;
    ~GiveBack() {
      std::lock_guard<std::mutex> lock(sink->pool_mu_);
      std::erase(sink->busy_, connection.get());
      sink->idle_.push_back(std::move(connection));
    }
  } give_back{this, connection};

  WebhookResponse res;
  const evroute::Status sent = connection->send(built, &res);
  if (sent.code() == evroute::Code::kRejected) {  // unsafe to send: nothing was written
    return failed(evroute::Status::rejected("POST " + config_.url + ": " + sent.message()));
  }
  requests_.fetch_add(1, std::memory_order_relaxed);
  if (!sent.is_ok()) {
    // Most likely close() cancelled the attempt.
    if (sent.is_closed() || closed_.load(std::memory_order_acquire)) {
      return evroute::Status::closed();
    }
    errors_.fetch_add(1, std::memory_order_relaxed);
    last_status_.store(0, std::memory_order_relaxed);
    return failed(evroute::Status::unavailable("POST " + config_.url + ": " + sent.message()));
  }
  const int status = res.status;
  last_status_.store(status, std::memory_order_relaxed);
  if (status >= 200 && status < 300) {  // delivered, even if close() came meanwhile
    r2xx_.fetch_add(1, std::memory_order_relaxed);
    return evroute::Status::ok();
  }
  (status < 400 ? r3xx_ : status < 500 ? r4xx_ : r5xx_).fetch_add(1, std::memory_order_relaxed);
  const std::string what = "POST " + config_.url + ": HTTP " + std::to_string(status);
  if (status == 410) {
    *gone = true;
    return failed(evroute::Status::rejected(what + " Gone"));
  }
  if (status >= 0 && status < static_cast<int>(config_.retry_on.size()) &&
      config_.retry_on.test(static_cast<std::size_t>(status))) {
    return failed(evroute::Status::unavailable(what).with_retry_after(
        parse_retry_after(res.retry_after, now)));
  }
  return failed(evroute::Status::rejected(what));
}

evroute::Status HttpSink::failed(evroute::Status status) {
  std::lock_guard<std::mutex> lock(error_mu_);
  last_error_ = status.message();
  return status;
}

HttpSink::State HttpSink::state() const {
  std::lock_guard<std::mutex> g(state_mu_);
  return state_;
}

bool HttpSink::enable() {
  {
    std::lock_guard<std::mutex> g(state_mu_);
    if (!disabled_.load(std::memory_order_acquire)) return false;
    state_ = State{};
    disabled_.store(false, std::memory_order_release);
  }
  // Taking wait_mu_ orders the store before the held write's check, or after its wait began: the
  // notification cannot be lost.
  { std::lock_guard<std::mutex> g(wait_mu_); }
  enabled_.notify_all();
  return true;
}

void HttpSink::on_disabled(std::function<void(const State&)> callback) {
  on_disabled_ = std::move(callback);
}

evroute::Status HttpSink::close() {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return evroute::Status::ok();
  // Wake the writes held while disabled first (as in enable()).
  { std::lock_guard<std::mutex> g(wait_mu_); }
  enabled_.notify_all();
  // cancel() aborts a connection's attempt in flight, or its next one at once (a write that took
  // its connection just before closed_ was set): every busy write returns promptly.
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      for (WebhookConnection* busy : busy_) busy->cancel();
      if (busy_.empty()) {
        for (auto& idle : idle_) idle->close();  // the kept-alive connections
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return evroute::Status::ok();
}

HttpSink::Stats HttpSink::stats() const {
  Stats s;
  s.requests = requests_.load(std::memory_order_relaxed);
  s.responses_2xx = r2xx_.load(std::memory_order_relaxed);
  s.responses_3xx = r3xx_.load(std::memory_order_relaxed);
  s.responses_4xx = r4xx_.load(std::memory_order_relaxed);
  s.responses_5xx = r5xx_.load(std::memory_order_relaxed);
  s.transport_errors = errors_.load(std::memory_order_relaxed);
  s.last_status = last_status_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(error_mu_);
  s.last_error = last_error_;
  return s;
}

namespace {

class HttpSpec final : public SinkSpec {
 public:
  explicit HttpSpec(HttpSinkConfig config) : config_(std::move(config)) {}
  Leaf build() const override {
    auto sink = std::make_shared<HttpSink>(config_);
    return {.sink = sink, .disableable = sink.get(), .batch = sink.get()};
  }
  std::string describe() const override { return "http POST " + config_.url; }
  std::string preview(const evroute::Event& event,
                      std::chrono::system_clock::time_point now) const override {
    const WebhookRequest req = build_webhook_request(config_, event, now);
    if (!req.error.empty()) return "not sent (dead-lettered): " + req.error + "\n";
    std::string text = req.method + " " + config_.scheme_host_port + req.path + "\n";
    for (const auto& [name, value] : req.headers) text += name + ": " + value + "\n";
    return text + "\n" + req.body + "\n";
  }
  DeliveryConfig delivery() const override { return config_.delivery; }

 private:
  const HttpSinkConfig config_;
};

// Why a configured header cannot be sent, if it cannot.
std::optional<std::string> header_problem(const std::string& name, const std::string& value) {
  if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                             "0123456789!#$%&'*+-.^_`|~") != std::string::npos) {
    return "'" + name + "' is not a valid header name";
  }
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* own : {"content-type", "content-length", "transfer-encoding", "connection",
                          "webhook-id", "webhook-timestamp", "webhook-signature"}) {
    if (lower == own) return "header '" + name + "' is set by the http sink itself";
  }
  for (char c : value) {  // a newline would smuggle in headers of its own
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
      return "header '" + name + "' has a control character (e.g. a newline) in its value";
    }
  }
  return std::nullopt;
}

// `format` and `cloudevents: {source, default_type}`.
void parse_cloudevents_format(ConfigReader& reader, const std::string& prefix,
                              HttpSinkConfig* config) {
  if (auto format =
          reader.choice("format", {"json", "cloudevents-structured", "cloudevents-binary"})) {
    if (*format != "json") {
      config->cloudevents_mode = *format == "cloudevents-binary" ? cloudevents::Mode::kBinary
                                                                 : cloudevents::Mode::kStructured;
    }
  }
  if (config->cloudevents_mode == cloudevents::Mode::kBinary) {
    for (const auto& [name, value] : config->headers) {
      if (name.size() > 3 && strncasecmp(name.c_str(), "ce-", 3) == 0) {
        reader.error("headers",
                     prefix + "header '" + name +
                         "' is set by the http sink itself in format cloudevents-binary");
      }
    }
  }
  if (auto ce = reader.map("cloudevents"); ce && ce->valid()) {
    if (!config->cloudevents_mode) {
      reader.error("cloudevents", prefix +
                                      "'cloudevents' applies to format cloudevents-structured or "
                                      "cloudevents-binary only");
    }
    for (auto [key, into] : {std::pair{"source", &config->cloudevents.source},
                             std::pair{"default_type", &config->cloudevents.default_type}}) {
      if (auto value = ce->string(key)) {
        if (value->empty()) {
          ce->error(key, prefix + "cloudevents." + key + " must not be empty");
        } else if (into == &config->cloudevents.source && !cloudevents::is_uri_reference(*value)) {
          ce->error(key, prefix +
                             "cloudevents.source must be a URI reference, e.g. /evroute or "
                             "urn:evroute, not '" +
                             *value + "'");
        } else {
          *into = *value;
        }
      }
    }
    ce->finish();
  }
}

}  // namespace

std::unique_ptr<SinkSpec> parse_http_sink(ConfigReader& reader) {
  HttpSinkConfig config;
  const std::size_t before = reader.errors().all().size();
  const std::string prefix = reader.what().empty() ? "" : reader.what() + ": ";
  if (auto url = reader.required_string("url")) {
    if (auto why = parse_webhook_url(*url, &config)) {
      reader.error("url", prefix + "invalid url '" + *url + "': " + *why);
    }
  }
  if (auto headers = reader.string_map("headers")) {
    for (const auto& kv : reader.node("headers")) {
      const std::string name = kv.first.Scalar();
      if (auto why = header_problem(name, (*headers)[name])) {
        reader.errors().add(kv.first.Mark(), prefix + *why);
      }
    }
    config.headers = *headers;
  }
  if (auto timeout = reader.duration("timeout")) {
    if (timeout->count() <= 0) {
      reader.error("timeout", prefix + "'timeout' must be more than 0");
    } else {
      config.timeout = *timeout;
    }
  }
  if (auto secrets = reader.string_list("secret")) {
    for (const std::string& secret : *secrets) {
      auto key = decode_webhook_secret(secret);
      if (!key || key->empty()) {
        reader.error("secret",
                     prefix + "'secret' must be whsec_ followed by base64 (Standard Webhooks)");
        break;
      }
      config.signing_keys.push_back(std::move(*key));
    }
  }
  if (YAML::Node on = reader.node("retry_on"); on.IsDefined()) {
    config.retry_on.reset();  // the list replaces the default (empty: only connection errors)
    auto add = [&](const YAML::Node& item) {
      const auto why =
          item.IsScalar()
              ? add_retry_on(item.Scalar(), &config.retry_on)
              : std::optional<std::string>("entries are statuses (e.g. 503) or classes (4xx, 5xx)");
      if (why) reader.errors().add(item.Mark(), prefix + "retry_on: " + *why);
    };
    if (on.IsSequence()) {
      for (const YAML::Node& item : on) add(item);
    } else {
      add(on);
    }
  }
  if (auto tls = reader.map("tls"); tls && tls->valid()) {
    if (!config.scheme_host_port.empty() && config.scheme_host_port.rfind("https:", 0) != 0) {
      reader.error("tls", prefix + "'tls' applies to https urls only");
    }
    if (auto ca = tls->string("ca_file")) {
      if (auto why = ca_file_problem(*ca)) tls->error("ca_file", prefix + "tls.ca_file: " + *why);
      config.ca_file = *ca;
    }
    if (auto verify = tls->boolean("verify")) config.tls_verify = *verify;
    auto cert = tls->string("client_cert");
    auto key = tls->string("client_key");
    if (cert.has_value() != key.has_value()) {
      tls->error(cert ? "client_cert" : "client_key",
                 prefix + "tls.client_cert and tls.client_key go together: set both or neither");
    } else if (cert) {
      if (auto why = client_identity_problem(*cert, *key)) {
        const bool cert_at_fault = why->rfind("cannot read " + *cert + ":", 0) == 0 ||
                                   why->rfind("cannot load a PEM certificate", 0) == 0;
        tls->error(cert_at_fault ? "client_cert" : "client_key", prefix + "tls: " + *why);
      }
      config.client_cert = *cert;
      config.client_key = *key;
    }
    tls->finish();
  }
  parse_cloudevents_format(reader, prefix, &config);
  config.delivery = read_delivery(reader);
  if (config.delivery.batch && config.cloudevents_mode) {
    reader.error("batch", prefix + "'batch' cannot be combined with the CloudEvents formats yet");
  }
  if (reader.errors().all().size() != before) return nullptr;
  return std::make_unique<HttpSpec>(std::move(config));
}

}  // namespace evrouted
