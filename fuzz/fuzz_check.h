// Helpers shared by the fuzz targets: property checks that abort (so libFuzzer saves the input as
// a crash), and the byte-level predicates the properties use.
//
// A property failure prints "PROPERTY FAILED: <what>" and the offending value (escaped) to stderr,
// then calls abort(): libFuzzer reports "deadly signal" and writes the input to crash-<sha1>.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace evroute_fuzz {

// The value with every byte outside printable ASCII as \xHH, cut to 200 bytes, for messages.
inline std::string escaped(std::string_view value) {
  std::string out;
  for (std::size_t i = 0; i < value.size() && i < 200; ++i) {
    const auto u = static_cast<unsigned char>(value[i]);
    if (u >= 0x20 && u < 0x7f && u != '\\') {
      out += static_cast<char>(u);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  if (value.size() > 200) out += "...(" + std::to_string(value.size()) + " bytes)";
  return out;
}

[[noreturn]] inline void property_failed(const char* what, std::string_view value) {
  std::fprintf(stderr, "PROPERTY FAILED: %s\n  value: \"%s\"\n", what, escaped(value).c_str());
  std::abort();
}

// Aborts with `what` (and `value`, the thing that broke it) unless `ok`.
inline void require(bool ok, const char* what, std::string_view value = {}) {
  if (!ok) property_failed(what, value);
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF.
inline bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra = 0;
    unsigned cp = 0, min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      extra = 1, min = 0x80, cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2, min = 0x800, cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3, min = 0x10000, cp = c & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

// A C0 control character (0x00-0x1f) or DEL.
inline bool has_control(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

}  // namespace evroute_fuzz
