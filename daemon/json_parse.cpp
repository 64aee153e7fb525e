#include "json_parse.h"

#include <vector>

namespace evrouted {
namespace {

// nlohmann's DOM builder with the depth bound and the duplicate-"id" check in front of it. A
// concrete class (no virtual calls): sax_parse is a template on it.
template <typename JsonT>
class BoundedDomParser {
 public:
  using number_integer_t = typename JsonT::number_integer_t;
  using number_unsigned_t = typename JsonT::number_unsigned_t;
  using number_float_t = typename JsonT::number_float_t;
  using string_t = typename JsonT::string_t;
  using binary_t = typename JsonT::binary_t;

  BoundedDomParser(JsonT* out, const JsonParseOptions& options)
      : dom_(*out, /*allow_exceptions=*/false), options_(options) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(number_float_t v, const string_t& s) { return dom_.number_float(v, s); }
  bool string(string_t& v) { return dom_.string(v); }
  bool binary(binary_t& v) { return dom_.binary(v); }

  bool start_object(std::size_t n) {
    if (!enter()) return false;
    if (depth_ == options_.event_depth) ids_seen_ = 0;
    return dom_.start_object(n);
  }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return enter() && dom_.start_array(n); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool key(string_t& k) {
    if (depth_ == options_.event_depth && k == "id" && ++ids_seen_ > 1) {
      error_ = "duplicate field \"id\"";
      return false;
    }
    return dom_.key(k);
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    std::string_view what = e.what();
    if (auto pos = what.find("] "); pos != std::string_view::npos) what.remove_prefix(pos + 2);
    error_ = "malformed JSON: " + to_valid_utf8(what);
    return false;
  }

  const std::string& error() const { return error_; }
  bool too_deep() const { return too_deep_; }

 private:
  bool enter() {
    if (++depth_ <= options_.max_depth) return true;
    too_deep_ = true;
    // Counted from the events, as the limit is documented, when the text holds an array of them.
    const std::size_t outer = options_.event_depth > 1 ? options_.event_depth - 1 : 0;
    error_ = "JSON nested deeper than " + std::to_string(options_.max_depth - outer) + " levels";
    return false;
  }

  nlohmann::detail::json_sax_dom_parser<JsonT> dom_;
  const JsonParseOptions options_;
  std::size_t depth_ = 0;
  std::size_t ids_seen_ = 0;
  bool too_deep_ = false;
  std::string error_;
};

// Length of the UTF-8 sequence at s[i], or 0 when it is not a valid one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  std::size_t extra;
  unsigned min, cp;
  if ((c & 0xe0) == 0xc0) {
    extra = 1, min = 0x80, cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    extra = 2, min = 0x800, cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    extra = 3, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + extra >= s.size()) return 0;  // truncated
  for (std::size_t k = 1; k <= extra; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return extra + 1;
}

template <typename JsonT>
std::string parse_into(std::string_view text, JsonT* out, const JsonParseOptions& options,
                       bool* too_deep) {
  if (too_deep) *too_deep = false;
  // nlohmann's lexer takes a NUL byte for the end of the input and skips a leading byte order
  // mark: either way the text accepted would not be the text kept (a payload is kept as sent).
  // A JSON text holds neither (RFC 8259: NUL only escaped; a BOM is not part of it).
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return "malformed JSON: a NUL byte at offset " + std::to_string(nul);
  }
  if (text.starts_with("\xEF\xBB\xBF")) {
    return "malformed JSON: a byte order mark is allowed only at the start of the body";
  }
  BoundedDomParser<JsonT> parser(out, options);
  const bool ok = JsonT::sax_parse(text, &parser);
  if (too_deep) *too_deep = parser.too_deep();
  if (ok) return {};
  return parser.error().empty() ? std::string("malformed JSON") : parser.error();
}

template <typename JsonT>
std::string dump_any(const JsonT& value) {
  return value.dump(-1, ' ', false, JsonT::error_handler_t::replace);
}

}  // namespace

std::string parse_json(std::string_view text, nlohmann::ordered_json* out,
                       const JsonParseOptions& options, bool* too_deep) {
  return parse_into(text, out, options, too_deep);
}

bool valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool has_control_character(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) return true;
    if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      return true;
    }
  }
  return false;
}

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string dump_json(const nlohmann::ordered_json& value) { return dump_any(value); }
std::string dump_json(const nlohmann::json& value) { return dump_any(value); }

}  // namespace evrouted
