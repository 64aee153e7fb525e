#include "redact.h"

namespace evrouted {

std::string redact_urls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t http = text.find("http://", i);
    const std::size_t https = text.find("https://", i);
    const std::size_t at = std::min(http, https);
    if (at == std::string_view::npos) break;
    const std::size_t scheme_end = text.find("://", at) + 3;
    std::size_t end = text.find_first_of(" \t\r\n", scheme_end);
    if (end == std::string_view::npos) end = text.size();
    while (end > scheme_end && (text[end - 1] == ':' || text[end - 1] == ',')) --end;
    std::string_view rest = text.substr(scheme_end, end - scheme_end);
    std::size_t authority_end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, authority_end);
    if (const std::size_t user = authority.rfind('@'); user != std::string_view::npos) {
      authority.remove_prefix(user + 1);
    }
    out.append(text.substr(i, scheme_end - i));
    out.append(authority);
    if (authority_end != std::string_view::npos && authority_end < rest.size()) out += "/\u2026";
    i = end;
  }
  out.append(text.substr(i));
  return out;
}

}  // namespace evrouted
