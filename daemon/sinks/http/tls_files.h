// The http sink's TLS files (`tls.ca_file`, `tls.client_cert` + `tls.client_key`), loaded the way
// the transport (WebhookTarget, webhook_client.h) will load them, so that a bad file is reported
// up front: by the config check, with the key's line, and when a sink is built.
// Thread-safety: free functions; OpenSSL's error queue is per thread.
#pragma once

#include <optional>
#include <string>

namespace evrouted {

// Why the PEM CA file at `path` cannot be loaded, or nullopt.
std::optional<std::string> ca_file_problem(const std::string& path);
// Why the PEM client certificate and its (unencrypted) private key cannot be loaded, or do not
// belong together; nullopt when they can and do. A message that starts "cannot read CERT:" or
// "cannot load a PEM certificate" is about the certificate, any other about the key.
std::optional<std::string> client_identity_problem(const std::string& cert_path,
                                                   const std::string& key_path);

}  // namespace evrouted
