// CloudEvents 1.0: the JSON event format and the HTTP protocol binding, in and out.
//
// In (ingest): a CloudEvent is kept in its structured JSON form — the object that
// application/cloudevents+json carries — so the event's payload is that object, its id is the
// CloudEvent's id and filters test its attributes (`type`, `source`, extensions...) as top-level
// fields. check() validates that form; from_binary() builds it from a binary-mode request:
//   - every ce-NAME header becomes attribute NAME, a string: its value percent-decoded, which
//     the server (Server::handle_events, http::percent_decode) has done already (malformed
//     %-sequences stay as they are); the result must be UTF-8;
//   - Content-Type becomes `datacontenttype`;
//   - the body becomes `data`: parsed JSON when the content type is JSON (application/json,
//     text/json, */*+json), a JSON string when it is text (valid UTF-8 without control characters
//     other than tab, CR and LF), else `data_base64`. An empty body is no data.
//
// Out (the http sink's `format`): to_http() renders an event as a CloudEvent in structured or
// binary mode. An event whose payload is a valid CloudEvent (it arrived as one, or was posted as
// JSON with specversion "1.0", id, source and type) is sent as that CloudEvent; any other event is
// wrapped: specversion 1.0, id = the event id, source = Options::source, type = the event's string
// `type` field (when it has no control characters; else Options::default_type), time = when
// evrouted received it, datacontenttype application/json, data = the event's JSON.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base64.h"
#include "evroute/event.h"

namespace evrouted::cloudevents {

using Json = nlohmann::ordered_json;

inline constexpr std::string_view kStructuredType = "application/cloudevents+json";
inline constexpr std::string_view kBatchType = "application/cloudevents-batch+json";

// Why `object` is not a CloudEvent 1.0 in JSON format, or "" when it is one. Names every missing
// required attribute at once ("missing required attributes: id, source"), then the first other
// problem (bad specversion, empty or mistyped attribute, bad time, source or dataschema not a URI
// reference, bad data_base64, bad extension name or value). A null attribute counts as absent.
std::string check(const Json& object);

// A request header, name lower-case ("ce-id").
using Header = std::pair<std::string, std::string>;

// Binary mode: the structured form of the CloudEvent in `ce_headers` (every ce-* header of the
// request, values already percent-decoded) with `body` as data of `content_type` ("" when the
// request had none). On failure
// returns the reason (naming headers, e.g. "missing required headers: ce-source") and leaves *out
// unspecified.
std::string from_binary(std::span<const Header> ce_headers, std::string_view content_type,
                        std::string_view body, Json* out);

// What the http sink sends.
enum class Mode { kStructured, kBinary };
struct Options {
  std::string source = "evroute";              // source of wrapped events
  std::string default_type = "evroute.event";  // type of wrapped events without a string `type`
};
struct HttpMessage {
  std::string error;            // not "": the event cannot be sent as a CloudEvent (why)
  std::string content_type;     // "" when there is no data (then no Content-Type)
  std::vector<Header> headers;  // binary mode: ce-*, values percent-encoded
  std::string body;
};
HttpMessage to_http(const evroute::Event& event, Mode mode, const Options& options);

// The CloudEvent `event` is sent as: its payload when that is a CloudEvent, else the wrapper.
// An event that cannot be one (its payload nests deeper than kMaxEventDepth: possible only for
// events stored by an older evrouted) gives null and, if `error` is given, the reason there.
Json as_cloudevent(const evroute::Event& event, const Options& options,
                   std::string* error = nullptr);

// Helpers, exposed for tests.
// HTTP binding 3.1.3.2: space, '"', '%' and every byte outside printable ASCII become %XX.
// (Decoding is the HTTP server's: it decodes ce-* header values as it reads them.)
std::string percent_encode(std::string_view value);
// base64_decode / base64_encode: base64.h (strict RFC 4648).
using evrouted::base64_decode;
using evrouted::base64_encode;
// application/json, text/json or any */*+json, parameters and case ignored.
bool is_json_media_type(std::string_view content_type);
// RFC 3339 date-time (e.g. 2026-01-02T03:04:05.678Z, 2026-01-02T03:04:05+01:00).
bool is_rfc3339(std::string_view text);
// The characters RFC 3986 allows in a URI reference, %-escapes well formed (not its full grammar).
bool is_uri_reference(std::string_view text);

}  // namespace evrouted::cloudevents
