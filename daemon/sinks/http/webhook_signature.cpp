#include "sinks/http/webhook_signature.h"

#include "base64.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace evrouted {

evroute::Result<std::string> decode_webhook_secret(std::string_view secret) {
  constexpr std::string_view kPrefix = "whsec_";
  const std::string_view b64 =
      secret.starts_with(kPrefix) ? secret.substr(kPrefix.size()) : std::string_view();
  std::optional<std::string> key = b64.empty() ? std::nullopt : base64_decode(b64);
  if (!key) return evroute::Status::invalid_argument("not whsec_ followed by base64");
  return std::move(*key);
}

std::string webhook_signature(const std::vector<std::string>& keys, std::string_view id,
                              std::string_view timestamp, std::string_view body) {
  std::string message;
  message.reserve(id.size() + timestamp.size() + body.size() + 2);
  message.append(id).append(".").append(timestamp).append(".").append(body);
  std::string header;
  for (const std::string& key : keys) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len);
    if (!header.empty()) header += ' ';
    header += "v1,";
    header += base64_encode(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
  }
  return header;
}

}  // namespace evrouted
