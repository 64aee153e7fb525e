// JSON from outside: one bounded parse path for every JSON text evrouted reads (request bodies,
// CloudEvents data, stored events, dead-letter records).
//
// nlohmann's parser is iterative, but serializing (dump) and comparing a value recurse once per
// nesting level: a body of 100,000 nested arrays, well under max_body_bytes, would overflow a
// thread's stack the first time it is serialized. So no text becomes a DOM unless it nests at most
// `max_depth` levels (arrays and objects; a scalar is level 0, `{}` level 1), and everything
// accepted can then be serialized, compared and destroyed safely.
//
// An event may nest at most kMaxEventDepth levels, counting the event object itself. Internal
// records that embed an event (a dead-letter line) allow a few levels more (kMaxRecordDepth).
//
// Errors are texts fit for a 400 body: nlohmann's message without its "[json.exception...]"
// prefix, with any byte that is not UTF-8 (the parser quotes what it last read) replaced by
// U+FFFD, so that the error itself can be serialized as JSON.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace evrouted {

inline constexpr std::size_t kMaxEventDepth = 64;
inline constexpr std::size_t kMaxRecordDepth = kMaxEventDepth + 8;

struct JsonParseOptions {
  std::size_t max_depth = kMaxEventDepth;
  // When not 0: the objects at this depth (1: the top-level object; 2: the elements of a
  // top-level array) are events, and a second "id" member in one of them is an error (receivers
  // that keep the first of duplicate keys would see another id than evrouted routed with).
  std::size_t event_depth = 0;
};

// Parses `text` into *out. Returns "" on success, else why not (*out is then unspecified). A NUL
// byte anywhere, or a leading byte order mark, is malformed (the caller strips a body's BOM);
// *too_deep, when given, says whether the reason is the depth bound.
std::string parse_json(std::string_view text, nlohmann::ordered_json* out,
                       const JsonParseOptions& options = {}, bool* too_deep = nullptr);

// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool valid_utf8(std::string_view text);

// True when `text` holds a C0 control character (U+0000-U+001F), DEL (U+007F) or, UTF-8 encoded, a
// C1 control character (U+0080-U+009F): none may appear in an event id or a CloudEvents attribute.
bool has_control_character(std::string_view text);

// `text` with every byte sequence that is not UTF-8 replaced by U+FFFD.
std::string to_valid_utf8(std::string_view text);

// Serializes compactly; never throws (strings that are not UTF-8, possible only in values built
// from raw bytes, get U+FFFD).
std::string dump_json(const nlohmann::ordered_json& value);
std::string dump_json(const nlohmann::json& value);

}  // namespace evrouted
