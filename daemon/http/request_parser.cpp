#include "http/request_parser.h"

#include <algorithm>
#include <boost/beast/http/error.hpp>
#include <limits>

namespace evrouted::http::internal {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

RequestParser::RequestParser(Request& request, const Limits& limits, BodyBudget& budget)
    : request_(request), max_fields_(limits.max_header_count), budget_(budget) {
  header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(limits.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  body_limit(limits.max_body_bytes);
  eager(true);
}

bool RequestParser::duplicate_content_length(const error_code& ec) const {
  return duplicate_content_length_ ||
         (ec == bhttp::error::bad_content_length && content_lengths_ > 0);
}

bool RequestParser::charge(std::uint64_t n) {
  if (!budget_.try_charge(n)) return over_budget_ = true, false;
  charged_ += n;
  return true;
}

void RequestParser::on_request_impl(bhttp::verb, beast::string_view method,
                                    beast::string_view target, int version, error_code&) {
  request_.method.assign(method.data(), method.size());
  request_.target.assign(target.data(), target.size());
  request_.version = static_cast<unsigned>(version);
}

void RequestParser::on_response_impl(int, beast::string_view, int, error_code& ec) {
  ec = bhttp::error::bad_method;  // a request parser never sees a status line
}

void RequestParser::on_field_impl(bhttp::field name, beast::string_view name_string,
                                  beast::string_view value, error_code& ec) {
  if (++fields_ > max_fields_) {
    too_many_fields_ = true;
    ec = bhttp::error::header_limit;
    return;
  }
  if (name == bhttp::field::content_length && ++content_lengths_ > 1) {
    duplicate_content_length_ = true;
    ec = bhttp::error::bad_content_length;
    return;
  }
  request_.headers.insert(name, name_string, value);
}

// A Content-Length body is charged whole when its header is complete (before `100 Continue`,
// before any of it is read); a chunked one chunk by chunk.
void RequestParser::on_header_impl(error_code& ec) {
  const auto length = content_length();
  if (!length || *length == 0) return;
  if (!charge(*length)) {
    ec = bhttp::error::body_limit;
    return;
  }
  request_.body.reserve(static_cast<std::size_t>(*length));
}

std::size_t RequestParser::on_body_impl(beast::string_view body, error_code&) {
  request_.body.append(body.data(), body.size());
  return body.size();
}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                              error_code& ec) {
  if (!charge(body.size())) {
    ec = bhttp::error::body_limit;
    return 0;
  }
  request_.body.append(body.data(), body.size());
  return body.size();
}

}  // namespace evrouted::http::internal
