#include "config_nats.h"

#include <algorithm>

#include "sinks/http/tls_files.h"

namespace evrouted {
namespace {

// "nats://host:port" or "tls://host:port" (the client adds the default port 4222 when it is
// missing); no user info: credentials go in `auth`, where they are not logged.
std::optional<std::string> server_url_problem(const std::string& url) {
  std::string_view rest = url;
  if (rest.starts_with("nats://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("tls://")) {
    rest.remove_prefix(6);
  } else {
    return "'" + url + "' is not a NATS url: it starts with nats:// or tls://";
  }
  if (rest.empty() || rest.front() == ':') return "'" + url + "' names no host";
  if (rest.find('@') != std::string_view::npos) {
    return "'" + url + "': put credentials in nats.auth, not in the url";
  }
  const auto bad = [](char c) { return c <= ' ' || c == '/' || c == '?' || c == '#' || c > '~'; };
  if (std::any_of(rest.begin(), rest.end(), bad)) return "'" + url + "' is not a valid url";
  return std::nullopt;
}

// A stream name that is also a subject token: evroute's subjects are <stream>.sink.<name>.
bool valid_stream_name(const std::string& name) {
  const auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  };
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), allowed);
}

void read_auth(ConfigReader& r, NatsConfig& nats) {
  if (!r.valid()) return;
  if (auto v = r.string("token")) nats.token = *v;
  if (auto v = r.string("user")) nats.user = *v;
  if (auto v = r.string("password")) nats.password = *v;
  if (auto v = r.string("creds_file")) nats.creds_file = *v;
  const int forms = !nats.token.empty() + (!nats.user.empty() || !nats.password.empty()) +
                    !nats.creds_file.empty();
  if (forms > 1) {
    r.error_here("nats.auth: give one of token, user and password, or creds_file");
  } else if (nats.user.empty() != nats.password.empty()) {
    r.error(nats.user.empty() ? "password" : "user",
            "nats.auth: user and password go together: set both");
  } else if (forms == 0) {
    r.error_here("nats.auth: give one of token, user and password, or creds_file");
  }
  r.finish();
}

void read_tls(ConfigReader& r, NatsConfig& nats) {
  if (!r.valid()) return;
  nats.tls = true;
  if (auto ca = r.string("ca_file")) {
    if (auto why = ca_file_problem(*ca)) r.error("ca_file", "nats.tls.ca_file: " + *why);
    nats.ca_file = *ca;
  }
  auto cert = r.string("client_cert");
  auto key = r.string("client_key");
  if (cert.has_value() != key.has_value()) {
    r.error(cert ? "client_cert" : "client_key",
            "nats.tls.client_cert and nats.tls.client_key go together: set both or neither");
  } else if (cert) {
    if (auto why = client_identity_problem(*cert, *key)) {
      r.error("client_cert", "nats.tls: " + *why);
    }
    nats.client_cert = *cert;
    nats.client_key = *key;
  }
  r.finish();
}

}  // namespace

void read_nats(ConfigReader& r, NatsConfig& nats) {
  if (!r.valid()) return;
  nats.line = r.mark().line + 1;
  nats.column = r.mark().column + 1;
  if (auto servers = r.string_list("servers")) {
    if (servers->empty()) r.error("servers", "nats.servers must name at least one server");
    for (const std::string& url : *servers) {
      if (auto why = server_url_problem(url)) r.error("servers", "nats.servers: " + *why);
    }
    nats.servers = *servers;
  } else if (!r.has("servers")) {
    r.error_here("nats: 'servers' is required, e.g. servers: [\"nats://127.0.0.1:4222\"]");
  }
  if (auto v = r.string("stream")) {
    if (!valid_stream_name(*v)) {
      r.error("stream",
              "nats.stream must be 1 to 64 of the characters A-Z a-z 0-9 _ - (it is also a "
              "subject token), not '" +
                  v->substr(0, 80) + "'");
    } else {
      nats.stream = *v;
    }
  }
  if (auto v = r.unsigned_integer("replicas", 1, 5)) nats.replicas = static_cast<std::uint32_t>(*v);
  if (auto v = r.size("max_bytes")) {
    if (*v < (1u << 20)) {
      r.error("max_bytes", "nats.max_bytes must be at least 1MiB");
    } else {
      nats.max_bytes = *v;
    }
  }
  if (auto v = r.duration("publish_timeout")) {
    if (v->count() <= 0 || *v > std::chrono::minutes(1)) {
      r.error("publish_timeout", "nats.publish_timeout must be more than 0 and at most 1m");
    } else {
      nats.publish_timeout = *v;
    }
  }
  if (auto auth = r.map("auth")) read_auth(*auth, nats);
  if (auto tls = r.map("tls")) read_tls(*tls, nats);
  r.finish();
}

}  // namespace evrouted
