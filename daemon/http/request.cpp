// Request's accessors and the helpers http_server.h declares beside it (percent_decode,
// error_body).
#include <boost/beast/core/string.hpp>
#include <nlohmann/json.hpp>

#include "http_server.h"
#include "json_parse.h"

namespace evrouted::http {
namespace {

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_digit(s[i + 1]);
      const int lo = hex_digit(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

std::string error_body(std::string_view message) {
  return dump_json(nlohmann::json{{"error", message}});  // the message may quote any bytes
}

std::string_view Request::header(std::string_view name) const {
  const auto it = headers.find(boost::beast::string_view(name.data(), name.size()));
  return it == headers.end() ? std::string_view() : sv(it->value());
}

bool Request::has_header(std::string_view name) const {
  return headers.find(boost::beast::string_view(name.data(), name.size())) != headers.end();
}

std::optional<std::string> Request::param(std::string_view key) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq), true) != key) continue;
    return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), true);
  }
  return std::nullopt;
}

}  // namespace evrouted::http
