// Internal to HttpServer: decoding a request body by its Content-Encoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace evrouted::http::internal {

enum class Decoded { kOk, kTooLarge, kCorrupt, kUnsupported };

// Decodes `body` in place by its Content-Encoding: gzip or deflate (zlib; gzip members may follow
// one another); identity or none leaves it as it is. The decoded size is bounded by `max`: a bomb
// stops there. On kCorrupt, *why says what is wrong; on anything but kOk, `body` is unchanged.
Decoded decode_body(std::string_view encoding, std::string& body, std::uint64_t max,
                    std::string* why);

}  // namespace evrouted::http::internal
