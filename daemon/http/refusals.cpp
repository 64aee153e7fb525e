#include "http/refusals.h"

#include <boost/beast/http/error.hpp>
#include <chrono>

namespace evrouted::http::internal {
namespace {

namespace bhttp = boost::beast::http;

// "10s", "1500ms": how a limit is named in an answer.
std::string format_duration(std::chrono::nanoseconds d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace

Response error_response(int status, std::string_view message, bool close) {
  Response r;
  r.status = status;
  r.body = error_body(message);
  r.close = close;
  return r;
}

Response too_many_connections(const Limits& limits) {
  Response r = error_response(503, "too many connections (server.max_connections: " +
                                       std::to_string(limits.max_connections) + ")");
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

Response request_timeout(const Limits& limits) {
  return error_response(408, "request not received within request_timeout (" +
                                 format_duration(limits.request_timeout) + ")");
}

Response parse_refusal(const RequestParser& parser, const boost::system::error_code& ec,
                       const Limits& limits) {
  if (parser.too_many_fields()) {
    return error_response(431, "more than max_header_count (" +
                                   std::to_string(limits.max_header_count) + ") header fields");
  }
  if (ec == bhttp::error::header_limit) {
    return error_response(431, "request header larger than max_header_bytes (" +
                                   std::to_string(limits.max_header_bytes) + ")");
  }
  if (parser.over_budget()) return busy(limits);
  if (parser.duplicate_content_length(ec)) {
    return error_response(400, "more than one Content-Length header");
  }
  if (ec == bhttp::error::body_limit) return too_large(limits);
  return error_response(400, "malformed HTTP request: " + ec.message());
}

Response busy(const Limits& limits, bool close) {
  Response r = error_response(503,
                              "evrouted holds server.max_buffered_bytes (" +
                                  std::to_string(limits.max_buffered_bytes) +
                                  ") of request bodies already; retry",
                              close);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

Response too_large(const Limits& limits, bool close) {
  return error_response(
      413,
      "request body larger than max_body_bytes (" + std::to_string(limits.max_body_bytes) + ")",
      close);
}

Response malformed_body(const std::string& why) {
  return error_response(400, "malformed gzip body: " + why, false);
}

Response unsupported_encoding(std::string_view encoding) {
  return error_response(
      415,
      "unsupported Content-Encoding '" + std::string(encoding) + "': use gzip, deflate or identity",
      false);
}

Response internal_error(const std::exception& e) {
  return error_response(500, std::string("internal error: ") + e.what(), false);
}

}  // namespace evrouted::http::internal
