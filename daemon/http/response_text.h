// Internal to HttpServer: how an answer is written on the wire.
#pragma once

#include <string>

#include "http_server.h"

namespace evrouted::http::internal {

// Appends `response` to `out` as HTTP/1.1: status line, Content-Type (when set), Content-Length,
// the response's own headers, then `Connection: close` when `close` (or `Connection: keep-alive`
// for an HTTP/1.0 `version` kept open), and the body unless `head`.
void append_response(std::string& out, const Response& response, unsigned version, bool close,
                     bool head);

}  // namespace evrouted::http::internal
