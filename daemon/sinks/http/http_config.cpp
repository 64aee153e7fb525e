#include "sinks/http/http_config.h"

#include <strings.h>

#include <cctype>

#include "sinks/http/http_sink.h"
#include "sinks/http/tls_files.h"
#include "sinks/http/webhook_request.h"
#include "sinks/http/webhook_signature.h"
#include "sinks/http/webhook_url.h"
#include "text.h"

namespace evrouted {

std::bitset<600> HttpSinkConfig::default_retry_on() {
  std::bitset<600> on;
  on.set(408).set(429);
  for (int s = 500; s < 600; ++s) on.set(s);
  return on;
}

evroute::Status add_retry_on(const std::string& entry, std::bitset<600>* out) {
  const std::string e = ascii_lower(entry);
  if (e == "4xx" || e == "5xx") {
    const int first = e[0] == '4' ? 400 : 500;
    for (int s = first; s < first + 100; ++s) out->set(s);
    if (first == 400) out->reset(410);  // 410 always disables the sink
    return evroute::Status::ok();
  }
  if (e.size() != 3 || e.find_first_not_of("0123456789") != std::string::npos || e < "400" ||
      e > "599") {
    return evroute::Status::invalid_argument(
        "'" + entry + "' is not a status from 400 to 599 or a class (4xx, 5xx)");
  }
  if (e == "410") {
    return evroute::Status::invalid_argument("410 Gone is never retried: it disables the sink");
  }
  out->set(static_cast<std::size_t>(std::stoi(e)));
  return evroute::Status::ok();
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

// `retry_on`: a status, a class, or a list of them.
void parse_retry_on(ConfigReader& reader, const std::string& prefix, HttpSinkConfig* config) {
  YAML::Node on = reader.node("retry_on");
  if (!on.IsDefined()) return;
  config->retry_on.reset();  // the list replaces the default (empty: only connection errors)
  auto add = [&](const YAML::Node& item) {
    const evroute::Status why = item.IsScalar()
                                    ? add_retry_on(item.Scalar(), &config->retry_on)
                                    : evroute::Status::invalid_argument(
                                          "entries are statuses (e.g. 503) or classes (4xx, 5xx)");
    if (!why.is_ok()) reader.errors().add(item.Mark(), prefix + "retry_on: " + why.message());
  };
  if (on.IsSequence()) {
    for (const YAML::Node& item : on) add(item);
  } else {
    add(on);
  }
}

// `tls: {ca_file, verify, client_cert, client_key}`, the files loaded as the transport will.
void parse_tls(ConfigReader& reader, const std::string& prefix, HttpSinkConfig* config) {
  auto tls = reader.map("tls");
  if (!tls || !tls->valid()) return;
  if (!config->scheme_host_port.empty() && config->scheme_host_port.rfind("https:", 0) != 0) {
    reader.error("tls", prefix + "'tls' applies to https urls only");
  }
  if (auto ca = tls->string("ca_file")) {
    if (auto why = ca_file_problem(*ca)) tls->error("ca_file", prefix + "tls.ca_file: " + *why);
    config->ca_file = *ca;
  }
  if (auto verify = tls->boolean("verify")) config->tls_verify = *verify;
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
    config->client_cert = *cert;
    config->client_key = *key;
  }
  tls->finish();
}

}  // namespace

std::unique_ptr<SinkSpec> parse_http_sink(ConfigReader& reader) {
  HttpSinkConfig config;
  const std::size_t before = reader.errors().all().size();
  const std::string prefix = reader.what().empty() ? "" : reader.what() + ": ";
  if (auto url = reader.required_string("url")) {
    if (const evroute::Status why = parse_webhook_url(*url, &config); !why.is_ok()) {
      reader.error("url", prefix + "invalid url '" + *url + "': " + why.message());
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
      evroute::Result<std::string> key = decode_webhook_secret(secret);
      if (!key.ok() || key->empty()) {
        reader.error("secret",
                     prefix + "'secret' must be whsec_ followed by base64 (Standard Webhooks)");
        break;
      }
      config.signing_keys.push_back(std::move(*key));
    }
  }
  parse_retry_on(reader, prefix, &config);
  parse_tls(reader, prefix, &config);
  parse_cloudevents_format(reader, prefix, &config);
  config.delivery = read_delivery(reader);
  if (config.delivery.batch && config.cloudevents_mode) {
    reader.error("batch", prefix + "'batch' cannot be combined with the CloudEvents formats yet");
  }
  if (reader.errors().all().size() != before) return nullptr;
  return std::make_unique<HttpSpec>(std::move(config));
}

const SinkType& http_sink_type() {
  static constexpr SinkType kType{
      .name = "http",
      .summary = "HTTP webhooks (signed, batched, CloudEvents; 410 Gone disables)",
      .parse = &parse_http_sink,
      .capabilities = {.disableable = true, .batching = true},
      .full_jitter_by_default = true};
  return kType;
}

}  // namespace evrouted
