// The http sink's `url`: split and checked once, at config time.
//
// Accepted: http(s)://host[:port][/path][?query], where host is a name (letters, digits, '.', '-',
// '_') or an IPv6 literal of digits and colons in brackets, and port is 1 to 65535. Refused, each
// with its own explanation: another scheme, credentials (user@host), a #fragment.
// Thread-safety: a pure function.
#pragma once

#include <optional>
#include <string>

#include "evroute/status.h"

namespace evrouted {

struct HttpSinkConfig;

// Splits and checks a webhook URL into out->url, out->scheme_host_port and out->path. Returns an
// explanation (kInvalidArgument) on failure.
evroute::Status parse_webhook_url(const std::string& url, HttpSinkConfig* out);

}  // namespace evrouted
