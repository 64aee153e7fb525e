// Internal to HttpServer: the answers of the server itself — what it says when a bound of Limits
// is reached or a request cannot be served — so that every such message is written in one place.
// Each carries error_body(message). Unless said otherwise, the connection is closed after it
// (Response::close): the request was not read whole.
#pragma once

#include <boost/system/error_code.hpp>
#include <exception>
#include <string>
#include <string_view>

#include "http/request_parser.h"
#include "http_server.h"

namespace evrouted::http::internal {

// An answer of the server itself; `close`: the request was not read whole.
Response error_response(int status, std::string_view message, bool close = true);

// Past max_connections: 503 with Retry-After: 1 (written once, sent without reading the request).
Response too_many_connections(const Limits& limits);
// The request was not read whole within request_timeout: 408.
Response request_timeout(const Limits& limits);
// The parser refused the request with `ec`: 431 (too many or too large header fields), 503 (the
// body would take the bodies held over max_buffered_bytes), 400 (a second Content-Length, or
// malformed), 413 (the body is over max_body_bytes).
Response parse_refusal(const RequestParser& parser, const boost::system::error_code& ec,
                       const Limits& limits);
// The request bodies held would go over max_buffered_bytes: 503 with Retry-After: 1.
Response busy(const Limits& limits, bool close = true);
// The body is over max_body_bytes (on the wire, or decoded): 413.
Response too_large(const Limits& limits, bool close = true);
// The body does not decode by its Content-Encoding (`why`): 400, the connection kept.
Response malformed_body(const std::string& why);
// A Content-Encoding other than gzip, deflate or identity: 415, the connection kept.
Response unsupported_encoding(std::string_view encoding);
// The handler threw `e`: 500, the connection kept.
Response internal_error(const std::exception& e);

}  // namespace evrouted::http::internal
