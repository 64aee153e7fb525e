#include "sinks/http/webhook_url.h"

#include <cctype>

#include "sinks/http/http_config.h"
#include "text.h"

namespace evrouted {

evroute::Status parse_webhook_url(const std::string& url, HttpSinkConfig* out) {
  const std::size_t npos = std::string::npos;
  const std::size_t colon = url.find("://");
  if (colon == npos || colon == 0 || url.find_first_of("/?#") < colon) {
    return evroute::Status::invalid_argument("not a URL of the form http(s)://host[:port]/path");
  }
  const std::string scheme = ascii_lower(url.substr(0, colon));
  if (scheme != "http" && scheme != "https") {
    return evroute::Status::invalid_argument("scheme must be http or https, not '" + scheme + "'");
  }
  const std::size_t authority_end = url.find_first_of("/?#", colon + 3);
  std::string host = url.substr(colon + 3, authority_end - colon - 3);
  const std::string rest = authority_end == npos ? "" : url.substr(authority_end);
  if (host.find('@') != npos) {
    return evroute::Status::invalid_argument(
        "credentials in the URL are not supported (set an Authorization header instead)");
  }
  // host[:port], where host may be an IPv6 literal in brackets.
  const std::size_t port_colon = host.find(':', host.rfind(']') == npos ? 0 : host.rfind(']'));
  std::optional<std::string> port;
  if (port_colon != npos) {
    port = host.substr(port_colon + 1);
    host.resize(port_colon);
  }
  if (host.empty()) return evroute::Status::invalid_argument("no host");
  if (host[0] == '[') {
    // Only IPv6 literals of digits and colons (no zone id, no embedded IPv4): what the sink has
    // always accepted (its first HTTP client parsed no others).
    if (host.size() < 3 || host.back() != ']' ||
        host.find_first_not_of("0123456789:", 1) != host.size() - 1) {
      return evroute::Status::invalid_argument(
          "only IPv6 addresses of digits and colons (e.g. [::1]) are supported; use a host name");
    }
  } else if (host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789.-_") != npos) {
    return evroute::Status::invalid_argument("invalid host '" + host + "'");
  }
  if (port && (port->empty() || port->size() > 5 || port->find_first_not_of("0123456789") != npos ||
               std::stoi(*port) < 1 || std::stoi(*port) > 65535)) {
    return evroute::Status::invalid_argument("port must be a number from 1 to 65535");
  }
  if (rest.find('#') != npos)
    return evroute::Status::invalid_argument("a webhook URL cannot have a #fragment");
  out->url = url;
  out->scheme_host_port = scheme + "://" + host + (port ? ":" + *port : "");
  out->path = rest.empty() ? "/" : rest[0] == '?' ? "/" + rest : rest;
  return evroute::Status::ok();
}

}  // namespace evrouted
