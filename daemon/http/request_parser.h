// Internal to HttpServer: the request parser of a connection, which enforces the header and body
// limits while it reads.
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <cstddef>
#include <cstdint>

#include "http/body_budget.h"
#include "http_server.h"

namespace evrouted::http::internal {

// The request parser: Beast's, with a bound on the number of header fields (Beast bounds only
// their bytes) and a refusal of a second Content-Length (Beast accepts equal ones, which proxies
// may read differently). Fills a Request in place. The body bytes it charges to the budget are
// given back when it is destroyed.
class RequestParser final : public boost::beast::http::basic_parser<true> {
 public:
  using error_code = boost::system::error_code;

  RequestParser(Request& request, const Limits& limits, BodyBudget& budget);
  ~RequestParser() override { budget_.release(charged_); }
  bool too_many_fields() const { return too_many_fields_; }
  // A second Content-Length: equal to the first (refused here), or not (refused by Beast before
  // on_field_impl sees it, with the first one already recorded).
  bool duplicate_content_length(const error_code& ec) const;
  bool over_budget() const { return over_budget_; }
  // Charges `n` more bytes of body (a decoded body's growth) to the budget.
  bool charge(std::uint64_t n);

 private:
  void on_request_impl(boost::beast::http::verb, boost::beast::string_view method,
                       boost::beast::string_view target, int version, error_code&) override;
  void on_response_impl(int, boost::beast::string_view, int, error_code& ec) override;
  void on_field_impl(boost::beast::http::field name, boost::beast::string_view name_string,
                     boost::beast::string_view value, error_code& ec) override;
  void on_header_impl(error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(boost::beast::string_view body, error_code&) override;
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                                 error_code& ec) override;
  void on_finish_impl(error_code&) override {}

  Request& request_;
  std::size_t max_fields_;
  BodyBudget& budget_;
  std::uint64_t charged_ = 0;
  bool over_budget_ = false;
  std::size_t fields_ = 0;
  int content_lengths_ = 0;
  bool too_many_fields_ = false;
  bool duplicate_content_length_ = false;
};

}  // namespace evrouted::http::internal
