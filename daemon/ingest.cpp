#include "ingest.h"

#include <simdjson.h>
#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "evroute/status.h"
#include "ids.h"
#include "json_parse.h"
#include "text.h"

namespace evrouted {
namespace {

using Json = nlohmann::ordered_json;

// OK, or why `id` cannot be an event id (kInvalidArgument).
evroute::Status check_id(std::string_view id) {
  if (id.empty()) return evroute::Status::invalid_argument("field \"id\" must not be empty");
  if (id.size() > kMaxIdBytes) {
    return evroute::Status::invalid_argument("field \"id\" is longer than 1024 bytes");
  }
  if (has_control_character(id)) {
    return evroute::Status::invalid_argument(
        "field \"id\" must not contain control characters (U+0000-U+001F, U+007F-U+009F)");
  }
  return evroute::Status::ok();
}

// A UTF-8 byte order mark, which RFC 8259 lets a parser ignore: it is dropped, never passed on.
std::string_view strip_bom(std::string_view body) {
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  return body;
}

// Whether `text` holds a CR or LF. Two memchr scans: find_first_of("\r\n") would call memchr
// on the set once per byte (it was a fifth of ingest's CPU on 100-event arrays).
bool has_line_break(std::string_view text) {
  return text.find('\n') != std::string_view::npos || text.find('\r') != std::string_view::npos;
}

// The event of an object whose one-line text is `text`: its payload is the text itself, or, when
// `id` was `generated` for it (it had none), the text with the id inserted as its first member,
// the pieces copied straight into the event.
evroute::Event event_of(std::string_view id, std::string_view text, bool generated,
                        std::span<const evroute::Attribute> attributes,
                        evroute::Event::TimePoint received) {
  if (!generated) return evroute::Event::make(id, text, attributes, received);
  const std::string_view rest = trim(text.substr(1));  // after '{'
  const std::string_view parts[] = {"{\"id\":\"", id, "\"",
                                    !rest.empty() && rest.front() != '}' ? "," : "", rest};
  return evroute::Event::make_joined(id, parts, attributes, received);
}

// Builds one event from a parsed object. `text` is the object's original text when it is known
// (a single object or an NDJSON line), else empty: the payload is then re-serialized. OK, or why
// the object is no event (kInvalidArgument).
evroute::Status make_event(const Json& object, std::string_view text,
                           std::span<const std::string> attribute_fields,
                           evroute::Event::TimePoint received, std::vector<evroute::Event>& out) {
  if (!object.is_object()) return evroute::Status::invalid_argument("not a JSON object");

  std::string generated;
  std::string_view id;
  if (auto it = object.find("id"); it != object.end()) {
    if (!it->is_string()) return evroute::Status::invalid_argument("field \"id\" must be a string");
    const std::string& s = it->get_ref<const std::string&>();
    if (evroute::Status problem = check_id(s); !problem.is_ok()) return problem;
    id = s;
  } else {
    generated = new_event_id();
    id = generated;
  }

  // The original text is kept when it is already one line (raw newlines can only be whitespace
  // in JSON, so a text without them is single-line JSON); otherwise it is re-serialized compactly.
  std::string dumped;
  if (text.empty() || has_line_break(text)) {
    dumped = object.dump();
    text = dumped;
  }

  std::vector<std::string> values;  // keeps dumped scalars alive until make() copies them
  std::vector<evroute::Attribute> attributes;
  values.reserve(attribute_fields.size());
  attributes.reserve(attribute_fields.size());
  for (const std::string& field : attribute_fields) {
    auto it = object.find(field);
    if (it == object.end()) continue;
    if (it->is_string()) {
      attributes.push_back({field, it->get_ref<const std::string&>()});
    } else if (it->is_number() || it->is_boolean()) {
      values.push_back(it->dump());
      attributes.push_back({field, values.back()});
    } else {
      continue;
    }
    if (attributes.back().value.size() > evroute::Event::kMaxAttributeBytes) {
      return evroute::Status::invalid_argument("field \"" + field + "\" is longer than " +
                                               std::to_string(evroute::Event::kMaxAttributeBytes) +
                                               " bytes (a filtered field)");
    }
  }
  out.push_back(event_of(id, text, !generated.empty(), attributes, received));
  return evroute::Status::ok();
}

// The fast path for the common event: one object on one line (a JSON body of one event, an
// element of a JSON array, an NDJSON line), validated by simdjson's DOM parser (the whole text:
// structure, UTF-8, strings, numbers) instead of nlohmann's DOM, ~10x cheaper. It only ever
// *accepts*: whenever the text is anything but plainly valid, or touches a rule nlohmann's path
// words or decides differently, it returns false and the general path (parse_json + make_event)
// takes the text, so every error, and every accepted event, is what that path makes of it
// (tests/daemon/ingest_fast_test.cpp checks the two agree). It declines:
//  * anything not starting with '{', over kFastMaxBytes, or holding a CR or LF (re-serialized);
//  * any "\u" escape (surrogate pairs: nlohmann's rules decide);
//  * any simdjson error (depth past kMaxEventDepth - 1, big integers, out-of-range numbers, bad
//    UTF-8, control characters, trailing text...);
//  * an "id" that is not a string, twice, or not a valid id; a filtered field given twice (which
//    one counts is the general path's rule), a number in a filtered field (nlohmann's dump formats
//    it), or one longer than kMaxAttributeBytes.
constexpr std::size_t kFastMaxBytes = 64 * 1024;  // bounds each loop thread's parser buffers

simdjson::dom::parser& fast_parser() {
  thread_local simdjson::dom::parser parser = [] {
    simdjson::dom::parser p;
    // Stricter than kMaxEventDepth by one: the boundary is left to the general path.
    if (p.allocate(kFastMaxBytes, kMaxEventDepth - 1) != simdjson::SUCCESS) {
      throw std::bad_alloc();
    }
    return p;
  }();
  return parser;
}

bool fast_event(std::string_view text, std::span<const std::string> attribute_fields,
                evroute::Event::TimePoint received, std::vector<evroute::Event>& out) {
  constexpr std::size_t kMaxFields = 16;
  if (attribute_fields.size() > kMaxFields) return false;
  if (text.size() < 2 || text.size() > kFastMaxBytes || text.front() != '{') return false;
  if (has_line_break(text)) return false;
  if (text.find("\\u") != std::string_view::npos) return false;
  simdjson::dom::element doc;
  if (fast_parser().parse(text.data(), text.size()).get(doc) != simdjson::SUCCESS) return false;
  simdjson::dom::object object;
  if (doc.get_object().get(object) != simdjson::SUCCESS) return false;

  std::string_view id;
  int ids = 0;
  std::optional<std::string_view> found[kMaxFields];
  bool seen[kMaxFields] = {};
  for (const auto field : object) {
    if (field.key == "id") {
      if (++ids > 1 || field.value.get_string().get(id) != simdjson::SUCCESS) return false;
    }
    for (std::size_t i = 0; i < attribute_fields.size(); ++i) {
      if (field.key != attribute_fields[i]) continue;
      if (std::exchange(seen[i], true)) return false;
      switch (field.value.type()) {
        case simdjson::dom::element_type::STRING:
          found[i] = std::string_view(field.value);
          break;
        case simdjson::dom::element_type::BOOL:
          found[i] = bool(field.value) ? "true" : "false";
          break;
        case simdjson::dom::element_type::INT64:
        case simdjson::dom::element_type::UINT64:
        case simdjson::dom::element_type::DOUBLE:
          return false;
        default:  // objects, arrays, null: not a filterable value, as on the general path
          break;
      }
      if (found[i] && found[i]->size() > evroute::Event::kMaxAttributeBytes) return false;
    }
  }
  char generated[kEventIdBytes];
  if (ids == 0) {
    new_event_id(generated);
    id = std::string_view(generated, kEventIdBytes);
  } else if (!check_id(id).is_ok()) {
    return false;
  }
  evroute::Attribute attributes[kMaxFields];
  std::size_t n = 0;
  for (std::size_t i = 0; i < attribute_fields.size(); ++i) {
    if (found[i]) attributes[n++] = {attribute_fields[i], *found[i]};
  }
  out.push_back(
      event_of(id, text, ids == 0, std::span<const evroute::Attribute>(attributes, n), received));
  return true;
}

// Whether any of the 8 bytes of `w` is `b` (exact: the borrow trick only blurs which one).
constexpr bool has_byte(std::uint64_t w, unsigned char b) {
  const std::uint64_t x = w ^ (0x0101010101010101ull * b);
  return ((x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull) != 0;
}
static_assert(has_byte(0x4142432244454647ull, '"') && !has_byte(0x4142434445464748ull, '"'));

bool json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The elements of `text`, a JSON array of objects ("[{...}, {...}]"), as spans of it: the raw text
// of each event. It follows strings and nesting only and validates nothing else: an element may
// still be invalid JSON (the caller parses each), but between them there is nothing but
// whitespace and one comma, so the array is valid exactly when every element is. nullopt when the
// text has not that shape (not an array, empty, an element that is not an object, stray text).
std::optional<std::vector<std::string_view>> array_elements(std::string_view text) {
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') return std::nullopt;
  std::vector<std::string_view> elements;
  const std::size_t end = text.size() - 1;  // the closing ']'
  std::size_t i = 1;
  while (i < end && json_space(text[i])) ++i;
  // Bytes that matter inside a string, and outside one: a table lookup per byte, no compares.
  static constexpr auto kClass = [] {
    std::array<std::uint8_t, 256> c{};
    c['"'] = 1 | 2;
    c['\\'] = 1;
    c['{'] = c['['] = c['}'] = c[']'] = 2;
    return c;
  }();
  while (i < end) {
    if (text[i] != '{') return std::nullopt;
    const std::size_t start = i;
    int depth = 0;
    bool in_string = false;
    for (; i < end; ++i) {
      const std::uint8_t mask = in_string ? 1 : 2;
      if (in_string) {  // most bytes are in strings: 8 at a time up to a '"' or '\\'
        for (std::uint64_t w; i + 8 <= end; i += 8) {
          std::memcpy(&w, text.data() + i, 8);
          if (has_byte(w, '"') || has_byte(w, '\\')) break;
        }
      }
      while (i < end && !(kClass[static_cast<unsigned char>(text[i])] & mask)) ++i;
      if (i == end) break;
      const char c = text[i];
      if (in_string) {
        if (c == '\\') {
          ++i;  // the escaped character, whatever it is
        } else {
          in_string = false;  // the closing '"'
        }
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (--depth == 0) {  // '}' or ']'
        ++i;
        break;
      }
    }
    if (depth != 0 || i > end) return std::nullopt;
    elements.push_back(text.substr(start, i - start));
    while (i < end && json_space(text[i])) ++i;
    if (i == end) return elements;
    if (text[i] != ',') return std::nullopt;
    ++i;
    while (i < end && json_space(text[i])) ++i;
  }
  return std::nullopt;  // empty, or a trailing comma
}

}  // namespace

std::optional<BodyFormat> body_format(std::string_view content_type) {
  std::string media = ascii_lower(trim(content_type.substr(0, content_type.find(';'))));
  if (media == "application/json") return BodyFormat::kJson;
  if (media == "application/x-ndjson" || media == "application/ndjson") return BodyFormat::kNdjson;
  if (media == cloudevents::kStructuredType) return BodyFormat::kCloudEvent;
  if (media == cloudevents::kBatchType) return BodyFormat::kCloudEventBatch;
  return std::nullopt;
}

namespace {

// NDJSON: one event per non-empty line; the first bad line fails the whole body.
IngestResult parse_ndjson(std::string_view body, std::span<const std::string> attribute_fields,
                          bool fast, std::chrono::system_clock::time_point received) {
  IngestResult result;
  std::size_t line_no = 0;
  while (!body.empty()) {
    ++line_no;
    std::size_t nl = body.find('\n');
    std::string_view line = trim(body.substr(0, nl));
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    if (line.empty()) continue;
    if (line_no == 1) line = strip_bom(line);
    if (fast && fast_event(line, attribute_fields, received, result.events)) continue;
    Json object;
    std::string err = parse_json(line, &object, {kMaxEventDepth, 1});
    if (err.empty())
      err = make_event(object, line, attribute_fields, received, result.events).message();
    if (!err.empty()) {
      result.events.clear();
      result.error = "line " + std::to_string(line_no) + ": " + err;
      return result;
    }
  }
  if (result.events.empty()) result.error = "empty body: expected NDJSON objects";
  return result;
}

IngestResult parse_any(std::string_view body, BodyFormat format,
                       std::span<const std::string> attribute_fields, bool fast) {
  const auto received = std::chrono::system_clock::now();
  if (format == BodyFormat::kNdjson) return parse_ndjson(body, attribute_fields, fast, received);

  IngestResult result;
  std::string_view text = trim(strip_bom(body));
  if (text.empty()) {
    result.error = "empty body: expected a JSON object or an array of objects";
    return result;
  }
  if (fast && format == BodyFormat::kJson &&
      fast_event(text, attribute_fields, received, result.events)) {
    return result;
  }
  // The events are the top-level object, or the elements of a top-level array.
  const bool array = text.front() == '[';
  // An array of objects: each element on the fast path, or the whole body on the general one.
  std::optional<std::vector<std::string_view>> elements;
  if (array && format == BodyFormat::kJson) elements = array_elements(text);
  if (fast && elements) {
    result.events.reserve(elements->size());
    bool all = true;
    for (std::string_view e : *elements) {
      if (!(all = fast_event(e, attribute_fields, received, result.events))) break;
    }
    if (all) return result;
    result.events.clear();
  }
  Json doc;
  if (std::string err = parse_json(text, &doc, {kMaxEventDepth + (array ? 1 : 0), array ? 2u : 1u});
      !err.empty()) {
    result.error = std::move(err);
    return result;
  }
  if (format == BodyFormat::kCloudEvent && !doc.is_object()) {
    result.error = std::string(cloudevents::kStructuredType) +
                   " takes one CloudEvent object, not " + doc.type_name() + " (send several as " +
                   std::string(cloudevents::kBatchType) + ")";
    return result;
  }
  if (format == BodyFormat::kCloudEventBatch && !doc.is_array()) {
    result.error = std::string(cloudevents::kBatchType) +
                   " takes a JSON array of CloudEvents, not " + doc.type_name();
    return result;
  }
  const bool cloudevent =
      format == BodyFormat::kCloudEvent || format == BodyFormat::kCloudEventBatch;
  if (doc.is_object()) {
    std::string err = cloudevent ? cloudevents::check(doc) : "";
    if (err.empty())
      err = make_event(doc, text, attribute_fields, received, result.events).message();
    if (!err.empty()) result.error = err;
    return result;
  }
  if (!doc.is_array()) {
    result.error =
        "body must be a JSON object or an array of objects, not " + std::string(doc.type_name());
    return result;
  }
  result.events.reserve(doc.size());
  // Each element keeps its own text, as a single object does (re-serialized when it is not one
  // line); CloudEvents in a batch are re-serialized.
  if (elements && elements->size() != doc.size()) elements.reset();
  for (std::size_t i = 0; i < doc.size(); ++i) {
    std::string err = cloudevent ? cloudevents::check(doc[i]) : "";
    if (err.empty()) {
      const std::string_view element_text = elements ? (*elements)[i] : std::string_view();
      err = make_event(doc[i], element_text, attribute_fields, received, result.events).message();
    }
    if (!err.empty()) {
      result.events.clear();
      result.error = "element " + std::to_string(i) + ": " + err;
      return result;
    }
  }
  return result;
}

}  // namespace

// Errors may quote what was read (a header name, a JSON token): always as UTF-8, so that the 400
// body that carries them is valid JSON.
IngestResult parse_events(std::string_view body, BodyFormat format,
                          std::span<const std::string> attribute_fields) {
  IngestResult result = parse_any(body, format, attribute_fields, /*fast=*/true);
  if (!valid_utf8(result.error)) result.error = to_valid_utf8(result.error);
  return result;
}

IngestResult parse_events_general(std::string_view body, BodyFormat format,
                                  std::span<const std::string> attribute_fields) {
  IngestResult result = parse_any(body, format, attribute_fields, /*fast=*/false);
  if (!valid_utf8(result.error)) result.error = to_valid_utf8(result.error);
  return result;
}

IngestResult parse_binary_cloudevent(std::span<const cloudevents::Header> ce_headers,
                                     std::string_view content_type, std::string_view body,
                                     std::span<const std::string> attribute_fields) {
  IngestResult result;
  Json object;
  result.error = cloudevents::from_binary(ce_headers, content_type, body, &object);
  if (result.error.empty()) {
    result.error =
        make_event(object, {}, attribute_fields, std::chrono::system_clock::now(), result.events)
            .message();
  }
  if (!result.error.empty()) result.events.clear();
  if (!valid_utf8(result.error)) result.error = to_valid_utf8(result.error);
  return result;
}

}  // namespace evrouted
