// The `server:` section of the configuration (config.h: ServerConfig).
#include "config_server.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace evrouted {
namespace {

// server.auth.tokens / admin_tokens: a list of tokens, or one string of tokens separated by commas
// or white space (so that one environment variable can carry them: "${EVROUTE_TOKEN:-}" is no
// token when the variable is unset or empty). In a list, an empty token is an error.
void read_tokens(ConfigReader& auth, std::string_view key, std::vector<std::string>* out) {
  const bool one_string = auth.has(key) && auth.node(key).IsScalar();
  auto tokens = auth.string_list(key);
  if (!tokens) return;
  for (const auto& t : *tokens) {
    if (one_string) {
      std::size_t i = 0;
      while (i < t.size()) {
        const std::size_t end = t.find_first_of(", \t\n", i);
        const std::string token = t.substr(i, end == std::string::npos ? end : end - i);
        if (!token.empty()) out->push_back(token);
        if (end == std::string::npos) break;
        i = end + 1;
      }
    } else if (t.empty()) {
      auth.error(key, "server.auth: a token must not be empty");
    } else {
      out->push_back(t);
    }
  }
}

// "host:port", "[v6]:port". Port 0 asks for any free port.
bool parse_listen(const std::string& listen, std::string* host, int* port, std::string* why) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    *why = "expected host:port, e.g. 127.0.0.1:8080";
    return false;
  }
  std::string h = listen.substr(0, colon);
  const std::string p = listen.substr(colon + 1);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535) {
    *why = "port must be a number from 0 to 65535";
    return false;
  }
  *host = h;
  *port = std::stoi(p);
  return true;
}

}  // namespace

void read_server(ConfigReader& r, ServerConfig& server) {
  if (auto listen = r.string("listen")) {
    std::string why;
    if (parse_listen(*listen, &server.host, &server.port, &why)) {
      server.listen = *listen;
    } else {
      r.error("listen", "server: invalid listen address '" + *listen + "': " + why);
    }
  }
  if (auto v = r.size("max_body_bytes")) {
    if (*v == 0) {
      r.error("max_body_bytes", "server: 'max_body_bytes' must be at least 1");
    } else {
      server.max_body_bytes = *v;
    }
  }
  if (auto v = r.unsigned_integer("threads", 0, 1024)) server.threads = static_cast<unsigned>(*v);
  if (auto v = r.unsigned_integer("max_connections", 1, 1000000)) server.max_connections = *v;
  if (auto v = r.size("max_header_bytes")) {
    if (*v < 1024 || *v > (64u << 20)) {
      r.error("max_header_bytes", "server: 'max_header_bytes' must be between 1KiB and 64MiB");
    } else {
      server.max_header_bytes = *v;
    }
  }
  if (auto v = r.unsigned_integer("max_header_count", 1, 100000)) server.max_header_count = *v;
  if (auto v = r.size("max_buffered_bytes")) {
    if (*v < server.max_body_bytes) {
      r.error("max_buffered_bytes",
              "server: 'max_buffered_bytes' must be at least max_body_bytes (" +
                  std::to_string(server.max_body_bytes) + ")");
    } else {
      server.max_buffered_bytes = *v;
    }
  } else if (server.max_buffered_bytes < server.max_body_bytes) {
    server.max_buffered_bytes = server.max_body_bytes;  // the default, raised to fit one request
  }
  for (auto [key, into] : {std::pair{"request_timeout", &server.request_timeout},
                           std::pair{"idle_timeout", &server.idle_timeout}}) {
    if (auto v = r.duration(key)) {
      if (*v < std::chrono::milliseconds(100)) {
        r.error(key, std::string("server: '") + key + "' must be at least 100ms");
      } else {
        *into = *v;
      }
    }
  }
  if (auto tls = r.map("tls"); tls && tls->valid()) {
    ServerConfig::Tls t;
    const auto file = [&](const char* key, bool required, std::string* into) {
      auto v = required ? tls->required_string(key) : tls->string(key);
      if (!v) return;
      if (v->empty()) return tls->error(key, std::string("server.tls: '") + key + "' is empty");
      if (::access(v->c_str(), R_OK) != 0) {
        return tls->error(key, std::string("server.tls: ") + key + " '" + *v +
                                   "' cannot be read: " + std::strerror(errno));
      }
      *into = *v;
    };
    file("cert_file", true, &t.cert_file);
    file("key_file", true, &t.key_file);
    file("client_ca_file", false, &t.client_ca_file);
    tls->finish();
    server.tls = std::move(t);
  }
  if (auto auth = r.map("auth"); auth && auth->valid()) {
    read_tokens(*auth, "tokens", &server.tokens);
    read_tokens(*auth, "admin_tokens", &server.admin_tokens);
    auth->finish();
  }
  r.finish();
}

}  // namespace evrouted
