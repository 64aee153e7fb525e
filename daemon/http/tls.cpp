// HttpServer's TLS: the certificate, key and client CA a new connection is made with, loaded by
// use_tls() and swapped whole by reload_tls() (open connections keep the context they were made
// with).

// Boost 1.74's Asio with GCC 12 in C++20 needs <utility> before its headers (std::exchange).
#include <utility>
//
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "http/server_impl.h"

namespace evrouted::http {
namespace {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

std::shared_ptr<ssl::context> load_tls(const TlsFiles& files) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use);
  const auto attempt = [](const char* key, const std::string& path, auto&& load) {
    error_code ec;
    load(ec);
    if (ec) {
      throw std::runtime_error("server.tls." + std::string(key) + " '" + path +
                               "': " + ec.message());
    }
  };
  attempt("cert_file", files.cert_file,
          [&](error_code& ec) { context->use_certificate_chain_file(files.cert_file, ec); });
  attempt("key_file", files.key_file, [&](error_code& ec) {
    context->use_private_key_file(files.key_file, ssl::context::pem, ec);
  });
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    throw std::runtime_error("server.tls.key_file '" + files.key_file +
                             "' is not the key of the certificate in '" + files.cert_file + "'");
  }
  if (!files.client_ca_file.empty()) {
    attempt("client_ca_file", files.client_ca_file,
            [&](error_code& ec) { context->load_verify_file(files.client_ca_file, ec); });
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return context;
}

}  // namespace

void HttpServer::use_tls(const TlsFiles& files) {
  auto context = load_tls(files);
  std::lock_guard<std::mutex> g(impl_->tls_mu);
  impl_->tls = std::move(context);
}

evroute::Status HttpServer::reload_tls(const TlsFiles& files) {
  try {
    use_tls(files);
    return evroute::Status::ok();
  } catch (const std::exception& e) {
    return evroute::Status::invalid_argument(e.what());
  }
}

bool HttpServer::tls() const { return impl_->tls_context() != nullptr; }

}  // namespace evrouted::http
