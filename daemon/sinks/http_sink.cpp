#include "sinks/http_sink.h"

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>

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
    // cpp-httplib 0.11's Client parses only IPv6 literals of digits and colons; it would take any
    // other as a host name and fail at every request.
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

std::chrono::milliseconds parse_retry_after(const std::string& value,
                                            std::chrono::system_clock::time_point now) {
  if (value.empty()) return std::chrono::milliseconds(0);
  if (value.find_first_not_of("0123456789") == std::string::npos) {
    if (value.size() > 9) return std::chrono::hours(24 * 365);  // absurd: the clamp applies
    return std::chrono::seconds(std::stoll(value));
  }
  // RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms, always in GMT.
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%a, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* end = strptime(value.c_str(), format, &tm);
    if (!end || *end != '\0') continue;
    const auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
    if (when <= now) return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(when - now);
  }
  return std::chrono::milliseconds(0);
}

namespace {

// Loads a PEM CA file as cpp-httplib will at the first request, to report a bad one up front.
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

HttpSink::HttpSink(HttpSinkConfig config) : config_(std::move(config)) {
  if (!config_.ca_file.empty()) {
    if (auto problem = ca_file_problem(config_.ca_file)) throw std::runtime_error(*problem);
  }
  idle_.push_back(make_client());
  if (!idle_.back()->is_valid()) {
    throw std::runtime_error("cannot create an HTTP client for " + config_.url);
  }
}

std::unique_ptr<httplib::Client> HttpSink::make_client() const {
  auto client = std::make_unique<httplib::Client>(config_.scheme_host_port);
  if (!config_.ca_file.empty()) client->set_ca_cert_path(config_.ca_file);
  const auto timeout = std::chrono::duration_cast<std::chrono::microseconds>(config_.timeout);
  client->set_connection_timeout(timeout);
  client->set_read_timeout(timeout);
  client->set_write_timeout(timeout);
  client->set_keep_alive(true);
  client->set_tcp_nodelay(true);
  client->set_follow_location(false);  // never replay a POST to wherever a redirect points
  client->enable_server_certificate_verification(config_.tls_verify);
  return client;
}

HttpSink::~HttpSink() { close(); }

evroute::Status HttpSink::write(const evroute::Event& event) {
  if (!event) return evroute::Status::invalid_argument("empty event");
  if (config_.delivery.batch) {  // every request of a batching sink has the batch shape
    evroute::Status result;
    return write_batch(std::span<const evroute::Event>(&event, 1),
                       std::span<evroute::Status>(&result, 1));
  }
  return post(std::string(event.id()), std::string(event.payload()), "application/json");
}

evroute::Status HttpSink::write_batch(std::span<const evroute::Event> events,
                                      std::span<evroute::Status> results) {
  if (evroute::Status s = evroute::check_batch(events, results); !s.is_ok()) return s;
  if (events.empty()) return evroute::Status::ok();
  const bool ndjson =
      config_.delivery.batch && config_.delivery.batch->encoding == BatchConfig::Encoding::kNdjson;
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
  const evroute::Status status = post(batch_webhook_id(events), std::move(body),
                                      ndjson ? "application/x-ndjson" : "application/json");
  std::fill(results.begin(), results.end(), status);
  return status;
}

evroute::Status HttpSink::post(const std::string& id, std::string body, const char* content_type) {
  std::unique_ptr<httplib::Client> client;
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (closed_.load(std::memory_order_acquire)) return evroute::Status::closed();
    if (idle_.empty()) {
      client = make_client();
    } else {
      client = std::move(idle_.back());
      idle_.pop_back();
    }
    busy_.push_back(client.get());
  }
  struct GiveBack {  // returns the client to the pool however the request ends
    HttpSink* sink;
    std::unique_ptr<httplib::Client>& client;
    ~GiveBack() {
      std::lock_guard<std::mutex> lock(sink->pool_mu_);
      std::erase(sink->busy_, client.get());
      sink->idle_.push_back(std::move(client));
    }
  } give_back{this, client};

  const auto now = std::chrono::system_clock::now();
  const std::string timestamp = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  httplib::Request req;
  req.method = "POST";
  req.path = config_.path;
  req.headers.insert(config_.headers.begin(), config_.headers.end());
  req.headers.emplace("Content-Type", content_type);
  req.headers.emplace("webhook-id", id);
  req.headers.emplace("webhook-timestamp", timestamp);
  if (!config_.signing_keys.empty()) {  // signed per attempt: the timestamp is this attempt's
    req.headers.emplace("webhook-signature",
                        webhook_signature(config_.signing_keys, id, timestamp, body));
  }
  if (!req.has_header("User-Agent")) req.headers.emplace("User-Agent", "evroute/" EVROUTE_VERSION);
  req.body = std::move(body);
  // Read the answer's body (so the connection stays usable) without keeping it: a receiver's
  // 10 MB error page must not cost 10 MB per attempt.
  req.content_receiver = [](const char*, std::size_t, std::uint64_t, std::uint64_t) {
    return true;
  };
  requests_.fetch_add(1, std::memory_order_relaxed);
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  if (!client->send(req, res, error)) {
    // Most likely close() shut the socket down under us.
    if (closed_.load(std::memory_order_acquire)) return evroute::Status::closed();
    errors_.fetch_add(1, std::memory_order_relaxed);
    last_status_.store(0, std::memory_order_relaxed);
    return failed(
        evroute::Status::unavailable("POST " + config_.url + ": " + httplib::to_string(error)));
  }
  const int status = res.status;
  last_status_.store(status, std::memory_order_relaxed);
  if (status >= 200 && status < 300) {  // delivered, even if close() came meanwhile
    r2xx_.fetch_add(1, std::memory_order_relaxed);
    return evroute::Status::ok();
  }
  (status < 400 ? r3xx_ : status < 500 ? r4xx_ : r5xx_).fetch_add(1, std::memory_order_relaxed);
  const std::string what = "POST " + config_.url + ": HTTP " + std::to_string(status);
  if (status == 408 || status == 429 || status >= 500) {
    return failed(evroute::Status::unavailable(what).with_retry_after(
        parse_retry_after(res.get_header_value("Retry-After"), now)));
  }
  return failed(evroute::Status::rejected(what));
}

evroute::Status HttpSink::failed(evroute::Status status) {
  std::lock_guard<std::mutex> lock(error_mu_);
  last_error_ = status.message();
  return status;
}

evroute::Status HttpSink::close() {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return evroute::Status::ok();
  // stop() is cpp-httplib's one thread-safe way to abort a request in flight: it shuts the socket
  // down (waiting out a connect under way). A write that took its client just before closed_ was
  // set may not have started its request yet, so stop the busy clients again until none is left.
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      for (httplib::Client* busy : busy_) busy->stop();
      if (busy_.empty()) {
        for (auto& idle : idle_) idle->stop();  // closes the kept-alive connections
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
  std::shared_ptr<evroute::Sink> build() const override {
    return std::make_shared<HttpSink>(config_);
  }
  std::string describe() const override { return "http POST " + config_.url; }
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
  if (auto tls = reader.map("tls"); tls && tls->valid()) {
    if (!config.scheme_host_port.empty() && config.scheme_host_port.rfind("https:", 0) != 0) {
      reader.error("tls", prefix + "'tls' applies to https urls only");
    }
    if (auto ca = tls->string("ca_file")) {
      if (auto why = ca_file_problem(*ca)) tls->error("ca_file", prefix + "tls.ca_file: " + *why);
      config.ca_file = *ca;
    }
    if (auto verify = tls->boolean("verify")) config.tls_verify = *verify;
    tls->finish();
  }
  config.delivery = read_delivery(reader);
  if (reader.errors().all().size() != before) return nullptr;
  return std::make_unique<HttpSpec>(std::move(config));
}

}  // namespace evrouted
