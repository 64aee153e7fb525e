#include "sinks/http/tls_files.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace evrouted {

// Loads a PEM CA file as the transport will (WebhookTarget), to report a bad one up front.
std::optional<std::string> ca_file_problem(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (!file) return "cannot read " + path + ": " + std::strerror(errno);
  std::fclose(file);
  X509_STORE* store = X509_STORE_new();
  const bool ok = store && X509_STORE_load_file(store, path.c_str()) == 1;
  X509_STORE_free(store);
  const char* why = ERR_reason_error_string(ERR_peek_last_error());
  ERR_clear_error();
  if (ok) return std::nullopt;
  return "cannot load CA certificates from " + path + ": " + (why ? why : "unknown error");
}

// Loads a PEM client certificate and its private key as the transport will, and checks they
// belong together, to report a bad pair up front.
std::optional<std::string> client_identity_problem(const std::string& cert_path,
                                                   const std::string& key_path) {
  auto why = [] {
    const char* r = ERR_reason_error_string(ERR_peek_last_error());
    ERR_clear_error();
    return std::string(r ? r : "unknown error");
  };
  std::FILE* file = std::fopen(cert_path.c_str(), "r");
  if (!file) return "cannot read " + cert_path + ": " + std::strerror(errno);
  X509* cert = PEM_read_X509(file, nullptr, nullptr, nullptr);
  std::fclose(file);
  if (!cert) return "cannot load a PEM certificate from " + cert_path + ": " + why();
  file = std::fopen(key_path.c_str(), "r");
  if (!file) {
    X509_free(cert);
    return "cannot read " + key_path + ": " + std::strerror(errno);
  }
  // No passphrase callback: an encrypted key fails here instead of prompting on a terminal.
  EVP_PKEY* key = PEM_read_PrivateKey(
      file, nullptr, [](char*, int, int, void*) { return 0; }, nullptr);
  std::fclose(file);
  std::optional<std::string> problem;
  if (!key) {
    problem = "cannot load a PEM private key (unencrypted) from " + key_path + ": " + why();
  } else if (X509_check_private_key(cert, key) != 1) {
    ERR_clear_error();
    problem = "the private key in " + key_path + " does not match the certificate in " + cert_path;
  }
  EVP_PKEY_free(key);
  X509_free(cert);
  return problem;
}

}  // namespace evrouted
