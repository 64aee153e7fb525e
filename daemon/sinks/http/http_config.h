// The http sink's settings: what its YAML keys say (HttpSinkConfig), parsed and checked by
// parse_http_sink(), whose problems carry their file:line:column.
//
//   type: http
//   url: https://example.com/hooks          # webhook_url.h
//   headers: { Authorization: Bearer x }    # not the ones the sink sets itself
//   timeout: 5s                             # of each whole attempt
//   secret: whsec_...                       # or a list (rotation); webhook_signature.h
//   retry_on: [429, 5xx]                    # default 408, 429, 5xx; never 410
//   tls: { ca_file, verify, client_cert, client_key }   # https only; tls_files.h
//   format: json | cloudevents-structured | cloudevents-binary
//   cloudevents: { source, default_type }   # with a CloudEvents format only
//   rate_limit, concurrency, batch          # delivery.h
#pragma once

#include <bitset>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cloudevents.h"
#include "config_reader.h"
#include "evroute/status.h"
#include "sinks/delivery.h"
#include "sinks/registry.h"

namespace evrouted {

struct HttpSinkConfig {
  std::string url;
  std::string scheme_host_port;  // from url, e.g. "https://example.com:8443"
  std::string path;              // from url, e.g. "/hooks?x=1" ("/" when absent)
  std::map<std::string, std::string> headers;
  Duration timeout = std::chrono::seconds(5);
  std::string ca_file;  // tls.ca_file; empty: the system's CAs
  bool tls_verify = true;
  std::string client_cert, client_key;    // tls.client_cert / tls.client_key (PEM); both or none
  std::vector<std::string> signing_keys;  // from `secret: whsec_<base64>` (or a list), decoded
  std::bitset<600> retry_on = default_retry_on();  // statuses answered kUnavailable (retried)

  // 408, 429 and every 5xx.
  static std::bitset<600> default_retry_on();

  // `format`: nullopt for json (the payload as application/json), else CloudEvents in this mode.
  std::optional<cloudevents::Mode> cloudevents_mode;
  cloudevents::Options cloudevents;  // `cloudevents: {source, default_type}`

  DeliveryConfig delivery;  // rate_limit, concurrency, batch (applied by the router; batch's
                            // encoding by the sink)
};

// One `retry_on` entry: a status from 400 to 599 ("503", except 410) or a class ("4xx", "5xx").
// Adds it to *out, or returns why it cannot be (kInvalidArgument).
evroute::Status add_retry_on(const std::string& entry, std::bitset<600>* out);

// Reads the http sink's keys (above) from `reader`: the spec, or nullptr with the problems recorded
// in `reader`.
std::unique_ptr<SinkSpec> parse_http_sink(ConfigReader& reader);

// The registry's entry for `type: http` (listed in sinks/registry.cpp).
const SinkType& http_sink_type();

}  // namespace evrouted
