// Hex digits, written once for the daemon: ids, digests, JSON's \u escapes, percent-encoding.
#pragma once

#include <array>

namespace evrouted {

// The two hex digits of `byte`, most significant first: lowercase, or uppercase (percent-encoding
// should use uppercase, RFC 3986 section 2.1).
constexpr std::array<char, 2> hex_byte(unsigned char byte, bool upper = false) {
  constexpr char kLower[] = "0123456789abcdef";
  constexpr char kUpper[] = "0123456789ABCDEF";
  const char* digits = upper ? kUpper : kLower;
  return {digits[byte >> 4], digits[byte & 0xf]};
}

static_assert(hex_byte(0x0a)[0] == '0' && hex_byte(0x0a)[1] == 'a' &&
              hex_byte(0xf3, true)[0] == 'F');

}  // namespace evrouted
