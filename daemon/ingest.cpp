#include "ingest.h"

#include <simdjson.h>
#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
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
// NDJSON line), or a JSON array of them, read by simdjson's On-Demand parser in place: no DOM, no
// copy of any value but the few it needs (the id, the filtered fields), each event's payload the
// raw span of its object. It only ever *accepts*: whenever the text is anything but plainly valid,
// or touches a rule nlohmann's path words or decides differently, it declines (false, nothing
// added) and the general path (parse_json + make_event) takes the whole body, so every error, and
// every accepted event, is what that path makes of it (tests/daemon/ingest_fast_test.cpp and
// fuzz_ingest check the two agree). It declines:
//  * a body over kFastMaxBytes; an object holding a CR or LF (re-serialized); an empty array;
//  * any "\u" escape (surrogate pairs: nlohmann's rules decide) or invalid escape;
//  * any simdjson error (nesting past kMaxEventDepth - 1, big integers, out-of-range numbers, bad
//    UTF-8, control characters, trailing text...);
//  * an "id" that is not a string, twice, or not a valid id; a filtered field given twice (which
//    one counts is the general path's rule), a number in a filtered field (nlohmann's dump formats
//    it), or one longer than kMaxAttributeBytes.
// On-Demand checks only what is read, so every value is read (valid()); stage 1, which indexes the
// whole text first, checks UTF-8 and control characters in strings, plain_escapes() the escapes.
namespace od = simdjson::ondemand;

// Bounds what each thread keeps for the fast path: its padded copy of the body and its parser's
// index (touched only as far as a body needs). Bigger bodies (max_body_bytes is 1 MiB unless
// configured higher) take the general path.
constexpr std::size_t kFastMaxBytes = 1 << 20;
constexpr std::size_t kMaxFields = 16;
// Nesting the fast path reads, the event object counting one: stricter than kMaxEventDepth by one,
// the boundary is left to the general path.
constexpr std::size_t kFastMaxDepth = kMaxEventDepth - 1;

od::parser& fast_parser() {
  thread_local od::parser parser(kFastMaxBytes);
  return parser;
}

// This thread's buffer for a text to parse, at least `size` bytes followed by the SIMDJSON_PADDING
// bytes On-Demand may read past a text's end; valid until the next call on this thread.
// `capacity`: its size. The caller zeroes the padding after its text (end_text()).
char* fast_buffer(std::size_t size, std::size_t& capacity) {
  thread_local std::unique_ptr<char[]> buffer;
  thread_local std::size_t allocated = 0;
  const std::size_t need = size + simdjson::SIMDJSON_PADDING;
  if (need > allocated) {
    allocated = std::max(need, std::min(2 * allocated, kFastMaxBytes + simdjson::SIMDJSON_PADDING));
    buffer = std::make_unique_for_overwrite<char[]>(allocated);
  }
  capacity = allocated;
  return buffer.get();
}

// Zeroes the SIMDJSON_PADDING bytes after a text of `size` bytes in fast_buffer() `buffer`. On a
// body whose brackets do not match (`[{"a":[0]]`, stage 1 does not pair them), On-Demand reads
// past the last token into the padding, where a byte left by an earlier body ('}', ']', ',')
// could pass for more of the document; a zero is no JSON token, and the walk fails there.
void end_text(char* buffer, std::size_t size) {
  std::memset(buffer + size, 0, simdjson::SIMDJSON_PADDING);
}

// `text` copied into fast_buffer(), its padding zeroed; `capacity`: the buffer's size.
std::string_view padded_copy(std::string_view text, std::size_t& capacity) {
  char* copy = fast_buffer(text.size(), capacity);
  std::memcpy(copy, text.data(), text.size());
  end_text(copy, text.size());
  return {copy, text.size()};
}

// Whether every backslash in `text` starts one of JSON's two-character escapes (\" \\ \/ \b \f \n
// \r \t): no "\u" and nothing invalid. (A backslash outside a string is invalid JSON that valid()
// finds.)
bool plain_escapes(std::string_view text) {
  for (std::size_t i = text.find('\\'); i != std::string_view::npos; i = text.find('\\', i + 2)) {
    if (i + 1 == text.size()) return false;
    switch (text[i + 1]) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        break;
      default:
        return false;
    }
  }
  return true;
}

// Reads `value` whole: numbers and literals parsed, nested objects and arrays walked (their commas,
// colons and brackets checked), strings skipped (stage 1 and plain_escapes checked them). `depth`:
// the containers around `value`, the event object counting one.
bool valid(od::value value, std::size_t depth) {
  od::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) return false;
  switch (type) {
    case od::json_type::object: {
      od::object object;
      if (depth >= kFastMaxDepth || value.get_object().get(object) != simdjson::SUCCESS) {
        return false;
      }
      for (auto field : object) {
        od::value v;
        if (field.value().get(v) != simdjson::SUCCESS || !valid(v, depth + 1)) return false;
      }
      return true;
    }
    case od::json_type::array: {
      od::array array;
      if (depth >= kFastMaxDepth || value.get_array().get(array) != simdjson::SUCCESS) {
        return false;
      }
      for (auto element : array) {
        od::value v;
        if (element.get(v) != simdjson::SUCCESS || !valid(v, depth + 1)) return false;
      }
      return true;
    }
    case od::json_type::string: {
      od::raw_json_string s;
      return value.get_raw_json_string().get(s) == simdjson::SUCCESS;
    }
    case od::json_type::number: {
      od::number n;
      return value.get_number().get(n) == simdjson::SUCCESS;
    }
    case od::json_type::boolean: {
      bool b;
      return value.get_bool().get(b) == simdjson::SUCCESS;
    }
    case od::json_type::null: {
      bool null = false;
      return value.is_null().get(null) == simdjson::SUCCESS && null;
    }
  }
  return false;
}

// What an event object says of itself: its "id" (`ids`: how many it has) and its filtered fields'
// values (strings unescaped, in the parser's buffer until its next document).
struct EventFields {
  std::string_view id;
  int ids = 0;
  std::optional<std::string_view> found[kMaxFields];
};

// Reads the event object `object` whole, picking out its id and `attribute_fields`.
bool read_event(od::object object, std::span<const std::string> attribute_fields,
                EventFields& got) {
  bool seen[kMaxFields] = {};
  for (auto field : object) {
    std::string_view key;
    od::value value;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS ||
        field.value().get(value) != simdjson::SUCCESS) {
      return false;
    }
    const bool is_id = key == "id";
    std::size_t matched = 0;
    for (std::size_t i = 0; i < attribute_fields.size(); ++i) {
      if (key != attribute_fields[i]) continue;
      if (std::exchange(seen[i], true)) return false;
      ++matched;
    }
    if (!is_id && matched == 0) {
      if (!valid(value, 1)) return false;
      continue;
    }
    // A filtered field's value, read once (a value can be read only once on demand).
    std::optional<std::string_view> text;
    od::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) return false;
    if (type == od::json_type::string) {
      std::string_view s;
      if (value.get_string().get(s) != simdjson::SUCCESS) return false;
      text = s;
    } else if (is_id) {
      return false;
    } else if (type == od::json_type::boolean) {
      bool b;
      if (value.get_bool().get(b) != simdjson::SUCCESS) return false;
      text = b ? "true" : "false";
    } else if (type == od::json_type::number) {
      return false;
    } else if (!valid(value, 1)) {  // objects, arrays, null: not a filterable value
      return false;
    }
    if (is_id) {
      if (++got.ids > 1) return false;
      got.id = *text;
    }
    if (matched == 0) continue;
    if (text && text->size() > evroute::Event::kMaxAttributeBytes) return false;
    for (std::size_t i = 0; i < attribute_fields.size(); ++i) {
      if (key == attribute_fields[i]) got.found[i] = text;
    }
  }
  return true;
}

// Adds the event of an object whose one-line text is `text` and whose fields `got` read.
// `ids` makes its id when it has none. `may_break`: false when the text around `text` was found to
// hold no line break already, so that `text` need not be scanned again.
bool add_event(std::string_view text, const EventFields& got,
               std::span<const std::string> attribute_fields, evroute::Event::TimePoint received,
               EventIdBatch& ids, std::vector<evroute::Event>& out, bool may_break = true) {
  if (may_break && has_line_break(text)) return false;
  std::string_view id = got.id;
  char generated[kEventIdBytes];
  if (got.ids == 0) {
    ids.next(generated);
    id = std::string_view(generated, kEventIdBytes);
  } else if (!check_id(id).is_ok()) {
    return false;
  }
  evroute::Attribute attributes[kMaxFields];
  std::size_t n = 0;
  for (std::size_t i = 0; i < attribute_fields.size(); ++i) {
    if (got.found[i]) attributes[n++] = {attribute_fields[i], *got.found[i]};
  }
  out.push_back(event_of(id, text, got.ids == 0, std::span<const evroute::Attribute>(attributes, n),
                         received));
  return true;
}

// Whether On-Demand has read `doc` to its end: no text after its value.
bool at_end(od::document& doc) {
  const char* next = nullptr;
  return doc.current_location().get(next) == simdjson::OUT_OF_BOUNDS;
}

// Whether the fast path may take the body `text`, filtering on `attribute_fields`.
bool fast_fits(std::string_view text, std::span<const std::string> attribute_fields) {
  return attribute_fields.size() <= kMaxFields && text.size() <= kFastMaxBytes &&
         plain_escapes(text);
}

// One object (a JSON body of one event) on the fast path.
bool fast_event(std::string_view text, std::span<const std::string> attribute_fields,
                evroute::Event::TimePoint received, std::vector<evroute::Event>& out) {
  // (An object on several lines is declined by add_event(), once it is read.)
  if (text.size() < 2 || text.front() != '{' || !fast_fits(text, attribute_fields)) return false;
  std::size_t capacity = 0;
  const std::string_view copy = padded_copy(text, capacity);
  od::document doc;
  od::object object;
  EventFields got;
  EventIdBatch ids;
  return fast_parser().iterate(copy, capacity).get(doc) == simdjson::SUCCESS &&
         doc.get_object().get(object) == simdjson::SUCCESS &&
         read_event(object, attribute_fields, got) && at_end(doc) &&
         add_event(text, got, attribute_fields, received, ids, out);
}

// Where an element must lie in the text parsed: [begin, end) offsets.
struct Extent {
  std::size_t begin, end;
  bool operator==(const Extent&) const = default;
};

// `text` (in fast_buffer(), `capacity` its size), a JSON array of objects, each element an event
// whose payload is its own span of `text`. `lines`, when given, are where the elements must be,
// all of them (NDJSON's lines, joined into one array).
bool fast_elements(std::string_view text, std::size_t capacity, const std::vector<Extent>* lines,
                   std::span<const std::string> attribute_fields,
                   evroute::Event::TimePoint received, std::vector<evroute::Event>& out) {
  od::document doc;
  od::array array;
  if (fast_parser().iterate(text, capacity).get(doc) != simdjson::SUCCESS ||
      doc.get_array().get(array) != simdjson::SUCCESS) {
    return false;
  }
  out.reserve(lines ? lines->size() : text.size() / 256);
  const bool may_break = has_line_break(text);  // one scan of the text, not one per element
  EventIdBatch ids;
  std::size_t k = 0;
  for (auto element : array) {
    od::value value;
    od::object object;
    EventFields got;
    if (element.get(value) != simdjson::SUCCESS) return false;
    const char* begin = value.raw_json_token().data();
    const char* end = nullptr;
    if (value.get_object().get(object) != simdjson::SUCCESS ||
        !read_event(object, attribute_fields, got) ||
        doc.current_location().get(end) != simdjson::SUCCESS) {  // the ',' or ']' after it
      return false;
    }
    // (The element lies within the text, or the walk went wrong: the general path decides.)
    if (begin < text.data() || end <= begin || end > text.data() + text.size()) return false;
    const std::string_view event_text =
        trim(std::string_view(begin, static_cast<std::size_t>(end - begin)));
    if (event_text.size() < 2 || event_text.front() != '{' || event_text.back() != '}') {
      return false;
    }
    const Extent at{static_cast<std::size_t>(event_text.data() - text.data()),
                    static_cast<std::size_t>(event_text.data() - text.data()) + event_text.size()};
    if ((lines && (k >= lines->size() || (*lines)[k] != at)) ||
        !add_event(event_text, got, attribute_fields, received, ids, out, may_break)) {
      return false;
    }
    ++k;
  }
  return k > 0 && (!lines || k == lines->size()) && at_end(doc);
}

// A JSON array of objects on the fast path.
bool fast_array(std::string_view text, std::span<const std::string> attribute_fields,
                evroute::Event::TimePoint received, std::vector<evroute::Event>& out) {
  if (text.size() < 2 || text.front() != '[' || !fast_fits(text, attribute_fields)) return false;
  std::size_t capacity = 0;
  const std::string_view copy = padded_copy(text, capacity);
  return fast_elements(copy, capacity, nullptr, attribute_fields, received, out);
}

// NDJSON on the fast path: its non-empty lines (trimmed, a BOM off the first) joined by commas
// into one JSON array, read as fast_array reads one, each element required to be exactly one line.
bool fast_ndjson(std::string_view body, std::span<const std::string> attribute_fields,
                 evroute::Event::TimePoint received, std::vector<evroute::Event>& out) {
  if (!fast_fits(body, attribute_fields)) return false;
  std::size_t capacity = 0;
  char* joined = fast_buffer(body.size() + 2, capacity);
  std::size_t n = 0;
  joined[n++] = '[';
  std::vector<Extent> lines;
  lines.reserve(body.size() / 128 + 1);
  for (std::size_t line_no = 1; !body.empty(); ++line_no) {
    const std::size_t nl = body.find('\n');
    std::string_view line = trim(body.substr(0, nl));
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    if (line.empty()) continue;
    if (line_no == 1) line = strip_bom(line);
    if (!lines.empty()) joined[n++] = ',';
    std::memcpy(joined + n, line.data(), line.size());
    lines.push_back({n, n + line.size()});
    n += line.size();
  }
  joined[n++] = ']';
  end_text(joined, n);
  return !lines.empty() &&
         fast_elements({joined, n}, capacity, &lines, attribute_fields, received, out);
}

// The whole body on the fast path, as parse_events tries it first: NDJSON's lines, or a JSON body's
// one object or array of objects (a BOM and surrounding whitespace off). CloudEvents never.
bool fast_body(std::string_view body, BodyFormat format,
               std::span<const std::string> attribute_fields, evroute::Event::TimePoint received,
               std::vector<evroute::Event>& out) {
  if (format == BodyFormat::kNdjson) return fast_ndjson(body, attribute_fields, received, out);
  if (format != BodyFormat::kJson) return false;
  const std::string_view text = trim(strip_bom(body));
  return fast_event(text, attribute_fields, received, out) ||
         fast_array(text, attribute_fields, received, out);
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
  IngestResult result;
  if (fast && fast_body(body, format, attribute_fields, received, result.events)) return result;
  result.events.clear();
  if (format == BodyFormat::kNdjson) return parse_ndjson(body, attribute_fields, fast, received);

  std::string_view text = trim(strip_bom(body));
  if (text.empty()) {
    result.error = "empty body: expected a JSON object or an array of objects";
    return result;
  }
  // The events are the top-level object, or the elements of a top-level array: on the general
  // path, each element keeping its own span of the body as its text.
  const bool array = text.front() == '[';
  std::optional<std::vector<std::string_view>> elements;
  if (array && format == BodyFormat::kJson) elements = array_elements(text);
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

bool fast_path_takes(std::string_view body, BodyFormat format,
                     std::span<const std::string> attribute_fields) {
  std::vector<evroute::Event> events;
  return fast_body(body, format, attribute_fields, std::chrono::system_clock::now(), events);
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
