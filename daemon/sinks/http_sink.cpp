#include "sinks/http_sink.h"

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ctime>
#include <regex>

namespace evrouted {

std::optional<std::string> parse_webhook_url(const std::string& url, HttpSinkConfig* out) {
  static const std::regex re(
      R"(^([A-Za-z][A-Za-z0-9+.-]*)://([^/:?#\[\]@]*|\[[0-9A-Fa-f:.]+\])(?::([0-9]*))?([/?][^#]*)?(#.*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, re)) return "not a URL of the form http(s)://host[:port]/path";
  std::string scheme = m[1].str();
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") {
    return "scheme must be http or https, not '" + scheme + "'";
  }
  const std::string host = m[2].str();
  if (host.empty()) return "no host";
  std::string port = m[3].str();
  if (m[3].matched) {
    if (port.empty() || port.size() > 5 || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return "port must be a number from 1 to 65535";
    }
  }
  if (m[5].matched) return "a webhook URL cannot have a #fragment";
  out->url = url;
  out->scheme_host_port = scheme + "://" + host + (port.empty() ? "" : ":" + port);
  out->path = m[4].matched && !m[4].str().empty() ? m[4].str() : "/";
  if (out->path[0] == '?') out->path = "/" + out->path;
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
  std::tm tm{};
  const char* end = strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::chrono::milliseconds(0);
  const auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (when <= now) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(when - now);
}

HttpSink::HttpSink(HttpSinkConfig config)
    : config_(std::move(config)),
      client_(std::make_unique<httplib::Client>(config_.scheme_host_port)) {
  if (!client_->is_valid()) {
    throw std::runtime_error("cannot create an HTTP client for " + config_.url);
  }
  const auto timeout = std::chrono::duration_cast<std::chrono::microseconds>(config_.timeout);
  client_->set_connection_timeout(timeout);
  client_->set_read_timeout(timeout);
  client_->set_write_timeout(timeout);
  client_->set_keep_alive(true);
  client_->set_tcp_nodelay(true);
  client_->set_follow_location(false);  // never replay a POST to wherever a redirect points
  client_->enable_server_certificate_verification(config_.tls_verify);
  if (!config_.ca_file.empty()) client_->set_ca_cert_path(config_.ca_file);
}

HttpSink::~HttpSink() { close(); }

evroute::Status HttpSink::write(const evroute::Event& event) {
  if (!event) return evroute::Status::invalid_argument("empty event");
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_.load(std::memory_order_acquire)) return evroute::Status::closed();

  httplib::Headers headers(config_.headers.begin(), config_.headers.end());
  const auto now = std::chrono::system_clock::now();
  const std::string timestamp = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  headers.emplace("webhook-id", std::string(event.id()));
  headers.emplace("webhook-timestamp", timestamp);
  if (!config_.signing_keys.empty()) {  // signed per attempt: the timestamp is this attempt's
    headers.emplace("webhook-signature", webhook_signature(config_.signing_keys, event.id(),
                                                           timestamp, event.payload()));
  }
  headers.emplace("User-Agent", "evroute/" EVROUTE_VERSION);
  requests_.fetch_add(1, std::memory_order_relaxed);
  const std::string payload(event.payload());
  httplib::Result res = client_->Post(config_.path, headers, payload, "application/json");

  if (closed_.load(std::memory_order_acquire)) return evroute::Status::closed();
  if (!res) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    last_status_.store(0, std::memory_order_relaxed);
    return evroute::Status::unavailable("POST " + config_.url + ": " +
                                        httplib::to_string(res.error()));
  }
  const int status = res->status;
  last_status_.store(status, std::memory_order_relaxed);
  if (status >= 200 && status < 300) {
    r2xx_.fetch_add(1, std::memory_order_relaxed);
    return evroute::Status::ok();
  }
  (status < 400 ? r3xx_ : status < 500 ? r4xx_ : r5xx_).fetch_add(1, std::memory_order_relaxed);
  const std::string what = "POST " + config_.url + ": HTTP " + std::to_string(status);
  if (status == 408 || status == 429 || status >= 500) {
    return evroute::Status::unavailable(what).with_retry_after(
        parse_retry_after(res->get_header_value("Retry-After"), now));
  }
  return evroute::Status::rejected(what);
}

evroute::Status HttpSink::close() {
  if (closed_.exchange(true)) return evroute::Status::ok();
  client_->stop();  // thread-safe: shuts down the socket of a request in flight
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

 private:
  const HttpSinkConfig config_;
};

}  // namespace

std::unique_ptr<SinkSpec> parse_http_sink(ConfigReader& reader) {
  HttpSinkConfig config;
  const std::size_t before = reader.errors().all().size();
  if (auto url = reader.required_string("url")) {
    if (auto why = parse_webhook_url(*url, &config)) {
      reader.error("url", reader.what() + ": invalid url '" + *url + "': " + *why);
    }
  }
  if (auto headers = reader.string_map("headers")) config.headers = *headers;
  if (auto timeout = reader.duration("timeout")) {
    if (timeout->count() <= 0) {
      reader.error("timeout", reader.what() + ": 'timeout' must be more than 0");
    } else {
      config.timeout = *timeout;
    }
  }
  if (auto secrets = reader.string_list("secret")) {
    for (const std::string& secret : *secrets) {
      auto key = decode_webhook_secret(secret);
      if (!key || key->empty()) {
        reader.error(
            "secret",
            reader.what() + ": 'secret' must be whsec_ followed by base64 (Standard Webhooks)");
        break;
      }
      config.signing_keys.push_back(std::move(*key));
    }
  }
  if (auto tls = reader.map("tls"); tls && tls->valid()) {
    if (auto ca = tls->string("ca_file")) config.ca_file = *ca;
    if (auto verify = tls->boolean("verify")) config.tls_verify = *verify;
    tls->finish();
  }
  if (reader.errors().all().size() != before) return nullptr;
  return std::make_unique<HttpSpec>(std::move(config));
}

}  // namespace evrouted
