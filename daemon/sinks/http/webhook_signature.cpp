#include "sinks/http/webhook_signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace evrouted {

std::optional<std::string> decode_webhook_secret(std::string_view secret) {
  constexpr std::string_view kPrefix = "whsec_";
  if (secret.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  const std::string_view b64 = secret.substr(kPrefix.size());
  if (b64.empty() || b64.size() % 4 != 0) return std::nullopt;
  std::string key(b64.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()),
                                static_cast<int>(b64.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the bytes that '=' padding stands for: drop them.
  std::size_t padding = 0;
  for (std::size_t i = b64.size(); i > 0 && b64[i - 1] == '='; --i) ++padding;
  key.resize(static_cast<std::size_t>(n) - padding);
  return key;
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
    unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    const int b64_len = EVP_EncodeBlock(b64, mac, static_cast<int>(mac_len));
    if (!header.empty()) header += ' ';
    header += "v1,";
    header.append(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(b64_len));
  }
  return header;
}

}  // namespace evrouted
