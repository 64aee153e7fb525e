// Standard Webhooks signatures (https://www.standardwebhooks.com): the http sink's `secret`.
//
// A secret is "whsec_" followed by the base64 of the key. Each delivery attempt is signed over
// "{webhook-id}.{webhook-timestamp}.{body}" with HMAC-SHA256; the webhook-signature header holds
// "v1,<base64 of the MAC>", one per key, space-separated (several keys: secret rotation).
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evroute/result.h"

namespace evrouted {

// The value of the webhook-signature header for one delivery attempt.
std::string webhook_signature(const std::vector<std::string>& keys, std::string_view id,
                              std::string_view timestamp, std::string_view body);
// "whsec_<base64>" -> the key bytes, or kInvalidArgument when it is not of that form.
evroute::Result<std::string> decode_webhook_secret(std::string_view secret);

}  // namespace evrouted
