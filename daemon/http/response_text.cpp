#include "http/response_text.h"

#include <boost/beast/http/status.hpp>

namespace evrouted::http::internal {

namespace bhttp = boost::beast::http;

void append_response(std::string& out, const Response& r, unsigned version, bool close, bool head) {
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
  out.append(reason.data(), reason.size());
  out += "\r\n";
  if (!r.content_type.empty()) {
    out += "Content-Type: ";
    out += r.content_type;
    out += "\r\n";
  }
  out += "Content-Length: ";
  out += std::to_string(r.body.size());
  out += "\r\n";
  for (const auto& [name, value] : r.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (close) {
    out += "Connection: close\r\n";
  } else if (version == 10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!head) out += r.body;
}

}  // namespace evrouted::http::internal
