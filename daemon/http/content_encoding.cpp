#include "http/content_encoding.h"

#include <zlib.h>

#include <array>

#include "text.h"

namespace evrouted::http::internal {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Inflates `body` (a zlib or a gzip stream, or gzip members one after the other) into *out, at
// most `max` bytes of it.
Decoded inflate_body(std::string& body, std::uint64_t max, std::string* out, std::string* why) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) {  // 32: a zlib or a gzip header, whichever it is
    *why = "cannot start zlib";
    return Decoded::kCorrupt;
  }
  std::array<char, 64 << 10> chunk;
  zs.next_in = reinterpret_cast<Bytef*>(body.data());
  zs.avail_in = static_cast<uInt>(body.size());
  Decoded result = Decoded::kOk;
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk.data());
    zs.avail_out = static_cast<uInt>(chunk.size());
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out->append(chunk.data(), chunk.size() - zs.avail_out);
    if (out->size() > max) {
      result = Decoded::kTooLarge;
      break;
    }
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // another gzip member follows
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      *why = "the body ends before the compressed data does";
    } else {
      *why = zs.msg ? zs.msg : "zlib error " + std::to_string(rc);
    }
    result = Decoded::kCorrupt;
    break;
  }
  inflateEnd(&zs);
  return result;
}

}  // namespace

Decoded decode_body(std::string_view encoding, std::string& body, std::uint64_t max,
                    std::string* why) {
  encoding = trim(encoding);
  if (encoding.empty() || iequals(encoding, "identity")) return Decoded::kOk;
  if (!iequals(encoding, "gzip") && !iequals(encoding, "x-gzip") && !iequals(encoding, "deflate")) {
    return Decoded::kUnsupported;
  }
  std::string out;
  const Decoded result = inflate_body(body, max, &out, why);
  if (result == Decoded::kOk) body = std::move(out);
  return result;
}

}  // namespace evrouted::http::internal
